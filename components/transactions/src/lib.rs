//! `transactions`: seed 001's web application. Serves the upload page and
//! the API that accepts a file of transaction records:
//!
//! | method | path                        | does                                  |
//! |--------|-----------------------------|---------------------------------------|
//! | GET    | `/` , `/transactions`       | the upload page                       |
//! | POST   | `/api/transactions`         | validate, store, queue; 202 + batch   |
//! | GET    | `/api/transactions/{batch}` | progress and each record's result     |
//! |        | `...?records=false`         | progress only (counts, no record list)|
//! | GET    | `/api/clients/{_id}`        | the client's cached data and its TTL  |
//!
//! Configuration (`[component.config]`): `max_records` (default 10000),
//! `queue` (default `transactions`), `bucket` (key-value, default
//! `transactions`), `container` (blobstore, default `transactions`).

mod batch;
mod record;
mod upload;

use corral_sdk::audit::Record;
use corral_sdk::http::{Error, Handler, Request, Response};

const PAGE: &str = include_str!("page.html");

struct Transactions;

impl Handler for Transactions {
    fn handle(request: Request) -> Result<Response, Error> {
        let path = request.path.trim_end_matches('/');
        match (request.method.as_str(), path) {
            ("GET" | "HEAD", "" | "/transactions") => Ok(Response::html(200, PAGE)),
            ("POST", "/api/transactions") => {
                let response = upload::accept(&request).unwrap_or_else(Response::from);
                audit_upload(&request, &response);
                Ok(response)
            }
            (_, "/api/transactions") => Err(Error::method_not_allowed(&request.method, "POST")),
            ("GET", _) if path.starts_with("/api/transactions/") => {
                let with_records = request.query_param("records").as_deref() != Some("false");
                batch::status(&path["/api/transactions/".len()..], with_records)
            }
            ("GET", _) if path.starts_with("/api/clients/") => {
                batch::client(&path["/api/clients/".len()..])
            }
            _ => Err(Error::not_found(&request.path)),
        }
    }
}

/// One log record per upload (`upload_batch`): accepted with its batch id
/// and record count, or refused with the cause. A log system that is down
/// costs a warning in the component's log, not the upload.
fn audit_upload(request: &Request, response: &Response) {
    let user = corral_sdk::tokens::subject(request)
        .or(request.header("x-user-id"))
        .unwrap_or("-");
    let mut record = Record::new("transaction_service", user, "upload_batch").outcome_of(response);
    if let Ok(answer) = serde_json::from_slice::<serde_json::Value>(&response.body) {
        for field in ["batch", "records", "duplicate"] {
            if !answer[field].is_null() {
                record = record.with(field, answer[field].clone());
            }
        }
    }
    record.send();
}

corral_sdk::http_component!(Transactions);

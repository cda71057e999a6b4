//! `POST /api/transactions`: take the file (a JSON body or a multipart
//! upload), validate every record, then hand the batch to [`crate::batch`].
//! Nothing is stored unless every record is valid.

use corral_sdk::http::{Error, Request, Response};
use corral_sdk::{config, multipart};

use crate::{batch, record};

pub const DEFAULT_MAX_RECORDS: usize = 10_000;

/// A page of another site can make a browser post a multipart form here
/// (with the user's cookies). Browsers say where such a request comes
/// from: refuse it when `Origin` names another host than the one the
/// request was sent to, or `Sec-Fetch-Site` says `cross-site`. Clients
/// that are not browsers send neither and are not affected.
fn refuse_cross_site(request: &Request) -> Result<(), Error> {
    let cross_site = request.header("sec-fetch-site") == Some("cross-site");
    let other_origin = match (request.header("origin"), request.header("host")) {
        (Some(origin), Some(host)) => {
            origin.split_once("://").map(|(_, authority)| authority) != Some(host)
        }
        (Some(_), None) => true,
        (None, _) => false,
    };
    if cross_site || other_origin {
        return Err(Error::new(
            403,
            "cross_origin",
            "uploads are accepted from this site's own page only",
        )
        .with_field("origin"));
    }
    Ok(())
}

pub fn accept(request: &Request) -> Result<Response, Error> {
    refuse_cross_site(request)?;
    let content_type = request.header("content-type").unwrap_or("application/json");
    let file: &[u8] = if content_type.starts_with("multipart/form-data") {
        multipart::file(content_type, &request.body)
            .map_err(|problem| Error::bad_request("bad_upload", problem).with_field("file"))?
            .body
    } else if content_type.starts_with("application/json") {
        // A JSON body cannot come from another site's form: browsers only
        // send it after a CORS preflight, which this service never grants.
        &request.body
    } else {
        return Err(Error::new(
            415,
            "unsupported_media_type",
            format!("send application/json or a multipart/form-data file, not {content_type}"),
        )
        .with_field("content-type"));
    };
    let max_records = config::get("max_records")
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_RECORDS);
    match record::validate(file, max_records) {
        Ok(records) => batch::submit(file, &records),
        // Not an `Error`: the answer lists every problem beside the error.
        Err(problems) => {
            let records: std::collections::BTreeSet<_> = problems.iter().map(|p| p.index).collect();
            let mut response = serde_json::json!({
                "error": {
                    "code": "invalid_records",
                    "field": problems.first().map(|p| p.field.clone()),
                    "message": format!(
                        "{} problem(s) in {} record(s); nothing was saved",
                        problems.len(),
                        records.len()
                    ),
                },
                "problems": problems,
            });
            if problems.len() == 1 && problems[0].field == "body" {
                response["error"]["code"] = "invalid_file".into();
                response["error"]["message"] = problems[0].problem.clone().into();
            }
            Ok(Response::json(400, &response))
        }
    }
}

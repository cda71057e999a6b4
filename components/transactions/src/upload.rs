//! `POST /api/transactions`: take the file (a JSON body or a multipart
//! upload), validate every record, then hand the batch to [`crate::batch`].
//! Nothing is stored unless every record is valid.

use corral_sdk::http::{Error, Request, Response};
use corral_sdk::{config, multipart};

use crate::{batch, record};

pub const DEFAULT_MAX_RECORDS: usize = 10_000;

pub fn accept(request: &Request) -> Result<Response, Error> {
    let content_type = request.header("content-type").unwrap_or("application/json");
    let file: &[u8] = if content_type.starts_with("multipart/form-data") {
        multipart::file(content_type, &request.body)
            .map_err(|problem| Error::bad_request("bad_upload", problem).with_field("file"))?
            .body
    } else if content_type.starts_with("application/json") || content_type.starts_with("text/plain")
    {
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

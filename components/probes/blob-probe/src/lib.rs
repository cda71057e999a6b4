//! `blob-probe`: puts `wasi:blobstore` behind HTTP so that tests can drive
//! it through the real host (`host/tests/e2e/blobstore.rs`). Names travel in
//! the query string, so that they reach the host exactly as sent (a path
//! would be normalised on the way).
//!
//! | request | does |
//! |---|---|
//! | `POST /blob/container?container=c` | create-container |
//! | `GET /blob/container?container=c` | container-exists |
//! | `DELETE /blob/container?container=c` | delete-container |
//! | `GET /blob/list?container=c` | list-objects (sorted) |
//! | `PUT /blob/object?container=c&name=n` | write the body as object `n` |
//! | `GET /blob/object?container=c&name=n[&start=&end=][&stream=1]` | read it |
//! | `DELETE /blob/object?container=c&name=n` | delete-object |
//! | `GET /blob/info?container=c&name=n` | object-info |
//! | `POST /blob/copy?container=c&name=n&to=c2&as=n2[&move=1]` | copy / move |
//!
//! Errors use the platform's JSON shape; a refused argument is named in
//! `error.field`.

use corral_sdk::blob;
use corral_sdk::http::{Error, Handler, Request, Response};
use serde_json::json;

struct Probe;

impl Handler for Probe {
    fn handle(request: Request) -> Result<Response, Error> {
        route(&request)
    }
}

corral_sdk::http_component!(Probe);

fn route(request: &Request) -> Result<Response, Error> {
    let container = || request.required_query_param("container");
    let name = || request.required_query_param("name");
    match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/blob/container") => {
            let c = container()?;
            blob::create(&c)?;
            Ok(Response::json(201, &json!({ "container": c })))
        }
        ("GET", "/blob/container") => {
            let exists = blob::exists(&container()?)?;
            Ok(Response::json(200, &json!({ "exists": exists })))
        }
        ("DELETE", "/blob/container") => {
            blob::delete_container(&container()?)?;
            Ok(Response::json(200, &json!({ "deleted": true })))
        }
        ("GET", "/blob/list") => {
            let objects = blob::open(&container()?).and_then(|c| c.list())?;
            Ok(Response::json(200, &json!({ "objects": objects })))
        }
        ("PUT", "/blob/object") => {
            let (c, n) = (container()?, name()?);
            blob::open(&c).and_then(|b| b.put(&n, &request.body))?;
            Ok(Response::json(
                201,
                &json!({ "container": c, "name": n, "size": request.body.len() }),
            ))
        }
        ("GET", "/blob/object") => read(request, &container()?, &name()?),
        ("DELETE", "/blob/object") => {
            let (c, n) = (container()?, name()?);
            blob::open(&c).and_then(|b| b.delete(&n))?;
            Ok(Response::json(200, &json!({ "deleted": true })))
        }
        ("GET", "/blob/info") => {
            let (c, n) = (container()?, name()?);
            let info = blob::open(&c).and_then(|b| b.info(&n))?;
            Ok(Response::json(
                200,
                &json!({ "container": info.container, "name": info.name, "size": info.size, "created_at": info.created_at }),
            ))
        }
        ("POST", "/blob/copy") => {
            let (c, n, to, to_name) = (
                container()?,
                name()?,
                request.required_query_param("to")?,
                request.required_query_param("as")?,
            );
            let moving = request.query_param("move").is_some();
            let done = if moving {
                blob::rename((&c, &n), (&to, &to_name))
            } else {
                blob::copy((&c, &n), (&to, &to_name))
            };
            done?;
            Ok(Response::json(
                200,
                &json!({ "container": to, "name": to_name, "moved": moving }),
            ))
        }
        (_, path) => Err(Error::not_found(path)),
    }
}

fn read(request: &Request, container: &str, name: &str) -> Result<Response, Error> {
    let number = |key: &str, default: u64| match request.query_param(key) {
        None => Ok(default),
        Some(text) => text.parse::<u64>().map_err(|_| {
            Error::bad_request("invalid", format!("{key} must be a number, not {text:?}"))
                .with_field(key)
        }),
    };
    let (start, end) = (number("start", 0)?, number("end", u64::MAX)?);
    let b = blob::open(container)?;
    let bytes = if request.query_param("stream").is_some() {
        b.get_streamed(name)
    } else {
        b.get_range(name, start, end)
    };
    Ok(Response::new(200, "application/octet-stream", bytes?))
}

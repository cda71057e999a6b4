//! The request body size limit.
//!
//! A declared `Content-Length` over the limit is refused before a single
//! byte is read; a body of unknown length (chunked) is read up to the limit
//! first, so the component never sees a truncated body: it gets the whole
//! body or the client gets 413.

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use wasmtime_wasi_http::p2::body::HyperIncomingBody;

use crate::responses::HostError;

pub async fn limit<B>(
    request: Request<B>,
    max_bytes: u64,
) -> Result<Request<HyperIncomingBody>, HostError>
where
    B: http_body::Body<Data = Bytes, Error = hyper::Error> + Send + 'static,
{
    let too_large = |size: String| {
        HostError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body is {size}; the limit is {max_bytes} bytes"),
        )
        .field("body")
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared {
        if length > max_bytes {
            return Err(too_large(format!("{length} bytes")));
        }
        return Ok(request.map(|body| {
            body.map_err(wasmtime_wasi_http::Error::Hyper)
                .boxed_unsync()
        }));
    }
    if request.body().is_end_stream() {
        return Ok(request.map(|body| {
            body.map_err(wasmtime_wasi_http::Error::Hyper)
                .boxed_unsync()
        }));
    }
    let (parts, body) = request.into_parts();
    let collected = Limited::new(body, max_bytes as usize).collect().await;
    match collected {
        Ok(collected) => {
            let bytes: Bytes = collected.to_bytes();
            let body = Full::new(bytes)
                .map_err(|never| match never {})
                .boxed_unsync();
            Ok(Request::from_parts(parts, body))
        }
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(too_large(format!("over {max_bytes} bytes")))
        }
        Err(e) => Err(HostError::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            format!("could not read the request body: {e}"),
        )
        .field("body")),
    }
}

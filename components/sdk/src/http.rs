//! A buffered request/response model over `wasi:http`.
//!
//! The services hosted here exchange small JSON documents and pages, so the
//! whole request body is read before the handler runs and the whole response
//! is written after it returns. A component that wants to stream can still
//! implement `wasi:http/incoming-handler` directly.

use std::io::{Read as _, Write as _};

use serde::Serialize;
use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

/// An HTTP request, fully read.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (case-insensitive), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The decoded value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }

    /// Path segments after `prefix`, e.g. `/users/7` after `/users` is `["7"]`.
    pub fn segments_after(&self, prefix: &str) -> Option<Vec<&str>> {
        let rest = self.path.strip_prefix(prefix)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        Some(rest.split('/').filter(|s| !s.is_empty()).collect())
    }
}

/// Decodes `%XX` escapes and `+` (as a space).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (byte, None) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An HTTP response to be written.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.as_bytes().to_vec())],
            body: body.into(),
        }
    }

    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "text/plain; charset=utf-8", body.into())
    }

    pub fn html(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "text/html; charset=utf-8", body)
    }

    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self::new(status, "application/json", body),
            Err(e) => Self::error(
                500,
                "serialize",
                None,
                &format!("cannot encode response: {e}"),
            ),
        }
    }

    /// The platform's error shape:
    /// `{"error": {"code", "message", "field"?}}`.
    pub fn error(status: u16, code: &str, field: Option<&str>, message: &str) -> Self {
        let mut error = serde_json::json!({ "code": code, "message": message });
        if let Some(field) = field {
            error["field"] = field.into();
        }
        Self::json(status, &serde_json::json!({ "error": error }))
    }

    pub fn not_found(path: &str) -> Self {
        Self::error(404, "not_found", None, &format!("nothing at {path}"))
    }

    pub fn method_not_allowed(method: &str, allowed: &str) -> Self {
        Self::error(
            405,
            "method_not_allowed",
            Some("method"),
            &format!("{method} is not allowed here; use {allowed}"),
        )
        .with_header("allow", allowed)
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_owned(), value.as_bytes().to_vec()));
        self
    }
}

/// What a component implements.
pub trait Handler {
    fn handle(request: Request) -> Response;
}

/// Exports `$handler` (a type implementing [`Handler`]) as the component's
/// `wasi:http/incoming-handler`.
#[macro_export]
macro_rules! http_component {
    ($handler:ty) => {
        struct __CorralHttpExport;
        impl $crate::wasip2::exports::http::incoming_handler::Guest for __CorralHttpExport {
            fn handle(
                request: $crate::wasip2::http::types::IncomingRequest,
                out: $crate::wasip2::http::types::ResponseOutparam,
            ) {
                $crate::http::serve::<$handler>(request, out)
            }
        }
        $crate::wasip2::http::proxy::export!(__CorralHttpExport);
    };
}

/// Reads `incoming`, runs `H`, writes its response. Used by
/// [`http_component!`].
pub fn serve<H: Handler>(incoming: IncomingRequest, out: ResponseOutparam) {
    let response = match read_request(&incoming) {
        Ok(request) => H::handle(request),
        Err(message) => Response::error(400, "bad_request", Some("body"), &message),
    };
    write_response(response, out);
}

fn read_request(incoming: &IncomingRequest) -> Result<Request, String> {
    let method = match incoming.method() {
        Method::Get => "GET".to_owned(),
        Method::Head => "HEAD".to_owned(),
        Method::Post => "POST".to_owned(),
        Method::Put => "PUT".to_owned(),
        Method::Delete => "DELETE".to_owned(),
        Method::Connect => "CONNECT".to_owned(),
        Method::Options => "OPTIONS".to_owned(),
        Method::Trace => "TRACE".to_owned(),
        Method::Patch => "PATCH".to_owned(),
        Method::Other(other) => other,
    };
    let path_with_query = incoming.path_with_query().unwrap_or_else(|| "/".to_owned());
    let (path, query) = match path_with_query.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (path_with_query, None),
    };
    let headers = incoming.headers().entries();
    let mut body = Vec::new();
    let incoming_body = incoming
        .consume()
        .map_err(|()| "request body already consumed".to_owned())?;
    {
        let mut stream = incoming_body
            .stream()
            .map_err(|()| "request body stream unavailable".to_owned())?;
        stream
            .read_to_end(&mut body)
            .map_err(|e| format!("could not read the request body: {e}"))?;
    }
    Ok(Request {
        method,
        path,
        query,
        headers,
        body,
    })
}

fn write_response(response: Response, out: ResponseOutparam) {
    let headers = Fields::new();
    for (name, value) in &response.headers {
        let _ = headers.append(name, value);
    }
    let outgoing = OutgoingResponse::new(headers);
    let _ = outgoing.set_status_code(response.status);
    let body = outgoing.body().expect("outgoing body is taken once");
    ResponseOutparam::set(out, Ok(outgoing));
    {
        let mut stream = body.write().expect("outgoing stream is taken once");
        // A failed write means the client went away; nothing left to do.
        let _ = stream
            .write_all(&response.body)
            .and_then(|()| std::io::Write::flush(&mut stream));
    }
    let _ = OutgoingBody::finish(body, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_values() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}

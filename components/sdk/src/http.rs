//! A buffered request/response model over `wasi:http`.
//!
//! The services hosted here exchange small JSON documents and pages, so the
//! whole request body is read before the handler runs and the whole response
//! is written after it returns. A component that wants to stream can still
//! implement `wasi:http/incoming-handler` directly.

use std::io::{Read as _, Write as _};

use serde::Serialize;
use serde::de::DeserializeOwned;
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

    /// The decoded value of query parameter `name`, or a 400 `missing`
    /// error naming it when it is absent.
    pub fn required_query_param(&self, name: &str) -> Result<String, Error> {
        self.query_param(name).ok_or_else(|| {
            Error::new(
                400,
                "missing",
                format!("query parameter {name} is required"),
            )
            .with_field(name)
        })
    }

    /// The body decoded from JSON; one that does not decode is a 400
    /// `invalid_json` error on field `body` that names the problem (see
    /// [`Error`]'s `From<serde_json::Error>`).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    /// Whether the request says its body is JSON (`application/json` or
    /// `application/*+json`).
    pub fn is_json(&self) -> bool {
        self.header("content-type").is_some_and(|ct| {
            let essence = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/json"
                || (essence.starts_with("application/") && essence.ends_with("+json"))
        })
    }

    /// The body of a JSON API call: 415 `unsupported_media_type` (field
    /// `content-type`) unless the request says it is JSON, 400
    /// `invalid_json` (field `body`) unless it is.
    pub fn json_body<T: DeserializeOwned>(&self) -> Result<T, Error> {
        if !self.is_json() {
            return Err(Error::new(
                415,
                "unsupported_media_type",
                "send JSON (content-type: application/json)",
            )
            .with_field("content-type"));
        }
        self.json()
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

/// Whether an `If-Match` / `If-None-Match` header names entity tag `tag`
/// (quoted, as sent in `ETag`): `*` names any, a weak tag compares by its
/// value.
pub fn etag_matches(header: &str, tag: &str) -> bool {
    header.split(',').map(str::trim).any(|given| {
        given == "*" || given.trim_start_matches("W/") == tag || format!("\"{given}\"") == tag
    })
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

/// A request that failed, answered with the platform's JSON error shape
/// (the same as [`Response::error`]):
/// `{"error": {"code", "message", "field"?}}` with `status`.
///
/// A handler returns it with `?`: the SDK's own errors convert with the
/// status that fits them ([`kv::Error`](crate::kv::Error) 403/404/500,
/// [`blob::Error`](crate::blob::Error) 400/403/404/502,
/// [`messaging::Error`](crate::messaging::Error) 400/403/502/503,
/// [`config::Error`](crate::config::Error) 500,
/// [`ClientError`](crate::client::ClientError) 500/502/504), and a
/// [`serde_json::Error`] is taken for a request body that does not decode:
/// 400 `invalid_json` on field `body`. For a different status or code, map
/// the error yourself: `.map_err(|e| Error::new(409, "conflict", e.to_string()))?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: u16,
    /// A stable, machine-readable code (`not_found`, `invalid`...).
    pub code: String,
    /// The request part at fault (a query parameter, `body`...), if any.
    pub field: Option<String>,
    /// A sentence for a person.
    pub message: String,
    /// Headers added to the response (e.g. `retry-after`).
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Error {
    /// An error answered with `status`: what [`Response::error`] answers,
    /// without a field (add one with [`Error::with_field`]).
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            field: None,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// Names the part of the request at fault (`error.field`).
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Adds a header to the error response.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_owned(), value.as_bytes().to_vec()));
        self
    }

    /// 400 with `code` and `message`.
    pub fn bad_request(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    /// 500 `internal`: a failure of the component itself.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal", message)
    }

    /// What [`Response::not_found`] answers.
    pub fn not_found(path: &str) -> Self {
        Self::new(404, "not_found", format!("nothing at {path}"))
    }

    /// What [`Response::method_not_allowed`] answers, `allow` header included.
    pub fn method_not_allowed(method: &str, allowed: &str) -> Self {
        Self::new(
            405,
            "method_not_allowed",
            format!("{method} is not allowed here; use {allowed}"),
        )
        .with_field("method")
        .with_header("allow", allowed)
    }

    /// The response this error is answered with.
    pub fn into_response(self) -> Response {
        let mut response = Response::error(
            self.status,
            &self.code,
            self.field.as_deref(),
            &self.message,
        );
        response.headers.extend(self.headers);
        response
    }
}

impl From<Error> for Response {
    fn from(error: Error) -> Self {
        error.into_response()
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for Error {}

/// A body that does not decode: 400 `invalid_json` on field `body`, with
/// serde's account of the problem (what, and at which line and column).
/// `?` on a `serde_json` call assumes it decoded the request: map an
/// encoding error yourself if it needs another status.
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        let problem = match e.classify() {
            serde_json::error::Category::Data => "does not have the expected shape",
            _ => "is not valid JSON",
        };
        Self::new(
            400,
            "invalid_json",
            format!("the request body {problem}: {e}"),
        )
        .with_field("body")
    }
}

/// The key-value error's own status and code (403 `access_denied`, 404
/// `no_such_store`, 503 `backend_unavailable` with `Retry-After`, 500
/// `keyvalue_error`), its text as the message.
impl From<crate::kv::Error> for Error {
    fn from(e: crate::kv::Error) -> Self {
        let error = Self::new(e.http_status(), e.code(), e.to_string());
        match e.is_unavailable() {
            true => error.with_field("keyvalue").with_header("retry-after", "5"),
            false => error,
        }
    }
}

/// The blobstore's refusal with its status and code (403 `not_granted`,
/// 400 `invalid`, 404 `not_found`, 502 `blobstore`) and the argument it
/// refused as the field.
impl From<crate::blob::Error> for Error {
    fn from(e: crate::blob::Error) -> Self {
        let error = Self::new(e.http_status(), e.code(), e.0.clone());
        match e.field() {
            Some(field) => error.with_field(field),
            None if e.is_unavailable() => error
                .with_field("blobstore")
                .with_header("retry-after", "5"),
            None => error,
        }
    }
}

/// The publish error's status and code (403 `not_granted`, 503
/// `unavailable`, 502 `rejected`, 400 `invalid`), the broker's or host's
/// words as the message.
impl From<crate::messaging::Error> for Error {
    fn from(e: crate::messaging::Error) -> Self {
        Self::new(e.http_status(), e.code(), e.detail())
    }
}

/// The password error's status and code (400 `invalid_password` on field
/// `password`, 503 `busy` with `retry-after: 1`, 500 otherwise).
impl From<crate::passwords::Error> for Error {
    fn from(e: crate::passwords::Error) -> Self {
        let error = Self::new(e.http_status(), e.code(), e.detail());
        match e {
            crate::passwords::Error::Invalid(_) => error.with_field("password"),
            crate::passwords::Error::Busy(_) => error.with_header("retry-after", "1"),
            _ => error,
        }
    }
}

/// 500: a setting the component needs is missing, or the store failed.
impl From<crate::config::Error> for Error {
    fn from(e: crate::config::Error) -> Self {
        Self::new(e.http_status(), e.code(), e.to_string())
    }
}

/// An outbound request that got no response: 504 `upstream_timeout`, 502
/// `upstream_unreachable` or `upstream_error`, 500 `bad_url` or
/// `outbound_denied` (the host's policy: a deployment problem).
impl From<crate::client::ClientError> for Error {
    fn from(e: crate::client::ClientError) -> Self {
        Self::new(e.http_status(), e.code(), e.to_string())
    }
}

/// What a component implements: `Ok` is answered as it is (any status),
/// `Err` as the platform's JSON error.
///
/// ```ignore
/// struct Users;
/// impl corral_sdk::http::Handler for Users {
///     fn handle(request: Request) -> Result<Response, Error> {
///         let Some(&[id]) = request.segments_after("/users").as_deref() else {
///             return Err(Error::not_found(&request.path));
///         };
///         let users = corral_sdk::kv::open("users")?; // 403/404/500 on failure
///         match users.get_json::<serde_json::Value>(id)? {
///             Some(user) => Ok(Response::json(200, &user)),
///             None => Err(Error::new(404, "unknown_user", format!("no user {id}")).with_field("id")),
///         }
///     }
/// }
/// ```
pub trait Handler {
    fn handle(request: Request) -> Result<Response, Error>;
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
        Ok(request) => H::handle(request).unwrap_or_else(Error::into_response),
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
    let mut headers = incoming.headers().entries();
    // wasi:http gives the request's authority apart from its headers (the
    // `Host` header is not among them): put it back as `host`, where
    // handlers expect it.
    if let Some(authority) = incoming.authority()
        && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host"))
    {
        headers.push(("host".to_owned(), authority.into_bytes()));
    }
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

    fn same(error: Error, response: Response) {
        let answered = Response::from(error);
        assert_eq!(answered.status, response.status);
        assert_eq!(answered.headers, response.headers);
        assert_eq!(
            String::from_utf8(answered.body).unwrap(),
            String::from_utf8(response.body).unwrap()
        );
    }

    #[test]
    fn errors_answer_what_response_error_answers() {
        same(Error::not_found("/x"), Response::not_found("/x"));
        same(
            Error::method_not_allowed("PUT", "GET"),
            Response::method_not_allowed("PUT", "GET"),
        );
        same(
            Error::new(503, "backend_unavailable", "down")
                .with_field("keyvalue")
                .with_header("retry-after", "5"),
            Response::error(503, "backend_unavailable", Some("keyvalue"), "down")
                .with_header("retry-after", "5"),
        );
        same(
            Error::bad_request("invalid", "no"),
            Response::error(400, "invalid", None, "no"),
        );
        let body = Response::from(Error::new(409, "conflict", "taken").with_field("name")).body;
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"error":{"code":"conflict","field":"name","message":"taken"}}"#
        );
    }

    #[test]
    fn sdk_errors_convert_with_their_status_and_code() {
        use crate::{blob, kv};
        same(
            kv::Error::AccessDenied.into(),
            Response::error(
                403,
                "access_denied",
                None,
                "access to this bucket is not granted",
            ),
        );
        same(
            kv::Error::Other("down".into()).into(),
            Response::error(500, "keyvalue_error", None, "down"),
        );
        // The host marks an outage: 503 with a hint when to come back.
        let outage = "unavailable: keyvalue get: redis at 127.0.0.1:1 is unreachable";
        same(
            kv::Error::Other(outage.into()).into(),
            Response::error(503, "backend_unavailable", Some("keyvalue"), outage)
                .with_header("retry-after", "5"),
        );
        let outage = "unavailable: put \"o\": the s3 store did not answer within 300 ms";
        same(
            blob::Error(outage.into()).into(),
            Response::error(503, "backend_unavailable", Some("blobstore"), outage)
                .with_header("retry-after", "5"),
        );
        let blob = |message: &str| Error::from(blob::Error(message.into()));
        let e = blob("container \"x\" is not granted");
        assert_eq!(
            (e.status, e.code.as_str(), e.field.as_deref()),
            (403, "not_granted", Some("container"))
        );
        let e = blob("invalid object name \"../x\": dots");
        assert_eq!(
            (e.status, e.code.as_str(), e.field.as_deref()),
            (400, "invalid", Some("name"))
        );
        let e = blob("object \"x\": not found");
        assert_eq!(
            (e.status, e.code.as_str(), e.field.as_deref()),
            (404, "not_found", None)
        );
        let e = blob("disk full");
        assert_eq!(
            (e.status, e.code.as_str(), e.message.as_str()),
            (502, "blobstore", "disk full")
        );
        let e = Error::from(crate::client::ClientError::Timeout("slow".into()));
        assert_eq!((e.status, e.code.as_str()), (504, "upstream_timeout"));
    }

    #[test]
    fn entity_tags_match_as_if_match_means() {
        assert!(etag_matches("\"3\"", "\"3\""));
        assert!(etag_matches("\"1\", W/\"3\"", "\"3\""));
        assert!(etag_matches("*", "\"3\""));
        assert!(etag_matches("3", "\"3\""));
        assert!(!etag_matches("\"2\"", "\"3\""));
        assert!(!etag_matches("\"33\"", "\"3\""));
    }

    #[test]
    fn request_helpers_answer_400s() {
        let request = |query: Option<&str>, body: &[u8]| Request {
            method: "POST".into(),
            path: "/".into(),
            query: query.map(Into::into),
            headers: Vec::new(),
            body: body.to_vec(),
        };
        let e = request(None, b"").required_query_param("name").unwrap_err();
        same(
            e,
            Response::error(
                400,
                "missing",
                Some("name"),
                "query parameter name is required",
            ),
        );
        assert_eq!(
            request(Some("name=a%20b"), b"")
                .required_query_param("name")
                .unwrap(),
            "a b"
        );
        let e = request(None, b"{\"a\": ")
            .json::<serde_json::Value>()
            .unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str(), e.field.as_deref()),
            (400, "invalid_json", Some("body"))
        );
        assert!(
            e.message
                .starts_with("the request body is not valid JSON: EOF"),
            "{e}"
        );
        let e = request(None, b"{}")
            .json_body::<serde_json::Value>()
            .unwrap_err();
        assert_eq!((e.status, e.field.as_deref()), (415, Some("content-type")));
        let mut json = request(None, b"{\"a\": 1}");
        json.headers.push((
            "Content-Type".into(),
            b"application/json; charset=utf-8".to_vec(),
        ));
        assert_eq!(
            json.json_body::<serde_json::Value>().unwrap(),
            serde_json::json!({"a": 1})
        );
        let e = request(None, b"[1]")
            .json::<std::collections::BTreeMap<String, u8>>()
            .unwrap_err();
        assert!(
            e.message
                .starts_with("the request body does not have the expected shape: invalid type"),
            "{e}"
        );
    }
}

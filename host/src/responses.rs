//! Host-made HTTP responses: JSON bodies and the uniform error shape.
//!
//! Every error the host itself answers (no route, body too large, a
//! component that trapped or timed out, a refused admin call) has the same
//! body, so clients can handle all of them one way:
//!
//! ```json
//! {"error": {"code": "timeout", "message": "...", "component": "status"}}
//! ```

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// The body type of every response the host sends.
pub type Body = HyperOutgoingBody;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An error the host answers itself. `code` is stable and machine-readable;
/// `message` is for people.
#[derive(Debug, Clone)]
pub struct HostError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub component: Option<String>,
    pub field: Option<&'static str>,
    /// Headers the answer carries besides the JSON content type (e.g.
    /// `WWW-Authenticate` on a 401).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl HostError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            component: None,
            field: None,
            headers: Vec::new(),
        }
    }

    pub fn component(mut self, name: &str) -> Self {
        self.component = Some(name.to_owned());
        self
    }

    pub fn field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn into_response(self) -> Response<Body> {
        let note = ErrorNote {
            code: self.code,
            message: self.message.clone(),
        };
        let mut error = serde_json::json!({ "code": self.code, "message": self.message });
        if let Some(component) = self.component {
            error["component"] = component.into();
        }
        if let Some(field) = self.field {
            error["field"] = field.into();
        }
        let mut response = json(self.status, &serde_json::json!({ "error": error }));
        response.extensions_mut().insert(note);
        response.headers_mut().extend(self.headers);
        response
    }
}

/// The error behind a host-made error response, as a response extension:
/// what the access log records as the `cause` without parsing the body.
#[derive(Debug, Clone)]
pub struct ErrorNote {
    pub code: &'static str,
    pub message: String,
}

//! Outbound HTTP through `wasi:http/outgoing-handler`, buffered like
//! [`crate::http`]: the whole response body is read before returning.
//!
//! The host only lets a request out when the component's
//! `grants.outbound_http.allowed_hosts` allow it; otherwise the call fails
//! with [`ClientError::Denied`] without a connection being attempted.

use std::io::Read as _;
use std::io::Write as _;
use std::time::Duration;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct ClientResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// Why a request got no response, sorted the way callers react to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The URL could not be parsed.
    BadUrl(String),
    /// The host's outbound policy refused the destination.
    Denied,
    /// The connection or the response did not come in time.
    Timeout(String),
    /// The destination could not be reached (refused, DNS, reset...).
    Connection(String),
    /// Anything else the HTTP layer reported.
    Other(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadUrl(m) => write!(f, "bad URL: {m}"),
            Self::Denied => write!(f, "denied by the host's outbound policy"),
            Self::Timeout(m) => write!(f, "timeout: {m}"),
            Self::Connection(m) => write!(f, "connection error: {m}"),
            Self::Other(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    /// A stable code for error responses: `bad_url`, `outbound_denied`,
    /// `upstream_timeout`, `upstream_unreachable`, `upstream_error`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadUrl(_) => "bad_url",
            Self::Denied => "outbound_denied",
            Self::Timeout(_) => "upstream_timeout",
            Self::Connection(_) => "upstream_unreachable",
            Self::Other(_) => "upstream_error",
        }
    }

    /// The HTTP status that fits when a request failed because of this:
    /// 500 for the component's own mistakes (a bad URL, a destination its
    /// grant does not allow), 504 for a timeout, 502 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::BadUrl(_) | Self::Denied => 500,
            Self::Timeout(_) => 504,
            Self::Connection(_) | Self::Other(_) => 502,
        }
    }
}

/// A request to send.
#[derive(Debug, Clone)]
pub struct ClientRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// Bounds connecting and waiting for the first byte of the response.
    pub timeout: Duration,
}

impl ClientRequest {
    pub fn get(url: impl Into<String>) -> Self {
        Self {
            method: Method::Get,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_owned(), value.as_bytes().to_vec()));
        self
    }

    /// Sends the request and reads the whole response.
    pub fn send(self) -> Result<ClientResponse, ClientError> {
        let url = Url::parse(&self.url)?;
        let headers = Fields::from_list(&self.headers)
            .map_err(|e| ClientError::Other(format!("bad header: {e:?}")))?;
        let request = OutgoingRequest::new(headers);
        let invalid = |what: &str| ClientError::BadUrl(format!("{what} rejected: {}", self.url));
        request
            .set_method(&self.method)
            .map_err(|()| invalid("method"))?;
        request
            .set_scheme(Some(&url.scheme))
            .map_err(|()| invalid("scheme"))?;
        request
            .set_authority(Some(&url.authority))
            .map_err(|()| invalid("authority"))?;
        request
            .set_path_with_query(Some(&url.path_with_query))
            .map_err(|()| invalid("path"))?;
        let body = request
            .body()
            .map_err(|()| ClientError::Other("body taken".into()))?;
        if !self.body.is_empty() {
            // The stream must be dropped before the body is finished.
            let mut stream = body
                .write()
                .map_err(|()| ClientError::Other("body stream taken".into()))?;
            stream
                .write_all(&self.body)
                .and_then(|()| std::io::Write::flush(&mut stream))
                .map_err(|e| ClientError::Connection(format!("sending the body: {e}")))?;
        }
        OutgoingBody::finish(body, None).map_err(|e| classify(&e))?;

        let options = RequestOptions::new();
        let nanos = self.timeout.as_nanos() as u64;
        let _ = options.set_connect_timeout(Some(nanos));
        let _ = options.set_first_byte_timeout(Some(nanos));
        let _ = options.set_between_bytes_timeout(Some(nanos));
        let pending = outgoing_handler::handle(request, Some(options)).map_err(|e| classify(&e))?;
        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(classify(&code)),
            Some(Err(())) | None => {
                return Err(ClientError::Other("response already taken".into()));
            }
        };
        let status = response.status();
        let headers = response.headers().entries();
        let incoming = response
            .consume()
            .map_err(|()| ClientError::Other("response body taken".into()))?;
        let mut body = Vec::new();
        {
            let mut stream = incoming
                .stream()
                .map_err(|()| ClientError::Other("response stream taken".into()))?;
            stream
                .read_to_end(&mut body)
                .map_err(|e| ClientError::Connection(format!("reading the response: {e}")))?;
        }
        Ok(ClientResponse {
            status,
            headers,
            body,
        })
    }
}

fn classify(code: &ErrorCode) -> ClientError {
    match code {
        ErrorCode::HttpRequestDenied => ClientError::Denied,
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => ClientError::Timeout(format!("{code:?}")),
        ErrorCode::ConnectionRefused
        | ErrorCode::ConnectionTerminated
        | ErrorCode::ConnectionLimitReached
        | ErrorCode::DestinationNotFound
        | ErrorCode::DestinationUnavailable
        | ErrorCode::DestinationIpProhibited
        | ErrorCode::DestinationIpUnroutable
        | ErrorCode::DnsTimeout
        | ErrorCode::DnsError(_)
        | ErrorCode::TlsProtocolError
        | ErrorCode::TlsCertificateError
        | ErrorCode::TlsAlertReceived(_) => ClientError::Connection(format!("{code:?}")),
        other => ClientError::Other(format!("{other:?}")),
    }
}

/// The parts of an `http(s)://authority/path?query` URL the request needs.
#[derive(Debug)]
struct Url {
    scheme: Scheme,
    authority: String,
    path_with_query: String,
}

impl Url {
    fn parse(url: &str) -> Result<Self, ClientError> {
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else {
            return Err(ClientError::BadUrl(format!(
                "{url:?} is not http:// or https://"
            )));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(ClientError::BadUrl(format!("{url:?} has no host")));
        }
        let path_with_query = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        Ok(Self {
            scheme,
            authority: authority.to_owned(),
            path_with_query,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = Url::parse("http://status:8080/status?x=1").unwrap();
        assert!(matches!(u.scheme, Scheme::Http));
        assert_eq!(u.authority, "status:8080");
        assert_eq!(u.path_with_query, "/status?x=1");
        assert_eq!(Url::parse("https://a.b").unwrap().path_with_query, "/");
        assert_eq!(Url::parse("http://a?q").unwrap().path_with_query, "/?q");
        assert!(Url::parse("ftp://x").is_err());
        assert!(Url::parse("http:///x").is_err());
    }
}

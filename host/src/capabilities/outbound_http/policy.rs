//! The allow-list check and the `WasiHttpHooks` that applies it.

use std::sync::Arc;
use std::time::Duration;

use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// One `allowed_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// Lower-case host, without the `*.` of a wildcard.
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

/// Why an `allowed_hosts` entry is not a host pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("expected host or host:port, without scheme or path")]
    NotAHost,
    #[error("bad port {0:?}")]
    BadPort(String),
    #[error("a wildcard may only be a leading '*.'")]
    BadWildcard,
}

impl HostPattern {
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        if text.contains("://") || text.contains('/') {
            return Err(PatternError::NotAHost);
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((host, _)) if !host.ends_with(']') && host.contains(':') => (text, None),
            Some((host, port)) => (
                host,
                Some(
                    port.parse::<u16>()
                        .map_err(|_| PatternError::BadPort(port.to_owned()))?,
                ),
            ),
            None => (text, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let (host, wildcard) = match host.strip_prefix("*.") {
            Some(rest) => (rest, true),
            None => (host, false),
        };
        if host.is_empty() || host.contains('*') {
            return Err(PatternError::BadWildcard);
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            wildcard,
            port,
        })
    }

    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = host.to_ascii_lowercase();
        if self.wildcard {
            host.strip_suffix(&self.host)
                .is_some_and(|prefix| prefix.ends_with('.') && prefix.len() > 1)
        } else {
            host == self.host
        }
    }
}

/// The outbound rules of one component, as a `WasiHttpHooks`.
#[derive(Debug, Clone)]
pub struct OutboundPolicy {
    allowed: Arc<[HostPattern]>,
    connect_timeout: Duration,
    response_timeout: Duration,
}

impl OutboundPolicy {
    pub fn new(allowed: Vec<HostPattern>, connect: Duration, response: Duration) -> Self {
        Self {
            allowed: allowed.into(),
            connect_timeout: connect,
            response_timeout: response,
        }
    }

    pub fn deny_all() -> Self {
        Self::new(Vec::new(), Duration::ZERO, Duration::ZERO)
    }

    pub fn allows(&self, uri: &http::Uri) -> bool {
        let Some(host) = uri.host() else { return false };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        self.allowed.iter().any(|p| p.matches(host, port))
    }
}

/// How many writes an outgoing body (a response to an inbound request, or a
/// request sent out) buffers before the next write waits for hyper to take
/// one. wasmtime's default is 1, so a handler that writes its body and then
/// finishes it suspends right after the first write until hyper has sent the
/// head: every small response paid a task hand-off, two fiber switches and
/// several wake-ups. With a few chunks of room the handler runs to its end
/// in one go and the response leaves in one write. It lives here because
/// wasmtime-wasi-http asks these hooks for it, for inbound responses and
/// outbound requests alike.
const OUTGOING_BODY_BUFFER_CHUNKS: usize = 8;

/// The largest single write into an outgoing body (wasmtime's default is
/// 1 MiB). With [`OUTGOING_BODY_BUFFER_CHUNKS`] it bounds what one body can
/// hold in host memory before backpressure: 8 × 64 KiB = 512 KiB, half the
/// default's 1 × 1 MiB.
const OUTGOING_BODY_CHUNK_SIZE: usize = 64 * 1024;

impl WasiHttpHooks for OutboundPolicy {
    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        OUTGOING_BODY_BUFFER_CHUNKS
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        OUTGOING_BODY_CHUNK_SIZE
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                    ),
                    HttpError,
                >,
            > + Send,
    > {
        drop(fut);
        if !self.allows(request.uri()) {
            // Host, port and path only: a query string or user info may
            // hold a secret (an API key, a password) that has no place in
            // the host's log.
            let uri = request.uri();
            tracing::warn!(
                host = uri.host().unwrap_or("-"),
                port = uri.port_u16(),
                path = uri.path(),
                "outbound HTTP request denied by policy"
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let mut options = options.unwrap_or_default();
        options.connect_timeout.get_or_insert(self.connect_timeout);
        options
            .first_byte_timeout
            .get_or_insert(self.response_timeout);
        options
            .between_bytes_timeout
            .get_or_insert(self.response_timeout);
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str]) -> OutboundPolicy {
        OutboundPolicy::new(
            hosts
                .iter()
                .map(|h| HostPattern::parse(h).unwrap())
                .collect(),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn allow_list_matching() {
        let p = policy(&["127.0.0.1:8080", "dummyjson.com", "*.example.com"]);
        let ok = |u: &str| p.allows(&u.parse().unwrap());
        assert!(ok("http://127.0.0.1:8080/status"));
        assert!(!ok("http://127.0.0.1:8081/status"));
        assert!(ok("https://dummyjson.com/products"));
        assert!(ok("http://DummyJSON.com:1234/"));
        assert!(ok("https://api.example.com/x"));
        assert!(!ok("https://example.com/x"));
        assert!(!ok("https://evil-example.com/x"));
        assert!(!ok("https://example.com.evil.org/x"));
        assert!(!OutboundPolicy::deny_all().allows(&"http://127.0.0.1/".parse().unwrap()));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(HostPattern::parse("http://x.com").is_err());
        assert!(HostPattern::parse("x.com:notaport").is_err());
        assert!(HostPattern::parse("a.*.com").is_err());
        assert_eq!(HostPattern::parse("[::1]:80").unwrap().port, Some(80));
    }
}

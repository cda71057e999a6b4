//! The request path's side of the access log: [`AccessLog::observe`]
//! wraps one request's dispatch. It assigns the request id, counts the
//! body bytes each way, and when the response body is done (or dropped:
//! a client gone, a `HEAD`) hands one record to the buffer without
//! waiting.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt as _;

use super::AccessLog;
use super::filter::Verdict;
use super::record::AccessRecord;
use super::request_id::HEADER;
use super::user::{Shared, Slot, user_of};
use crate::responses::{Body, ErrorNote};

/// A request body that counts the bytes read from it.
pub struct CountedBody<B> {
    inner: B,
    shared: Option<Arc<Shared>>,
}

impl<B> http_body::Body for CountedBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let (Some(Ok(frame)), Some(shared)) = (&frame, &self.shared)
            && let Some(data) = frame.data_ref()
        {
            shared
                .bytes_in
                .fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that counts the bytes sent and writes the record when
/// it is done.
struct LoggedBody {
    inner: Body,
    sent: u64,
    pending: Option<Pending>,
}

/// The record being written, short of what only the end of the body tells.
struct Pending {
    log: Arc<AccessLog>,
    record: AccessRecord,
    started: Instant,
    shared: Arc<Shared>,
}

impl Pending {
    /// Completes the record and hands it to the buffer.
    fn emit(self, bytes_out: u64, cause: Option<String>) {
        let Self {
            log,
            mut record,
            started,
            shared,
        } = self;
        record.latency = started.elapsed();
        record.bytes_out = bytes_out;
        record.bytes_in = shared.bytes_in();
        record.user_id = shared.user().map(str::to_owned);
        if record.cause.is_none() {
            record.cause = cause;
        }
        log.emit(record);
    }
}

/// Status of a request whose client went away before the response head
/// (nginx's "client closed request").
pub const CLIENT_CLOSED: u16 = 499;

/// Holds the record while the dispatch runs: if the request's future is
/// dropped first (the client closed the connection, or the drain timed
/// out), the record still goes, with status 499.
struct Unanswered(Option<Pending>);

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(mut pending) = self.0.take() {
            pending.record.status = CLIENT_CLOSED;
            let cause = "the client went away before the response".to_owned();
            pending.emit(0, Some(cause));
        }
    }
}

impl LoggedBody {
    fn finish(&mut self, cause: Option<String>) {
        if let Some(pending) = self.pending.take() {
            pending.emit(self.sent, cause);
        }
    }
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = <Body as http_body::Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    self.sent += data.len() as u64;
                }
            }
            Some(Err(e)) => self.finish(Some(format!("the response body failed: {e:?}"))),
            None => self.finish(None),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        self.finish(None);
    }
}

/// What went wrong, for a 5xx: the host's own error, or the component's
/// answer.
fn cause_of(response: &Response<Body>) -> String {
    match response.extensions().get::<ErrorNote>() {
        Some(note) => format!("{}: {}", note.code, note.message),
        None => format!("the component answered {}", response.status()),
    }
}

impl AccessLog {
    /// Runs `inner` (the dispatch of `request`) under the access log.
    /// `served` is the matched route and its component, if any. Nothing
    /// here waits on the log system: the record is handed to the buffer
    /// with `try_send`.
    pub fn observe<B, F, Fut>(
        self: &Arc<Self>,
        mut request: Request<B>,
        served: Option<(&str, &str)>,
        inner: F,
    ) -> impl Future<Output = Response<Body>> + Send + 'static + use<B, F, Fut>
    where
        F: FnOnce(Request<CountedBody<B>>) -> Fut,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        let started = Instant::now();
        let id = self.ids.of(request.headers().get(&HEADER));
        request.headers_mut().insert(HEADER, id.clone());
        let pending = self.sender.is_some().then(|| {
            let shared = Arc::new(Shared::default());
            if let Some(user) = user_of(&request) {
                let _ = shared.user.set(user.to_owned());
            }
            request.extensions_mut().insert(Slot(shared.clone()));
            let record = AccessRecord {
                at: SystemTime::now(),
                request_id: id.to_str().unwrap_or_default().to_owned(),
                component: served.map(|(_, component)| component.to_owned()),
                route: served.map(|(route, _)| route.to_owned()),
                method: request.method().as_str().to_owned(),
                path: request.uri().path().to_owned(),
                status: 0,
                latency: Default::default(),
                bytes_in: 0,
                bytes_out: 0,
                user_id: None,
                cause: None,
            };
            Pending {
                log: self.clone(),
                record,
                started,
                shared,
            }
        });
        let shared = pending.as_ref().map(|p| p.shared.clone());
        let response = inner(request.map(|inner| CountedBody { inner, shared }));
        let mut unanswered = Unanswered(pending);
        async move {
            let mut response = response.await;
            response.headers_mut().insert(HEADER, id);
            let Some(mut pending) = unanswered.0.take() else {
                return response;
            };
            let status = response.status().as_u16();
            let log = &pending.log;
            match log.filter.verdict(&pending.record.path, status) {
                Verdict::Record => {}
                Verdict::Skipped => {
                    log.stats.skipped.fetch_add(1, Ordering::Relaxed);
                    return response;
                }
                Verdict::SampledOut => {
                    log.stats.sampled_out.fetch_add(1, Ordering::Relaxed);
                    return response;
                }
            }
            pending.record.status = status;
            if status >= 500 {
                pending.record.cause = Some(cause_of(&response));
            }
            response.map(|inner| {
                LoggedBody {
                    inner,
                    sent: 0,
                    pending: Some(pending),
                }
                .boxed_unsync()
            })
        }
    }
}

//! `hello`: the smallest useful HTTP component, used by the benchmarks (the
//! same file is served by corral and by `wasmtime serve`).
//! Written against raw `wasi:http` so it measures the host, not a helper.

use std::io::Write as _;

use corral_sdk::wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Hello;

impl corral_sdk::wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        let headers = Fields::from_list(&[("content-type".to_owned(), b"text/plain".to_vec())])
            .expect("valid header");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("body taken once");
        ResponseOutparam::set(out, Ok(response));
        let mut stream = body.write().expect("stream taken once");
        let _ = stream.write_all(b"Hello, world!\n");
        drop(stream);
        let _ = OutgoingBody::finish(body, None);
    }
}

corral_sdk::wasip2::http::proxy::export!(Hello);

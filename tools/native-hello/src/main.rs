//! A native hyper "Hello, world!" server: the baseline the benchmarks put
//! next to corral serving `components/hello`.
//!
//! It is built like corral's own listener (`host/src/server.rs`): HTTP/1.1
//! with keep-alive, `TCP_NODELAY`, one tokio task per connection on the
//! default multi-threaded runtime, and the same response body and
//! content-type as the hello component. The difference between the two is
//! therefore what the wasm host adds per request (routing, a fresh instance,
//! the wasi:http translation), not the HTTP stack.
//!
//! Prints `listening on <addr>` once it accepts connections; runs until
//! killed.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

#[derive(Parser)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(args.listen))
}

async fn hello(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::builder()
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(b"Hello, world!\n")))
        .expect("valid response"))
}

async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.keep_alive(true);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let connection =
            http.serve_connection(TokioIo::new(stream), hyper::service::service_fn(hello));
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}

//! The request body limit (413) for declared and chunked bodies.

use std::io::{Read as _, Write as _};

use crate::common::*;

fn raw_request(base: &str, request: &[u8]) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(request).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text[9..12].parse().unwrap();
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_naming_the_body() {
    let host = Host::start_with(&standard_components(), "max_body_bytes = 1024", &[]);
    let http = Http::new();

    let reply = http
        .post(&host.url("/misbehave/echo"), vec![b'x'; 1000])
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["bytes"], 1000);

    let reply = http
        .post(&host.url("/misbehave/echo"), vec![b'x'; 2048])
        .await;
    let json = assert_error(&reply, 413, "body_too_large");
    assert_eq!(json["error"]["field"], "body");
    assert!(
        json["error"]["message"].as_str().unwrap().contains("2048"),
        "{json}"
    );

    // Chunked (no Content-Length): read up to the limit, then refused.
    let chunk = "x".repeat(600);
    let chunked = format!(
        "POST /misbehave/echo HTTP/1.1\r\nhost: t\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n\
         258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    let (status, text) = raw_request(&host.http, chunked.as_bytes());
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("body_too_large"), "{text}");

    // A chunked body within the limit reaches the component whole.
    let small = format!(
        "POST /misbehave/echo HTTP/1.1\r\nhost: t\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n\
         258\r\n{chunk}\r\n0\r\n\r\n"
    );
    let (status, text) = raw_request(&host.http, small.as_bytes());
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"bytes\":600"), "{text}");
}

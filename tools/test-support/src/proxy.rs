//! A TCP proxy on loopback in front of RabbitMQ, so that a test can cut the
//! host's connection (as a network failure or a broker restart would) and
//! refuse new ones for a while, without touching the shared broker.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: AbortHandle,
}

#[derive(Default)]
struct Shared {
    /// The forwarding tasks of open connections.
    open: Mutex<Vec<AbortHandle>>,
    /// While set, new connections are closed at once.
    refusing: AtomicBool,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let upstream = upstream.to_owned();
        let accept = {
            let shared = shared.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    if shared.refusing.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let upstream = upstream.clone();
                    let task = tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(&upstream).await else {
                            return;
                        };
                        pipe(client, server).await;
                    });
                    let mut open = shared.open.lock().unwrap();
                    open.retain(|t| !t.is_finished());
                    open.push(task.abort_handle());
                }
            })
            .abort_handle()
        };
        Self {
            addr,
            shared,
            accept,
        }
    }

    /// The AMQP URL through this proxy.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    /// Cuts every open connection (both sockets are closed).
    pub fn cut(&self) -> usize {
        let open = std::mem::take(&mut *self.shared.open.lock().unwrap());
        let live = open.iter().filter(|t| !t.is_finished()).count();
        for task in open {
            task.abort();
        }
        live
    }

    /// Refuses (`true`) or accepts again (`false`) new connections.
    pub fn refuse(&self, refusing: bool) {
        self.shared.refusing.store(refusing, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn pipe(mut client: TcpStream, mut server: TcpStream) {
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

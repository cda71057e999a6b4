//! `misbehave`: a component that fails on purpose, to prove that a failure
//! hurts only its own request. Used by the host's end-to-end tests.
//!
//! | path                    | does                                    |
//! |-------------------------|-----------------------------------------|
//! | `/misbehave/ok`         | answers 200                             |
//! | `/misbehave/trap`       | panics (a wasm trap)                    |
//! | `/misbehave/loop`       | logs `spinning`, then spins forever     |
//! | `/misbehave/memory`     | allocates until it hits its limit       |
//! | `/misbehave/sleep?ms=N` | logs `sleeping ms=N`, sleeps N ms, then answers 200 |
//! | `/misbehave/echo`       | answers the body's length               |
//! | `/misbehave/env?name=X` | answers environment variable X          |
//! | `/misbehave/count`      | bumps a static and a heap counter and   |
//! |                         | answers them (always 1 in a fresh instance) |

use std::sync::atomic::{AtomicU64, Ordering};

use corral_sdk::http::{Error, Handler, Request, Response};
use corral_sdk::wasip2::clocks::monotonic_clock;

struct Misbehave;

/// In the data segment: a fresh instance starts it at 0.
static STATIC_COUNT: AtomicU64 = AtomicU64::new(0);
/// On the heap, set up lazily: a fresh instance has none yet.
static HEAP_COUNT: std::sync::Mutex<Option<Box<u64>>> = std::sync::Mutex::new(None);

impl Handler for Misbehave {
    fn handle(request: Request) -> Result<Response, Error> {
        let what = request
            .path
            .trim_start_matches("/misbehave")
            .trim_matches('/');
        Ok(match what {
            "ok" => Response::json(200, &serde_json::json!({ "ok": true })),
            "trap" => panic!("misbehaving on purpose"),
            "loop" => {
                corral_sdk::log::info("loop", "spinning");
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut chunk = vec![0u8; 1 << 20];
                    chunk[0] = 1;
                    hoard.push(std::hint::black_box(chunk));
                }
            }
            "sleep" => {
                let ms: u64 = request
                    .query_param("ms")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(100);
                // Tests wait for this line to know the request holds its
                // instance, instead of guessing with a sleep of their own.
                corral_sdk::log::info("sleep", &format!("sleeping ms={ms}"));
                monotonic_clock::subscribe_duration(ms * 1_000_000).block();
                Response::json(200, &serde_json::json!({ "slept_ms": ms }))
            }
            "echo" => Response::json(200, &serde_json::json!({ "bytes": request.body.len() })),
            "env" => {
                let name = request.query_param("name").unwrap_or_default();
                Response::json(
                    200,
                    &serde_json::json!({ "value": std::env::var(&name).ok() }),
                )
            }
            "count" => {
                let static_count = STATIC_COUNT.fetch_add(1, Ordering::SeqCst) + 1;
                let mut heap = HEAP_COUNT.lock().unwrap();
                let heap_count = heap.get_or_insert_with(|| Box::new(0));
                **heap_count += 1;
                // Dirty a few more pages, so the host has more to reset.
                let scratch = std::hint::black_box(vec![0xa5u8; 256 * 1024]);
                Response::json(
                    200,
                    &serde_json::json!({
                        "static": static_count,
                        "heap": **heap_count,
                        "scratch": scratch.len(),
                    }),
                )
            }
            other => return Err(Error::not_found(other)),
        })
    }
}

corral_sdk::http_component!(Misbehave);

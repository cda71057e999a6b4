//! `bench-probe`: the component side of `cargo bench -p corral --bench
//! capabilities` (see README, "Benchmarks").
//!
//! - `GET /bench/kv?op=get|set&n=N&keys=K&size=S&start=I`: runs N key-value
//!   operations one after another on bucket `bench`, keys `k<(start+i) % K>`
//!   (`set` writes S bytes), timing each call of the host import with the
//!   monotonic clock, and answers `{"ops": N, "errors": E, "ns": [...]}`
//!   (the duration of every operation, in order). One request carries many
//!   operations so that instantiating the component and the request
//!   around them are spread thin; what is left per operation is the host
//!   import: the guest/host boundary, the capability and Redis.
//! - `queue-handler`: acknowledges every message at once, with no logging
//!   and no other work: the queue trigger's own cost per message.

use corral_sdk::http::{self, Handler, Request, Response};
use corral_sdk::kv;
use corral_sdk::queue::{self, Delivery, Disposition, QueueHandler};
use corral_sdk::wasip2::clocks::monotonic_clock;

struct Probe;

impl QueueHandler for Probe {
    fn handle(_delivery: Delivery) -> Result<Disposition, queue::Error> {
        Ok(Disposition::Ack)
    }
}

impl Handler for Probe {
    fn handle(request: Request) -> Result<Response, http::Error> {
        if request.path != "/bench/kv" {
            return Err(http::Error::not_found(&request.path));
        }
        let number = |name: &str, default: u64| {
            request
                .query_param(name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(default)
        };
        let (n, keys, size, start) = (
            number("n", 1000),
            number("keys", 1000).max(1),
            number("size", 100) as usize,
            number("start", 0),
        );
        let op = request.query_param("op").unwrap_or_else(|| "get".into());
        let bucket = kv::open("bench")?;
        let value = vec![b'v'; size];
        let names: Vec<String> = (0..n).map(|i| format!("k{}", (start + i) % keys)).collect();
        let mut ns = Vec::with_capacity(n as usize);
        let mut errors = 0u64;
        for key in &names {
            let before = monotonic_clock::now();
            let ok = match op.as_str() {
                "set" => bucket.set(key, &value).is_ok(),
                _ => bucket.get(key).is_ok(),
            };
            ns.push(monotonic_clock::now() - before);
            errors += u64::from(!ok);
        }
        Ok(Response::json(
            200,
            &serde_json::json!({ "ops": n, "errors": errors, "ns": ns }),
        ))
    }
}

corral_sdk::queue_component!(Probe);
corral_sdk::http_component!(Probe);

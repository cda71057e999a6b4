//! `catalog`: the product catalog of seed 004, in dummyjson's JSON shape.
//!
//! Routes (GET), behind the host's gateway auth in `corral.toml`:
//! - `/products?limit=&skip=&select=&sortBy=&order=`
//! - `/products/{id}`
//! - `/products/search?q=` (and the paging parameters)
//! - `/products/categories`
//! - `/products/category/{slug}` (and the paging parameters)
//!
//! Answers come from the upstream (`config.upstream`, dummyjson.com by
//! default) through outbound HTTP, and are cached in key-value. A fresh
//! cached answer is served as it is; a stale one is served at once and
//! refreshed after the response is sent; with nothing cached and an
//! upstream that is down, slow or answers garbage, the bundled snapshot
//! answers. Every answer says which in `X-Catalog-Source` (`upstream`,
//! `cache`, `stale`, `snapshot`) and how old it is in `Age` (seconds).

mod cache;
mod query;
mod settings;
mod snapshot;
mod upstream;

use std::cell::RefCell;
use std::time::Duration;

use corral_sdk::http::{Error, Handler, Request, Response};
use corral_sdk::log;
use corral_sdk::time::now_millis;

use query::{Query, Route};
use settings::Settings;
use upstream::Fetched;

struct Catalog;

/// Where an answer came from: the `X-Catalog-Source` header.
#[derive(Clone, Copy)]
enum Source {
    Upstream,
    Cache,
    Stale,
    Snapshot,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Upstream => "upstream",
            Source::Cache => "cache",
            Source::Stale => "stale",
            Source::Snapshot => "snapshot",
        }
    }
}

/// A stale answer to refresh once the response is sent.
struct Refresh {
    settings: Settings,
    route: Route,
    upstream_path: String,
}

thread_local! {
    static PENDING: RefCell<Option<Refresh>> = const { RefCell::new(None) };
}

fn answer(body: Vec<u8>, source: Source, age_ms: u64) -> Response {
    Response::new(200, "application/json", body)
        .with_header("x-catalog-source", source.name())
        .with_header("age", &(age_ms / 1000).to_string())
}

fn unknown_product(id: u64, source: Source) -> Error {
    Error::new(404, "not_found", format!("no product with id {id}"))
        .with_field("id")
        .with_header("x-catalog-source", source.name())
}

impl Handler for Catalog {
    fn handle(request: Request) -> Result<Response, Error> {
        if request.method != "GET" {
            return Err(Error::method_not_allowed(&request.method, "GET"));
        }
        let query = Query::parse(&request)?;
        let settings = Settings::load()?;
        let path = query.upstream_path();
        let bucket = cache::open()?;
        let now = now_millis();
        if let Some(entry) = cache::read(&bucket, &path) {
            let age = entry.age_ms(now);
            if age < settings.cache_ttl_ms {
                return Ok(answer(entry.body, Source::Cache, age));
            }
            PENDING.with(|p| {
                *p.borrow_mut() = Some(Refresh {
                    settings,
                    route: query.route.clone(),
                    upstream_path: path,
                })
            });
            return Ok(answer(entry.body, Source::Stale, age));
        }
        match upstream::fetch(&settings, &query.route, &path) {
            Ok(Fetched::Body(body)) => {
                let entry = cache::Entry {
                    fetched_ms: now,
                    body,
                };
                cache::write(
                    &bucket,
                    &path,
                    &entry,
                    Duration::from_millis(settings.stale_ttl_ms),
                );
                Ok(answer(entry.body, Source::Upstream, 0))
            }
            Ok(Fetched::NotFound) => match query.route {
                Route::One(id) => Err(unknown_product(id, Source::Upstream)),
                _ => unreachable!("only a product lookup is a 404"),
            },
            Err(why) => {
                log::warn("upstream", &format!("{why}; answering from the snapshot"));
                from_snapshot(&query, &settings, now)
            }
        }
    }
}

fn from_snapshot(query: &Query, settings: &Settings, now: i64) -> Result<Response, Error> {
    let snapshot = snapshot::Snapshot::load();
    let age = (now - snapshot.generated_at_ms).max(0) as u64;
    match snapshot.answer(query, &settings.upstream) {
        Some(value) => {
            let body = serde_json::to_vec(&value).map_err(|e| Error::internal(e.to_string()))?;
            Ok(answer(body, Source::Snapshot, age))
        }
        None => match query.route {
            Route::One(id) => Err(unknown_product(id, Source::Snapshot)),
            _ => unreachable!("only a product lookup can find nothing"),
        },
    }
}

/// Refreshes the stale answer the request was served, if any: the client
/// already has its response, so the upstream's time is not its time.
fn refresh_pending() {
    let Some(refresh) = PENDING.with(|p| p.borrow_mut().take()) else {
        return;
    };
    let Ok(bucket) = cache::open() else { return };
    let hold = refresh.settings.upstream_timeout + Duration::from_secs(1);
    if !cache::claim_refresh(&bucket, &refresh.upstream_path, hold) {
        return;
    }
    match upstream::fetch(&refresh.settings, &refresh.route, &refresh.upstream_path) {
        Ok(Fetched::Body(body)) => {
            let entry = cache::Entry {
                fetched_ms: now_millis(),
                body,
            };
            let keep = Duration::from_millis(refresh.settings.stale_ttl_ms);
            cache::write(&bucket, &refresh.upstream_path, &entry, keep);
        }
        Ok(Fetched::NotFound) => {}
        Err(why) => log::warn("refresh", &format!("{why}; the stale answer stays")),
    }
}

/// The `wasi:http` export: the SDK's request/response handling, then the
/// refresh of a stale answer once the response is written.
struct Export;

impl corral_sdk::wasip2::exports::http::incoming_handler::Guest for Export {
    fn handle(
        request: corral_sdk::wasip2::http::types::IncomingRequest,
        out: corral_sdk::wasip2::http::types::ResponseOutparam,
    ) {
        corral_sdk::http::serve::<Catalog>(request, out);
        refresh_pending();
    }
}

corral_sdk::wasip2::http::proxy::export!(Export);

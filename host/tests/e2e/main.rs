//! End-to-end tests: the real `corral` binary, real HTTP over loopback.

#[path = "../support/backend_sections.rs"]
mod backend_sections;
mod common;

mod admin;
mod backpressure;
mod blobstore;
mod browser;
mod drain;
mod events;
mod isolation;
mod keyvalue;
mod limits;
mod logger;
mod pipeline;
#[path = "../support/proxy.rs"]
mod proxy;
mod queue;
#[path = "../support/rabbit.rs"]
mod rabbit;
#[path = "../support/records.rs"]
mod records;
mod redeploy;
#[path = "../support/redis_keys.rs"]
mod redis_keys;
mod routing;
mod timer;

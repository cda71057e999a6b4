//! End-to-end tests: the real `corral` binary, real HTTP over loopback.

mod common;

mod access_log;
mod admin;
mod auth;
mod backpressure;
mod blobstore;
mod browser;
mod catalog;
mod drain;
mod events;
mod isolation;
mod keyvalue;
mod limits;
mod logger;
mod login;
mod pipeline;
mod queue;
mod redeploy;
mod routing;
mod timer;
mod users;

use test_support::{backend_sections, proxy, rabbit, records, redis_keys};

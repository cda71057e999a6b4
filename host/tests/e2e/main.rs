//! End-to-end tests: the real `corral` binary, real HTTP over loopback.

mod common;

mod admin;
mod blobstore;
mod drain;
mod isolation;
mod limits;
mod redeploy;
mod routing;
mod timer;

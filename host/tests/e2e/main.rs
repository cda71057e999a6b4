//! End-to-end tests: the real `corral` binary, real HTTP over loopback.

mod common;

mod admin;
mod drain;
mod isolation;
mod keyvalue;
mod limits;
mod redeploy;
mod routing;
mod timer;

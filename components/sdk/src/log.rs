//! Logging through `wasi:logging`: the host tags each line with the
//! component and appends it to the component's log file when configured.

use crate::bindings::wasi::logging::logging::{Level, log};

pub fn trace(context: &str, message: &str) {
    log(Level::Trace, context, message);
}
pub fn debug(context: &str, message: &str) {
    log(Level::Debug, context, message);
}
pub fn info(context: &str, message: &str) {
    log(Level::Info, context, message);
}
pub fn warn(context: &str, message: &str) {
    log(Level::Warn, context, message);
}
pub fn error(context: &str, message: &str) {
    log(Level::Error, context, message);
}

//! The HTTP trigger: `wasi:http/incoming-handler` components behind path
//! prefixes, one fresh instance per request.

pub mod auth;
mod body;
mod dispatch;
mod error_response;
mod router;

pub use auth::{AuthPolicy, Gateway};
pub use dispatch::HttpTrigger;
pub use router::Router;

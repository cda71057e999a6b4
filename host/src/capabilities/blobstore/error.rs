//! What can go wrong with a blobstore call. The text is what the component
//! gets (`wasi:blobstore` errors are strings), so every variant names the
//! operation, the container and the object.

/// A refused or failed blobstore call.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("invalid container name {name:?}: {problem}")]
    InvalidContainer { name: String, problem: String },
    #[error("invalid object name {name:?}: {problem}")]
    InvalidObject { name: String, problem: String },
    #[error(
        "container {name:?} is not granted to this component (grants.blobstore.containers = {granted:?})"
    )]
    NotGranted { name: String, granted: Vec<String> },
    #[error("container {0:?} does not exist; create it with create-container")]
    NoContainer(String),
    #[error("{what}: not found")]
    NotFound { what: String },
    #[error("{what}: {problem}")]
    Invalid { what: String, problem: String },
    #[error("{what}: the {backend} store did not answer within {ms} ms")]
    Timeout {
        what: String,
        backend: &'static str,
        ms: u128,
    },
    #[error("{what}: the {backend} store failed: {source}")]
    Store {
        what: String,
        backend: &'static str,
        source: object_store::Error,
    },
}

/// The component sees the sentence.
impl From<BlobError> for String {
    fn from(error: BlobError) -> Self {
        error.to_string()
    }
}

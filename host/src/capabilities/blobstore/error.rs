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
impl BlobError {
    /// The store could not be reached or did not answer in time (not a
    /// refusal of this call): worth trying again later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Timeout { .. } => true,
            // The S3 client reports connection failures and the server's
            // 5xx answers, after its own retries, as `Generic`.
            Self::Store {
                backend: "s3",
                source: object_store::Error::Generic { .. },
                ..
            } => true,
            _ => false,
        }
    }
}

/// The message a component gets. wasi:blobstore errors are strings; one
/// for an outage starts with `unavailable: ` (as the key-value
/// capability's do), which the SDK turns into 503 / a paused queue.
impl From<BlobError> for String {
    fn from(error: BlobError) -> Self {
        if error.is_unavailable() {
            format!("unavailable: {error}")
        } else {
            error.to_string()
        }
    }
}

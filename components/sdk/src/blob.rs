//! Objects in containers (`wasi:blobstore`), for components granted
//! `grants.blobstore`.
//!
//! ```ignore
//! let container = corral_sdk::blob::open_or_create("transactions")?;
//! container.put("batches/1.json", br#"[{"_id": "c1"}]"#)?;
//! let bytes = container.get("batches/1.json")?;
//! ```
//!
//! Writes are whole: [`Container::put`] stores all the bytes or nothing.
//! Errors are the host's sentences; [`Error::field`] tells which argument
//! was refused, for a JSON error that names it.

use std::io::{Read as _, Write as _};

use crate::bindings::wasi::blobstore::{blobstore, container, types};

/// What the host said went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl Error {
    /// The argument the host refused, if it refused one: `"container"` (not
    /// granted, or a bad name) or `"name"` (a bad object name).
    pub fn field(&self) -> Option<&'static str> {
        if self.0.starts_with("invalid object name") {
            Some("name")
        } else if self.0.starts_with("invalid container name") || self.0.contains("is not granted")
        {
            Some("container")
        } else {
            None
        }
    }

    /// Whether the store itself failed (unreachable, or no answer in time)
    /// rather than this call: the same call may work later.
    pub fn is_unavailable(&self) -> bool {
        self.0.starts_with(crate::kv::UNAVAILABLE_PREFIX)
    }

    /// Whether the object (or container) does not exist.
    pub fn is_not_found(&self) -> bool {
        self.0.ends_with(": not found") || self.0.contains("does not exist")
    }

    /// A stable code for error responses: `not_granted` (the container is
    /// not in the grant), `invalid` (a bad name), `not_found`,
    /// `backend_unavailable` (the store is down), or `blobstore` (anything
    /// else).
    pub fn code(&self) -> &'static str {
        self.kind().1
    }

    /// The HTTP status that fits: 403, 400, 404, 503 or 502.
    pub fn http_status(&self) -> u16 {
        self.kind().0
    }

    fn kind(&self) -> (u16, &'static str) {
        match self.field() {
            Some(_) if self.0.contains("is not granted") => (403, "not_granted"),
            Some(_) => (400, "invalid"),
            None if self.is_not_found() => (404, "not_found"),
            None if self.is_unavailable() => (503, "backend_unavailable"),
            None => (502, "blobstore"),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Self(message)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// An open container.
pub struct Container(container::Container);

/// Opens an existing container.
pub fn open(name: &str) -> Result<Container> {
    Ok(Container(blobstore::get_container(name)?))
}

/// Creates a container (creating one that exists just opens it).
pub fn create(name: &str) -> Result<Container> {
    Ok(Container(blobstore::create_container(name)?))
}

/// Opens a container, creating it first if needed.
pub fn open_or_create(name: &str) -> Result<Container> {
    open(name).or_else(|e| {
        if e.is_not_found() {
            create(name)
        } else {
            Err(e)
        }
    })
}

pub fn exists(name: &str) -> Result<bool> {
    Ok(blobstore::container_exists(name)?)
}

/// Deletes a container with all its objects.
pub fn delete_container(name: &str) -> Result<()> {
    Ok(blobstore::delete_container(name)?)
}

fn id(container: &str, object: &str) -> types::ObjectId {
    types::ObjectId {
        container: container.into(),
        object: object.into(),
    }
}

/// Copies `(container, object)` to `(container, object)`, replacing it.
pub fn copy(src: (&str, &str), dest: (&str, &str)) -> Result<()> {
    Ok(blobstore::copy_object(
        &id(src.0, src.1),
        &id(dest.0, dest.1),
    )?)
}

/// Moves `(container, object)` to `(container, object)`, replacing it.
pub fn rename(src: (&str, &str), dest: (&str, &str)) -> Result<()> {
    Ok(blobstore::move_object(
        &id(src.0, src.1),
        &id(dest.0, dest.1),
    )?)
}

/// An object's metadata.
pub use types::ObjectMetadata as Info;

impl Container {
    pub fn name(&self) -> Result<String> {
        Ok(self.0.name()?)
    }

    /// Creates or replaces object `name` with `bytes`, whole.
    pub fn put(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let value = types::OutgoingValue::new_outgoing_value();
        {
            let mut body = value
                .outgoing_value_write_body()
                .map_err(|()| Error("the value's body was already taken".into()))?;
            body.write_all(bytes)
                .and_then(|()| std::io::Write::flush(&mut body))
                .map_err(|e| Error(format!("writing the value: {e}")))?;
        } // The body stream must be gone before the value is used.
        self.0.write_data(name, &value)?;
        Ok(types::OutgoingValue::finish(value)?)
    }

    /// The whole object.
    pub fn get(&self, name: &str) -> Result<Vec<u8>> {
        self.get_range(name, 0, u64::MAX)
    }

    /// Bytes `start..=end` of the object (an `end` past its end reads to
    /// the end).
    pub fn get_range(&self, name: &str, start: u64, end: u64) -> Result<Vec<u8>> {
        let value = self.0.get_data(name, start, end)?;
        Ok(types::IncomingValue::incoming_value_consume_sync(value)?)
    }

    /// The whole object, read through a stream (as a large one would be).
    pub fn get_streamed(&self, name: &str) -> Result<Vec<u8>> {
        let value = self.0.get_data(name, 0, u64::MAX)?;
        let mut stream = types::IncomingValue::incoming_value_consume_async(value)?;
        let mut bytes = Vec::new();
        stream
            .read_to_end(&mut bytes)
            .map_err(|e| Error(format!("reading the value: {e}")))?;
        Ok(bytes)
    }

    pub fn has(&self, name: &str) -> Result<bool> {
        Ok(self.0.has_object(name)?)
    }

    pub fn info(&self, name: &str) -> Result<Info> {
        Ok(self.0.object_info(name)?)
    }

    /// Every object name, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let stream = self.0.list_objects()?;
        let mut names = Vec::new();
        loop {
            let (batch, done) = stream.read_stream_object_names(256)?;
            names.extend(batch);
            if done {
                break;
            }
        }
        names.sort();
        Ok(names)
    }

    /// Deletes an object (a missing one is fine).
    pub fn delete(&self, name: &str) -> Result<()> {
        Ok(self.0.delete_object(name)?)
    }

    pub fn delete_many(&self, names: &[String]) -> Result<()> {
        Ok(self.0.delete_objects(names)?)
    }

    /// Deletes every object, keeping the container.
    pub fn clear(&self) -> Result<()> {
        Ok(self.0.clear()?)
    }
}

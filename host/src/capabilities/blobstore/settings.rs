//! `[blobstore]`: which object store backs the `blobstore` capability.
//!
//! ```toml
//! [blobstore]
//! backend = "s3"                     # or "local" (the default)
//! endpoint = "http://127.0.0.1:9000" # MinIO; leave out for AWS
//! bucket = "corral"                  # containers are prefixes in it
//! region = "us-east-1"
//! # credentials: access_key_id / secret_access_key, or the
//! # AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY environment variables
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{ConfigError, Section, invalid, parse_env_enum, resolve_under};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Files under the state directory; no server needed.
    #[default]
    Local,
    /// S3 or an S3-compatible server (MinIO).
    S3,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlobstoreSettings {
    pub backend: Backend,
    /// Folder of the local backend, relative to `runtime.state_dir`.
    pub path: PathBuf,
    /// S3 endpoint; unset means AWS.
    pub endpoint: Option<String>,
    /// The one bucket that holds every container (as a key prefix).
    pub bucket: String,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Prepended to every object key, so that several hosts or test runs
    /// can share one bucket.
    pub key_prefix: String,
    /// How long one operation may take before the component gets an error.
    pub timeout_ms: u64,
    /// Local backend: fsync each written object and its folder before the
    /// write returns. A consumer acks its message once its result is
    /// written; without this an OS crash or power loss can lose a result
    /// that was already acked. Off trades that guarantee for speed.
    pub fsync: bool,
}

// Hand-written so that the secret never reaches a log line.
impl std::fmt::Debug for BlobstoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobstoreSettings")
            .field("backend", &self.backend)
            .field("path", &self.path)
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &crate::config::redact::optional(&self.secret_access_key),
            )
            .field("key_prefix", &self.key_prefix)
            .field("timeout_ms", &self.timeout_ms)
            .field("fsync", &self.fsync)
            .finish()
    }
}

impl Default for BlobstoreSettings {
    fn default() -> Self {
        Self {
            backend: Backend::Local,
            path: PathBuf::from("blobs"),
            endpoint: None,
            bucket: "corral".into(),
            region: "us-east-1".into(),
            access_key_id: None,
            secret_access_key: None,
            key_prefix: String::new(),
            timeout_ms: 30_000,
            fsync: true,
        }
    }
}

impl Section for BlobstoreSettings {
    fn apply_env(&mut self, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        for (var, value) in env {
            match var.as_str() {
                "CORRAL_BLOBSTORE_BACKEND" => self.backend = parse_env_enum(var, value)?,
                "CORRAL_S3_ENDPOINT" => self.endpoint = Some(value.clone()),
                "CORRAL_S3_BUCKET" => self.bucket = value.clone(),
                "CORRAL_S3_REGION" => self.region = value.clone(),
                "CORRAL_BLOBSTORE_PREFIX" => self.key_prefix = value.clone(),
                "AWS_ACCESS_KEY_ID" if self.access_key_id.is_none() => {
                    self.access_key_id = Some(value.clone())
                }
                "AWS_SECRET_ACCESS_KEY" if self.secret_access_key.is_none() => {
                    self.secret_access_key = Some(value.clone())
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn resolve_paths(&mut self, state_dir: &Path) {
        resolve_under(&mut self.path, state_dir);
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.backend == Backend::S3 && self.bucket.is_empty() {
            return Err(invalid("blobstore.bucket", "must not be empty"));
        }
        if self.timeout_ms == 0 {
            return Err(invalid("blobstore.timeout_ms", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Acked results must survive an OS crash unless the operator says
    /// otherwise.
    #[test]
    fn the_local_backend_fsyncs_by_default() {
        assert!(BlobstoreSettings::default().fsync);
        let settings: BlobstoreSettings = toml::from_str("fsync = false").unwrap();
        assert!(!settings.fsync);
    }
}

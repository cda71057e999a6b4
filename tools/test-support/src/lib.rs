//! Helpers shared by corral's tests and benches (a dev-dependency of the
//! `corral` package; never published):
//!
//! - [`moto`]: an S3 server for tests (moto on loopback), used by the
//!   blobstore unit tests, the e2e tests and the pipeline benchmark;
//! - [`s3s_fs`]: the pipeline benchmark's S3 server (s3s-fs on loopback);
//! - [`rabbit`]: the test RabbitMQ and cleaning up after a test;
//! - [`proxy`]: a cuttable TCP proxy in front of RabbitMQ;
//! - [`redis_keys`]: cleaning up a run's Redis keys;
//! - [`backend_sections`]: host config sections for the real backends;
//! - [`records`]: generated transaction files.
//!
//! It does not depend on `corral`: the unit tests of `corral` use it, and a
//! dev-dependency that depended on `corral` would link a second copy of the
//! crate into them. Helpers that need corral's types stay with the benches
//! (`host/benches/support`).

pub mod backend_sections;
pub mod moto;
pub mod proxy;
pub mod rabbit;
pub mod records;
pub mod redis_keys;
pub mod s3s_fs;

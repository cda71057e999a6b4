//! The host config sections that point a test or benchmark host at real
//! backends, in one place: the e2e tests and the benches write the same
//! TOML, so a renamed setting is changed once.
//!
//! Each function returns a complete TOML section; `prefix` isolates the
//! caller's keys, queues and objects from every other run's.

/// `[keyvalue]` on Redis at `url`.
pub fn redis(url: &str, prefix: &str) -> String {
    format!(
        r#"
[keyvalue]
backend = "redis"
url = "{url}"
key_prefix = "{prefix}"
"#
    )
}

/// `[messaging]` on RabbitMQ at `url`.
pub fn amqp(url: &str, prefix: &str) -> String {
    format!(
        r#"
[messaging]
backend = "amqp"
url = "{url}"
queue_prefix = "{prefix}"
"#
    )
}

/// Where an S3 server is and how to sign for it.
pub struct S3<'a> {
    pub endpoint: &'a str,
    pub bucket: &'a str,
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
}

/// `[blobstore]` on the S3 server `s3`.
pub fn s3(s3: &S3<'_>, prefix: &str) -> String {
    format!(
        r#"
[blobstore]
backend = "s3"
endpoint = "{}"
bucket = "{}"
access_key_id = "{}"
secret_access_key = "{}"
key_prefix = "{prefix}"
"#,
        s3.endpoint, s3.bucket, s3.access_key_id, s3.secret_access_key
    )
}

//! `s3s-fs`, a Rust S3 server over a folder, on a free loopback port: the
//! S3 backend of the pipeline benchmark.
//!
//! moto (what the tests use) is a Python server that saturates a core at a
//! few hundred writes a second, so a benchmark against it measures moto.
//! s3s-fs speaks the same signed S3 API as MinIO (what compose runs) at the
//! cost of a file write per object, which is the honest floor for a
//! single-node S3. If it is not on PATH, `cargo install` builds it (once,
//! a few minutes; pinned to the last release that supports rustc 1.95).
//!
//! Its folder is in `PIPELINE_S3_ROOT`, by default in `/dev/shm` (memory),
//! as Redis here keeps nothing on disk either: on this machine's ext4 disk,
//! s3s-fs spends most of its CPU in the kernel allocating inodes (1.5-2 ms
//! of CPU per object, measured with perf), which would make the benchmark
//! one of the disk's inode allocator.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bucket the benchmark writes to.
pub const BUCKET: &str = "corral-bench";
/// Credentials the server checks signatures against.
pub const ACCESS_KEY: &str = "bench";
pub const SECRET_KEY: &str = "bench-secret";

const VERSION: &str = "0.14.1";

pub struct S3sFs {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    _root: tempfile::TempDir,
}

impl S3sFs {
    pub fn start() -> anyhow::Result<Self> {
        let program = installed()?;
        let root = match std::env::var_os("PIPELINE_S3_ROOT") {
            Some(dir) => tempfile::tempdir_in(dir)?,
            None if std::path::Path::new("/dev/shm").is_dir() => tempfile::tempdir_in("/dev/shm")?,
            None => tempfile::tempdir()?,
        };
        // A bucket is a folder of the root.
        std::fs::create_dir(root.path().join(BUCKET))?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut child = Command::new(&program)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {program}: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("s3s-fs exited at start-up ({status})");
            }
            anyhow::ensure!(Instant::now() < deadline, "s3s-fs did not open port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            _root: root,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `s3s-fs` program: from PATH, else from cargo's bin folder, else
/// installed there now.
fn installed() -> anyhow::Result<String> {
    let on_path = Command::new("s3s-fs")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if on_path {
        return Ok("s3s-fs".into());
    }
    let home = std::env::var("CARGO_HOME")
        .or_else(|_| std::env::var("HOME").map(|h| format!("{h}/.cargo")))?;
    let program = format!("{home}/bin/s3s-fs");
    if std::path::Path::new(&program).is_file() {
        return Ok(program);
    }
    eprintln!("installing s3s-fs {VERSION} with cargo (once; a few minutes)...");
    let status = Command::new("cargo")
        .args(["install", "--locked", "--features", "binary"])
        .arg(format!("s3s-fs@{VERSION}"))
        .status()?;
    anyhow::ensure!(status.success(), "cargo install s3s-fs failed ({status})");
    Ok(program)
}

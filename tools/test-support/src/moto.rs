//! An S3-compatible server for tests: `moto_server` on a free loopback port,
//! with one bucket, [`BUCKET`].
//!
//! Tests share one server while any of them holds it ([`shared`]); it is
//! killed when the last holder drops it. Each test keeps to its own key
//! prefix, so they never see each other's objects. If moto is missing, the
//! first use installs it with pip (`moto[server]`), once; when it is already
//! installed nothing is downloaded and no pip runs.
//!
//! Used by the blobstore unit tests, the e2e tests and the pipeline benchmark.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// The bucket every test uses.
pub const BUCKET: &str = "corral-test";

pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

/// The running server, started if no test holds one.
pub fn shared() -> Arc<Moto> {
    static SHARED: Mutex<Weak<Moto>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(moto) = slot.upgrade() {
        return moto;
    }
    let moto = Arc::new(Moto::start());
    *slot = Arc::downgrade(&moto);
    moto
}

impl Moto {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (program, args) = command();
        let mut child = Command::new(program)
            .args(args)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("{program} exited at start-up ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "{program} did not open port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        moto.create_bucket(port);
        moto
    }

    /// A plain HTTP PUT (moto does not check signatures).
    fn create_bucket(&self, port: u16) {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "PUT /{BUCKET} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert!(
            reply.starts_with("HTTP/1.1 200"),
            "creating the bucket: {reply}"
        );
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to run moto: `moto_server` from PATH; else the `moto.server` module,
/// installed with pip first if python cannot import it. pip runs at most
/// once per test process, and never when moto is already there.
fn command() -> (&'static str, &'static [&'static str]) {
    static READY: OnceLock<()> = OnceLock::new();
    if on_path("moto_server") {
        return ("moto_server", &[]);
    }
    READY.get_or_init(|| {
        let importable = Command::new("python3")
            .args(["-c", "import moto.server, flask"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if importable {
            return;
        }
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "moto[server]"])
            .status()
            .expect("running pip to install moto[server] (is python3 installed?)");
        assert!(
            status.success(),
            "pip install moto[server] failed ({status})"
        );
    });
    ("python3", &["-m", "moto.server"])
}

fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

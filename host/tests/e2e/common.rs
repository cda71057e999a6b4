//! The harness: runs the real `corral` binary on loopback with a config made
//! for the test, and talks to it over HTTP.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub const TOKEN: &str = "test-admin-token";

/// The components most tests run, with tight limits so that failures show
/// fast.
pub fn standard_components() -> String {
    format!(
        r#"
[[component]]
name = "status"
wasm = "{status}"
routes = ["/status", "/"]
limits = {{ memory_mb = 32, timeout_ms = 5000 }}
env = {{ STATUS_MESSAGE = "test message" }}
grants.logging = {{ file = "logs/status/app.log" }}

[[component]]
name = "misbehave"
wasm = "{misbehave}"
routes = ["/misbehave"]
limits = {{ memory_mb = 16, timeout_ms = 1000 }}

[[component]]
name = "hello"
wasm = "{hello}"
routes = ["/hello"]
"#,
        status = component_artifacts::STATUS,
        misbehave = component_artifacts::MISBEHAVE,
        hello = component_artifacts::HELLO,
    )
}

pub struct Host {
    child: Child,
    pub http: String,
    pub admin: String,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    output: Arc<Mutex<Vec<String>>>,
    args: Vec<String>,
    envs: Vec<(String, String)>,
}

/// Starts `corral up --config config` and waits until it is up; its output
/// lines are appended to `output`. Returns the child and its HTTP and admin
/// URLs.
fn spawn(
    config: &Path,
    args: &[String],
    envs: &[(String, String)],
    output: &Arc<Mutex<Vec<String>>>,
) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("up")
        .arg("--config")
        .arg(config)
        .args(args)
        .env("CORRAL_LOG", "info")
        .env_remove("CORRAL_ADMIN_TOKEN")
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting corral");
    let (ready_tx, ready_rx) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let output = output.clone();
        let ready_tx = ready_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if line.contains("corral is up") {
                    let _ = ready_tx.send(line.clone());
                }
                output.lock().unwrap().push(line);
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let line = loop {
        if let Ok(line) = ready_rx.recv_timeout(Duration::from_millis(50)) {
            break line;
        }
        let exited = child.try_wait().unwrap();
        if exited.is_some() || Instant::now() > deadline {
            let _ = child.kill();
            // Give the reader threads a moment to collect the last lines.
            std::thread::sleep(Duration::from_millis(100));
            panic!(
                "corral did not start ({exited:?}):\n{}",
                output.lock().unwrap().join("\n")
            );
        }
    };
    let field = |name: &str| {
        let start = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
        let rest = &line[start..];
        format!("http://{}", rest.split_whitespace().next().unwrap())
    };
    (child, field("http"), field("admin"))
}

impl Host {
    /// Starts a host serving `components` (TOML `[[component]]` tables).
    pub fn start(components: &str) -> Self {
        Self::start_with(components, "", &[])
    }

    /// `settings` is extra TOML placed before the components (e.g. a
    /// `[server]` table is not allowed there: use `server_extra`).
    pub fn start_with(components: &str, server_extra: &str, args: &[&str]) -> Self {
        Self::launch(components, server_extra, "", args, &[])
    }

    /// Starts a host with extra top-level sections (`[keyvalue]`,
    /// `[messaging]`, `[blobstore]`...) before the components.
    pub fn start_with_sections(sections: &str, components: &str) -> Self {
        Self::launch(components, "", sections, &[], &[])
    }

    /// Starts a host with extra top-level sections and `CORRAL_*`
    /// environment overrides.
    pub fn start_with_sections_and_env(
        sections: &str,
        components: &str,
        envs: &[(&str, &str)],
    ) -> Self {
        Self::launch(components, "", sections, &[], envs)
    }

    /// Starts a host with `CORRAL_*` environment overrides (settings the
    /// fixed `[runtime]` section above cannot take twice).
    pub fn start_with_env(components: &str, envs: &[(&str, &str)]) -> Self {
        Self::launch(components, "", "", &[], envs)
    }

    fn launch(
        components: &str,
        server_extra: &str,
        sections: &str,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("corral.toml");
        let text = format!(
            r#"
[server]
listen = "127.0.0.1:0"
drain_timeout_ms = 10000
{server_extra}

[admin]
listen = "127.0.0.1:0"
token = "{TOKEN}"

[runtime]
state_dir = "state"
max_instances = 64
max_memory_mb = 64

[runtime.default_limits]
memory_mb = 32

{sections}

{components}
"#
        );
        std::fs::write(&config, text).unwrap();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let envs: Vec<(String, String)> = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let output = Arc::new(Mutex::new(Vec::new()));
        let (child, http, admin) = spawn(&config, &args, &envs, &output);
        Self {
            http,
            admin,
            child,
            dir,
            config,
            output,
            args,
            envs,
        }
    }

    /// Stops the host with `signal` (SIGTERM: a clean stop; SIGKILL: a
    /// crash) and starts it again on the same config and state directory.
    /// Its ports change: use `url` afresh.
    pub fn restart(&mut self, signal: i32) {
        self.signal(signal);
        if self.wait_exit(Duration::from_secs(30)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let (child, http, admin) = spawn(&self.config, &self.args, &self.envs, &self.output);
        (self.child, self.http, self.admin) = (child, http, admin);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.http)
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// Runs a CLI command against this host.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_corral"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .arg("--admin-url")
            .arg(&self.admin)
            .arg("--token")
            .arg(TOKEN)
            .output()
            .unwrap()
    }

    pub fn signal(&self, signal: i32) {
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Waits (20 s at most) until the host's output holds `needle` at
    /// least `n` times: how tests know a request reached its component or
    /// the host reached a state, without sleeping and hoping.
    pub fn wait_output(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.output().matches(needle).count() < n {
            if Instant::now() >= deadline {
                panic!("{needle:?} not {n} times in:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The log file at `relative` once it holds every one of `needles`:
    /// component log files are written by a thread of the host's, a moment
    /// after the request that logged. Panics with the file's text after 10 s.
    pub fn wait_log(&self, relative: &str, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(self.path(relative)).unwrap_or_default();
            if needles.iter().all(|n| text.contains(n)) {
                return text;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{relative} lacks one of {needles:?}:\n{text}\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn copy_to(src: &str, dir: &Path, name: &str) -> PathBuf {
    let dst = dir.join(name);
    std::fs::copy(src, &dst).unwrap();
    dst
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub fn new() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub async fn send(&self, request: http::Request<Full<Bytes>>) -> Result<Reply, String> {
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{e:?}"))?
            .to_bytes();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub async fn get(&self, url: &str) -> Reply {
        self.send(http::Request::get(url).body(Full::default()).unwrap())
            .await
            .unwrap()
    }

    pub async fn post(&self, url: &str, body: impl Into<Bytes>) -> Reply {
        self.send(
            http::Request::post(url)
                .body(Full::new(body.into()))
                .unwrap(),
        )
        .await
        .unwrap()
    }
}

/// Asserts a host-made error: status, `error.code`, and optionally
/// `error.field`.
pub fn assert_error(reply: &Reply, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(
        reply.status,
        status,
        "body: {:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let json = reply.json();
    assert_eq!(json["error"]["code"], code, "{json}");
    assert_eq!(
        reply.headers.get("content-type").unwrap(),
        "application/json"
    );
    json
}

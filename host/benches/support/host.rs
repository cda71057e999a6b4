//! The release `corral` binary on loopback for the benches that drive it
//! over HTTP, and a closed-loop client to measure it with.

use std::future::Future;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub type Http = Client<HttpConnector, Full<Bytes>>;

pub fn http() -> Http {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A running host; killed when dropped.
pub struct Host {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
    pub config: std::path::PathBuf,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Host {
    /// Starts `corral up` with `body` (sections and components) after the
    /// listeners on ephemeral loopback ports and a state folder of its own,
    /// with `envs` (which may override `CORRAL_LOG`); returns once it logs
    /// `corral is up`.
    pub fn start(body: &str, envs: &[(&str, &str)]) -> anyhow::Result<Host> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("corral.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[server]
listen = "127.0.0.1:0"
max_body_bytes = 10485760
drain_timeout_ms = 1000

[admin]
listen = "127.0.0.1:0"
token = "bench-token"

[runtime]
state_dir = "state"
max_instances = 1000
max_memory_mb = 1024

{body}
"#
            ),
        )?;
        let log = dir.path().join("corral.out");
        let out = std::fs::File::create(&log)?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_corral"));
        command
            .arg("up")
            .arg("--config")
            .arg(&config)
            .env("CORRAL_LOG", "warn,corral=info")
            .env("NO_COLOR", "1")
            .env_remove("CORRAL_ADMIN_TOKEN")
            .stdout(out.try_clone()?)
            .stderr(out)
            .stdin(Stdio::null());
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command.spawn()?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(url) = up_line(&log) {
                return Ok(Host {
                    child,
                    url,
                    dir,
                    config,
                });
            }
            if child.try_wait()?.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                anyhow::bail!(
                    "corral did not start:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the host has printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("corral.out")).unwrap_or_default()
    }
}

/// CPU seconds (user + system) used so far by `pid`.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after ") ".
    (ticks(11) + ticks(12)) / 100.0
}

fn up_line(log: &Path) -> Option<String> {
    let file = std::fs::File::open(log).ok()?;
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            let start = line.find("corral is up")?;
            let at = line[start..].find("http=")? + start + 5;
            let addr = line[at..].split_whitespace().next()?;
            Some(format!("http://{addr}"))
        })
}

/// One request with a JSON body (or none); the status and the body.
pub async fn send(
    client: &Http,
    method: &str,
    url: &str,
    body: Vec<u8>,
) -> anyhow::Result<(u16, Bytes)> {
    send_with(client, method, url, &[], body).await
}

/// [`send`] with extra headers.
pub async fn send_with(
    client: &Http,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> anyhow::Result<(u16, Bytes)> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = client
        .request(request.body(Full::new(Bytes::from(body)))?)
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.into_body().collect().await?.to_bytes()))
}

/// Requests per second of `clients` closed-loop clients for `secs`
/// seconds, each call of `one(n)` being one request (`n` counts up per
/// client, for unique bodies) that must succeed.
pub async fn rate<F, Fut>(clients: usize, secs: f64, one: F) -> anyhow::Result<f64>
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let one = one.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < until {
                one(client, done).await?;
                done += 1;
            }
            anyhow::Ok(done)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

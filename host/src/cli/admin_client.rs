//! The CLI side of the admin API: `redeploy`, `rollback`, `components`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::access_log::Snapshot;
use crate::admin::token::token_file;
use crate::config::Config;
use crate::runtime::{ComponentInfo, DeploymentInfo};

#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// Admin API address; defaults to `admin.listen` of the config.
    #[arg(long, env = "CORRAL_ADMIN_URL")]
    admin_url: Option<String>,
    /// Admin bearer token; defaults to the config's, then to
    /// `<state_dir>/admin-token` written by a host that generated one.
    #[arg(long, env = "CORRAL_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

struct Target {
    base: String,
    token: String,
    config: Option<Config>,
}

fn target(config_path: &Path, args: &AdminArgs) -> anyhow::Result<Target> {
    let config = if config_path.exists() {
        Some(Config::load(config_path)?)
    } else {
        None
    };
    let base = match (&args.admin_url, &config) {
        (Some(url), _) => url.trim_end_matches('/').to_owned(),
        (None, Some(config)) => {
            let mut addr = config.admin.listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}")
        }
        (None, None) => "http://127.0.0.1:8081".to_owned(),
    };
    let token = match (&args.token, &config) {
        (Some(token), _) => token.clone(),
        (None, Some(config)) => match &config.admin.token {
            Some(token) => token.clone(),
            None => {
                let path = token_file(&config.runtime.state_dir);
                std::fs::read_to_string(&path)
                    .with_context(|| {
                        format!(
                            "no admin token given and none readable at {}",
                            path.display()
                        )
                    })?
                    .trim()
                    .to_owned()
            }
        },
        (None, None) => anyhow::bail!("no admin token: pass --token or set CORRAL_ADMIN_TOKEN"),
    };
    Ok(Target {
        base,
        token,
        config,
    })
}

fn call(
    target: &Target,
    method: Method,
    path: &str,
    body: Bytes,
    source: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", target.base))
            .header("authorization", format!("Bearer {}", target.token));
        if let Some(source) = source {
            request = request.header("x-corral-source", source);
        }
        let response = client
            .request(request.body(Full::new(body))?)
            .await
            .with_context(|| format!("cannot reach the admin API at {}", target.base))?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("admin API answered {status} with a non-JSON body"))?;
        if status != StatusCode::OK {
            let message = value["error"]["message"]
                .as_str()
                .unwrap_or("unknown error");
            anyhow::bail!("{status}: {message}");
        }
        Ok(value)
    })
}

pub fn redeploy(
    config_path: &Path,
    args: &AdminArgs,
    name: &str,
    path: Option<&Path>,
) -> anyhow::Result<()> {
    let target = target(config_path, args)?;
    let path: PathBuf = match path {
        Some(path) => path.to_owned(),
        None => target
            .config
            .as_ref()
            .and_then(|c| c.component(name))
            .map(|c| c.wasm.clone())
            .with_context(|| format!("no path given and no component {name:?} in the config"))?,
    };
    let wasm = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let source = std::fs::canonicalize(&path)
        .unwrap_or(path)
        .display()
        .to_string();
    let value = call(
        &target,
        Method::PUT,
        &format!("/v1/components/{name}"),
        wasm.into(),
        Some(&source),
    )?;
    let info: DeploymentInfo = serde_json::from_value(value)?;
    println!(
        "{} is now v{} ({}), compiled in {:.1} ms{}",
        info.name,
        info.version,
        short(&info.digest),
        info.compile_ms,
        if info.from_cache { " (from cache)" } else { "" }
    );
    Ok(())
}

pub fn rollback(config_path: &Path, args: &AdminArgs, name: &str) -> anyhow::Result<()> {
    let target = target(config_path, args)?;
    let value = call(
        &target,
        Method::POST,
        &format!("/v1/components/{name}/rollback"),
        Bytes::new(),
        None,
    )?;
    let info: DeploymentInfo = serde_json::from_value(value)?;
    println!(
        "{} rolled back to v{} ({})",
        info.name,
        info.version,
        short(&info.digest)
    );
    Ok(())
}

pub fn redrive(
    config_path: &Path,
    args: &AdminArgs,
    queue: &str,
    limit: Option<u64>,
) -> anyhow::Result<()> {
    let target = target(config_path, args)?;
    let query = limit.map(|n| format!("?limit={n}")).unwrap_or_default();
    let value = call(
        &target,
        Method::POST,
        &format!("/v1/queues/{queue}/redrive{query}"),
        Bytes::new(),
        None,
    )?;
    println!(
        "moved {} messages from {} back to {}",
        value["moved"],
        value["from"].as_str().unwrap_or("?"),
        queue
    );
    Ok(())
}

pub fn components(config_path: &Path, args: &AdminArgs, json: bool) -> anyhow::Result<()> {
    let target = target(config_path, args)?;
    let value = call(&target, Method::GET, "/v1/components", Bytes::new(), None)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let list: Vec<ComponentInfo> = serde_json::from_value(value)?;
    println!(
        "{:<16} {:>7} {:<21} {:<22} {:>8}  ROUTES",
        "NAME", "VERSION", "DIGEST", "SINCE", "PREVIOUS"
    );
    for c in list {
        println!(
            "{:<16} {:>7} {:<21} {:<22} {:>8}  {}",
            c.current.name,
            format!("v{}", c.current.version),
            short(&c.current.digest),
            c.current.since,
            c.previous.len(),
            c.current.routes.join(" ")
        );
    }
    // A host without the endpoint (older) just shows no access log line.
    if let Ok(value) = call(&target, Method::GET, "/v1/access-log", Bytes::new(), None)
        && let Ok(log) = serde_json::from_value::<Snapshot>(value)
    {
        println!();
        println!("{}", access_log_line(&log));
    }
    Ok(())
}

/// The access log's counters, one line (and its last error, if any).
fn access_log_line(log: &Snapshot) -> String {
    if !log.enabled {
        return "access log: off".to_owned();
    }
    let mut line = format!(
        "access log: queue {:?}, {} sent, {} dropped, {} buffered (of {}), {} skipped, {} sampled out",
        log.queue,
        log.sent,
        log.dropped,
        log.buffered,
        log.buffer_capacity,
        log.skipped,
        log.sampled_out
    );
    if let (Some(error), Some(at)) = (&log.last_error, &log.last_error_at) {
        line.push_str(&format!("\n  last error ({at}): {error}"));
    }
    line
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(19)]
}

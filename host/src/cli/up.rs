//! `corral up`: run the platform.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::admin::queues::Queues;
use crate::admin::{self, AdminApi};
use crate::config::Config;
use crate::platform::Platform;
use crate::runtime::engine;
use crate::server;
use crate::triggers::http::{HttpTrigger, Router};
use crate::watch;

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Run the config's `[build] command` first (builds the components).
    #[arg(long)]
    build: bool,
    /// Redeploy a component whenever its .wasm file changes (development).
    #[arg(long)]
    watch: bool,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "CORRAL_LOG_JSON")]
    log_json: bool,
}

pub fn run(config_path: &Path, args: UpArgs) -> anyhow::Result<()> {
    init_tracing(args.log_json);
    let config = Config::load(config_path)?;
    if args.build {
        build_components(&config)?;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?
        .block_on(serve(config, args.watch))
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CORRAL_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,wasmtime=warn,cranelift=warn")
    });
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn build_components(config: &Config) -> anyhow::Result<()> {
    let Some(build) = &config.build else {
        anyhow::bail!("--build given but the config has no [build] command");
    };
    let dir = config.resolve(&build.dir);
    tracing::info!(command = %build.command, dir = %dir.display(), "building components");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(&build.command)
        .current_dir(&dir)
        .status()
        .with_context(|| format!("running build command {:?}", build.command))?;
    anyhow::ensure!(
        status.success(),
        "build command {:?} failed: {status}",
        build.command
    );
    Ok(())
}

async fn serve(config: Config, watch_files: bool) -> anyhow::Result<()> {
    let engine = engine::build(&config.runtime)?;
    let platform = Platform::start(&config, engine).await?;
    let registry = platform.registry.clone();
    let token =
        admin::token::load_or_generate(config.admin.token.as_deref(), &config.runtime.state_dir)?;

    let public = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding the HTTP listener on {}", config.server.listen))?;
    let admin_listener = TcpListener::bind(config.admin.listen)
        .await
        .with_context(|| format!("binding the admin listener on {}", config.admin.listen))?;
    tracing::info!(
        http = %public.local_addr()?,
        admin = %admin_listener.local_addr()?,
        components = registry.names().count(),
        "corral is up"
    );
    if config.admin.token.is_none() {
        tracing::info!(
            file = %admin::token::token_file(&config.runtime.state_dir).display(),
            "admin token generated"
        );
    }

    let access_log = platform.access_log.clone();
    let trigger = Arc::new(
        HttpTrigger::new(
            registry.clone(),
            Router::new(&config),
            config.server.max_body_bytes,
        )
        .with_access_log(access_log.clone())
        .with_gateway(platform.gateway()),
    );
    let queues = Queues::new(platform.broker.clone(), platform.plan.dead_letters());
    let admin_api = Arc::new(
        AdminApi::new(registry.clone(), queues, token).with_access_log(access_log.clone()),
    );
    let (stop, shutdown) = crate::shutdown::channel();
    let drain = Duration::from_millis(config.server.drain_timeout_ms);
    let admin_task = tokio::spawn(server::serve(
        "admin",
        admin_listener,
        admin_api,
        shutdown.clone().into_wait(),
        Duration::from_secs(5),
    ));
    if watch_files {
        tokio::spawn(watch::run(
            registry.clone(),
            watch::files(&config),
            shutdown.clone().into_wait(),
        ));
    }
    let event_triggers = platform.start_event_triggers(&shutdown);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested");
        stop.fire();
    });
    server::serve("http", public, trigger, shutdown.into_wait(), drain).await;
    // Every request has finished: its record is in the buffer.
    access_log.shutdown().await;
    for task in event_triggers {
        let _ = task.await;
    }
    let _ = admin_task.await;
    // The components' last log lines, queued for their files' writers.
    tokio::task::spawn_blocking(|| crate::capabilities::logging::flush_all(Duration::from_secs(5)))
        .await?;
    tracing::info!("bye");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

//! The `corral` command line.

mod admin_client;
mod check;
mod token;
mod up;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "corral",
    version,
    about = "A WebAssembly component host for sandboxed microservices"
)]
pub struct Cli {
    /// The host configuration file.
    #[arg(
        long,
        short,
        global = true,
        env = "CORRAL_CONFIG",
        default_value = "corral.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the host: every component of the config, the HTTP trigger and
    /// the admin API. Stops gracefully on Ctrl-C / SIGTERM.
    Up(up::UpArgs),
    /// Replace one component of a running host with a new .wasm, with no
    /// restart and no failed request.
    Redeploy {
        /// The component's name in the config.
        name: String,
        /// The new component; defaults to the path in the config.
        path: Option<PathBuf>,
        #[command(flatten)]
        admin: admin_client::AdminArgs,
    },
    /// Make a component's previous version current again.
    Rollback {
        name: String,
        #[command(flatten)]
        admin: admin_client::AdminArgs,
    },
    /// Validate the configuration (fields, routes, limits, grants) without
    /// starting anything.
    Check,
    /// Move a queue's dead letters back to it, to be handled again from
    /// attempt 1 (after the cause is fixed).
    Redrive {
        /// The queue (its dead-letter queue is the consumer's
        /// `dead_letter`, by default `<queue>.dead`).
        queue: String,
        /// Move at most this many.
        #[arg(long)]
        limit: Option<u64>,
        #[command(flatten)]
        admin: admin_client::AdminArgs,
    },
    /// List the running components: version, digest, routes, since when.
    Components {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        admin: admin_client::AdminArgs,
    },
    /// Bearer tokens signed with the host's secret (`[auth]`).
    #[command(subcommand)]
    Token(token::TokenCommand),
}

impl Cli {
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Up(args) => up::run(&self.config, args),
            Command::Check => check::run(&self.config),
            Command::Redeploy { name, path, admin } => {
                admin_client::redeploy(&self.config, &admin, &name, path.as_deref())
            }
            Command::Rollback { name, admin } => {
                admin_client::rollback(&self.config, &admin, &name)
            }
            Command::Redrive {
                queue,
                limit,
                admin,
            } => admin_client::redrive(&self.config, &admin, &queue, limit),
            Command::Components { json, admin } => {
                admin_client::components(&self.config, &admin, json)
            }
            Command::Token(command) => token::run(&self.config, command),
        }
    }
}

//! corral: one native binary that hosts WebAssembly components as
//! sandboxed microservices.

mod admin;
mod capabilities;
mod cli;
mod config;
mod responses;
mod runtime;
mod server;
mod triggers;
mod watch;

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    match cli::Cli::parse().run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

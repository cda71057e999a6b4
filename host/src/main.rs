//! The `corral` binary: see the library for everything else.

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    match corral::cli::Cli::parse().run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

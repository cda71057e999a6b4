//! The `corral` binary: see the library for everything else.

use clap::Parser as _;

/// mimalloc instead of glibc's malloc: every request allocates and frees a
/// store, its WASI context, resource tables and hyper buffers, and glibc
/// spent about 5% of the CPU on that (malloc, free, consolidation). With
/// mimalloc, hello over HTTP serves 5-6% more requests per core (four
/// interleaved pairs of runs, every pair in its favour).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    match corral::cli::Cli::parse().run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

//! Turning wasm bytes into a ready-to-link [`Component`], with a compile cache
//! on disk.
//!
//! A cold cranelift compile of a real component takes hundreds of
//! milliseconds to seconds; loading the serialized artifact with mmap takes
//! about a millisecond. The cache key covers the wasm bytes *and* the engine
//! (wasmtime version, target, compiler settings), so a stale artifact is never
//! loaded; artifacts are written to a temporary name and renamed, so a crash
//! mid-write never leaves a torn file behind.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A compiled component and how it was obtained.
pub struct Compiled {
    pub component: Component,
    /// `sha256:<hex>` of the wasm bytes: the identity of this version.
    pub digest: String,
    pub from_cache: bool,
    pub took: Duration,
}

pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

impl CompileCache {
    pub fn new(engine: &Engine, dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating compile cache directory {}", dir.display()))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = format!("{:016x}", hasher.finish());
        Ok(Self { dir, engine_key })
    }

    /// Compiles `wasm` (a component binary) or loads its cached artifact.
    pub fn compile(&self, engine: &Engine, wasm: &[u8]) -> anyhow::Result<Compiled> {
        let started = Instant::now();
        anyhow::ensure!(
            wasm.starts_with(b"\0asm"),
            "not a WebAssembly binary (it does not start with \"\\0asm\")"
        );
        let digest = hex::encode(Sha256::digest(wasm));
        let artifact = self.dir.join(format!("{digest}-{}.cwasm", self.engine_key));
        if artifact.exists() {
            // SAFETY: the file was written by `Component::serialize` of an
            // engine with the same compatibility hash, into our own state
            // directory, and is only ever replaced by an atomic rename.
            match unsafe { Component::deserialize_file(engine, &artifact) } {
                Ok(component) => {
                    return Ok(Compiled {
                        component,
                        digest: format!("sha256:{digest}"),
                        from_cache: true,
                        took: started.elapsed(),
                    });
                }
                Err(e) => tracing::warn!(
                    artifact = %artifact.display(),
                    "discarding unreadable compile cache entry: {e:#}"
                ),
            }
        }
        let component = Component::new(engine, wasm)
            .map_err(anyhow::Error::from)
            .context("compiling the component")?;
        if let Err(e) = self.store(&component, &artifact) {
            // The cache is an optimisation: a read-only or full disk must not
            // stop a deploy.
            tracing::warn!(artifact = %artifact.display(), "not caching compiled component: {e:#}");
        }
        Ok(Compiled {
            component,
            digest: format!("sha256:{digest}"),
            from_cache: false,
            took: started.elapsed(),
        })
    }

    fn store(&self, component: &Component, artifact: &Path) -> anyhow::Result<()> {
        let bytes = component.serialize()?;
        let tmp = artifact.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, artifact)?;
        Ok(())
    }
}

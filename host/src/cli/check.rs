//! `corral check`: validate a configuration without starting anything, the
//! way `nginx -t` does. Deploy pipelines run it before shipping a config.

use std::path::Path;

use crate::config::Config;
use crate::platform::Parts;

pub fn run(config_path: &Path) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
    Parts::assemble(&config)?;
    println!(
        "{}: ok ({} components)",
        config_path.display(),
        config.components.len()
    );
    for component in &config.components {
        let wasm = config.resolve(&component.wasm);
        let note = if wasm.exists() {
            ""
        } else {
            "  (file not present here)"
        };
        println!("  {:<12} {}{note}", component.name, wasm.display());
    }
    Ok(())
}

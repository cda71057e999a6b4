//! The host configuration: one TOML file plus `CORRAL_*` environment overrides.
//!
//! The file lists the components to run (name, wasm path, routes, limits,
//! grants) and the host's own settings (listeners, state directory, pool size).
//! Environment variables override the settings an operator most often changes
//! per deployment (ports, tokens, directories) without editing the file, which
//! is what a container image or a CI job wants.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Everything that can go wrong loading a configuration, each naming the
/// offending field so that an operator can fix it without reading our code.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid value for environment variable {var}: {problem}")]
    Env { var: String, problem: String },
    #[error("invalid config: {field}: {problem}")]
    Invalid { field: String, problem: String },
}

/// A host-level config section (a capability backend): it takes its own
/// `CORRAL_*` overrides, resolves its paths and checks itself.
pub trait Section {
    fn apply_env(&mut self, _env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        Ok(())
    }
    /// Makes relative paths absolute; `state_dir` is already absolute.
    fn resolve_paths(&mut self, _state_dir: &Path) {}
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// Parses an environment override, naming the variable on failure.
pub fn parse_env<T: std::str::FromStr>(var: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e: T::Err| ConfigError::Env {
        var: var.to_owned(),
        problem: e.to_string(),
    })
}

/// Parses an environment override of an enum-valued setting with the same
/// spellings the file accepts (serde's), naming the variable on failure.
pub fn parse_env_enum<T: serde::de::DeserializeOwned>(
    var: &str,
    value: &str,
) -> Result<T, ConfigError> {
    use serde::de::value::{Error, StrDeserializer};
    T::deserialize(StrDeserializer::<Error>::new(value)).map_err(|e| ConfigError::Env {
        var: var.to_owned(),
        problem: e.to_string(),
    })
}

/// Makes `path` absolute under `dir` when it is relative.
pub fn resolve_under(path: &mut PathBuf, dir: &Path) {
    if path.is_relative() {
        *path = dir.join(&*path);
    }
}

pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// How `corral up --build` builds the components before starting.
    pub build: Option<BuildConfig>,
    /// Which key-value backend the `keyvalue` capability uses.
    #[serde(default)]
    pub keyvalue: crate::capabilities::keyvalue::BackendConfig,
    /// Which broker the `messaging` capability and queue trigger use.
    #[serde(default)]
    pub messaging: crate::capabilities::messaging::BackendConfig,
    /// Which object store the `blobstore` capability uses.
    #[serde(default)]
    pub blobstore: crate::capabilities::blobstore::BackendConfig,
    /// The components, in the order they were declared.
    #[serde(default, rename = "component")]
    pub components: Vec<ComponentConfig>,
    /// Folder of the config file: relative paths in it resolve from here.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the public HTTP trigger listens on.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub max_body_bytes: u64,
    /// How long a graceful shutdown waits for in-flight requests.
    pub drain_timeout_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".parse().unwrap(),
            max_body_bytes: 10 * 1024 * 1024,
            drain_timeout_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address of the admin API (redeploy, rollback, list). Loopback by
    /// default: it can replace code, so it must not face the network unless
    /// an operator decides so.
    pub listen: SocketAddr,
    /// Bearer token required by every admin call. When unset a random token
    /// is generated at start-up and written to `<state_dir>/admin-token`,
    /// where the CLI on the same machine finds it.
    pub token: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8081".parse().unwrap(),
            token: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Directory for the compile cache, the admin token and embedded data.
    pub state_dir: PathBuf,
    /// How many component instances may be alive at once, over all
    /// components. Requests beyond it wait for a free slot (backpressure)
    /// instead of failing.
    pub max_instances: u32,
    /// Upper bound for any component's `memory_mb`; it sizes the slots of the
    /// pooling allocator.
    pub max_memory_mb: u64,
    /// Default limits for components that set none.
    pub default_limits: Limits,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from(".corral"),
            max_instances: 1000,
            max_memory_mb: 512,
            default_limits: Limits::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    /// Shell command that builds every component's wasm.
    pub command: String,
    /// Folder to run it in, relative to the config file.
    #[serde(default)]
    pub dir: PathBuf,
}

/// Resource limits of one component; every request runs under them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest linear memory an instance may grow to.
    pub memory_mb: u64,
    /// Longest a request may run (CPU or waiting) before it is cut off with 504.
    pub timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: 128,
            timeout_ms: 30_000,
        }
    }
}

impl Limits {
    pub fn memory_bytes(&self) -> usize {
        (self.memory_mb * 1024 * 1024) as usize
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Limits as written in a component's table: any field left out falls back
/// to `runtime.default_limits`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartialLimits {
    pub memory_mb: Option<u64>,
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    /// Unique name; used in routes, logs, the admin API and the CLI.
    pub name: String,
    /// Path of the `.wasm` component, relative to the config file.
    pub wasm: PathBuf,
    /// Path prefixes this component answers (`/status` matches `/status`
    /// and `/status/...`; `/` matches whatever no other route claims).
    #[serde(default)]
    pub routes: Vec<String>,
    #[serde(default)]
    limits: PartialLimits,
    /// Environment variables visible to the component (WASI `environment`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Values the component reads through `wasi:config/store`. A value may
    /// name environment variables as `${NAME}`, so secrets stay out of the
    /// file (and out of the component binary).
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Run the component's `timer-handler` on a schedule.
    pub timer: Option<crate::triggers::timer::TimerConfig>,
    /// Run the component's `queue-handler` for each message of a queue.
    pub queue: Option<crate::triggers::queue::QueueConfig>,
    /// What the component may use beyond plain WASI, keyed by capability.
    /// Each capability parses its own table; an absent key means no grant.
    #[serde(default)]
    pub grants: toml::Table,
    /// Resolved limits, filled in by [`Config::validate`].
    #[serde(skip)]
    pub resolved_limits: Limits,
}

impl ComponentConfig {
    pub fn limits(&self) -> Limits {
        self.resolved_limits
    }
}

impl Config {
    /// Reads the file at `path`, applies environment overrides and validates
    /// the result. Relative wasm paths are resolved against the file's folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, base, path, &std::env::vars().collect())
    }

    /// Parses `text`; `base` resolves relative paths, `env` holds the
    /// variables to apply (passed in so tests need not touch the process env).
    pub fn from_toml(
        text: &str,
        base: &Path,
        path_for_errors: &Path,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path_for_errors.to_owned(),
            source: Box::new(source),
        })?;
        config.apply_env(env)?;
        config.base_dir = base.to_owned();
        for component in &mut config.components {
            if component.wasm.is_relative() {
                component.wasm = base.join(&component.wasm);
            }
        }
        resolve_under(&mut config.runtime.state_dir, base);
        let state_dir = config.runtime.state_dir.clone();
        config.keyvalue.resolve_paths(&state_dir);
        config.messaging.resolve_paths(&state_dir);
        config.blobstore.resolve_paths(&state_dir);
        config.validate()?;
        Ok(config)
    }

    fn apply_env(&mut self, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        for (var, value) in env {
            match var.as_str() {
                "CORRAL_LISTEN" => self.server.listen = parse_env(var, value)?,
                "CORRAL_MAX_BODY_BYTES" => self.server.max_body_bytes = parse_env(var, value)?,
                "CORRAL_DRAIN_TIMEOUT_MS" => self.server.drain_timeout_ms = parse_env(var, value)?,
                "CORRAL_ADMIN_LISTEN" => self.admin.listen = parse_env(var, value)?,
                "CORRAL_ADMIN_TOKEN" if !value.is_empty() => self.admin.token = Some(value.clone()),
                "CORRAL_STATE_DIR" => self.runtime.state_dir = PathBuf::from(value),
                "CORRAL_MAX_INSTANCES" => self.runtime.max_instances = parse_env(var, value)?,
                _ => {}
            }
        }
        self.keyvalue.apply_env(env)?;
        self.messaging.apply_env(env)?;
        self.blobstore.apply_env(env)?;
        Ok(())
    }

    fn sections(&self) -> [&dyn Section; 3] {
        [&self.keyvalue, &self.messaging, &self.blobstore]
    }

    fn validate(&mut self) -> Result<(), ConfigError> {
        let max_memory = self.runtime.max_memory_mb;
        if self.runtime.max_instances == 0 {
            return Err(invalid("runtime.max_instances", "must be at least 1"));
        }
        for section in self.sections() {
            section.validate()?;
        }
        let defaults = self.runtime.default_limits;
        let mut names = std::collections::HashSet::new();
        let mut routes: BTreeMap<String, String> = BTreeMap::new();
        for (i, c) in self.components.iter_mut().enumerate() {
            let at = |field: &str| format!("component[{i}].{field}");
            if !valid_name(&c.name) {
                return Err(invalid(
                    at("name"),
                    format!(
                        "{:?} must be 1-64 characters of a-z, 0-9, '-' or '_'",
                        c.name
                    ),
                ));
            }
            if !names.insert(c.name.clone()) {
                return Err(invalid(
                    at("name"),
                    format!("{:?} is declared twice", c.name),
                ));
            }
            let limits = Limits {
                memory_mb: c.limits.memory_mb.unwrap_or(defaults.memory_mb),
                timeout_ms: c.limits.timeout_ms.unwrap_or(defaults.timeout_ms),
            };
            if limits.memory_mb == 0 || limits.memory_mb > max_memory {
                return Err(invalid(
                    at("limits.memory_mb"),
                    format!("must be between 1 and runtime.max_memory_mb ({max_memory})"),
                ));
            }
            if limits.timeout_ms == 0 {
                return Err(invalid(at("limits.timeout_ms"), "must be at least 1"));
            }
            c.resolved_limits = limits;
            if c.routes.is_empty() && c.timer.is_none() && c.queue.is_none() {
                return Err(invalid(
                    at("routes"),
                    "the component has no trigger: give it routes, a queue or a timer",
                ));
            }
            if let Some(timer) = &c.timer {
                timer
                    .validate()
                    .map_err(|problem| invalid(at("timer"), problem))?;
            }
            if let Some(queue) = &c.queue {
                queue
                    .validate()
                    .map_err(|problem| invalid(at("queue"), problem))?;
            }
            for route in &c.routes {
                if !route.starts_with('/') {
                    return Err(invalid(
                        at("routes"),
                        format!("{route:?} must start with '/'"),
                    ));
                }
                let normalized = normalize_route(route);
                if let Some(other) = routes.insert(normalized.clone(), c.name.clone()) {
                    return Err(invalid(
                        at("routes"),
                        format!("{route:?} is already routed to component {other:?}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Resolves a path written in the config relative to its folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        self.base_dir.join(path)
    }

    pub fn component(&self, name: &str) -> Option<&ComponentConfig> {
        self.components.iter().find(|c| c.name == name)
    }
}

/// Route prefixes compare without a trailing slash (`/api/` == `/api`).
pub fn normalize_route(route: &str) -> String {
    let trimmed = route.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    }
}

pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_toml(
            text,
            Path::new("/etc/corral"),
            Path::new("corral.toml"),
            &env,
        )
    }

    #[test]
    fn resolves_paths_defaults_and_limits() {
        let config = load(
            r#"
            [runtime.default_limits]
            memory_mb = 64
            timeout_ms = 1000

            [[component]]
            name = "status"
            wasm = "status.wasm"
            routes = ["/status", "/"]
            limits = { timeout_ms = 50 }
            "#,
            &[],
        )
        .unwrap();
        let status = config.component("status").unwrap();
        assert_eq!(status.wasm, PathBuf::from("/etc/corral/status.wasm"));
        assert_eq!(
            status.limits(),
            Limits {
                memory_mb: 64,
                timeout_ms: 50
            }
        );
        assert_eq!(
            config.runtime.state_dir,
            PathBuf::from("/etc/corral/.corral")
        );
        assert_eq!(config.server.listen.port(), 8080);
    }

    #[test]
    fn env_overrides_file() {
        let config = load(
            "[server]\nlisten = \"127.0.0.1:1\"\n",
            &[
                ("CORRAL_LISTEN", "127.0.0.1:9999"),
                ("CORRAL_ADMIN_TOKEN", "s3cret"),
                ("UNRELATED", "x"),
            ],
        )
        .unwrap();
        assert_eq!(config.server.listen.port(), 9999);
        assert_eq!(config.admin.token.as_deref(), Some("s3cret"));
    }

    #[test]
    fn backend_sections_take_env_overrides_and_resolve_paths() {
        use crate::capabilities::{blobstore, keyvalue, messaging};
        let config = load(
            "[messaging]\nbackend = \"amqp\"\n",
            &[
                ("CORRAL_KEYVALUE_BACKEND", "redis"),
                ("CORRAL_REDIS_URL", "redis://kv:6379"),
                ("CORRAL_BLOBSTORE_BACKEND", "s3"),
                ("AWS_ACCESS_KEY_ID", "id"),
            ],
        )
        .unwrap();
        assert_eq!(config.keyvalue.backend, keyvalue::settings::Backend::Redis);
        assert_eq!(config.keyvalue.url, "redis://kv:6379");
        assert_eq!(config.messaging.backend, messaging::settings::Backend::Amqp);
        assert_eq!(config.blobstore.backend, blobstore::settings::Backend::S3);
        assert_eq!(config.blobstore.access_key_id.as_deref(), Some("id"));
        assert_eq!(
            config.messaging.path,
            PathBuf::from("/etc/corral/.corral/queue")
        );
        let err = load("", &[("CORRAL_MESSAGING_BACKEND", "kafka")]).unwrap_err();
        assert!(
            err.to_string().contains("CORRAL_MESSAGING_BACKEND"),
            "{err}"
        );
    }

    #[test]
    fn bad_env_names_the_variable() {
        let err = load("", &[("CORRAL_LISTEN", "not-an-address")]).unwrap_err();
        assert!(err.to_string().contains("CORRAL_LISTEN"), "{err}");
    }

    #[test]
    fn duplicate_routes_are_refused_naming_the_field() {
        let err = load(
            r#"
            [[component]]
            name = "a"
            wasm = "a.wasm"
            routes = ["/x/"]
            [[component]]
            name = "b"
            wasm = "b.wasm"
            routes = ["/x"]
            "#,
            &[],
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("component[1].routes"), "{text}");
        assert!(text.contains("\"a\""), "{text}");
    }

    #[test]
    fn memory_above_pool_slot_is_refused() {
        let err = load(
            "[[component]]\nname = \"a\"\nwasm = \"a.wasm\"\nlimits = { memory_mb = 100000 }\n",
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("limits.memory_mb"), "{err}");
    }

    #[test]
    fn unknown_fields_and_bad_names_are_refused() {
        assert!(load("[server]\nlisten_port = 1\n", &[]).is_err());
        let err = load(
            "[[component]]\nname = \"Bad Name\"\nwasm = \"a.wasm\"\n",
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("component[0].name"), "{err}");
    }
}

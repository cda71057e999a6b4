//! The host configuration: one TOML file plus `CORRAL_*` environment overrides.
//!
//! The file lists the components to run (name, wasm path, routes, limits,
//! grants) and the host's own settings (listeners, state directory, pool size).
//! Environment variables override the settings an operator most often changes
//! per deployment (ports, tokens, directories) without editing the file, which
//! is what a container image or a CI job wants.
//!
//! This is the bottom layer: it knows the host's own tables (`[server]`,
//! `[admin]`, `[runtime]`, `[build]`) and the shape of a component, and
//! keeps every other table raw. The capabilities, the broker and the
//! triggers parse their own tables with [`Config::section`] and the
//! toolkit in [`section`]; the platform checks that each table was
//! claimed by one of them.

mod component;
pub mod redact;
pub mod section;
pub mod template;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

pub use component::{ComponentConfig, Limits, PartialLimits, normalize_route, valid_name};
pub use section::{ConfigError, Section, invalid, parse_env, parse_env_enum, resolve_under};

/// The whole file. Unknown keys in the host's own tables are errors; other
/// top-level tables land in `sections` until their owner claims them.
#[derive(Clone, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// How `corral up --build` builds the components before starting.
    pub build: Option<BuildConfig>,
    /// The components, in the order they were declared.
    #[serde(default, rename = "component")]
    pub components: Vec<ComponentConfig>,
    /// Every other top-level table (`[keyvalue]`, `[messaging]`...), raw:
    /// each is parsed by the part of the host that owns it.
    #[serde(flatten)]
    pub sections: BTreeMap<String, toml::Value>,
    /// Folder of the config file: relative paths in it resolve from here.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The environment the file was loaded with: overrides and `${NAME}`
    /// values come from here, so tests need not touch the process's.
    #[serde(skip)]
    pub env: Env,
}

/// The raw sections are shown by name only: they are still unparsed text,
/// passwords in URLs included (each parsed section hides its own secrets).
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("server", &self.server)
            .field("admin", &self.admin)
            .field("runtime", &self.runtime)
            .field("build", &self.build)
            .field("components", &self.components)
            .field("sections", &self.sections.keys().collect::<Vec<_>>())
            .field("base_dir", &self.base_dir)
            .field("env", &self.env)
            .finish()
    }
}

/// Environment variables, kept out of `Debug` output: they hold secrets.
#[derive(Clone, Default)]
pub struct Env(pub BTreeMap<String, String>);

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Env({} variables)", self.0.len())
    }
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

#[derive(Clone, Deserialize)]
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

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("listen", &self.listen)
            .field("token", &redact::optional(&self.token))
            .finish()
    }
}

/// Shortest admin token accepted on a listener other than loopback.
pub const MIN_EXPOSED_ADMIN_TOKEN_BYTES: usize = 32;

/// Tokens from examples and habits, refused on an exposed admin listener
/// whatever their length.
const KNOWN_ADMIN_TOKENS: &[&str] = &[
    "change-me",
    "changeme",
    "change_me",
    "admin",
    "secret",
    "password",
    "token",
    "corral",
    "test",
];

impl AdminConfig {
    /// The admin API can replace any component's code, and new code inherits
    /// the slot's grants and secrets. On loopback only this machine's users
    /// reach it, and the generated token (32 random bytes) guards it; on any
    /// other address it needs a token nobody can guess, so a missing, short
    /// or well-known one stops the host before it listens.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.ip().is_loopback() {
            return Ok(());
        }
        let why = match self.token.as_deref() {
            None => "is not set".to_owned(),
            Some(token)
                if KNOWN_ADMIN_TOKENS
                    .iter()
                    .any(|known| token.trim().eq_ignore_ascii_case(known)) =>
            {
                "is a well-known default".to_owned()
            }
            Some(token) if token.len() < MIN_EXPOSED_ADMIN_TOKEN_BYTES => {
                format!("is {} bytes long", token.len())
            }
            Some(_) => return Ok(()),
        };
        Err(invalid(
            "admin.token",
            format!(
                "{why}, and admin.listen ({}) is not a loopback address: set a random token \
                 of at least {MIN_EXPOSED_ADMIN_TOKEN_BYTES} bytes (CORRAL_ADMIN_TOKEN, e.g. \
                 `openssl rand -hex 32`), or listen on 127.0.0.1",
                self.listen
            ),
        ))
    }
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
        config.env = Env(env.clone());
        config.base_dir = base.to_owned();
        for component in &mut config.components {
            if component.wasm.is_relative() {
                component.wasm = base.join(&component.wasm);
            }
        }
        resolve_under(&mut config.runtime.state_dir, base);
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
        Ok(())
    }

    /// Parses the top-level table `[name]` (defaults when absent), applies
    /// its environment overrides, resolves its paths under `state_dir` and
    /// checks it. Errors name the table.
    pub fn section<T: Section + DeserializeOwned + Default>(
        &self,
        name: &str,
    ) -> Result<T, ConfigError> {
        let mut value: T = match self.sections.get(name) {
            None => T::default(),
            Some(table @ toml::Value::Table(_)) => table
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| invalid(name, e.message().to_owned()))?,
            Some(_) => return Err(invalid(name, "must be a table")),
        };
        value.apply_env(&self.env.0)?;
        value.resolve_paths(&self.runtime.state_dir);
        value.validate()?;
        Ok(value)
    }

    /// Refuses a top-level table that no part of the host claims (a typo
    /// such as `[keyvalu]` must not be silently ignored).
    pub fn check_sections(&self, known: &[&str]) -> Result<(), ConfigError> {
        match self.sections.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(unknown) => {
                let mut all = vec!["server", "admin", "runtime", "build", "component"];
                all.extend(known);
                Err(invalid(
                    unknown.as_str(),
                    format!("unknown table (known: {})", all.join(", ")),
                ))
            }
        }
    }

    fn validate(&mut self) -> Result<(), ConfigError> {
        self.admin.validate()?;
        let max_memory = self.runtime.max_memory_mb;
        if self.runtime.max_instances == 0 {
            return Err(invalid("runtime.max_instances", "must be at least 1"));
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

    /// Parses `text` as if it were `/etc/corral/corral.toml`, with `env` as
    /// the environment: what unit tests across the host start from.
    #[cfg(test)]
    pub fn for_tests(text: &str, env: &[(&str, &str)]) -> Result<Self, ConfigError> {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::from_toml(
            text,
            Path::new("/etc/corral"),
            Path::new("corral.toml"),
            &env,
        )
    }

    /// Resolves a path written in the config relative to its folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        self.base_dir.join(path)
    }

    pub fn component(&self, name: &str) -> Option<&ComponentConfig> {
        self.components.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exposed_admin_listener_needs_a_strong_token() {
        let exposed = |token: Option<&str>| {
            let token = token.map(|t| format!("token = {t:?}")).unwrap_or_default();
            load(&format!("[admin]\nlisten = \"0.0.0.0:8081\"\n{token}"), &[])
        };
        for (token, why) in [
            (None, "is not set"),
            (Some("change-me"), "well-known"),
            (Some("short-but-random-x9"), "19 bytes"),
            (Some("  Change-Me "), "well-known"),
        ] {
            let error = exposed(token).unwrap_err().to_string();
            assert!(
                error.contains("admin.token") && error.contains(why),
                "{error}"
            );
        }
        let strong = "3f9c2a7d51e84b60a1c7e2d9f04b8a6c";
        assert!(exposed(Some(strong)).is_ok());
        // The environment counts like the file.
        assert!(
            load(
                "[admin]\nlisten = \"0.0.0.0:8081\"",
                &[("CORRAL_ADMIN_TOKEN", strong)]
            )
            .is_ok()
        );
        // On loopback the generated token (or any) is fine.
        assert!(load("[admin]\ntoken = \"dev\"", &[]).is_ok());
        assert!(load("[admin]\nlisten = \"[::1]:8081\"", &[]).is_ok());
    }

    /// No secret of the file or the environment shows in `{:?}`, neither of
    /// the whole config nor of the parsed sections that hold one.
    #[test]
    fn debug_output_hides_secrets() {
        let config = load(
            r#"
            [admin]
            token = "admin-token-secret-0123456789abcdef"

            [keyvalue]
            backend = "redis"
            url = "redis://:redis-secret@127.0.0.1:6379"

            [messaging]
            backend = "amqp"
            url = "amqp://guest:amqp-secret@127.0.0.1:5672/%2f"

            [[component]]
            name = "c"
            wasm = "c.wasm"
            routes = ["/c"]
            env = { API_KEY = "${API_KEY}" }
            config = { token = "config-secret" }
            "#,
            &[("API_KEY", "env-secret")],
        )
        .unwrap();
        // The parsed sections hide theirs too (tests next to them).
        let printed = format!("{config:?}");
        for secret in [
            "admin-token-secret",
            "redis-secret",
            "amqp-secret",
            "env-secret",
            "config-secret",
        ] {
            assert!(!printed.contains(secret), "{secret} shows in {printed}");
        }
        assert!(
            printed.contains("API_KEY") && printed.contains("keyvalue"),
            "{printed}"
        );
    }

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::for_tests(text, env)
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

    /// A section as a capability would declare one.
    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Sample {
        url: String,
        path: PathBuf,
        retries: u32,
    }

    impl Section for Sample {
        fn apply_env(&mut self, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
            if let Some(url) = env.get("CORRAL_SAMPLE_URL") {
                self.url = url.clone();
            }
            Ok(())
        }
        fn resolve_paths(&mut self, state_dir: &Path) {
            resolve_under(&mut self.path, state_dir);
        }
        fn validate(&self) -> Result<(), ConfigError> {
            if self.retries > 3 {
                return Err(invalid("sample.retries", "must be at most 3"));
            }
            Ok(())
        }
    }

    #[test]
    fn sections_parse_take_env_overrides_resolve_paths_and_validate() {
        let config = load(
            "[sample]\nurl = \"file\"\npath = \"data\"\n",
            &[("CORRAL_SAMPLE_URL", "env")],
        )
        .unwrap();
        let sample: Sample = config.section("sample").unwrap();
        assert_eq!(sample.url, "env");
        assert_eq!(sample.path, PathBuf::from("/etc/corral/.corral/data"));
        // An absent table is its defaults, overrides applied.
        let absent: Sample = config.section("other").unwrap();
        assert_eq!((absent.url.as_str(), absent.retries), ("env", 0));

        let bad = load("[sample]\nretries = 9\n", &[]).unwrap();
        let err = bad.section::<Sample>("sample").unwrap_err().to_string();
        assert!(err.contains("sample.retries"), "{err}");
        let typo = load("[sample]\nurll = \"x\"\n", &[]).unwrap();
        let err = typo.section::<Sample>("sample").unwrap_err().to_string();
        assert!(err.contains("sample") && err.contains("urll"), "{err}");
        let not_table = load("sample = 1\n", &[]).unwrap();
        let err = not_table
            .section::<Sample>("sample")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be a table"), "{err}");
    }

    #[test]
    fn unclaimed_tables_are_refused_naming_the_known_ones() {
        let config = load("[keyvalu]\nbackend = \"redis\"\n", &[]).unwrap();
        assert!(config.check_sections(&["keyvalu"]).is_ok());
        let err = config
            .check_sections(&["keyvalue"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("keyvalu:"), "{err}");
        assert!(err.contains("keyvalue"), "{err}");
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

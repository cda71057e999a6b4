//! Path-prefix routing from requests to components.

use crate::config::{Config, normalize_route};

/// Routes, longest prefix first, so `/api/users` wins over `/api` and `/`
/// catches only what nothing else claims.
#[derive(Debug, Clone)]
pub struct Router {
    routes: Vec<(String, String)>,
}

impl Router {
    pub fn new(config: &Config) -> Self {
        let mut routes: Vec<(String, String)> = config
            .components
            .iter()
            .flat_map(|c| {
                c.routes
                    .iter()
                    .map(|r| (normalize_route(r), c.name.clone()))
            })
            .collect();
        routes.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        Self { routes }
    }

    /// The component answering `path`: a route matches the path itself and
    /// everything below it (`/status` matches `/status/x` but not `/statusx`).
    pub fn route(&self, path: &str) -> Option<&str> {
        self.matched(path).map(|(_, component)| component)
    }

    /// The route prefix that matches `path`, and its component.
    pub fn matched(&self, path: &str) -> Option<(&str, &str)> {
        self.routes
            .iter()
            .find(|(prefix, _)| {
                prefix == "/"
                    || path
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
            .map(|(prefix, component)| (prefix.as_str(), component.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(toml: &str) -> Router {
        Router::new(&Config::for_tests(toml, &[]).unwrap())
    }

    #[test]
    fn longest_prefix_wins_and_root_catches_the_rest() {
        let r = router(
            r#"
            [[component]]
            name = "status"
            wasm = "s.wasm"
            routes = ["/status", "/"]
            [[component]]
            name = "api"
            wasm = "a.wasm"
            routes = ["/api/"]
            [[component]]
            name = "users"
            wasm = "u.wasm"
            routes = ["/api/users"]
            "#,
        );
        assert_eq!(r.route("/status"), Some("status"));
        assert_eq!(r.route("/status/x"), Some("status"));
        assert_eq!(r.route("/api/users/7"), Some("users"));
        assert_eq!(r.route("/api/usersx"), Some("api"));
        assert_eq!(r.route("/api"), Some("api"));
        assert_eq!(r.route("/anything"), Some("status"));
        assert_eq!(r.matched("/api/users/7"), Some(("/api/users", "users")));
        assert_eq!(r.matched("/anything"), Some(("/", "status")));
    }

    #[test]
    fn no_root_route_means_no_match() {
        let r = router("[[component]]\nname = \"a\"\nwasm = \"a.wasm\"\nroutes = [\"/a\"]\n");
        assert_eq!(r.route("/b"), None);
        assert_eq!(r.route("/ab"), None);
    }
}

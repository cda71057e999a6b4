//! compose.yaml cannot run on CI machines (no Docker engine), so it is kept
//! correct by construction: these tests check the topology it declares and
//! that the host config it ships is one the real binary accepts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn compose() -> Value {
    let text = std::fs::read_to_string(root().join("compose.yaml")).unwrap();
    serde_yaml::from_str(&text).expect("compose.yaml is valid YAML")
}

fn services(compose: &Value) -> &serde_yaml::Mapping {
    compose["services"].as_mapping().expect("services")
}

fn names(value: &Value) -> BTreeSet<String> {
    match value {
        Value::Mapping(map) => map.keys().map(|k| k.as_str().unwrap().to_owned()).collect(),
        Value::Sequence(seq) => seq.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
        _ => BTreeSet::new(),
    }
}

#[test]
fn compose_has_the_whole_platform_on_one_network() {
    let compose = compose();
    let services = services(&compose);
    let all: BTreeSet<_> = services
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    for needed in ["nginx", "corral", "redis", "rabbitmq", "minio"] {
        assert!(all.contains(needed), "compose.yaml lacks service {needed}");
    }
    let networks = names(&compose["networks"]);
    assert_eq!(networks.len(), 1, "one network: {networks:?}");
    for (name, service) in services {
        assert_eq!(names(&service["networks"]), networks, "{name:?} networks");
        assert!(
            service["restart"].as_str().is_some(),
            "{name:?} has a restart policy"
        );
    }
}

#[test]
fn the_host_starts_last_after_healthy_backends() {
    let compose = compose();
    let services = services(&compose);
    let corral = &services["corral"];
    let depends = corral["depends_on"]
        .as_mapping()
        .expect("corral.depends_on");
    let backends: BTreeSet<_> = depends
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        backends,
        ["minio", "minio-init", "rabbitmq", "redis"]
            .map(String::from)
            .into()
    );
    for (backend, condition) in depends {
        let name = backend.as_str().unwrap();
        let backend = &services[name];
        if name == "minio-init" {
            // A one-shot job: the bucket must exist before the host starts.
            assert_eq!(condition["condition"], "service_completed_successfully");
            continue;
        }
        assert_eq!(condition["condition"], "service_healthy", "{name:?}");
        assert!(
            backend["healthcheck"]["test"].is_sequence(),
            "{name:?} has a healthcheck"
        );
    }
    assert!(corral["healthcheck"]["test"].is_sequence());
    assert_eq!(
        services["nginx"]["depends_on"]["corral"]["condition"],
        "service_healthy"
    );
}

#[test]
fn only_nginx_publishes_a_port_and_data_lives_in_volumes() {
    let compose = compose();
    let services = services(&compose);
    for (name, service) in services {
        let published = !service["ports"].is_null();
        assert_eq!(published, name == "nginx", "{name:?} ports");
    }
    let declared = names(&compose["volumes"]);
    for (name, service) in services {
        for volume in service["volumes"].as_sequence().into_iter().flatten() {
            let source = volume.as_str().unwrap().split(':').next().unwrap();
            if source.starts_with('.') {
                assert!(
                    root().join(source).exists(),
                    "{name:?} mounts missing {source}"
                );
            } else {
                assert!(
                    declared.contains(source),
                    "{name:?} uses undeclared volume {source}"
                );
            }
        }
    }
    for data in ["redis", "rabbitmq", "minio"] {
        assert!(
            !services[data]["volumes"].is_null(),
            "{data} keeps its data in a volume"
        );
    }
    for logs in ["/var/log/service", "/var/log/client"] {
        let mounted = services["corral"]["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|v| v.as_str().unwrap().ends_with(logs));
        assert!(mounted, "corral mounts {logs}");
    }
}

#[test]
fn nginx_proxies_to_the_port_the_host_listens_on() {
    let nginx = std::fs::read_to_string(root().join("deploy/nginx.conf")).unwrap();
    let config = std::fs::read_to_string(root().join("deploy/corral.compose.toml")).unwrap();
    let config: toml::Table = toml::from_str(&config).unwrap();
    let listen = config["server"]["listen"].as_str().unwrap();
    let port = listen.rsplit(':').next().unwrap();
    assert!(
        nginx.contains(&format!("server corral:{port};")),
        "nginx upstream is corral:{port}"
    );
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("COPY deploy/corral.compose.toml /etc/corral/corral.toml"));
    for component in config["component"].as_array().unwrap() {
        let wasm = component["wasm"].as_str().unwrap();
        assert!(
            wasm.starts_with("/opt/corral/components/"),
            "{wasm} is where the Dockerfile puts components"
        );
    }
}

#[test]
fn compose_backends_match_the_host_config() {
    let compose = compose();
    let services = services(&compose);
    let config = std::fs::read_to_string(root().join("deploy/corral.compose.toml")).unwrap();
    let config: toml::Table = toml::from_str(&config).unwrap();
    assert_eq!(config["keyvalue"]["backend"].as_str(), Some("redis"));
    assert_eq!(config["messaging"]["backend"].as_str(), Some("amqp"));
    assert_eq!(config["blobstore"]["backend"].as_str(), Some("s3"));
    let bucket = config["blobstore"]["bucket"].as_str().unwrap();
    let init = services["minio-init"]["command"][0].as_str().unwrap();
    assert!(
        init.contains(&format!("local/{bucket}")),
        "minio-init creates bucket {bucket}: {init}"
    );
    let env = services["corral"]["environment"].as_mapping().unwrap();
    for var in [
        "CORRAL_AMQP_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        assert!(env.contains_key(var), "corral gets {var}");
    }
    // The admin API listens on the compose network: compose must refuse to
    // start without a token (`${VAR:?message}`), never fall back to one
    // written here.
    let token = env["CORRAL_ADMIN_TOKEN"].as_str().unwrap();
    assert!(
        token.starts_with("${CORRAL_ADMIN_TOKEN:?"),
        "compose requires CORRAL_ADMIN_TOKEN: {token}"
    );
}

fn corral_check(config: &str, admin_token: Option<&str>) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_corral"));
    command
        .args(["check", "--config"])
        .arg(root().join(config))
        .env_remove("CORRAL_CONFIG")
        .env_remove("CORRAL_ADMIN_TOKEN");
    if let Some(token) = admin_token {
        command.env("CORRAL_ADMIN_TOKEN", token);
    }
    command.output().unwrap()
}

#[test]
fn shipped_configs_pass_corral_check() {
    // The compose config with a token as compose passes it in.
    for (config, token) in [
        ("corral.toml", None),
        (
            "deploy/corral.compose.toml",
            Some("9b1f6a0c3e7d4852b6a9c1e0f3d7a5b8"),
        ),
    ] {
        let out = corral_check(config, token);
        assert!(
            out.status.success(),
            "{config}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_compose_config_refuses_a_missing_or_default_admin_token() {
    for token in [None, Some("change-me")] {
        let out = corral_check("deploy/corral.compose.toml", token);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{token:?} was accepted");
        assert!(stderr.contains("admin.token"), "{stderr}");
    }
}

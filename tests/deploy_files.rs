//! Docker does not run on our machines, so the deploy files are kept honest by reading them:
//! the compose stack, nginx, Prometheus and Grafana must agree with each other and with the app.

use serde_json::Value as Json;
use serde_yaml::Value;
use std::path::Path;
use std::process::Command;

mod helpers;

use helpers::repo;

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut value: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    value.apply_merge().unwrap();
    value
}

fn compose() -> Value {
    yaml(&repo().join("deploy/docker-compose.yml"))
}

const REPLICAS: [&str; 3] = ["cyberhub-1", "cyberhub-2", "cyberhub-3"];

#[test]
fn compose_has_the_whole_stack() {
    let compose = compose();
    let services = compose["services"].as_mapping().expect("services");
    for name in ["postgres", "redis", "nginx", "prometheus", "grafana"].iter().chain(REPLICAS.iter()) {
        assert!(services.contains_key(*name), "compose lacks the {name} service");
    }
    for replica in REPLICAS {
        let service = &compose["services"][replica];
        let env = &service["environment"];
        assert_eq!(env["REPLICA_ID"].as_str(), Some(replica), "REPLICA_ID is the service name (nginx's cookie map)");
        for var in
            ["DATABASE_URL", "REDIS_URL", "JWT_SECRET", "PAYMENT_WEBHOOK_SECRET", "BUS_SECRET", "TRUSTED_PROXIES"]
        {
            assert!(env[var].as_str().is_some_and(|v| !v.is_empty()), "{replica} lacks {var}");
        }
        assert!(env["DATABASE_URL"].as_str().unwrap().starts_with("postgres://"));
        let redis_url = env["REDIS_URL"].as_str().unwrap();
        assert!(
            redis_url.starts_with("redis://:${REDIS_PASSWORD:?") && redis_url.ends_with("}@redis:6379"),
            "the replicas authenticate to Redis: {redis_url}"
        );
        assert_eq!(service["build"]["dockerfile"].as_str(), Some("deploy/Dockerfile"));
        let depends = service["depends_on"].as_mapping().expect("depends_on");
        for dependency in ["postgres", "redis"] {
            let condition = &depends[dependency]["condition"];
            assert_eq!(condition.as_str(), Some("service_healthy"), "{replica} waits for a healthy {dependency}");
        }
        assert!(service.get("ports").is_none(), "replicas are reached through nginx only");
    }
    for service in ["postgres", "redis"] {
        assert!(compose["services"][service]["healthcheck"]["test"].is_sequence(), "{service} has a healthcheck");
    }
    let nginx_ports = compose["services"]["nginx"]["ports"].as_sequence().expect("nginx publishes a port");
    assert!(!nginx_ports.is_empty());
}

#[test]
fn every_file_compose_mounts_exists() {
    let compose = compose();
    let deploy = repo().join("deploy");
    let mut checked = 0;
    for (name, service) in compose["services"].as_mapping().unwrap() {
        for volume in service["volumes"].as_sequence().into_iter().flatten() {
            let spec = volume.as_str().expect("short volume syntax");
            let source = spec.split(':').next().unwrap();
            if source.starts_with('.') {
                let path = deploy.join(source);
                assert!(path.exists(), "{:?} mounts {} which does not exist", name, path.display());
                checked += 1;
            }
        }
    }
    assert!(checked >= 4, "nginx, prometheus and grafana mount their configuration");
    assert!(deploy.join(".env.example").exists());
}

#[test]
fn the_dockerfile_builds_small_and_runs_unprivileged() {
    let dockerfile = std::fs::read_to_string(repo().join("deploy/Dockerfile")).unwrap();
    assert!(dockerfile.matches("FROM ").count() >= 2, "multi-stage");
    assert!(dockerfile.lines().any(|l| l.starts_with("USER ") && !l.contains("root")), "non-root");
    assert!(dockerfile.contains("HEALTHCHECK"), "healthcheck");
    assert!(dockerfile.contains("--locked"), "builds from Cargo.lock");
}

#[test]
fn nginx_config_is_rendered_from_the_template_and_valid() {
    let status = Command::new("bash").arg(repo().join("nginx/check.sh")).status().expect("bash runs nginx/check.sh");
    assert!(status.success(), "nginx/check.sh failed: nginx/nginx.conf drifted from the template or nginx -t failed");
    let conf = std::fs::read_to_string(repo().join("nginx/nginx.conf")).unwrap();
    for replica in REPLICAS {
        assert!(conf.contains(&format!("server {replica}:3000")), "nginx proxies to {replica}");
    }
    assert!(conf.contains("$connection_upgrade") && conf.contains("proxy_http_version 1.1"));
}

#[test]
fn prometheus_scrapes_every_replica_and_loads_the_alerts() {
    let config = yaml(&repo().join("deploy/prometheus/prometheus.yml"));
    let text = serde_yaml::to_string(&config).unwrap();
    for replica in REPLICAS {
        assert!(text.contains(&format!("{replica}:3000")), "prometheus scrapes {replica}");
    }
    let rules = config["rule_files"].as_sequence().expect("rule_files");
    assert!(rules.iter().any(|r| r.as_str().is_some_and(|r| r.ends_with("alerts.yml"))));
    let alerts = yaml(&repo().join("deploy/prometheus/alerts.yml"));
    let names: Vec<&str> = alerts["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
        .filter_map(|r| r["alert"].as_str())
        .collect();
    assert!(names.len() >= 5, "alerts: {names:?}");
}

#[test]
fn grafana_provisions_the_dashboard_on_the_prometheus_datasource() {
    let datasource = yaml(&repo().join("deploy/grafana/provisioning/datasources/prometheus.yml"));
    assert_eq!(datasource["datasources"][0]["uid"].as_str(), Some("prometheus"));
    let provider = yaml(&repo().join("deploy/grafana/provisioning/dashboards/cyberhub.yml"));
    assert!(provider["providers"][0]["options"]["path"].as_str().is_some());
    let dashboard: Json =
        serde_json::from_str(&std::fs::read_to_string(repo().join("deploy/grafana/dashboards/cyberhub.json")).unwrap())
            .unwrap();
    assert!(dashboard["panels"].as_array().is_some_and(|p| p.len() >= 10));
}

/// The secrets compose needs: each must be guarded with `${VAR:?…}` wherever compose uses it, and
/// `.env.example` must ship it empty, so a copied example stops compose instead of running with
/// a published value.
const SECRETS: [&str; 6] = [
    "POSTGRES_PASSWORD",
    "JWT_SECRET",
    "PAYMENT_WEBHOOK_SECRET",
    "BUS_SECRET",
    "REDIS_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
];

#[test]
fn env_example_ships_every_secret_empty() {
    let text = std::fs::read_to_string(repo().join("deploy/.env.example")).unwrap();
    for secret in SECRETS {
        let lines: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with(&format!("{secret}="))).collect();
        assert_eq!(lines, [format!("{secret}=")], "{secret} must be present and empty in deploy/.env.example");
    }
}

#[test]
fn compose_refuses_to_start_without_each_secret() {
    let text = std::fs::read_to_string(repo().join("deploy/docker-compose.yml")).unwrap();
    for secret in SECRETS {
        let uses: Vec<&str> = text.match_indices(&format!("${{{secret}")).map(|(i, _)| &text[i..]).collect();
        assert!(!uses.is_empty(), "compose never uses {secret}");
        for used in uses {
            assert!(used.starts_with(&format!("${{{secret}:?")), "{secret} without a :? guard: {}", &used[..40]);
        }
    }
    let compose = compose();
    let redis = &compose["services"]["redis"];
    let command: Vec<&str> = redis["command"].as_sequence().unwrap().iter().filter_map(|v| v.as_str()).collect();
    let at = command.iter().position(|a| *a == "--requirepass").expect("redis runs with --requirepass");
    assert!(command[at + 1].starts_with("${REDIS_PASSWORD:?"), "requirepass comes from REDIS_PASSWORD");
    let health = serde_yaml::to_string(&redis["healthcheck"]["test"]).unwrap();
    assert!(health.contains("REDISCLI_AUTH"), "the healthcheck authenticates: {health}");
}

#[test]
fn nginx_retries_only_what_is_safe_to_run_twice() {
    for file in ["nginx/cyberhub.conf.template", "nginx/nginx.conf"] {
        let conf = std::fs::read_to_string(repo().join(file)).unwrap();
        let directives: Vec<&str> =
            conf.lines().map(str::trim).filter(|l| !l.starts_with('#') && l.contains("proxy_next_upstream")).collect();
        assert!(!directives.is_empty(), "{file}: no proxy_next_upstream at all");
        for directive in directives {
            assert!(!directive.contains("non_idempotent"), "{file}: {directive}");
        }
        // nginx counts PUT and DELETE idempotent; here they go where nothing is retried.
        assert!(conf.contains("if ($request_method !~ ^(GET|HEAD|OPTIONS|POST|PATCH)$)"), "{file}");
        assert!(conf.contains("location @api_write {") && conf.contains("proxy_next_upstream off;"), "{file}");
        assert!(conf.contains(r"location ~ ^/socket\.io(/|$) {"), "{file}: /socket.io with and without the slash");
        assert_eq!(
            conf.matches("keepalive_timeout 10s;").count(),
            conf.matches("        keepalive ").count(),
            "{file}"
        );
    }
}

//! Docker does not run on our machines, so the deploy files are kept honest by reading them:
//! the compose stack, nginx, Prometheus and Grafana must agree with each other and with the app.

use serde::Deserialize;
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

// --- Kubernetes (deploy/k8s) -------------------------------------------------------------------

/// Every document of every manifest file under deploy/k8s, by (kind, name).
fn k8s_resources() -> Vec<Value> {
    let dir = repo().join("deploy/k8s");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .chain(std::fs::read_dir(dir.join("prometheus-adapter")).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml") && !p.ends_with("kustomization.yaml"))
        .collect();
    files.sort();
    let mut resources = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = Value::deserialize(document).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if !value.is_null() {
                resources.push(value);
            }
        }
    }
    assert!(resources.len() >= 10, "deploy/k8s has {} resources", resources.len());
    resources
}

fn k8s<'a>(resources: &'a [Value], kind: &str, name: &str) -> &'a Value {
    resources
        .iter()
        .find(|r| r["kind"].as_str() == Some(kind) && r["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("deploy/k8s has no {kind} {name}"))
}

fn k8s_all<'a>(resources: &'a [Value], kind: &str) -> Vec<&'a Value> {
    resources.iter().filter(|r| r["kind"].as_str() == Some(kind)).collect()
}

/// The ConfigMap's settings as the environment a pod gets (the Secret adds the rest).
fn k8s_settings(resources: &[Value]) -> std::collections::HashMap<String, String> {
    let data = k8s(resources, "ConfigMap", "cyberhub-config")["data"].as_mapping().expect("ConfigMap data");
    data.iter().map(|(k, v)| (k.as_str().unwrap().to_string(), v.as_str().expect("string value").to_string())).collect()
}

fn seconds(value: &Value) -> u64 {
    value.as_u64().unwrap_or_else(|| panic!("not a number of seconds: {value:?}"))
}

#[test]
fn k8s_manifests_validate_strictly_against_the_kubernetes_schemas() {
    let output = Command::new("bash").arg(repo().join("deploy/k8s/validate.sh")).output().expect("bash runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "deploy/k8s/validate.sh failed (./test installs kubernetes-validate):\n{text}");
    assert!(text.contains("valid (strict)"), "{text}");
}

#[test]
fn k8s_kustomization_lists_every_manifest_but_the_secret_template() {
    let dir = repo().join("deploy/k8s");
    let kustomization = yaml(&dir.join("kustomization.yaml"));
    let mut listed: Vec<&str> =
        kustomization["resources"].as_sequence().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    listed.sort();
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml" && n != "secret.example.yaml")
        .collect();
    present.sort();
    assert_eq!(listed, present, "kustomization.yaml resources");
    let images = kustomization["images"].as_sequence().unwrap();
    let deployment = yaml(&dir.join("deployment.yaml"));
    let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap();
    assert!(images.iter().any(|i| image.starts_with(i["name"].as_str().unwrap())), "images names {image}");
}

/// The ConfigMap is a configuration the binary accepts (with the Secret's keys filled in), every
/// key is a variable the binary reads, and no secret sits in the ConfigMap.
#[test]
fn k8s_config_and_secret_are_what_the_binary_reads() {
    let resources = k8s_resources();
    let settings = k8s_settings(&resources);
    let config_rs = std::fs::read_to_string(repo().join("src/config.rs")).unwrap();
    let telemetry_rs = std::fs::read_to_string(repo().join("src/telemetry.rs")).unwrap();
    let read_by_binary = |key: &str| {
        config_rs.contains(&format!("\"{key}\""))
            || (key == "RUST_LOG" && telemetry_rs.contains("EnvFilter::try_from_default_env()"))
    };
    let secret = k8s(&resources, "Secret", "cyberhub-secrets");
    let secret_keys: Vec<&str> =
        secret["stringData"].as_mapping().unwrap().keys().map(|k| k.as_str().unwrap()).collect();
    for (key, value) in secret["stringData"].as_mapping().unwrap() {
        assert_eq!(value.as_str(), Some(""), "secret.example.yaml ships {key:?} empty");
    }
    for key in settings.keys().map(String::as_str).chain(secret_keys.iter().copied()) {
        assert!(read_by_binary(key), "{key} is not a variable src/config.rs reads");
    }
    for key in settings.keys() {
        assert!(
            !(key.ends_with("_SECRET") || key.ends_with("_URL") || key.contains("PASSWORD")),
            "{key} belongs in the Secret"
        );
    }
    assert_eq!(
        secret_keys,
        ["DATABASE_URL", "REDIS_URL", "JWT_SECRET", "PAYMENT_WEBHOOK_SECRET", "BUS_SECRET"],
        "the Secret holds what a cluster replica requires"
    );
    // The same environment a pod gets, with real-looking secrets: the binary must accept it.
    let mut env = settings.clone();
    env.insert("DATABASE_URL".into(), "postgres://cyberhub:pw@cyberhub-postgres:5432/cyberhub".into());
    env.insert("REDIS_URL".into(), "redis://:pw@cyberhub-redis:6379".into());
    for key in ["JWT_SECRET", "PAYMENT_WEBHOOK_SECRET", "BUS_SECRET"] {
        env.insert(key.into(), hex::encode(rand::random::<[u8; 32]>()));
    }
    let config = cyberhub::config::Config::from_lookup(|k| env.get(k).cloned())
        .unwrap_or_else(|e| panic!("the binary refuses deploy/k8s's settings: {e}"));
    assert!(config.is_cluster());
    // The Secret's URLs name the in-cluster Services of external-services.yaml.
    for (name, port) in [("cyberhub-postgres", 5432), ("cyberhub-redis", 6379)] {
        let service = k8s(&resources, "Service", name);
        assert_eq!(service["spec"]["type"].as_str(), Some("ExternalName"));
        assert_eq!(service["spec"]["ports"][0]["port"].as_u64(), Some(port));
        let template = std::fs::read_to_string(repo().join("deploy/k8s/secret.example.yaml")).unwrap();
        assert!(template.contains(&format!("@{name}:{port}")), "secret.example.yaml shows {name}:{port}");
    }
}

#[test]
fn k8s_deployment_drains_before_it_is_killed_and_runs_locked_down() {
    let resources = k8s_resources();
    let settings = k8s_settings(&resources);
    let config = cyberhub::config::Config::from_lookup(|k| settings.get(k).cloned()).expect("settings parse");
    let deployment = k8s(&resources, "Deployment", "cyberhub");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];

    // SIGTERM comes after preStop; then the drain, then requests in flight (each at most
    // REQUEST_TIMEOUT). The kubelet's SIGKILL at the grace period must come after all of it.
    let pre_stop = container["lifecycle"]["preStop"]["exec"]["command"].as_sequence().expect("preStop exec");
    assert_eq!(pre_stop[0].as_str(), Some("sleep"));
    let pre_stop: u64 = pre_stop[1].as_str().unwrap().parse().unwrap();
    assert!(pre_stop >= 1, "preStop gives the ingress time to drop the pod");
    let grace = seconds(&pod["terminationGracePeriodSeconds"]);
    let needed = pre_stop + config.sessions.drain_window.as_secs() + config.timeouts.request.as_secs();
    assert!(
        grace >= needed + 5,
        "terminationGracePeriodSeconds {grace} < preStop + DRAIN_WINDOW + REQUEST_TIMEOUT + 5 s"
    );
    assert!(
        !config.sessions.drain_window.is_zero(),
        "DRAIN_WINDOW=0 would close every socket at once: a reconnect storm on the others"
    );

    // Probes on the port the binary listens on, at paths it serves (checked live below).
    let port = &container["ports"][0];
    assert_eq!(port["containerPort"].as_u64().map(|p| p.to_string()), settings.get("PORT").cloned());
    let port_name = port["name"].as_str().unwrap();
    assert_eq!(container["readinessProbe"]["httpGet"]["path"].as_str(), Some("/ready"));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"].as_str(), Some("/health"));
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        assert_eq!(container[probe]["httpGet"]["port"].as_str(), Some(port_name), "{probe}");
    }
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/port"].as_str().map(str::to_string), settings.get("PORT").cloned());
    assert_eq!(annotations["prometheus.io/path"].as_str(), Some("/metrics"));

    // The image's entrypoint is `cyberhub serve`: arguments would be appended to it.
    assert!(container.get("command").is_none() && container.get("args").is_none());
    let env_from: Vec<(&str, &str)> = container["envFrom"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| {
            let (kind, reference) = e.as_mapping().unwrap().iter().next().unwrap();
            (kind.as_str().unwrap(), reference["name"].as_str().unwrap())
        })
        .collect();
    assert_eq!(env_from, [("configMapRef", "cyberhub-config"), ("secretRef", "cyberhub-secrets")]);

    // Non-root as the Dockerfile's user, nothing written to the image, no privileges.
    let dockerfile = std::fs::read_to_string(repo().join("deploy/Dockerfile")).unwrap();
    let uid = seconds(&pod["securityContext"]["runAsUser"]);
    assert!(dockerfile.contains(&format!("--uid {uid} ")), "runAsUser {uid} is the Dockerfile's user");
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(security["capabilities"]["drop"][0].as_str(), Some("ALL"));
    for resource in ["cpu", "memory"] {
        assert!(container["resources"]["requests"][resource].is_string(), "requests.{resource}");
        assert!(container["resources"]["limits"][resource].is_string(), "limits.{resource}");
    }

    // Service, PDB and HPA find these pods.
    let labels = deployment["spec"]["template"]["metadata"]["labels"].as_mapping().unwrap();
    let selects = |selector: &Value| selector.as_mapping().unwrap().iter().all(|(k, v)| labels.get(k) == Some(v));
    let service = k8s(&resources, "Service", "cyberhub");
    assert!(selects(&service["spec"]["selector"]));
    assert_eq!(service["spec"]["ports"][0]["targetPort"].as_str(), Some(port_name));
    let pdb = k8s(&resources, "PodDisruptionBudget", "cyberhub");
    assert!(selects(&pdb["spec"]["selector"]["matchLabels"]));
    let policy = k8s(&resources, "NetworkPolicy", "cyberhub");
    assert!(selects(&policy["spec"]["podSelector"]["matchLabels"]));
    assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"].as_str(), Some(port_name));
    let hpa = k8s(&resources, "HorizontalPodAutoscaler", "cyberhub");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"].as_str(), Some("cyberhub"));
    let min = seconds(&hpa["spec"]["minReplicas"]);
    let max = seconds(&hpa["spec"]["maxReplicas"]);
    assert!(seconds(&pdb["spec"]["maxUnavailable"]) < min, "a node drain leaves replicas serving");
    assert!((min..=max).contains(&seconds(&deployment["spec"]["replicas"])));

    // Every pod's pool at its largest, during a rollout at the HPA's maximum, fits in
    // PostgreSQL's default max_connections (100, 3 reserved for superusers).
    let surge = seconds(&deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]);
    assert_eq!(seconds(&deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"]), 0);
    let pool = u64::from(config.database_max_connections);
    assert!((max + surge) * pool <= 97, "({max} + {surge}) pods x {pool} connections > 97");
}

#[test]
fn k8s_hpa_scales_on_a_metric_the_binary_exports_through_the_adapter_rule() {
    let resources = k8s_resources();
    let hpa = k8s(&resources, "HorizontalPodAutoscaler", "cyberhub");
    let metrics = hpa["spec"]["metrics"].as_sequence().unwrap();
    assert_eq!(metrics.len(), 1, "sockets alone: CPU says little about idle sockets");
    let metric = &metrics[0];
    assert_eq!(metric["type"].as_str(), Some("Pods"));
    let name = metric["pods"]["metric"]["name"].as_str().unwrap();
    assert_eq!(name, "cyberhub_connected_clients");
    assert_eq!(metric["pods"]["target"]["type"].as_str(), Some("AverageValue"));
    let per_pod: u64 = metric["pods"]["target"]["averageValue"].as_str().unwrap().parse().unwrap();
    assert!((500..=10_000).contains(&per_pod), "{per_pod} sockets per pod");
    let metrics_rs = std::fs::read_to_string(repo().join("src/metrics.rs")).unwrap();
    assert!(metrics_rs.contains(&format!("\"{name}\"")), "src/metrics.rs registers {name}");

    // The adapter's rule serves that name per pod, from series carrying namespace and pod.
    let adapter = k8s(&resources, "ConfigMap", "prometheus-adapter");
    let rules: Value = serde_yaml::from_str(adapter["data"]["config.yaml"].as_str().unwrap()).unwrap();
    let rule = rules["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|r| r["name"]["as"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no adapter rule serves {name}"));
    assert!(rule["seriesQuery"].as_str().unwrap().starts_with(&format!("{name}{{")));
    assert_eq!(rule["resources"]["overrides"]["pod"]["resource"].as_str(), Some("pod"));
    assert_eq!(rule["resources"]["overrides"]["namespace"]["resource"].as_str(), Some("namespace"));
    assert!(!rule["metricsQuery"].as_str().unwrap().contains("rate("), "a gauge, not a counter");

    // The scrape job puts those labels on the series.
    let scrape = yaml(&repo().join("deploy/k8s/prometheus/scrape-config.yml"));
    let job = &scrape["scrape_configs"][0];
    assert_eq!(job["job_name"].as_str(), Some("cyberhub"), "the job deploy/prometheus/alerts.yml expects");
    let targets: Vec<&str> =
        job["relabel_configs"].as_sequence().unwrap().iter().filter_map(|r| r["target_label"].as_str()).collect();
    for label in ["namespace", "pod", "__address__", "__metrics_path__"] {
        assert!(targets.contains(&label), "scrape job sets {label}: {targets:?}");
    }
}

fn annotation<'a>(ingress: &'a Value, key: &str) -> Option<&'a str> {
    ingress["metadata"]["annotations"][format!("nginx.ingress.kubernetes.io/{key}").as_str()].as_str()
}

/// ingress-nginx does for the cluster what nginx/cyberhub.conf.template does for compose:
/// websocket timeouts above the heartbeat, cookie affinity for polling, and no second try of a
/// request a pod may have run.
#[test]
fn k8s_ingresses_keep_sessions_on_their_pod_and_never_rerun_writes() {
    let resources = k8s_resources();
    let ingresses = k8s_all(&resources, "Ingress");
    assert!(ingresses.len() >= 3);
    // One upstream per Service in ingress-nginx: its affinity must not depend on which Ingress
    // the controller read first.
    let affinity = |i: &Value| -> Vec<(String, Option<String>)> {
        ["affinity", "affinity-mode", "session-cookie-name", "session-cookie-path", "session-cookie-change-on-failure"]
            .iter()
            .map(|k| (k.to_string(), annotation(i, k).map(str::to_string)))
            .collect()
    };
    for ingress in &ingresses {
        assert_eq!(affinity(ingress), affinity(ingresses[0]), "{:?}", ingress["metadata"]["name"]);
        assert_eq!(annotation(ingress, "retry-non-idempotent"), None);
        for rule in ingress["spec"]["rules"].as_sequence().unwrap() {
            for path in rule["http"]["paths"].as_sequence().unwrap() {
                assert_eq!(path["backend"]["service"]["name"].as_str(), Some("cyberhub"));
                assert_eq!(path["backend"]["service"]["port"]["name"].as_str(), Some("http"));
            }
        }
    }
    assert_eq!(annotation(ingresses[0], "affinity"), Some("cookie"));
    assert_eq!(annotation(ingresses[0], "affinity-mode"), Some("persistent"), "scale-out keeps sessions");
    let cookie = annotation(ingresses[0], "session-cookie-name").unwrap();
    assert_ne!(cookie, "cyberhub_replica", "the replicas set that one themselves");

    // Where ingress-nginx sends a path: the longest matching Prefix, an Exact match first.
    let routes: Vec<(&Value, &str, &str)> = ingresses
        .iter()
        .flat_map(|i| {
            i["spec"]["rules"][0]["http"]["paths"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(move |p| (*i, p["path"].as_str().unwrap(), p["pathType"].as_str().unwrap()))
        })
        .collect();
    let ingress_for = |path: &str| -> &Value {
        if let Some((i, _, _)) = routes.iter().find(|(_, p, t)| *t == "Exact" && *p == path) {
            return i;
        }
        routes
            .iter()
            .filter(|(_, p, t)| {
                *t == "Prefix"
                    && (*p == "/" || path == *p || path.starts_with(&format!("{}/", p.trim_end_matches('/'))))
            })
            .max_by_key(|(_, p, _)| p.len())
            .map(|(i, _, _)| *i)
            .unwrap_or_else(|| panic!("no Ingress routes {path}"))
    };
    let name = |i: &Value| i["metadata"]["name"].as_str().unwrap().to_string();

    let socket = ingress_for("/socket.io/");
    assert_eq!(name(ingress_for("/socket.io")), name(socket));
    // Above Engine.IO's pingInterval (25 s) + pingTimeout (20 s).
    for key in ["proxy-read-timeout", "proxy-send-timeout"] {
        let timeout: u64 = annotation(socket, key).unwrap().parse().unwrap();
        assert!(timeout > 45, "{key} {timeout}");
    }
    assert_eq!(annotation(socket, "proxy-buffering"), Some("off"));
    assert_eq!(annotation(socket, "proxy-request-buffering"), Some("off"));

    let metrics = ingress_for("/metrics");
    assert_eq!(annotation(metrics, "denylist-source-range"), Some("0.0.0.0/0,::/0"), "/metrics stays inside");

    // Every route with a PUT or DELETE (docs/openapi.json) reaches an Ingress that never
    // retries; POST and PATCH are never re-sent by nginx once they reached a pod.
    let openapi: Json =
        serde_json::from_str(&std::fs::read_to_string(repo().join("docs/openapi.json")).unwrap()).unwrap();
    let mut writes = 0;
    for (path, operations) in openapi["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
        let ingress = ingress_for(&concrete);
        let retries = annotation(ingress, "proxy-next-upstream").unwrap_or("error timeout");
        assert!(!retries.contains("non_idempotent"), "{}", name(ingress));
        if operations.get("put").is_some() || operations.get("delete").is_some() {
            assert_eq!(retries, "off", "{path} has PUT/DELETE but goes to {} which retries", name(ingress));
            writes += 1;
        }
    }
    assert!(writes >= 5, "found {writes} PUT/DELETE routes in docs/openapi.json");
}

/// The probe paths answer and the HPA's metric is exported, by a replica running with the
/// ConfigMap's settings on PostgreSQL.
#[tokio::test]
async fn k8s_probe_paths_and_the_hpa_metric_are_served_by_the_binary() {
    let resources = k8s_resources();
    let settings = k8s_settings(&resources);
    let overrides: Vec<(&str, &str)> = settings
        .iter()
        .filter(|(k, _)| !["BIND", "PORT"].contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let app = helpers::spawn_app_with(helpers::Backend::Postgres, &overrides).await;
    let deployment = k8s(&resources, "Deployment", "cyberhub");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        let path = container[probe]["httpGet"]["path"].as_str().unwrap();
        let status = app.http.get(app.url(path)).send().await.unwrap().status();
        assert_eq!(status.as_u16(), 200, "{probe} {path}");
    }
    let hpa = k8s(&resources, "HorizontalPodAutoscaler", "cyberhub");
    let name = hpa["spec"]["metrics"][0]["pods"]["metric"]["name"].as_str().unwrap();
    let text = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains(&format!("# TYPE {name} gauge")), "/metrics exports {name} as a gauge");
    let before = app.metric(name, &[]).await;
    let socket = app.socket(None).await;
    let mut counted = app.metric(name, &[]).await;
    for _ in 0..50 {
        if counted == before + 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        counted = app.metric(name, &[]).await;
    }
    assert_eq!(counted, before + 1.0, "{name} counts a connected socket");
    drop(socket);
    app.cleanup().await;
}

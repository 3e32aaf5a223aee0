//! The zero-configuration node as an operator runs it: the real binary, twice, on one SQLite
//! file. Its admin token is printed on the start that generates the secret and never again
//! (logs outlive tokens); `cyberhub token` prints one on demand.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::helpers::{free_port, Api, TestDatabase};

const TOKEN_BANNER: &str = "Admin token";

fn cyberhub(database_url: &str, port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cyberhub"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("BIND", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("REPLICA_ID", "first-start")
        .env("RUST_LOG", "info");
    command
}

/// Serves until `/ready` answers, runs `while_up` against it, then stops it with SIGTERM and
/// returns everything it printed.
async fn serve_once<F, Fut>(database_url: &str, while_up: F) -> String
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let port = free_port();
    let mut child = cyberhub(database_url, port)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the cyberhub binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if http.get(format!("{base}/ready")).send().await.is_ok_and(|r| r.status() == 200) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if ready {
        while_up(base).await;
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let output: Output = tokio::task::spawn_blocking(move || {
        for _ in 0..100 {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(ready, "the node did not become ready:\n{printed}");
    printed
}

#[tokio::test]
async fn the_admin_token_is_printed_on_the_first_start_only_and_by_cyberhub_token() {
    let database = TestDatabase::sqlite();
    let database_url = database.url().to_string();

    let first = serve_once(&database_url, |_| async {}).await;
    assert_eq!(first.matches(TOKEN_BANNER).count(), 1, "the first start prints its admin token:\n{first}");
    let printed_token =
        first.split(TOKEN_BANNER).nth(1).and_then(|rest| rest.split_whitespace().find(|w| w.starts_with("ey")));
    let printed_token = printed_token.expect("a JWT follows the banner").to_string();
    assert!(first.contains(&format!("/console#token={printed_token}")), "the console's address with it:\n{first}");

    let url = database_url.clone();
    let second = serve_once(&database_url, |base| async move {
        let api = Api::new(&base);
        // The token from the first start still works: the secret was kept, not regenerated.
        let me = api.get("/api/me", Some(&printed_token)).await;
        assert_eq!(me.expect(200)["user"]["role"], "admin", "{}", me.body);

        // `cyberhub token` prints a fresh admin token for the same admin, with no --sub.
        let output = cyberhub(&url, 0).arg("token").output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let token = String::from_utf8(output.stdout).unwrap().trim().to_string();
        let me_again = api.get("/api/me", Some(&token)).await;
        assert_eq!(me_again.expect(200)["user"]["role"], "admin");
        assert_eq!(me_again.body["user"]["id"], me.body["user"]["id"], "the same admin");
    })
    .await;
    assert!(!second.contains(TOKEN_BANNER), "a second start must not print a token:\n{second}");
    assert!(!second.contains("eyJ"), "no JWT anywhere in the second start's output:\n{second}");
    assert!(second.contains("listening"), "{second}");
}

#[test]
fn cyberhub_token_needs_sub_when_the_secret_is_configured() {
    let output =
        cyberhub("sqlite::memory:", 0).env("JWT_SECRET", crate::helpers::JWT_SECRET).arg("token").output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--sub"));
}

#[test]
fn a_cluster_refuses_to_start_with_a_published_or_short_secret() {
    let cluster = |jwt: &str| {
        cyberhub("postgres://postgres@127.0.0.1:1/none", 0)
            .env("REDIS_URL", "redis://127.0.0.1:1")
            .env("JWT_SECRET", jwt)
            .env("BUS_SECRET", "0123456789abcdef0123456789abcdef")
            .arg("serve")
            .output()
            .unwrap()
    };
    for (secret, says) in [("change-me-to-32-random-bytes-in-hex", "example"), ("0123456789abcdef-short", "32 bytes")] {
        let output = cluster(secret);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "started with JWT_SECRET={secret}");
        assert!(stderr.contains("JWT_SECRET") && stderr.contains(says), "{stderr}");
    }
}

/// `cyberhub serve` with `REDIS_URL` and the given settings (secrets set, database unreachable),
/// run until it exits.
fn serve_with_redis(url: &str, settings: &[(&str, &std::ffi::OsStr)]) -> std::process::Output {
    let mut command = cyberhub("postgres://postgres@127.0.0.1:1/none", 0);
    command
        .env("REDIS_URL", url)
        .env("JWT_SECRET", "0123456789abcdef0123456789abcdef")
        .env("BUS_SECRET", "0123456789abcdef0123456789abcdef");
    for (name, value) in settings {
        command.env(name, value);
    }
    command.arg("serve").output().unwrap()
}

#[test]
fn a_bad_redis_url_stops_the_process_at_start_naming_the_variable() {
    for (url, says) in [
        ("http://:hunter2-password@127.0.0.1:1", "redis-cluster://"),
        ("redis-sentinel://:hunter2-password@127.0.0.1:26379", "sentinelServiceName"),
        ("redis-cluster://:hunter2-password@127.0.0.1:1?node=127.0.0.2", "host:port"),
    ] {
        let output = serve_with_redis(url, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "started with REDIS_URL={url}");
        assert!(stderr.contains("REDIS_URL") && stderr.contains(says), "{url}: {stderr}");
        assert!(!stderr.contains("hunter2"), "the password is not repeated: {stderr}");
    }
}

#[test]
fn a_bad_redis_tls_file_stops_the_process_at_start_naming_the_variable() {
    let dir = std::env::temp_dir().join(format!("cyberhub-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_a_cert = dir.join("not-a-cert.pem");
    std::fs::write(&not_a_cert, "hello\n").unwrap();
    let missing = dir.join("missing.pem");
    for (url, var, path, says) in [
        ("rediss://:hunter2-password@127.0.0.1:1", "REDIS_TLS_CA_FILE", &missing, "cannot read"),
        ("rediss-cluster://:hunter2-password@127.0.0.1:1", "REDIS_TLS_CA_FILE", &not_a_cert, "no PEM certificate"),
        ("redis://:hunter2-password@127.0.0.1:1", "REDIS_TLS_CA_FILE", &not_a_cert, "rediss://"),
        ("rediss://:hunter2-password@127.0.0.1:1", "REDIS_TLS_CERT_FILE", &not_a_cert, "REDIS_TLS_KEY_FILE"),
    ] {
        let output = serve_with_redis(url, &[(var, path.as_os_str())]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "started with {var}={} and REDIS_URL={url}", path.display());
        assert!(stderr.contains(var) && stderr.contains(says), "{var}: {stderr}");
        assert!(!stderr.contains("hunter2"), "the password is not repeated: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

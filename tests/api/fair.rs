use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::on_both_backends;
use cyberhub::fair;

fn three_items() -> Value {
    json!([
        { "name": "Common", "image": "", "rarity": "common", "kind": "money", "value": 0.1, "weight": 70 },
        { "name": "Rare", "image": "", "rarity": "rare", "kind": "money", "value": 1, "weight": 25 },
        { "name": "Legend", "image": "", "rarity": "legendary", "kind": "skin", "value": 50, "weight": 5 }
    ])
}

/// Recomputes an open from a revealed seed, as a player would.
fn replay(server_seed: &str, proof: &Value) -> Value {
    let seed = fair::ServerSeed::from_hex(server_seed).unwrap();
    let weights: Vec<u32> = proof["weights"].as_array().unwrap().iter().map(|w| w.as_u64().unwrap() as u32).collect();
    let roll = fair::roll(&seed, proof["clientSeed"].as_str().unwrap(), proof["nonce"].as_u64().unwrap());
    assert_eq!(roll.value, proof["roll"].as_f64().unwrap(), "the roll replays");
    let index = fair::pick(&weights, &roll).unwrap();
    proof["itemIds"][index].clone()
}

on_both_backends! {
    async fn every_open_is_verifiable_after_rotation(app) {
        let user = app.known_user().await;
        let token = Some(user.token.as_str());
        let before = app.get("/api/fair", token).await.expect(200).clone();
        assert_eq!(before["nonce"], 0);
        let commitment = before["serverSeedHash"].as_str().unwrap().to_string();
        assert_eq!(commitment.len(), 64);
        assert!(before["clientSeed"].as_str().is_some_and(|s| !s.is_empty()));

        let case = app.create_case(1.0, three_items()).await;
        app.fund(&user, 30.0).await;
        let mut opens = Vec::new();
        for _ in 0..30 {
            opens.push(app.post("/api/cases/open", token, json!({ "caseId": case["id"] })).await.expect(200).clone());
        }
        for (nonce, open) in opens.iter().enumerate() {
            assert_eq!(open["fair"]["serverSeedHash"], commitment);
            assert_eq!(open["fair"]["clientSeed"], before["clientSeed"]);
            assert_eq!(open["fair"]["nonce"], nonce);
            assert_eq!(open["fair"]["weights"], json!([70, 25, 5]));
        }
        assert_eq!(app.get("/api/fair", token).await.body["nonce"], 30);
        let inventory = app.get("/api/inventory", token).await.expect(200)["items"].clone();
        assert!(inventory.as_array().unwrap().iter().all(|entry| entry["fair"]["serverSeedHash"] == commitment));

        let rotated = app.post("/api/fair/rotate", token, json!({})).await.expect(200).clone();
        let revealed = rotated["previous"]["serverSeed"].as_str().unwrap().to_string();
        assert_eq!(hex::encode(Sha256::digest(hex::decode(&revealed).unwrap())), commitment, "the reveal matches the commitment");
        assert_eq!(rotated["previous"]["nonce"], 30);
        assert_eq!(rotated["current"]["nonce"], 0);
        assert_ne!(rotated["current"]["serverSeedHash"], commitment);
        assert_eq!(rotated["current"]["clientSeed"], before["clientSeed"], "rotate keeps the client seed");

        for open in &opens {
            assert_eq!(replay(&revealed, &open["fair"]), open["item"]["id"], "item for item");
        }

        let history = app.get("/api/fair/history", token).await.expect(200)["pairs"].clone();
        let pairs = history.as_array().unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0]["serverSeed"], json!(null), "the active seed stays secret");
        assert_eq!(pairs[1]["serverSeed"], revealed);
        assert_eq!(pairs[1]["serverSeedHash"], commitment);
        assert!(pairs[1]["revealedAt"].as_str().is_some());

        // The player's own script, run with Node, agrees with the server.
        let open = &opens[7];
        let weights = open["fair"]["weights"].as_array().unwrap().iter().map(|w| w.to_string()).collect::<Vec<_>>().join(",");
        let output = std::process::Command::new("node")
            .arg(repo().join("docs/fair-verify.js"))
            .args([revealed.as_str(), open["fair"]["clientSeed"].as_str().unwrap(), &open["fair"]["nonce"].to_string(), &weights, &commitment])
            .output()
            .expect("node runs docs/fair-verify.js");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let verdict: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(verdict["commitmentMatches"], true);
        assert_eq!(verdict["roll"], open["fair"]["roll"]);
        let index = verdict["index"].as_u64().unwrap() as usize;
        assert_eq!(open["fair"]["itemIds"][index], open["item"]["id"]);
    }

    async fn players_choose_their_client_seed(app) {
        let user = app.known_user().await;
        let token = Some(user.token.as_str());
        let set = app.put("/api/fair/client-seed", token, json!({ "clientSeed": "lucky friday 13" })).await;
        let set = set.expect(200);
        assert_eq!(set["current"]["clientSeed"], "lucky friday 13");
        assert_eq!(set["current"]["nonce"], 0);
        assert!(set["previous"]["serverSeed"].as_str().is_some());
        assert_eq!(app.get("/api/fair", token).await.body["clientSeed"], "lucky friday 13");
        for bad in [json!(""), json!("x".repeat(65)), json!("tab\there"), json!("é"), json!(5)] {
            let response = app.put("/api/fair/client-seed", token, json!({ "clientSeed": bad })).await;
            assert_eq!(response.status, 400, "{bad}: {}", response.body);
        }
        assert_eq!(app.get("/api/fair", token).await.body["clientSeed"], "lucky friday 13");
        app.get("/api/fair", None).await.expect_error(401, "unauthorized");
    }
}

/// Runs `cyberhub verify` with `args` after the seed, client seed, nonce and weights of an open.
fn cli_verify(server_seed: &str, client_seed: &str, nonce: u64, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cyberhub"))
        .args(["verify", "--server-seed", server_seed, "--client-seed", client_seed, "--nonce", &nonce.to_string()])
        .args(["--weights", "1,10,100,889"])
        .args(extra)
        .output()
        .expect("cyberhub verify runs")
}

on_both_backends! {
    async fn a_seed_change_activates_the_next_seed_committed_before_it(app) {
        let user = app.known_user().await;
        let token = Some(user.token.as_str());
        let first = app.get("/api/fair", token).await.expect(200).clone();
        let committed = first["nextServerSeedHash"].as_str().unwrap().to_string();
        assert_eq!(committed.len(), 64);
        assert_ne!(first["serverSeedHash"], first["nextServerSeedHash"]);
        assert_eq!(app.get("/api/fair", token).await.body["nextServerSeedHash"], committed, "reads do not move it");

        // The player picks a client seed after seeing the commitment: that seed is activated.
        let set = app.put("/api/fair/client-seed", token, json!({ "clientSeed": "picked after the commitment" })).await;
        let set = set.expect(200).clone();
        assert_eq!(set["current"]["serverSeedHash"], committed, "the activated seed is the pre-committed one");
        assert_eq!(set["current"]["clientSeed"], "picked after the commitment");
        assert_eq!(set["previous"]["serverSeedHash"], first["serverSeedHash"]);
        let second = app.get("/api/fair", token).await.expect(200).clone();
        assert_eq!(second["serverSeedHash"], committed);
        assert_eq!(second["nextServerSeedHash"], set["current"]["nextServerSeedHash"]);
        assert_ne!(second["nextServerSeedHash"], committed, "a fresh next seed is committed");

        // Rotation does the same with the next commitment.
        let rotated = app.post("/api/fair/rotate", token, json!({})).await.expect(200).clone();
        assert_eq!(rotated["current"]["serverSeedHash"], second["nextServerSeedHash"]);
        assert_eq!(rotated["current"]["clientSeed"], "picked after the commitment");
        let activated_by_change = rotated["previous"]["serverSeed"].as_str().unwrap().to_string();
        assert_eq!(hex::encode(Sha256::digest(hex::decode(&activated_by_change).unwrap())), committed);

        // Both verifiers check the seed against the hash published before the client seed.
        let ok = cli_verify(&activated_by_change, "picked after the commitment", 0, &["--next-server-seed-hash", &committed]);
        assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
        assert_eq!(serde_json::from_slice::<Value>(&ok.stdout).unwrap()["nextServerSeedHashMatches"], true);
        let other = second["nextServerSeedHash"].as_str().unwrap();
        let bad = cli_verify(&activated_by_change, "picked after the commitment", 0, &["--next-server-seed-hash", other]);
        assert_eq!(bad.status.code(), Some(1), "a seed that was not the published next one fails");
        let node = std::process::Command::new("node")
            .arg(repo().join("docs/fair-verify.js"))
            .args([activated_by_change.as_str(), "picked after the commitment", "0", "1,10,100,889", "", &committed])
            .output()
            .expect("node runs docs/fair-verify.js");
        assert!(node.status.success(), "{}", String::from_utf8_lossy(&node.stderr));
        let verdict: Value = serde_json::from_slice(&node.stdout).unwrap();
        assert_eq!((verdict["commitmentMatches"].clone(), verdict["nextServerSeedHashMatches"].clone()), (json!(null), json!(true)));

        let history = app.get("/api/fair/history", token).await.expect(200)["pairs"].clone();
        let hashes: Vec<&Value> = history.as_array().unwrap().iter().map(|p| &p["serverSeedHash"]).collect();
        assert_eq!(hashes, vec![&rotated["current"]["serverSeedHash"], &json!(committed), &first["serverSeedHash"]]);
        assert!(history.as_array().unwrap().iter().all(|p| p.get("nextServerSeed").is_none()), "no next seed leaks");
    }

    async fn concurrent_first_reads_and_rotations_agree_on_one_chain(app) {
        let user = app.known_user().await;
        let token = Some(user.token.as_str());
        let reads = futures::future::join_all((0..8).map(|_| app.get("/api/fair", token))).await;
        let next: Vec<&Value> = reads.iter().map(|r| &r.expect(200)["nextServerSeedHash"]).collect();
        assert!(next.iter().all(|n| *n == next[0]), "{next:?}");
        let rotations = futures::future::join_all((0..8).map(|_| app.post("/api/fair/rotate", token, json!({})))).await;
        let mut previous: Vec<String> = Vec::new();
        let mut current: Vec<String> = Vec::new();
        for r in &rotations {
            let body = r.expect(200);
            previous.push(body["previous"]["serverSeedHash"].as_str().unwrap().into());
            current.push(body["current"]["serverSeedHash"].as_str().unwrap().into());
        }
        // Eight rotations form one chain: each activated seed is retired by exactly one later one.
        let first_next = next[0].as_str().unwrap().to_string();
        assert!(current.contains(&first_next), "the first rotation activated the committed seed");
        previous.sort();
        current.sort();
        let retired_activated = previous.iter().filter(|p| current.contains(p)).count();
        assert_eq!(retired_activated, 7, "previous {previous:?}, current {current:?}");
    }
}

/// A pair stored before next seeds existed gets one on first read, and the next change activates it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairs_from_before_next_seeds_get_one_on_first_read() {
    use sqlx::Connection;
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Postgres).await;
    let user = app.known_user().await;
    let token = Some(user.token.as_str());
    let before = app.get("/api/fair", token).await.expect(200).clone();
    let mut db = sqlx::PgConnection::connect(&app.postgres_url().unwrap()).await.unwrap();
    let cleared =
        sqlx::query("UPDATE fair_seeds SET next_server_seed = NULL, next_server_seed_hash = NULL WHERE user_id = $1")
            .bind(user.id)
            .execute(&mut db)
            .await
            .unwrap();
    assert_eq!(cleared.rows_affected(), 1);
    let read = app.get("/api/fair", token).await.expect(200).clone();
    assert_eq!(read["serverSeedHash"], before["serverSeedHash"], "the active pair is kept");
    let committed = read["nextServerSeedHash"].as_str().unwrap().to_string();
    assert_ne!(committed, before["nextServerSeedHash"].as_str().unwrap());
    let set = app.put("/api/fair/client-seed", token, json!({ "clientSeed": "legacy" })).await.expect(200).clone();
    assert_eq!(set["current"]["serverSeedHash"], committed);
    app.cleanup().await;
}

/// `cyberhub verify` recomputes a roll offline; the known-answer vector of docs/provably-fair.md.
#[test]
fn the_verify_command_reproduces_the_documented_vector() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cyberhub"))
        .args(["verify", "--server-seed", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"])
        .args(["--client-seed", "cyberhub", "--nonce", "42", "--weights", "1,10,100,889"])
        .args(["--commitment", "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"])
        .output()
        .expect("cyberhub verify runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let verdict: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(verdict["hmac"], "297c7bf0f9e2fec390d9e8627a018808f3b7d9ed3df8556a2fb1be486da00ad5");
    assert_eq!(verdict["roll"], 0.16205572732168227);
    assert_eq!(verdict["index"], 3);
    assert_eq!(verdict["commitmentMatches"], true);
    let wrong = std::process::Command::new(env!("CARGO_BIN_EXE_cyberhub"))
        .args(["verify", "--server-seed", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"])
        .args(["--client-seed", "cyberhub", "--nonce", "42", "--weights", "1,10,100,889"])
        .args(["--commitment", &"0".repeat(64)])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(1), "a commitment that does not match fails");
}

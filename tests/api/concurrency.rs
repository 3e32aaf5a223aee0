//! Races that must never cost or create money.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_on, Backend};
use crate::on_both_backends;

on_both_backends! {
    async fn fifty_concurrent_opens_with_money_for_twenty(app) {
        let case = app.simple_case(1.0, 0.5).await;
        let user = app.known_user().await;
        app.fund(&user, 20.0).await;
        let body = json!({ "caseId": case["id"] });
        let responses = join_all((0..50).map(|_| app.post("/api/cases/open", Some(&user.token), body.clone()))).await;
        let ok = responses.iter().filter(|r| r.status == 200).count();
        let refused = responses.iter().filter(|r| r.status == 422 && r.body["code"] == "insufficient_balance").count();
        assert_eq!((ok, refused), (20, 30), "{:?}", responses.iter().map(|r| r.status).collect::<Vec<_>>());
        assert_eq!(app.balance(&user).await, (0.0, 21));

        let mut nonces: Vec<u64> = responses.iter().filter(|r| r.status == 200).map(|r| r.body["fair"]["nonce"].as_u64().unwrap()).collect();
        nonces.sort_unstable();
        assert_eq!(nonces, (0..20).collect::<Vec<u64>>(), "each open takes its own consecutive nonce");

        let ledger = app.get(&format!("/api/admin/users/{}/transactions?limit=100", user.id), Some(&app.admin.token)).await;
        let rows = ledger.expect(200)["transactions"].as_array().unwrap().clone();
        assert_eq!(rows.len(), 21);
        let cents: i64 = rows.iter().map(|r| (r["amount"].as_f64().unwrap() * 100.0).round() as i64).sum();
        assert_eq!(cents, 0, "the ledger sums to the balance");
        let versions: Vec<i64> = rows.iter().map(|r| r["version"].as_i64().unwrap()).collect();
        assert_eq!(versions, (1..=21).rev().collect::<Vec<i64>>());
        assert_eq!(app.get("/api/inventory", Some(&user.token)).await.body["items"].as_array().unwrap().len(), 20);
    }

    async fn the_same_payment_ten_times_at_once_credits_once(app) {
        let user = app.known_user().await;
        let body = json!({ "paymentId": "race-1", "userId": user.id, "amount": 12.34, "status": "success" });
        let responses = join_all((0..10).map(|_| app.payment(&body))).await;
        assert!(responses.iter().all(|r| r.status == 200), "{:?}", responses.iter().map(|r| &r.body).collect::<Vec<_>>());
        let credited = responses.iter().filter(|r| r.body["duplicate"] == false).count();
        let duplicates = responses.iter().filter(|r| r.body["duplicate"] == true).count();
        assert_eq!((credited, duplicates), (1, 9));
        assert_eq!(app.balance(&user).await, (12.34, 1));
    }

    async fn two_claims_of_one_item_at_once_credit_once(app) {
        let case = app.simple_case(1.0, 5.0).await;
        let user = app.known_user().await;
        app.fund(&user, 1.0).await;
        let opened = app.post("/api/cases/open", Some(&user.token), json!({ "caseId": case["id"] })).await.expect(200).clone();
        let body = json!({ "inventoryItemId": opened["inventoryItemId"] });
        let responses = join_all((0..2).map(|_| app.post("/api/inventory/claim", Some(&user.token), body.clone()))).await;
        let mut statuses: Vec<u16> = responses.iter().map(|r| r.status.as_u16()).collect();
        statuses.sort_unstable();
        assert_eq!(statuses, vec![200, 409]);
        assert_eq!(app.balance(&user).await, (5.0, 3));
    }

    async fn concurrent_admin_subtracts_never_overdraw(app) {
        let user = app.known_user().await;
        app.fund(&user, 3.0).await;
        let body = json!({ "userId": user.id, "amount": 1 });
        let responses = join_all((0..8).map(|_| app.admin_post("/api/admin/balance/subtract", body.clone()))).await;
        assert_eq!(responses.iter().filter(|r| r.status == 200).count(), 3);
        assert_eq!(app.balance(&user).await, (0.0, 4));
    }

    async fn opens_follow_price_item_seed_and_delete_changes(app) {
        // PostgreSQL's open rolls with the case and seed pair it cached: every kind of change must
        // reach the next open on the same replica.
        let user = app.known_user().await;
        let token = Some(user.token.as_str());
        let admin = Some(app.admin.token.as_str());
        app.fund(&user, 100.0).await;
        let case = app.simple_case(1.0, 0.5).await;
        let id = case["id"].as_str().unwrap().to_string();
        let open = || async { app.post("/api/cases/open", token, json!({ "caseId": id })).await };

        assert_eq!(open().await.expect(200)["balance"], 99.0);
        app.put(&format!("/api/admin/cases/{id}/price"), admin, json!({ "price": 2.5 })).await.expect(200);
        assert_eq!(open().await.expect(200)["balance"], 96.5, "the new price is charged");

        let items = json!({ "items": [{ "name": "Gloves", "image": "", "rarity": "legendary", "kind": "skin", "value": 0, "weight": 7 }] });
        let patched = app.request(Method::PATCH, &format!("/api/admin/cases/{id}/items"), admin, Some(items)).await;
        let gloves = patched.expect(200)["case"]["items"][0]["id"].clone();
        let opened = open().await.expect(200).clone();
        assert_eq!(opened["item"]["id"], gloves, "the new items are rolled");
        assert_eq!(opened["fair"]["itemIds"], json!([gloves]));
        assert_eq!(opened["fair"]["nonce"], 2);

        let rotated = app.post("/api/fair/rotate", token, json!({})).await.expect(200).clone();
        let opened = open().await.expect(200).clone();
        assert_eq!(opened["fair"]["serverSeedHash"], rotated["current"]["serverSeedHash"], "the new pair is used");
        assert_eq!(opened["fair"]["nonce"], 0);

        app.put("/api/fair/client-seed", token, json!({ "clientSeed": "mine" })).await.expect(200);
        let opened = open().await.expect(200).clone();
        assert_eq!((opened["fair"]["clientSeed"].clone(), opened["fair"]["nonce"].clone()), (json!("mine"), json!(0)));
        assert_eq!(app.get("/api/fair", token).await.body["nonce"], 1);

        app.request(Method::DELETE, &format!("/api/admin/cases/{id}"), admin, None).await.expect(200);
        open().await.expect_error(404, "not_found");
        assert_eq!(app.balance(&user).await, (89.0, 6), "1 + 2.5 × 4, and the refused open charged nothing");
    }

    async fn opens_racing_rotations_all_succeed(app) {
        let user = app.known_user().await;
        let token = Some(user.token.as_str());
        app.fund(&user, 30.0).await;
        let case = app.simple_case(1.0, 0.5).await;
        let body = json!({ "caseId": case["id"] });
        let opens = join_all((0..30).map(|_| app.post("/api/cases/open", token, body.clone())));
        let rotations = join_all((0..5).map(|_| app.post("/api/fair/rotate", token, json!({}))));
        let (opens, rotations) = futures::join!(opens, rotations);
        assert!(rotations.iter().all(|r| r.status == 200), "{:?}", rotations.iter().map(|r| &r.body).collect::<Vec<_>>());
        assert!(opens.iter().all(|r| r.status == 200), "{:?}", opens.iter().map(|r| &r.body).collect::<Vec<_>>());
        // Per pair, the nonces used are exactly 0..n: none shared, none skipped.
        let mut by_pair: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
        for open in &opens {
            let fair = &open.body["fair"];
            by_pair.entry(fair["serverSeedHash"].as_str().unwrap().into()).or_default().push(fair["nonce"].as_u64().unwrap());
        }
        for nonces in by_pair.values_mut() {
            nonces.sort_unstable();
            assert_eq!(*nonces, (0..nonces.len() as u64).collect::<Vec<_>>());
        }
        assert_eq!(app.balance(&user).await, (0.0, 31));
    }
}

/// Two replicas on one PostgreSQL database race for one player's nonces and balance: each
/// replica's cached seed pair goes stale whenever the other one opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_racing_on_two_replicas_stay_exact() {
    let first = spawn_app(Backend::Postgres).await;
    let url = first.postgres_url().expect("a PostgreSQL app has a database URL");
    let second = spawn_app_on(&url, &[]).await;
    let case = first.simple_case(1.0, 0.5).await;
    let user = first.known_user().await;
    first.fund(&user, 40.0).await;
    let body = json!({ "caseId": case["id"] });
    let replicas = [&first, &second];
    let responses =
        join_all((0..100).map(|i| replicas[i % 2].post("/api/cases/open", Some(&user.token), body.clone()))).await;
    let ok: Vec<&Value> = responses.iter().filter(|r| r.status == 200).map(|r| &r.body).collect();
    let refused = responses.iter().filter(|r| r.status == 422 && r.body["code"] == "insufficient_balance").count();
    assert_eq!((ok.len(), refused), (40, 60), "{:?}", responses.iter().map(|r| r.status).collect::<Vec<_>>());
    let mut nonces: Vec<u64> = ok.iter().map(|body| body["fair"]["nonce"].as_u64().unwrap()).collect();
    nonces.sort_unstable();
    assert_eq!(nonces, (0..40).collect::<Vec<u64>>(), "no nonce is shared or skipped");
    let mut versions: Vec<i64> = ok.iter().map(|body| body["balanceVersion"].as_i64().unwrap()).collect();
    versions.sort_unstable();
    assert_eq!(versions, (2..=41).collect::<Vec<i64>>());
    assert_eq!(second.balance(&user).await, (0.0, 41));
    let inventory = second.get("/api/inventory", Some(&user.token)).await.expect(200)["items"].clone();
    assert_eq!(inventory.as_array().unwrap().len(), 40);

    // Both keep opening correctly after the race, alternating one at a time.
    first.fund(&user, 4.0).await;
    for (i, replica) in replicas.iter().cycle().take(4).enumerate() {
        let opened = replica.post("/api/cases/open", Some(&user.token), body.clone()).await.expect(200).clone();
        assert_eq!(opened["fair"]["nonce"], 40 + i as u64);
    }
    // Each of those four found its replica's cached pair stale (the other one had opened since),
    // and the replicas count it for operators.
    let mut pair_changed = 0;
    for replica in replicas {
        let metrics = replica.http.get(replica.url("/metrics")).send().await.unwrap().text().await.unwrap();
        let line = metrics.lines().find(|l| l.starts_with("cyberhub_case_open_retries_total{reason=\"pair_changed\"}"));
        pair_changed +=
            line.and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse::<u64>().ok()).expect("pair_changed series");
    }
    assert!(pair_changed >= 3, "stale pairs counted: {pair_changed}");
    second.stop().await;
    first.cleanup().await;
}

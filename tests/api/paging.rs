//! Every list a client can ask for is paged: `limit` (1..=100, default 50), an opaque `cursor`,
//! newest first, `nextCursor` null on the last page.

use serde_json::{json, Value};

use crate::on_both_backends;

/// Walks a list `limit` at a time from the newest page, returning each page's elements.
async fn walk(app: &crate::helpers::TestApp, path: &str, token: Option<&str>, key: &str) -> Vec<Vec<Value>> {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut pages = Vec::new();
    let mut next = app.get(path, token).await;
    loop {
        pages.push(next.expect(200)[key].as_array().unwrap().clone());
        let Some(cursor) = next.body["nextCursor"].as_str().map(str::to_string) else { return pages };
        next = app.get(&format!("{path}{separator}cursor={cursor}"), token).await;
    }
}

fn ids(page: &[Value], field: &str) -> Vec<String> {
    page.iter().map(|v| v[field].as_str().unwrap().to_string()).collect()
}

/// limit=101 and 0 are 400 `invalid_query`; a cursor the API never made is 400 `invalid_cursor`.
async fn refuses_bad_paging(app: &crate::helpers::TestApp, path: &str, token: Option<&str>) {
    let separator = if path.contains('?') { '&' } else { '?' };
    for limit in ["101", "0", "-1", "x"] {
        app.get(&format!("{path}{separator}limit={limit}"), token).await.expect_error(400, "invalid_query");
    }
    for cursor in ["garbage", "7a7a", "%00", "746869733a6e6f74"] {
        app.get(&format!("{path}{separator}cursor={cursor}"), token).await.expect_error(400, "invalid_cursor");
    }
}

on_both_backends! {
    async fn the_inventory_pages_newest_first_and_stays_stable_under_inserts(app) {
        let case = app.simple_case(0.01, 0.0).await;
        let user = app.known_user().await;
        let token = Some(user.token.as_str());
        app.fund(&user, 1.5).await;
        let mut won = Vec::new();
        for _ in 0..140 {
            let opened = app.post("/api/cases/open", token, json!({ "caseId": case["id"] })).await;
            won.push(opened.expect(200)["inventoryItemId"].as_str().unwrap().to_string());
        }
        won.reverse();

        let pages = walk(app, "/api/inventory", token, "items").await;
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![50, 50, 40], "default limit 50");
        assert_eq!(pages.concat().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect::<Vec<_>>(), won, "all 140 once, newest first");
        let big = walk(app, "/api/inventory?limit=100", token, "items").await;
        assert_eq!(big.iter().map(Vec::len).collect::<Vec<_>>(), vec![100, 40]);
        let exact = walk(app, "/api/inventory?limit=70", token, "items").await;
        assert_eq!(exact.iter().map(Vec::len).collect::<Vec<_>>(), vec![70, 70], "no empty page after an exact fit");

        // Items won between two page reads neither shift the next page nor repeat.
        let first = app.get("/api/inventory?limit=10", token).await.expect(200).clone();
        assert_eq!(ids(first["items"].as_array().unwrap(), "id"), won[..10]);
        for _ in 0..3 {
            app.post("/api/cases/open", token, json!({ "caseId": case["id"] })).await.expect(200);
        }
        let cursor = first["nextCursor"].as_str().unwrap();
        let second = app.get(&format!("/api/inventory?limit=10&cursor={cursor}"), token).await;
        assert_eq!(ids(second.expect(200)["items"].as_array().unwrap(), "id"), won[10..20]);

        // The status filter pages the same way.
        for id in &won[..3] {
            app.post("/api/inventory/claim", token, json!({ "inventoryItemId": id })).await.expect(200);
        }
        let claimed = walk(app, "/api/inventory?status=claimed&limit=2", token, "items").await;
        assert_eq!(claimed.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(ids(&claimed.concat(), "id"), won[..3]);
        assert_eq!(app.all_pages("/api/inventory?status=owned", token, "items").await.len(), 140);
        app.get("/api/inventory?status=lost", token).await.expect_error(400, "invalid_status");
        refuses_bad_paging(app, "/api/inventory", token).await;
        refuses_bad_paging(app, "/api/inventory?status=owned", token).await;
    }

    async fn the_fair_history_pages_newest_first(app) {
        let user = app.known_user().await;
        let token = Some(user.token.as_str());
        let mut hashes = vec![app.get("/api/fair", token).await.expect(200)["serverSeedHash"].as_str().unwrap().to_string()];
        for _ in 0..139 {
            let rotated = app.post("/api/fair/rotate", token, json!({})).await;
            hashes.push(rotated.expect(200)["current"]["serverSeedHash"].as_str().unwrap().to_string());
        }
        hashes.reverse();
        let pages = walk(app, "/api/fair/history", token, "pairs").await;
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![50, 50, 40]);
        assert_eq!(ids(&pages.concat(), "serverSeedHash"), hashes, "all 140 once, newest first");
        assert_eq!(pages[0][0]["serverSeed"], json!(null), "the active pair leads the first page");
        assert!(pages.concat()[1..].iter().all(|p| p["serverSeed"].is_string()));
        refuses_bad_paging(app, "/api/fair/history", token).await;
    }

    async fn the_ledger_pages_with_the_same_rules(app) {
        let user = app.known_user().await;
        for _ in 0..105 {
            app.admin_post("/api/admin/balance/add", json!({ "userId": user.id, "amount": 1 })).await.expect(200);
        }
        let path = format!("/api/admin/users/{}/transactions", user.id);
        let token = Some(app.admin.token.as_str());
        let pages = walk(app, &path, token, "transactions").await;
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![50, 50, 5]);
        let versions: Vec<i64> = pages.concat().iter().map(|t| t["version"].as_i64().unwrap()).collect();
        assert_eq!(versions, (1..=105).rev().collect::<Vec<i64>>());
        refuses_bad_paging(app, &path, token).await;
    }
}

use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends! {
    async fn admin_add_and_subtract_write_the_ledger(app) {
        let user = app.known_user().await;
        let add = app.admin_post("/api/admin/balance/add", json!({ "userId": user.id, "amount": 10.1, "reason": "tournament prize" })).await;
        assert_eq!(add.expect(200)["balance"], 10.1);
        assert_eq!(add.body["balanceVersion"], 1);
        let sub = app.admin_post("/api/admin/balance/subtract", json!({ "userId": user.id, "amount": 0.2 })).await;
        assert_eq!(sub.expect(200)["balance"], 9.9);
        assert_eq!(sub.body["balanceVersion"], 2);
        app.admin_post("/api/admin/balance/subtract", json!({ "userId": user.id, "amount": 9.91 })).await.expect_error(422, "insufficient_balance");
        assert_eq!(app.balance(&user).await, (9.9, 2));

        let ledger = app.get(&format!("/api/admin/users/{}/transactions", user.id), Some(&app.admin.token)).await;
        let rows = ledger.expect(200)["transactions"].as_array().unwrap().clone();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["kind"], "admin_subtract");
        assert_eq!(rows[0]["amount"], -0.2);
        assert_eq!(rows[0]["balanceAfter"], 9.9);
        assert_eq!(rows[0]["version"], 2);
        assert_eq!(rows[1]["kind"], "admin_add");
        assert_eq!(rows[1]["reason"], "tournament prize");
        assert_eq!(ledger.body["nextCursor"], json!(null));
    }

    async fn unknown_users_are_404_for_admin_changes(app) {
        let stranger = uuid::Uuid::new_v4();
        app.admin_post("/api/admin/balance/add", json!({ "userId": stranger, "amount": 1 })).await.expect_error(404, "not_found");
        app.admin_post("/api/admin/balance/subtract", json!({ "userId": stranger, "amount": 1 })).await.expect_error(404, "not_found");
        app.get(&format!("/api/admin/users/{stranger}/transactions"), Some(&app.admin.token)).await.expect_error(404, "not_found");
        let user = app.known_user().await;
        app.post("/api/admin/balance/add", Some(&user.token), json!({ "userId": user.id, "amount": 1 })).await.expect_error(403, "forbidden");
    }

    async fn transactions_paginate_newest_first(app) {
        let user = app.known_user().await;
        for i in 1..=5 {
            app.admin_post("/api/admin/balance/add", json!({ "userId": user.id, "amount": i })).await.expect(200);
        }
        let path = format!("/api/admin/users/{}/transactions?limit=2", user.id);
        let token = Some(app.admin.token.as_str());
        let page1 = app.get(&path, token).await;
        let versions = |r: &Response| r.body["transactions"].as_array().unwrap().iter().map(|t| t["version"].as_i64().unwrap()).collect::<Vec<_>>();
        assert_eq!(versions(&page1), vec![5, 4]);
        let cursor = page1.body["nextCursor"].as_str().unwrap().to_string();
        let page2 = app.get(&format!("{path}&cursor={cursor}"), token).await;
        assert_eq!(versions(&page2), vec![3, 2]);
        let cursor = page2.body["nextCursor"].as_str().unwrap().to_string();
        let page3 = app.get(&format!("{path}&cursor={cursor}"), token).await;
        assert_eq!(versions(&page3), vec![1]);
        assert_eq!(page3.body["nextCursor"], json!(null));
        app.get(&format!("{path}&cursor=abc"), token).await.expect_error(400, "invalid_cursor");
        app.get(&format!("/api/admin/users/{}/transactions?limit=0", user.id), token).await.expect_error(400, "invalid_query");
        app.get(&format!("/api/admin/users/{}/transactions?limit=x", user.id), token).await.expect_error(400, "invalid_query");
    }

    async fn payments_credit_once_and_create_unknown_users(app) {
        let user_id = uuid::Uuid::new_v4();
        let body = json!({ "paymentId": "pay_1", "userId": user_id, "amount": 25.5, "status": "success" });
        let first = app.payment(&body).await;
        let first = first.expect(200);
        assert_eq!(first["duplicate"], false);
        assert_eq!(first["balance"], 25.5);
        assert_eq!(first["balanceVersion"], 1);
        let again = app.payment(&body).await;
        assert_eq!(again.expect(200)["duplicate"], true);
        let ledger = app.get(&format!("/api/admin/users/{user_id}/transactions"), Some(&app.admin.token)).await;
        let rows = ledger.expect(200)["transactions"].as_array().unwrap().clone();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["kind"], "payment");
        assert_eq!(rows[0]["reference"], "pay_1");
    }

    async fn pending_payments_are_recorded_not_credited(app) {
        let user = app.known_user().await;
        let pending = json!({ "paymentId": "pay_2", "userId": user.id, "amount": 7, "status": "pending" });
        let response = app.payment(&pending).await;
        assert_eq!(response.expect(200)["credited"], false);
        let failed = json!({ "paymentId": "pay_2", "userId": user.id, "amount": 7, "status": "failed" });
        app.payment(&failed).await.expect(200);
        assert_eq!(app.balance(&user).await, (0.0, 0));
        let success = json!({ "paymentId": "pay_2", "userId": user.id, "amount": 7, "status": "success" });
        assert_eq!(app.payment(&success).await.expect(200)["duplicate"], false);
        assert_eq!(app.balance(&user).await, (7.0, 1));
    }

    async fn bad_signatures_change_nothing(app) {
        let user = app.known_user().await;
        let raw = serde_json::to_vec(&json!({ "paymentId": "pay_3", "userId": user.id, "amount": 5, "status": "success" })).unwrap();
        let wrong = sign(b"not-the-secret", &raw);
        app.signed_raw("/api/payment/callback", raw.clone(), &wrong).await.expect_error(401, "unauthorized");
        app.signed_raw("/api/payment/callback", raw.clone(), "").await.expect_error(401, "unauthorized");
        let mut tampered = raw.clone();
        let good = sign(WEBHOOK_SECRET.as_bytes(), &raw);
        tampered.extend_from_slice(b" ");
        app.signed_raw("/api/payment/callback", tampered, &good).await.expect_error(401, "unauthorized");
        assert_eq!(app.balance(&user).await, (0.0, 0));
        // A correct signature over a body with bad values is a 400, and still changes nothing.
        let bad = serde_json::to_vec(&json!({ "paymentId": "pay_3", "userId": user.id, "amount": "5", "status": "success" })).unwrap();
        let signature = sign(WEBHOOK_SECRET.as_bytes(), &bad);
        app.signed_raw("/api/payment/callback", bad, &signature).await.expect_error(400, "invalid_body");
        let broken = b"{\"paymentId\":".to_vec();
        let signature = sign(WEBHOOK_SECRET.as_bytes(), &broken);
        app.signed_raw("/api/payment/callback", broken, &signature).await.expect_error(400, "invalid_json");
        assert_eq!(app.balance(&user).await, (0.0, 0));
    }
}

#[tokio::test]
async fn webhook_without_a_secret_answers_503() {
    let app = spawn_app_with(Backend::Sqlite, &[("PAYMENT_WEBHOOK_SECRET", "")]).await;
    let body = json!({ "paymentId": "p", "userId": uuid::Uuid::new_v4(), "amount": 1, "status": "success" });
    app.payment(&body).await.expect_error(503, "unavailable");
    app.cleanup().await;
}

on_both_backends! {
    async fn accounts_load_many_users_in_one_query(app) {
        let (a, b) = (app.known_user().await, app.known_user().await);
        app.fund(&a, 1.25).await;
        app.fund(&b, 2.0).await;
        app.fund(&b, 3.0).await;
        let stranger = uuid::Uuid::new_v4();
        let positions = app.state.store.positions(&[a.id, stranger, b.id]).await.unwrap();
        let mut accounts: Vec<_> = positions.into_iter().map(|(id, now)| (id, now.account)).collect();
        accounts.sort_by_key(|(_, account)| account.version);
        let found: Vec<(uuid::Uuid, i64, i64)> =
            accounts.iter().map(|(id, account)| (*id, account.balance.as_i64(), account.version)).collect();
        assert_eq!(found, vec![(a.id, 125, 1), (b.id, 500, 2)], "the stranger is left out");
        assert!(app.state.store.positions(&[]).await.unwrap().is_empty());
        let many: Vec<uuid::Uuid> =
            (0..cyberhub::store::MAX_ACCOUNTS_PER_QUERY - 1).map(|_| uuid::Uuid::new_v4()).chain([a.id]).collect();
        assert_eq!(app.state.store.positions(&many).await.unwrap().len(), 1, "a full chunk binds every id");
    }
}

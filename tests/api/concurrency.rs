//! Races that must never cost or create money.

use futures::future::join_all;
use serde_json::json;

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

        let ledger = app.get(&format!("/api/admin/users/{}/transactions?limit=200", user.id), Some(&app.admin.token)).await;
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
}

use serde_json::json;

use crate::on_both_backends;

on_both_backends! {
    async fn opening_debits_and_fills_the_inventory(app) {
        let case = app.simple_case(1.5, 2.25).await;
        let user = app.known_user().await;
        app.fund(&user, 5.0).await;
        let case_id = case["id"].as_str().unwrap();
        let opened = app.post("/api/cases/open", Some(&user.token), json!({ "caseId": case_id })).await;
        let opened = opened.expect(200).clone();
        assert_eq!(opened["balance"], 3.5);
        assert_eq!(opened["balanceVersion"], 2);
        assert_eq!(opened["item"]["name"], "Coins");
        assert_eq!(opened["item"]["id"], case["items"][0]["id"]);
        let inventory_id = opened["inventoryItemId"].as_str().unwrap().to_string();

        let inventory = app.get("/api/inventory", Some(&user.token)).await;
        let items = inventory.expect(200)["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["id"], inventory_id);
        assert_eq!(items[0]["caseId"], case_id);
        assert_eq!(items[0]["status"], "owned");
        assert_eq!(items[0]["item"]["value"], 2.25);
        assert!(items[0]["wonAt"].as_str().is_some());

        let claimed = app.post("/api/inventory/claim", Some(&user.token), json!({ "inventoryItemId": inventory_id })).await;
        let claimed = claimed.expect(200);
        assert_eq!(claimed["balance"], 5.75);
        assert_eq!(claimed["balanceVersion"], 3);
        assert_eq!(claimed["credited"], 2.25);
        let again = app.post("/api/inventory/claim", Some(&user.token), json!({ "inventoryItemId": inventory_id })).await;
        again.expect_error(409, "not_owned");
        assert_eq!(app.balance(&user).await, (5.75, 3));

        let ledger = app.get(&format!("/api/admin/users/{}/transactions", user.id), Some(&app.admin.token)).await;
        let kinds: Vec<_> = ledger.expect(200)["transactions"].as_array().unwrap().iter().map(|t| t["kind"].clone()).collect();
        assert_eq!(kinds, vec![json!("claim"), json!("case_open"), json!("admin_add")]);
    }

    async fn opening_without_enough_balance_changes_nothing(app) {
        let case = app.simple_case(2.0, 1.0).await;
        let user = app.known_user().await;
        app.fund(&user, 1.99).await;
        let response = app.post("/api/cases/open", Some(&user.token), json!({ "caseId": case["id"] })).await;
        response.expect_error(422, "insufficient_balance");
        assert_eq!(app.balance(&user).await, (1.99, 1));
        assert_eq!(app.get("/api/inventory", Some(&user.token)).await.body["items"], json!([]));
    }

    async fn opening_unknown_or_deleted_cases(app) {
        let user = app.known_user().await;
        app.fund(&user, 10.0).await;
        let open = |case_id: serde_json::Value| app.post("/api/cases/open", Some(&user.token), json!({ "caseId": case_id }));
        open(json!(uuid::Uuid::new_v4())).await.expect_error(404, "not_found");
        open(json!("nope")).await.expect_error(400, "invalid_id");
        let case = app.simple_case(1.0, 1.0).await;
        app.request(reqwest::Method::DELETE, &format!("/api/admin/cases/{}", case["id"].as_str().unwrap()), Some(&app.admin.token), None).await.expect(200);
        open(case["id"].clone()).await.expect_error(404, "not_found");
        app.post("/api/cases/open", None, json!({ "caseId": case["id"] })).await.expect_error(401, "unauthorized");
        assert_eq!(app.balance(&user).await, (10.0, 1));
    }

    async fn inventories_keep_items_of_edited_and_deleted_cases(app) {
        let case = app.simple_case(1.0, 3.0).await;
        let user = app.known_user().await;
        app.fund(&user, 1.0).await;
        let opened = app.post("/api/cases/open", Some(&user.token), json!({ "caseId": case["id"] })).await.expect(200).clone();
        let id = case["id"].as_str().unwrap();
        let items = json!({ "items": [{ "name": "New", "image": "", "rarity": "r", "kind": "skin", "value": 1, "weight": 1 }] });
        app.request(reqwest::Method::PATCH, &format!("/api/admin/cases/{id}/items"), Some(&app.admin.token), Some(items)).await.expect(200);
        app.request(reqwest::Method::DELETE, &format!("/api/admin/cases/{id}"), Some(&app.admin.token), None).await.expect(200);
        let inventory = app.get("/api/inventory", Some(&user.token)).await;
        assert_eq!(inventory.body["items"][0]["item"]["name"], "Coins");
        let claimed = app.post("/api/inventory/claim", Some(&user.token), json!({ "inventoryItemId": opened["inventoryItemId"] })).await;
        assert_eq!(claimed.expect(200)["balance"], 3.0);
    }

    async fn claims_of_other_players_items_are_404(app) {
        let case = app.simple_case(1.0, 1.0).await;
        let (owner, thief) = (app.known_user().await, app.known_user().await);
        app.fund(&owner, 1.0).await;
        let opened = app.post("/api/cases/open", Some(&owner.token), json!({ "caseId": case["id"] })).await.expect(200).clone();
        let body = json!({ "inventoryItemId": opened["inventoryItemId"] });
        app.post("/api/inventory/claim", Some(&thief.token), body).await.expect_error(404, "not_found");
        let body = json!({ "inventoryItemId": uuid::Uuid::new_v4() });
        app.post("/api/inventory/claim", Some(&thief.token), body).await.expect_error(404, "not_found");
        app.post("/api/inventory/claim", Some(&thief.token), json!({ "inventoryItemId": 7 })).await.expect_error(400, "invalid_body");
        assert_eq!(app.balance(&thief).await, (0.0, 0));
    }

    async fn worthless_items_claim_without_a_ledger_row(app) {
        let case = app.create_case(1.0, json!([{ "name": "Sticker", "image": "", "rarity": "common", "kind": "skin", "value": 0, "weight": 1 }])).await;
        let user = app.known_user().await;
        app.fund(&user, 1.0).await;
        let opened = app.post("/api/cases/open", Some(&user.token), json!({ "caseId": case["id"] })).await.expect(200).clone();
        let claimed = app.post("/api/inventory/claim", Some(&user.token), json!({ "inventoryItemId": opened["inventoryItemId"] })).await;
        let claimed = claimed.expect(200);
        assert_eq!((claimed["balance"].clone(), claimed["balanceVersion"].clone(), claimed["credited"].clone()), (json!(0.0), json!(2), json!(0.0)));
    }

    async fn admins_move_items_through_the_withdrawal_states(app) {
        let case = app.simple_case(1.0, 1.0).await;
        let user = app.known_user().await;
        app.fund(&user, 3.0).await;
        let socket = app.socket(Some(&user.token)).await;
        let opened = app.post("/api/cases/open", Some(&user.token), json!({ "caseId": case["id"] })).await.expect(200).clone();
        socket.expect(&format!("inventory:updated:{}", user.id)).await;
        let path = format!("/api/inventory/{}/status", opened["inventoryItemId"].as_str().unwrap());
        let admin = Some(app.admin.token.as_str());
        let set = |status: &'static str| app.put(&path, admin, json!({ "status": status }));

        set("delivered").await.expect_error(409, "invalid_transition");
        set("claimed").await.expect_error(409, "invalid_transition");
        set("lost").await.expect_error(400, "invalid_status");
        assert_eq!(set("withdraw_requested").await.expect(200)["item"]["status"], "withdraw_requested");
        socket.expect(&format!("inventory:updated:{}", user.id)).await;
        let claim = app.post("/api/inventory/claim", Some(&user.token), json!({ "inventoryItemId": opened["inventoryItemId"] })).await;
        claim.expect_error(409, "not_owned");
        assert_eq!(set("owned").await.expect(200)["item"]["status"], "owned");
        assert_eq!(set("withdraw_requested").await.expect(200)["item"]["status"], "withdraw_requested");
        assert_eq!(set("delivered").await.expect(200)["item"]["status"], "delivered");
        set("owned").await.expect_error(409, "invalid_transition");
        set("withdraw_requested").await.expect_error(409, "invalid_transition");

        app.put(&path, Some(&user.token), json!({ "status": "owned" })).await.expect_error(403, "forbidden");
        app.put(&format!("/api/inventory/{}/status", uuid::Uuid::new_v4()), admin, json!({ "status": "owned" })).await.expect_error(404, "not_found");
        app.put("/api/inventory/xyz/status", admin, json!({ "status": "owned" })).await.expect_error(400, "invalid_id");
        socket.close().await;
    }
}

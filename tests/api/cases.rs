use reqwest::Method;
use serde_json::json;

use crate::on_both_backends;

fn two_items() -> serde_json::Value {
    json!([
        { "name": "5 coins", "image": "coins.png", "rarity": "common", "kind": "money", "value": 5, "weight": 3 },
        { "name": "AK-47 | Redline", "image": "ak.png", "rarity": "rare", "kind": "skin", "value": 12.5, "weight": 1 }
    ])
}

on_both_backends! {
    async fn admins_create_and_everyone_lists_cases(app) {
        let case = app.create_case(2.5, two_items()).await;
        assert_eq!(case["name"], "Test case");
        assert_eq!(case["image"], "case.png");
        assert_eq!(case["price"], 2.5);
        let items = case["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["chance"], 75.0);
        assert_eq!(items[1]["chance"], 25.0);
        assert_eq!(items[1]["value"], 12.5);
        assert_eq!(items[1]["kind"], "skin");
        assert_eq!(items[1]["rarity"], "rare");
        assert_eq!(items[1]["weight"], 1);

        let list = app.get("/api/cases", None).await;
        assert_eq!(list.expect(200)["cases"], json!([case.clone()]));
        let one = app.get(&format!("/api/cases/{}", case["id"].as_str().unwrap()), None).await;
        assert_eq!(one.expect(200)["case"], case);
    }

    async fn unknown_malformed_and_deleted_cases(app) {
        app.get(&format!("/api/cases/{}", uuid::Uuid::new_v4()), None).await.expect_error(404, "not_found");
        app.get("/api/cases/42", None).await.expect_error(400, "invalid_id");
        let case = app.create_case(1.0, two_items()).await;
        let path = format!("/api/admin/cases/{}", case["id"].as_str().unwrap());
        app.request(Method::DELETE, &path, Some(&app.admin.token), None).await.expect(200);
        app.get(&format!("/api/cases/{}", case["id"].as_str().unwrap()), None).await.expect_error(404, "not_found");
        assert_eq!(app.get("/api/cases", None).await.body["cases"], json!([]));
        app.request(Method::DELETE, &path, Some(&app.admin.token), None).await.expect_error(404, "not_found");
        app.put(&format!("{path}/price"), Some(&app.admin.token), json!({ "price": 3 })).await.expect_error(404, "not_found");
    }

    async fn admins_edit_cases_and_every_socket_hears_it(app) {
        let anonymous = app.socket(None).await;
        let user = app.new_user();
        let player = app.socket(Some(&user.token)).await;
        let case = app.create_case(1.0, two_items()).await;
        let id = case["id"].as_str().unwrap();
        anonymous.expect("cases:updated").await;
        player.expect("cases:updated").await;

        let admin = Some(app.admin.token.as_str());
        let price = app.put(&format!("/api/admin/cases/{id}/price"), admin, json!({ "price": 4.2 })).await;
        assert_eq!(price.expect(200)["case"]["price"], 4.2);
        anonymous.expect("cases:updated").await;

        let items = json!({ "items": [{ "name": "Gloves", "image": "", "rarity": "legendary", "kind": "skin", "value": 0, "weight": 7 }] });
        let patched = app.request(Method::PATCH, &format!("/api/admin/cases/{id}/items"), admin, Some(items)).await;
        let patched = patched.expect(200)["case"].clone();
        assert_eq!(patched["items"].as_array().unwrap().len(), 1);
        assert_eq!(patched["items"][0]["chance"], 100.0);
        assert_eq!(patched["items"][0]["value"], 0.0);
        anonymous.expect("cases:updated").await;

        let replaced = app.put(&format!("/api/admin/cases/{id}"), admin, json!({ "name": "Renamed", "image": "r.png", "price": 9.99, "items": two_items() })).await;
        let replaced = replaced.expect(200)["case"].clone();
        assert_eq!(replaced["name"], "Renamed");
        assert_eq!(replaced["price"], 9.99);
        anonymous.expect("cases:updated").await;

        app.request(Method::DELETE, &format!("/api/admin/cases/{id}"), admin, None).await.expect(200);
        anonymous.expect("cases:updated").await;
        player.expect("cases:updated").await;
        // A player's balance reaches that player only: the next case change comes to the
        // anonymous socket with no balance before it.
        app.fund(&user, 1.0).await;
        player.expect(&format!("balance:updated:{}", user.id)).await;
        app.create_case(1.0, two_items()).await;
        anonymous.expect_none_before(&["balance:updated"], "cases:updated").await;
        anonymous.close().await;
        player.close().await;
    }

    async fn case_drafts_are_validated(app) {
        let item = json!({ "name": "x", "image": "", "rarity": "common", "kind": "money", "value": 1, "weight": 1 });
        for (body, why) in [
            (json!({ "name": "", "price": 1, "items": [item] }), "empty name"),
            (json!({ "name": "a", "price": 0, "items": [item] }), "zero price"),
            (json!({ "name": "a", "price": 1.234, "items": [item] }), "over-precise price"),
            (json!({ "name": "a", "price": "1", "items": [item] }), "string price"),
            (json!({ "name": "a", "price": 1, "items": [] }), "no items"),
            (json!({ "name": "a", "price": 1, "items": [{ "name": "x", "rarity": "c", "kind": "gem", "value": 1, "weight": 1 }] }), "unknown kind"),
            (json!({ "name": "a", "price": 1, "items": [{ "name": "x", "rarity": "c", "kind": "skin", "value": -1, "weight": 1 }] }), "negative value"),
            (json!({ "name": "a", "price": 1, "items": [{ "name": "x", "rarity": "c", "kind": "skin", "value": 1, "weight": 0 }] }), "zero weight"),
        ] {
            let response = app.admin_post("/api/admin/cases", body).await;
            assert_eq!(response.status, 400, "{why}: {}", response.body);
            assert_eq!(response.body["code"], "invalid_body", "{why}");
        }
        assert_eq!(app.get("/api/cases", None).await.body["cases"], json!([]));
    }
}

//! The payment provider's webhook. The signature is checked over the raw bytes, in constant
//! time, before the JSON is trusted; the payment id's unique key decides who credits.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;

use super::parse_id;
use crate::client_ip::ClientIp;
use crate::domain::LedgerKind;
use crate::error::{ApiError, ApiResult};
use crate::events::Event;
use crate::money::Amount;
use crate::state::AppState;
use crate::store::{PaymentNotice, PaymentOutcome};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    payment_id: String,
    user_id: String,
    amount: Amount,
    status: String,
}

/// Whether `signature` is the lowercase hex HMAC-SHA256 of `body` under `secret`.
pub fn signature_matches(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Ok(expected) = hex::decode(signature.trim()) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

pub async fn callback(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    state.limits.webhook(ip, &state.metrics)?;
    let body = body?;
    let secret = state
        .config
        .payment_webhook_secret
        .as_ref()
        .ok_or(ApiError::Unavailable("payment webhook is not configured (PAYMENT_WEBHOOK_SECRET)"))?;
    let signature = headers.get("x-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !signature_matches(secret.expose().as_bytes(), &body, signature) {
        state.metrics.payments.with_label_values(&["rejected_signature"]).inc();
        tracing::warn!(%ip, "payment callback with a bad signature");
        return Err(ApiError::Unauthorized("invalid signature"));
    }
    let notification: Notification = serde_json::from_slice(&body).map_err(|e| {
        let code = if e.is_syntax() || e.is_eof() { "invalid_json" } else { "invalid_body" };
        ApiError::bad_request(code, e.to_string())
    })?;
    let payment_id = notification.payment_id.trim().to_string();
    if payment_id.is_empty() || payment_id.chars().count() > 128 {
        return Err(ApiError::bad_request("invalid_body", "paymentId: must be 1 to 128 characters"));
    }
    let status = notification.status.trim().to_ascii_lowercase();
    if status.is_empty() || status.chars().count() > 32 {
        return Err(ApiError::bad_request("invalid_body", "status: must be 1 to 32 characters"));
    }
    let notice = PaymentNotice {
        payment_id,
        user_id: parse_id("userId", &notification.user_id)?,
        amount: notification.amount.cents(),
        status: status.clone(),
    };
    let outcome = state.store.record_payment(&notice).await?;
    tracing::info!(payment_id = %notice.payment_id, player = %notice.user_id, %status, ?outcome, "payment callback");
    Ok(Json(match outcome {
        PaymentOutcome::Credited(account) => {
            state.metrics.payments.with_label_values(&["credited"]).inc();
            state.metrics.record_ledger(LedgerKind::Payment, notice.amount);
            state.publish([Event::balance(notice.user_id, account)]).await;
            json!({ "success": true, "duplicate": false, "balance": account.balance, "balanceVersion": account.version })
        }
        PaymentOutcome::Duplicate => {
            state.metrics.payments.with_label_values(&["duplicate"]).inc();
            json!({ "success": true, "duplicate": true })
        }
        PaymentOutcome::Recorded => {
            state.metrics.payments.with_label_values(&["not_success"]).inc();
            json!({ "success": true, "credited": false, "status": status })
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked_over_the_exact_bytes() {
        let body = br#"{"paymentId":"p1","userId":"u","amount":10,"status":"success"}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec").unwrap();
        mac.update(body);
        let good = hex::encode(mac.finalize().into_bytes());
        assert!(signature_matches(b"whsec", body, &good));
        assert!(!signature_matches(b"other", body, &good));
        assert!(!signature_matches(b"whsec", b"{}", &good));
        assert!(!signature_matches(b"whsec", body, ""));
        assert!(!signature_matches(b"whsec", body, "zz"));
        assert!(!signature_matches(b"whsec", body, &good[..62]));
    }
}

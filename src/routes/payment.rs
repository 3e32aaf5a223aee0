//! The payment provider's webhook. The signature is checked over the raw bytes, in constant
//! time, before the JSON is trusted; the payment id's unique key decides who credits.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

use super::{parse_id, False, Success, True};
use crate::client_ip::ClientIp;
use crate::domain::LedgerKind;
use crate::error::{ApiError, ApiResult};
use crate::events::Event;
use crate::money::{Amount, Balance, Cents};
use crate::openapi::{JsonBodyErrors, RateLimited, Unauthorized, Unavailable};
use crate::state::AppState;
use crate::store::{PaymentNotice, PaymentOutcome};

/// The provider's notification of one payment.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PaymentCallback, examples(json!({
    "paymentId": "pay_8f2e61c0", "userId": "7f3c2e1d-9a8b-4c6d-8e5f-4a3b2c1d0e9f", "amount": 7.25, "status": "success"
})))]
struct Notification {
    /// The provider's payment id, the idempotency key: 1 to 128 characters, not only white space
    /// (surrounding white space is dropped).
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    payment_id: String,
    /// The player to credit; one never seen before is created (money that arrived is never refused).
    #[schema(value_type = Uuid)]
    user_id: String,
    amount: Amount,
    /// Only `success` (in any case) credits the balance; anything else is recorded only. 1 to 32
    /// characters, not only white space.
    #[schema(
        min_length = 1,
        max_length = 32,
        examples("success", "failed", "pending"),
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    status: String,
}

/// The first `success` callback of this `paymentId`: the amount was credited.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCredited {
    #[schema(inline)]
    duplicate: False,
    /// The balance after the credit.
    #[schema(value_type = Balance)]
    balance: Cents,
    #[schema(minimum = 1)]
    balance_version: i64,
}

/// A `success` callback of a `paymentId` already credited: nothing changed, no event was emitted.
#[derive(Serialize, ToSchema)]
pub struct PaymentDuplicate {
    #[schema(inline)]
    duplicate: True,
}

/// A callback whose status is not `success`: stored, nothing credited.
#[derive(Serialize, ToSchema)]
pub struct PaymentRecorded {
    #[schema(inline)]
    credited: False,
    /// The status received, trimmed and lowercased.
    status: String,
}

#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[schema(as = PaymentCallbackResponse)]
pub enum PaymentAnswer {
    Credited(PaymentCredited),
    Duplicate(PaymentDuplicate),
    Recorded(PaymentRecorded),
}

/// Whether `signature` is the lowercase hex HMAC-SHA256 of `body` under `secret`.
pub fn signature_matches(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Ok(expected) = hex::decode(signature.trim()) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// Payment provider webhook
///
/// Called by the payment provider, signed with `X-Signature` over the raw body. The first
/// `success` for a `paymentId` credits the amount and emits `balance:updated:<userId>`; a repeat
/// is answered 200 `duplicate: true` and changes nothing; another status is recorded and does not
/// block a later `success`. A blocked player's payments are still credited. Rate limited per
/// client IP; 503 while `PAYMENT_WEBHOOK_SECRET` is not configured.
#[utoipa::path(
    post,
    path = "/api/payment/callback",
    operation_id = "paymentCallback",
    tag = "Payments",
    security(("paymentSignature" = [])),
    request_body = Notification,
    responses(
        (status = 200, description = "Credited, a duplicate, or recorded without credit.", body = Success<PaymentAnswer>),
        JsonBodyErrors,
        (status = 401, response = Unauthorized),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    )
)]
pub async fn callback(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Success<PaymentAnswer>> {
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
    // Lengths count what was sent (as the documented `maxLength` does), blankness what is kept.
    let payment_id = notification.payment_id.trim().to_string();
    if payment_id.is_empty() || notification.payment_id.chars().count() > 128 {
        return Err(ApiError::bad_request("invalid_body", "paymentId: must be 1 to 128 characters"));
    }
    let status = notification.status.trim().to_ascii_lowercase();
    if status.is_empty() || notification.status.chars().count() > 32 {
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
    Ok(Success::new(match outcome {
        PaymentOutcome::Credited(account) => {
            state.metrics.payments.with_label_values(&["credited"]).inc();
            state.metrics.record_ledger(LedgerKind::Payment, notice.amount);
            let credited = Event::PaymentCredited {
                user_id: notice.user_id,
                payment_id: notice.payment_id.clone(),
                amount: notice.amount.as_i64(),
                at: chrono::Utc::now(),
            };
            state.publish([Event::balance(notice.user_id, account), credited]).await;
            PaymentAnswer::Credited(PaymentCredited {
                duplicate: False,
                balance: account.balance,
                balance_version: account.version,
            })
        }
        PaymentOutcome::Duplicate => {
            state.metrics.payments.with_label_values(&["duplicate"]).inc();
            PaymentAnswer::Duplicate(PaymentDuplicate { duplicate: True })
        }
        PaymentOutcome::Recorded => {
            state.metrics.payments.with_label_values(&["not_success"]).inc();
            PaymentAnswer::Recorded(PaymentRecorded { credited: False, status })
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

//! Bearer tokens (HS256 JWT) and the extractors that turn them into an identity. The user id
//! always comes from the verified token, never from anything else the client sends.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use jsonwebtoken::{decode, encode, errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

use crate::domain::Role;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user_id: Uuid,
    pub role: Role,
    /// The token's `exp`, in seconds since the Unix epoch: a live socket ends after it.
    pub expires_at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("missing bearer token")]
    Missing,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("invalid token")]
    Invalid,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is exact: an expired token is refused at once, not a minute later.
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        JwtKeys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    pub fn issue(&self, user_id: Uuid, role: Role, ttl: Duration) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let claims = Claims {
            sub: user_id.to_string(),
            exp: now + ttl.as_secs(),
            nbf: None,
            iat: Some(now),
            role: (role == Role::Admin).then(|| "admin".to_string()),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).expect("HS256 signing cannot fail")
    }

    pub fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            _ => TokenError::Invalid,
        })?;
        let user_id = Uuid::parse_str(&data.claims.sub).map_err(|_| TokenError::Invalid)?;
        let role = Role::parse(data.claims.role.as_deref()).ok_or(TokenError::Invalid)?;
        Ok(Identity { user_id, role, expires_at: data.claims.exp })
    }
}

pub fn bearer_from_headers(headers: &header::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// What the HTTP middleware made of the request's bearer token, so it is verified once per
/// request: the middleware needs it to pick the anonymous limit, the extractors to authenticate.
#[derive(Clone, Copy, Debug)]
pub struct VerifiedToken(pub Result<Identity, TokenError>);

impl VerifiedToken {
    /// Verifies the bearer token, if the request carries one, and names a valid token's user on
    /// the current span (the request span), so every later log line of the request says whose it
    /// was. The token itself is never logged.
    pub fn from_headers(headers: &header::HeaderMap, jwt: &JwtKeys) -> Option<Self> {
        let verified = jwt.verify(bearer_from_headers(headers)?);
        if let Ok(identity) = &verified {
            record_user(identity);
        }
        Some(VerifiedToken(verified))
    }
}

/// Records the caller on the current span's `user` field (a span without one ignores it).
fn record_user(identity: &Identity) {
    tracing::Span::current().record("user", tracing::field::display(identity.user_id));
}

/// An authenticated caller; a user seen for the first time is created with balance 0.
#[derive(Clone, Copy, Debug)]
pub struct AuthUser(pub Identity);

/// An authenticated caller with the admin role.
#[derive(Clone, Copy, Debug)]
pub struct AdminUser(pub Identity);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let verified = match parts.extensions.get::<VerifiedToken>() {
            Some(VerifiedToken(verified)) => *verified,
            None => VerifiedToken::from_headers(&parts.headers, &state.jwt).map_or(Err(TokenError::Missing), |v| v.0),
        };
        // Refused before any database work: a bad token costs a signature check, nothing more.
        let identity = verified.map_err(|e| ApiError::Unauthorized(token_error_message(e)))?;
        // A blocked caller is refused whatever the route; the payment webhook takes no token, so
        // a blocked player's payments are still credited.
        if state.remember_user(identity.user_id).await? {
            return Err(ApiError::Blocked);
        }
        Ok(AuthUser(identity))
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let AuthUser(identity) = AuthUser::from_request_parts(parts, state).await?;
        match identity.role {
            Role::Admin => Ok(AdminUser(identity)),
            Role::User => Err(ApiError::Forbidden),
        }
    }
}

fn token_error_message(err: TokenError) -> &'static str {
    match err {
        TokenError::Missing => "missing bearer token",
        TokenError::Expired => "token expired",
        TokenError::NotYetValid => "token not valid yet",
        TokenError::Invalid => "invalid token",
    }
}

/// Parses `30s`, `15m`, `1h`, `7d`.
pub fn parse_ttl(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "test-secret-0123456789";

    fn sign(claims: serde_json::Value, alg: Algorithm, secret: &str) -> String {
        encode(&Header::new(alg), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
    }

    fn now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn issued_tokens_verify() {
        let keys = JwtKeys::new(SECRET);
        let id = Uuid::new_v4();
        let token = keys.issue(id, Role::Admin, Duration::from_secs(60));
        let identity = keys.verify(&token).unwrap();
        assert_eq!((identity.user_id, identity.role), (id, Role::Admin));
        assert!((now() + 59..=now() + 60).contains(&identity.expires_at), "exp carried: {identity:?}");
    }

    #[test]
    fn bad_tokens_are_refused() {
        let keys = JwtKeys::new(SECRET);
        let sub = Uuid::new_v4().to_string();
        let ok = serde_json::json!({ "sub": sub, "exp": now() + 60 });
        assert!(keys.verify(&sign(ok.clone(), Algorithm::HS256, SECRET)).is_ok());
        assert_eq!(keys.verify(&sign(ok.clone(), Algorithm::HS256, "another-secret-xyz")), Err(TokenError::Invalid));
        assert_eq!(keys.verify(&sign(ok, Algorithm::HS512, SECRET)), Err(TokenError::Invalid));
        let expired = serde_json::json!({ "sub": sub, "exp": now() - 1 });
        assert_eq!(keys.verify(&sign(expired, Algorithm::HS256, SECRET)), Err(TokenError::Expired));
        let early = serde_json::json!({ "sub": sub, "exp": now() + 60, "nbf": now() + 30 });
        assert_eq!(keys.verify(&sign(early, Algorithm::HS256, SECRET)), Err(TokenError::NotYetValid));
        let no_exp = serde_json::json!({ "sub": sub });
        assert_eq!(keys.verify(&sign(no_exp, Algorithm::HS256, SECRET)), Err(TokenError::Invalid));
        let not_uuid = serde_json::json!({ "sub": "alice", "exp": now() + 60 });
        assert_eq!(keys.verify(&sign(not_uuid, Algorithm::HS256, SECRET)), Err(TokenError::Invalid));
        let odd_role = serde_json::json!({ "sub": sub, "exp": now() + 60, "role": "root" });
        assert_eq!(keys.verify(&sign(odd_role, Algorithm::HS256, SECRET)), Err(TokenError::Invalid));
        assert_eq!(keys.verify("not.a.token"), Err(TokenError::Invalid));
    }

    #[test]
    fn ttls_parse() {
        assert_eq!(parse_ttl("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_ttl("0s"), None);
        assert_eq!(parse_ttl("1w"), None);
        assert_eq!(parse_ttl("h"), None);
    }
}

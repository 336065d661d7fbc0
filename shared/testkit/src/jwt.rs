//! Test JWTs, signed HS256 with the suite's test secret, as Supabase's `anon`/`service_role` keys are.

use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};

/// `GOTRUE_JWT_SECRET` of every test suite (unless a test overrides it).
pub const TEST_JWT_SECRET: &str = "test-jwt-secret-that-is-at-least-32-bytes-long";

/// Signs `claims` with `secret` (HS256).
pub fn sign_hs256(claims: &Value, secret: &str) -> String {
    encode(&Header::default(), claims, &EncodingKey::from_secret(secret.as_bytes())).expect("HS256 signing cannot fail")
}

/// An admin token like Supabase's `service_role` key: a `role` claim and nothing else (no `sub`, no `exp`).
pub fn service_role_token() -> String {
    sign_hs256(
        &json!({ "role": "service_role", "iss": "supabase-demo" }),
        TEST_JWT_SECRET,
    )
}

/// A user access token with GoTrue's claim set, valid for an hour.
pub fn user_token(user_id: &str, session_id: &str, email: &str) -> String {
    let now = chrono_now();
    sign_hs256(
        &json!({
            "sub": user_id,
            "aud": "authenticated",
            "exp": now + 3600,
            "iat": now,
            "email": email,
            "phone": "",
            "app_metadata": { "provider": "email", "providers": ["email"] },
            "user_metadata": {},
            "role": "authenticated",
            "aal": "aal1",
            "amr": [{ "method": "password", "timestamp": now }],
            "session_id": session_id,
            "is_anonymous": false,
        }),
        TEST_JWT_SECRET,
    )
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

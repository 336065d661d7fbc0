//! GoTrue's JSON for users and token responses, built from the services' protobuf messages.
//!
//! Field order, `omitempty` behaviour and timestamp format follow GoTrue's Go structs
//! (`models.User`, `models.Identity`, `models.Factor`, `tokens.AccessTokenResponse`), because
//! clients and snapshot tests compare these documents.

use auth_proto::common::v1::{Factor, Identity, SessionTokens, User};
use auth_proto::sso::v1::CustomProvider;
use auth_proto::user::v1::{AuditLogEntry, GenerateLinkResponse};
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

/// Go's `time.RFC3339Nano` in UTC: fractional seconds with trailing zeros trimmed, `Z` suffix.
fn time(ts: &prost_types::Timestamp) -> Value {
    let Some(at) = chrono::DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).unwrap_or(0)) else {
        return Value::Null;
    };
    let mut text = at.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = at.timestamp_subsec_nanos();
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('Z');
    Value::String(text)
}

fn put_time(map: &mut Map<String, Value>, key: &str, ts: Option<&prost_types::Timestamp>) {
    if let Some(ts) = ts {
        map.insert(key.into(), time(ts));
    }
}

fn required_time(ts: Option<&prost_types::Timestamp>) -> Value {
    ts.map_or_else(|| Value::String("0001-01-01T00:00:00Z".into()), time)
}

fn json_object(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => value,
        _ => json!({}),
    }
}

/// GoTrue's `models.CustomOAuthProvider` JSON: the client secret never appears, the type's other
/// URLs are left out.
pub fn custom_provider(provider: &CustomProvider) -> Value {
    let mut map = Map::new();
    map.insert("id".into(), json!(provider.id));
    map.insert("provider_type".into(), json!(provider.provider_type));
    map.insert("identifier".into(), json!(provider.identifier));
    map.insert("name".into(), json!(provider.name));
    map.insert("client_id".into(), json!(provider.client_id));
    map.insert("acceptable_client_ids".into(), json!(provider.acceptable_client_ids));
    map.insert("scopes".into(), json!(provider.scopes));
    map.insert("pkce_enabled".into(), json!(provider.pkce_enabled));
    map.insert(
        "attribute_mapping".into(),
        json_object(&provider.attribute_mapping_json),
    );
    map.insert(
        "custom_claims_allowlist".into(),
        json!(provider.custom_claims_allowlist),
    );
    map.insert(
        "authorization_params".into(),
        json_object(&provider.authorization_params_json),
    );
    map.insert("enabled".into(), json!(provider.enabled));
    map.insert("email_optional".into(), json!(provider.email_optional));
    let put_some = |map: &mut Map<String, Value>, key: &str, value: &Option<String>| {
        if let Some(value) = value {
            map.insert(key.into(), json!(value));
        }
    };
    put_some(&mut map, "issuer", &provider.issuer);
    put_some(&mut map, "discovery_url", &provider.discovery_url);
    map.insert("skip_nonce_check".into(), json!(provider.skip_nonce_check));
    if !provider.discovery_document_json.is_empty() {
        map.insert(
            "discovery_document".into(),
            json_object(&provider.discovery_document_json),
        );
    }
    put_some(&mut map, "authorization_url", &provider.authorization_url);
    put_some(&mut map, "token_url", &provider.token_url);
    put_some(&mut map, "userinfo_url", &provider.userinfo_url);
    put_some(&mut map, "jwks_uri", &provider.jwks_uri);
    map.insert("created_at".into(), required_time(provider.created_at.as_ref()));
    map.insert("updated_at".into(), required_time(provider.updated_at.as_ref()));
    Value::Object(map)
}

pub fn user(user: &User) -> Value {
    let mut map = Map::new();
    map.insert("id".into(), json!(user.id));
    map.insert("aud".into(), json!(user.aud));
    map.insert("role".into(), json!(user.role));
    map.insert("email".into(), json!(user.email));
    put_time(&mut map, "email_confirmed_at", user.email_confirmed_at.as_ref());
    put_time(&mut map, "invited_at", user.invited_at.as_ref());
    map.insert("phone".into(), json!(user.phone));
    put_time(&mut map, "phone_confirmed_at", user.phone_confirmed_at.as_ref());
    put_time(&mut map, "confirmation_sent_at", user.confirmation_sent_at.as_ref());
    put_time(&mut map, "confirmed_at", user.confirmed_at.as_ref());
    put_time(&mut map, "recovery_sent_at", user.recovery_sent_at.as_ref());
    if !user.new_email.is_empty() {
        map.insert("new_email".into(), json!(user.new_email));
    }
    put_time(&mut map, "email_change_sent_at", user.email_change_sent_at.as_ref());
    if !user.new_phone.is_empty() {
        map.insert("new_phone".into(), json!(user.new_phone));
    }
    put_time(&mut map, "phone_change_sent_at", user.phone_change_sent_at.as_ref());
    put_time(
        &mut map,
        "reauthentication_sent_at",
        user.reauthentication_sent_at.as_ref(),
    );
    put_time(&mut map, "last_sign_in_at", user.last_sign_in_at.as_ref());
    map.insert("app_metadata".into(), json_object(&user.app_metadata_json));
    map.insert("user_metadata".into(), json_object(&user.user_metadata_json));
    if !user.factors.is_empty() {
        map.insert(
            "factors".into(),
            Value::Array(user.factors.iter().map(factor).collect()),
        );
    }
    map.insert(
        "identities".into(),
        Value::Array(user.identities.iter().map(identity).collect()),
    );
    map.insert("created_at".into(), required_time(user.created_at.as_ref()));
    map.insert("updated_at".into(), required_time(user.updated_at.as_ref()));
    put_time(&mut map, "banned_until", user.banned_until.as_ref());
    put_time(&mut map, "deleted_at", user.deleted_at.as_ref());
    map.insert("is_anonymous".into(), json!(user.is_anonymous));
    Value::Object(map)
}

fn identity(identity: &Identity) -> Value {
    let mut map = Map::new();
    map.insert("identity_id".into(), json!(identity.identity_id));
    map.insert("id".into(), json!(identity.id));
    map.insert("user_id".into(), json!(identity.user_id));
    let data = json_object(&identity.identity_data_json);
    if data.as_object().is_some_and(|d| !d.is_empty()) {
        map.insert("identity_data".into(), data);
    }
    map.insert("provider".into(), json!(identity.provider));
    put_time(&mut map, "last_sign_in_at", identity.last_sign_in_at.as_ref());
    map.insert("created_at".into(), required_time(identity.created_at.as_ref()));
    map.insert("updated_at".into(), required_time(identity.updated_at.as_ref()));
    if !identity.email.is_empty() {
        map.insert("email".into(), json!(identity.email));
    }
    Value::Object(map)
}

pub fn factor(factor: &Factor) -> Value {
    let mut map = Map::new();
    map.insert("id".into(), json!(factor.id));
    map.insert("created_at".into(), required_time(factor.created_at.as_ref()));
    map.insert("updated_at".into(), required_time(factor.updated_at.as_ref()));
    map.insert("status".into(), json!(factor.status));
    if !factor.friendly_name.is_empty() {
        map.insert("friendly_name".into(), json!(factor.friendly_name));
    }
    map.insert("factor_type".into(), json!(factor.factor_type));
    map.insert("phone".into(), json!(factor.phone));
    map.insert(
        "last_challenged_at".into(),
        factor.last_challenged_at.as_ref().map_or(Value::Null, time),
    );
    Value::Object(map)
}

/// GoTrue's `PasskeyListItem` (`friendly_name` and `last_used_at` left out when empty).
pub fn passkey(passkey: &auth_proto::mfa::v1::Passkey) -> Value {
    let mut map = Map::new();
    map.insert("id".into(), json!(passkey.id));
    if !passkey.friendly_name.is_empty() {
        map.insert("friendly_name".into(), json!(passkey.friendly_name));
    }
    map.insert("created_at".into(), required_time(passkey.created_at.as_ref()));
    if let Some(last_used_at) = &passkey.last_used_at {
        map.insert("last_used_at".into(), time(last_used_at));
    }
    Value::Object(map)
}

pub fn token_body(tokens: &SessionTokens) -> Value {
    let mut map = Map::new();
    map.insert("access_token".into(), json!(tokens.access_token));
    map.insert("token_type".into(), json!(tokens.token_type));
    map.insert("expires_in".into(), json!(tokens.expires_in));
    map.insert("expires_at".into(), json!(tokens.expires_at));
    map.insert("refresh_token".into(), json!(tokens.refresh_token));
    map.insert("user".into(), tokens.user.as_ref().map_or(Value::Null, user));
    if !tokens.provider_token.is_empty() {
        map.insert("provider_token".into(), json!(tokens.provider_token));
    }
    if !tokens.provider_refresh_token.is_empty() {
        map.insert("provider_refresh_token".into(), json!(tokens.provider_refresh_token));
    }
    if let Some(weak) = &tokens.weak_password {
        map.insert(
            "weak_password".into(),
            json!({"message": weak.message, "reasons": weak.reasons}),
        );
    }
    Value::Object(map)
}

/// GoTrue's `GenerateLinkResponse`: the user's fields with the link's beside them.
pub fn generated_link(link: &GenerateLinkResponse) -> Value {
    let mut body = link.user.as_ref().map_or_else(|| json!({}), user);
    if let Value::Object(map) = &mut body {
        map.insert("action_link".into(), json!(link.action_link));
        map.insert("email_otp".into(), json!(link.email_otp));
        map.insert("hashed_token".into(), json!(link.hashed_token));
        map.insert("verification_type".into(), json!(link.verification_type));
        map.insert("redirect_to".into(), json!(link.redirect_to));
    }
    body
}

/// GoTrue's `AuditLogEntry`.
pub fn audit_entry(entry: &AuditLogEntry) -> Value {
    let payload = serde_json::from_str::<Value>(&entry.payload_json).unwrap_or_else(|_| json!({}));
    json!({
        "id": entry.id,
        "payload": payload,
        "created_at": required_time(entry.created_at.as_ref()),
        "ip_address": entry.ip_address,
    })
}

/// A token response with GoTrue's `sb-auth-*` headers.
pub fn token_response(tokens: &SessionTokens) -> Response {
    let mut response = axum::Json(token_body(tokens)).into_response();
    let headers = response.headers_mut();
    for (name, value) in &tokens.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_str(value)) {
            headers.insert(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_look_like_go() {
        let ts = |seconds, nanos| prost_types::Timestamp { seconds, nanos };
        assert_eq!(time(&ts(0, 0)), json!("1970-01-01T00:00:00Z"));
        assert_eq!(
            time(&ts(1_700_000_000, 123_400_000)),
            json!("2023-11-14T22:13:20.1234Z")
        );
        assert_eq!(time(&ts(1_700_000_000, 5)), json!("2023-11-14T22:13:20.000000005Z"));
    }

    #[test]
    fn user_fields_follow_gotrue_order_and_omissions() {
        let rendered = user(&User {
            id: "u".into(),
            email: "a@b.c".into(),
            app_metadata_json: r#"{"provider":"email"}"#.into(),
            ..Default::default()
        });
        let keys: Vec<&str> = rendered
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "id",
                "aud",
                "role",
                "email",
                "phone",
                "app_metadata",
                "user_metadata",
                "identities",
                "created_at",
                "updated_at",
                "is_anonymous"
            ]
        );
    }
}

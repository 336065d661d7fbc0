//! Fly.io: GoTrue's `fly.go` (the token's info names the user; organizations and the rest go to
//! custom claims).

use serde::Deserialize;
use serde_json::{Value, json};

use super::claims::{Claims, UserData, primary_email};
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints: |url| {
        let host = choose_host(url, "api.fly.io");
        Ok(Endpoints {
            authorize: format!("{host}/oauth/authorize"),
            token: format!("{host}/oauth/token"),
            api: host,
        })
    },
    scopes: &["read"],
    extra_scopes: true,
    credentials_in_body: false,
};

#[derive(Deserialize, Default)]
#[serde(default)]
struct FlyUser {
    resource_owner_id: String,
    user_id: String,
    user_name: String,
    email: String,
    organizations: Value,
    scope: Value,
    application: Value,
    created_at: i64,
}

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let user: FlyUser = call.get(&format!("{}/oauth/token/info", call.base)).await?;
    let emails = primary_email(user.email.clone(), true);
    let or_null = |v: Value| if v.is_null() { json!(null) } else { v };
    let mut custom_claims = serde_json::Map::new();
    custom_claims.insert("resource_owner_id".into(), json!(user.resource_owner_id));
    custom_claims.insert("organizations".into(), or_null(user.organizations));
    custom_claims.insert("application".into(), or_null(user.application));
    custom_claims.insert("scope".into(), or_null(user.scope));
    custom_claims.insert("created_at".into(), json!(user.created_at));
    let claims = Claims {
        issuer: call.base.to_string(),
        subject: user.user_id.clone(),
        email: user.email,
        email_verified: true,
        custom_claims,
        full_name: user.user_name,
        provider_id: user.user_id,
        ..Default::default()
    };
    Ok(UserData { emails, claims })
}

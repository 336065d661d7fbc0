//! Keycloak (`GOTRUE_EXTERNAL_KEYCLOAK_URL` is the realm's URL, required): GoTrue's `keycloak.go`.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::claims::{Claims, UserData, primary_email};
use super::{Endpoints, Spec, UserApi};
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints,
    scopes: &["profile", "email"],
    extra_scopes: true,
    credentials_in_body: false,
};

fn endpoints(url: Option<&str>) -> Result<Endpoints, String> {
    let realm = url
        .filter(|u| !u.is_empty())
        .ok_or("unable to find URL for the Keycloak provider")?;
    let realm = realm.strip_suffix('/').unwrap_or(realm);
    Ok(Endpoints {
        authorize: format!("{realm}/protocol/openid-connect/auth"),
        token: format!("{realm}/protocol/openid-connect/token"),
        api: realm.to_string(),
    })
}

#[derive(Deserialize)]
struct KeycloakUser {
    #[serde(default)]
    sub: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    email_verified: bool,
    /// Every claim, for the custom ones.
    #[serde(flatten)]
    raw: Map<String, Value>,
}

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let realm = call.base;
    let user: KeycloakUser = call.get(&format!("{realm}/protocol/openid-connect/userinfo")).await?;
    let custom_claims: Map<String, Value> = user
        .raw
        .into_iter()
        .filter(|(key, _)| !matches!(key.as_str(), "name" | "sub" | "email" | "email_verified"))
        .collect();
    let emails = primary_email(user.email.clone(), user.email_verified);
    let claims = Claims {
        issuer: realm.to_string(),
        subject: user.sub.clone(),
        name: user.name.clone(),
        email: user.email,
        email_verified: user.email_verified,
        custom_claims,
        full_name: user.name,
        provider_id: user.sub,
        ..Default::default()
    };
    Ok(UserData { emails, claims })
}

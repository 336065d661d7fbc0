//! WorkOS: GoTrue's `workos.go` (no scopes; the profile comes with the token response; the app's
//! `workos_provider`/`connection`/`organization` parameters reach WorkOS's authorize endpoint).

use serde::Deserialize;
use serde_json::json;

use super::claims::{Claims, UserData, primary_email};
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints: |url| {
        let api = choose_host(url, "api.workos.com");
        Ok(Endpoints {
            authorize: format!("{api}/sso/authorize"),
            token: format!("{api}/sso/token"),
            api,
        })
    },
    scopes: &[],
    extra_scopes: false,
    credentials_in_body: false,
};

#[derive(Deserialize, Default)]
#[serde(default)]
struct Profile {
    id: String,
    connection_id: String,
    organization_id: Option<String>,
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
}

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let profile: Profile = match call.token_extra.get("profile") {
        Some(value) => {
            serde_json::from_value(value.clone()).map_err(|e| ApiError(format!("unreadable WorkOS profile: {e}")))?
        }
        None => Profile::default(),
    };
    let emails = primary_email(profile.email.clone(), true);
    let name = format!(
        "{} {}",
        profile.first_name.unwrap_or_default(),
        profile.last_name.unwrap_or_default()
    )
    .trim()
    .to_string();
    let mut custom_claims = serde_json::Map::new();
    custom_claims.insert("connection_id".into(), json!(profile.connection_id));
    custom_claims.insert(
        "organization_id".into(),
        json!(profile.organization_id.unwrap_or_default()),
    );
    let claims = Claims {
        issuer: call.base.to_string(),
        subject: profile.id.clone(),
        name: name.clone(),
        custom_claims,
        full_name: name,
        provider_id: profile.id,
        ..Default::default()
    };
    Ok(UserData { emails, claims })
}

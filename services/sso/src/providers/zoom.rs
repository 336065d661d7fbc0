//! Zoom: GoTrue's `zoom.go` (no scopes; an email is verified unless a Zoom-login account says it
//! is not).

use serde::Deserialize;

use super::claims::{Claims, UserData, primary_email};
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints: |url| {
        let auth = format!("{}/oauth", choose_host(url, "zoom.us"));
        Ok(Endpoints {
            authorize: format!("{auth}/authorize"),
            token: format!("{auth}/token"),
            api: format!("{}/v2", choose_host(url, "api.zoom.us")),
        })
    },
    scopes: &[],
    extra_scopes: false,
    credentials_in_body: false,
};

#[derive(Deserialize, Default)]
#[serde(default)]
struct ZoomUser {
    id: String,
    first_name: String,
    last_name: String,
    email: String,
    verified: i64,
    login_type: serde_json::Value,
    pic_url: String,
}

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let user: ZoomUser = call.get(&format!("{}/users/me", call.base)).await?;
    // Zoom sends login_type as a number or a string; "100" is a Zoom work email login.
    let login_type = match &user.login_type {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let emails = primary_email(user.email.clone(), login_type != "100" || user.verified != 0);
    let name = format!("{} {}", user.first_name, user.last_name).trim().to_string();
    let claims = Claims {
        issuer: call.base.to_string(),
        subject: user.id.clone(),
        name: name.clone(),
        picture: user.pic_url.clone(),
        avatar_url: user.pic_url,
        full_name: name,
        provider_id: user.id,
        ..Default::default()
    };
    Ok(UserData { emails, claims })
}

//! Figma: GoTrue's `figma.go` (emails count as verified).

use serde::Deserialize;

use super::claims::{Claims, UserData, primary_email};
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints: |url| {
        let api = choose_host(url, "api.figma.com");
        Ok(Endpoints {
            authorize: format!("{}/oauth", choose_host(url, "www.figma.com")),
            token: format!("{api}/v1/oauth/token"),
            api,
        })
    },
    scopes: &["current_user:read"],
    extra_scopes: true,
    credentials_in_body: false,
};

#[derive(Deserialize, Default)]
#[serde(default)]
struct FigmaUser {
    id: String,
    email: String,
    handle: String,
    img_url: String,
}

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let user: FigmaUser = call.get(&format!("{}/v1/me", call.base)).await?;
    let emails = primary_email(user.email.clone(), true);
    let claims = Claims {
        issuer: call.base.to_string(),
        subject: user.id.clone(),
        name: user.handle.clone(),
        email: user.email,
        email_verified: true,
        avatar_url: user.img_url,
        full_name: user.handle,
        provider_id: user.id,
        ..Default::default()
    };
    Ok(UserData { emails, claims })
}

//! Google: GoTrue's `google.go`. Its endpoints come from Google's OIDC discovery document
//! (`_URL` is ignored, as in GoTrue); the user is read from the ID token of the code exchange,
//! verified like any ID token with the client id as audience, else from the user-info endpoint.

use serde::Deserialize;

use super::claims::{Claims, UserData, primary_email};
use super::{Spec, UserApi};
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints: |_| Err("Google's endpoints come from its discovery document".into()),
    scopes: &["email", "profile"],
    extra_scopes: true,
    credentials_in_body: false,
};

#[derive(Deserialize, Default)]
#[serde(default)]
struct GoogleUser {
    id: String,
    name: String,
    picture: String,
    email: String,
    verified_email: bool,
    email_verified: bool,
}

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    if let Some(id_token) = call.token_extra.get("id_token").and_then(|v| v.as_str()) {
        let issuer = call.oidc_issuer;
        return super::verified_id_token_user(call, id_token, issuer, Some(issuer), "google").await;
    }
    // GoTrue's legacy path: the user-info endpoint.
    let user: GoogleUser = call.get(call.base).await?;
    let verified = user.verified_email || user.email_verified;
    let emails = primary_email(user.email.clone(), verified);
    let claims = Claims {
        issuer: call.base.to_string(),
        subject: user.id.clone(),
        name: user.name.clone(),
        picture: user.picture.clone(),
        email: user.email,
        email_verified: verified,
        avatar_url: user.picture,
        full_name: user.name,
        provider_id: user.id,
        ..Default::default()
    };
    Ok(UserData { emails, claims })
}

//! X (OAuth 2.0): GoTrue's `x.go`. X requires PKCE from its clients: the verifier is kept in
//! `oauth_client_states` between `/authorize` and the callback (see `client_state.rs`).

use serde::Deserialize;
use serde_json::json;

use super::claims::{Claims, UserData, primary_email};
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints: |url| {
        let api = choose_host(url, "api.x.com");
        Ok(Endpoints {
            authorize: format!("{}/i/oauth2/authorize", choose_host(url, "x.com")),
            token: format!("{api}/2/oauth2/token"),
            api,
        })
    },
    scopes: &["users.email", "tweet.read", "users.read", "offline.access"],
    extra_scopes: true,
    credentials_in_body: false,
};

#[derive(Deserialize, Default)]
#[serde(default)]
struct XUser {
    id: String,
    name: String,
    username: String,
    confirmed_email: String,
    profile_image_url: String,
    url: String,
    created_at: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Answer {
    data: XUser,
}

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let answer: Answer = call
        .get(&format!(
            "{}/2/users/me?user.fields=id,name,username,confirmed_email,profile_image_url,url,created_at",
            call.base
        ))
        .await?;
    let user = answer.data;
    let emails = primary_email(user.confirmed_email.clone(), true);
    let mut custom_claims = serde_json::Map::new();
    custom_claims.insert("created_at".into(), json!(user.created_at));
    let claims = Claims {
        issuer: call.base.to_string(),
        subject: user.id.clone(),
        name: user.name.clone(),
        preferred_username: user.username.clone(),
        picture: user.profile_image_url.clone(),
        profile: format!("https://x.com/{}", user.username),
        website: user.url,
        custom_claims,
        avatar_url: user.profile_image_url,
        full_name: user.name,
        provider_id: user.id,
        user_name: user.username,
        ..Default::default()
    };
    Ok(UserData { emails, claims })
}

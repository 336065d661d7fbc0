//! Twitch: GoTrue's `twitch.go` (Helix wants the client id beside the token; emails count as
//! verified).

use serde::Deserialize;
use serde_json::json;

use super::claims::{Claims, UserData, primary_email};
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints: |url| {
        let auth = choose_host(url, "id.twitch.tv");
        Ok(Endpoints {
            authorize: format!("{auth}/oauth2/authorize"),
            token: format!("{auth}/oauth2/token"),
            api: choose_host(url, "api.twitch.tv"),
        })
    },
    scopes: &["user:read:email"],
    extra_scopes: true,
    credentials_in_body: false,
};

#[derive(Deserialize, Default)]
#[serde(default)]
struct TwitchUser {
    id: String,
    login: String,
    display_name: String,
    r#type: String,
    broadcaster_type: String,
    description: String,
    profile_image_url: String,
    offline_image_url: String,
    view_count: i64,
    email: String,
}

#[derive(Deserialize)]
struct TwitchUsers {
    #[serde(default)]
    data: Vec<TwitchUser>,
}

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let users: TwitchUsers = call
        .http
        .get_json(
            &format!("{}/helix/users", call.base),
            call.access_token,
            &[("Client-Id", call.client_id)],
        )
        .await?;
    let user = users
        .data
        .into_iter()
        .next()
        .ok_or_else(|| ApiError("unable to find user with twitch provider".into()))?;
    let emails = primary_email(user.email.clone(), true);
    let mut custom_claims = serde_json::Map::new();
    custom_claims.insert("broadcaster_type".into(), json!(user.broadcaster_type));
    custom_claims.insert("description".into(), json!(user.description));
    custom_claims.insert("type".into(), json!(user.r#type));
    custom_claims.insert("offline_image_url".into(), json!(user.offline_image_url));
    custom_claims.insert("view_count".into(), json!(user.view_count));
    let claims = Claims {
        issuer: call.base.to_string(),
        subject: user.id.clone(),
        picture: user.profile_image_url.clone(),
        name: user.login.clone(),
        nickname: user.display_name.clone(),
        custom_claims,
        slug: user.display_name,
        avatar_url: user.profile_image_url,
        full_name: user.login,
        provider_id: user.id,
        ..Default::default()
    };
    Ok(UserData { emails, claims })
}

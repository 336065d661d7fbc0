//! Discord: GoTrue's `discord.go` (name as `username#discriminator`, the CDN avatar URL).

use serde::Deserialize;
use serde_json::json;

use super::claims::{Claims, UserData, primary_email};
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints: |url| {
        let api = format!("{}/api", choose_host(url, "discord.com"));
        Ok(Endpoints {
            authorize: format!("{api}/oauth2/authorize"),
            token: format!("{api}/oauth2/token"),
            api,
        })
    },
    scopes: &["email", "identify"],
    extra_scopes: true,
    credentials_in_body: false,
};

#[derive(Deserialize)]
#[serde(default)]
#[derive(Default)]
struct DiscordUser {
    avatar: Option<String>,
    discriminator: String,
    email: String,
    id: String,
    username: String,
    global_name: Option<String>,
    verified: bool,
}

/// Discord's avatar URL: the user's own (animated ones are GIFs), else a default by discriminator.
fn avatar_url(user: &DiscordUser) -> Result<String, ApiError> {
    match user.avatar.as_deref().filter(|a| !a.is_empty()) {
        Some(avatar) => {
            let extension = if avatar.starts_with("a_") { "gif" } else { "png" };
            Ok(format!(
                "https://cdn.discordapp.com/avatars/{}/{avatar}.{extension}",
                user.id
            ))
        }
        None => {
            let discriminator: u64 = user
                .discriminator
                .parse()
                .map_err(|_| ApiError(format!("unreadable discriminator {:?}", user.discriminator)))?;
            Ok(format!(
                "https://cdn.discordapp.com/embed/avatars/{}.png",
                discriminator % 5
            ))
        }
    }
}

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let user: DiscordUser = call.get(&format!("{}/users/@me", call.base)).await?;
    let avatar = avatar_url(&user)?;
    let emails = primary_email(user.email.clone(), user.verified);
    let mut custom_claims = serde_json::Map::new();
    custom_claims.insert(
        "global_name".into(),
        json!(user.global_name.clone().unwrap_or_default()),
    );
    let claims = Claims {
        issuer: call.base.to_string(),
        subject: user.id.clone(),
        name: format!("{}#{}", user.username, user.discriminator),
        picture: avatar.clone(),
        custom_claims,
        avatar_url: avatar,
        full_name: user.username,
        provider_id: user.id,
        ..Default::default()
    };
    Ok(UserData { emails, claims })
}

//! Spotify: GoTrue's `spotify.go` (the largest avatar; the email is not verified by Spotify).
//! With `_URL`, the accounts and API hosts are both that URL (GoTrue's `chooseHost`).

use serde::Deserialize;

use super::claims::{Claims, UserData, primary_email};
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints: |url| {
        let accounts = choose_host(url, "accounts.spotify.com");
        Ok(Endpoints {
            authorize: format!("{accounts}/authorize"),
            token: format!("{accounts}/api/token"),
            api: choose_host(url, "api.spotify.com/v1"),
        })
    },
    scopes: &["user-read-email"],
    extra_scopes: true,
    credentials_in_body: false,
};

#[derive(Deserialize, Default)]
#[serde(default)]
struct Image {
    url: String,
    height: Option<i64>,
    width: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SpotifyUser {
    display_name: Option<String>,
    images: Vec<Image>,
    email: String,
    id: String,
}

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let user: SpotifyUser = call.get(&format!("{}/me", call.base)).await?;
    let emails = primary_email(user.email.clone(), false);
    // The largest image; the first of equals, as GoTrue picks it.
    let area = |image: &Image| image.height.unwrap_or_default() * image.width.unwrap_or_default();
    let avatar = user
        .images
        .iter()
        .fold(None::<&Image>, |best, image| match best {
            Some(best) if area(image) <= area(best) => Some(best),
            _ => Some(image),
        })
        .map(|image| image.url.clone())
        .unwrap_or_default();
    let name = user.display_name.unwrap_or_default();
    let claims = Claims {
        issuer: call.base.to_string(),
        subject: user.id.clone(),
        name: name.clone(),
        picture: avatar.clone(),
        avatar_url: avatar,
        full_name: name,
        provider_id: user.id,
        ..Default::default()
    };
    Ok(UserData { emails, claims })
}

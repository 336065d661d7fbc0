//! Bitbucket: GoTrue's `bitbucket.go` (the app's extra scopes are ignored, as GoTrue does).

use serde::Deserialize;

use super::claims::{Claims, Email, UserData};
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints: |url| {
        let auth = choose_host(url, "bitbucket.org");
        Ok(Endpoints {
            authorize: format!("{auth}/site/oauth2/authorize"),
            token: format!("{auth}/site/oauth2/access_token"),
            api: format!("{}/2.0", choose_host(url, "api.bitbucket.org")),
        })
    },
    scopes: &["account", "email"],
    extra_scopes: false,
    credentials_in_body: false,
};

#[derive(Deserialize, Default)]
#[serde(default)]
struct Avatar {
    href: String,
}

#[derive(Deserialize)]
struct BitbucketUser {
    #[serde(default)]
    uuid: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    avatar: Avatar,
}

#[derive(Deserialize)]
struct BitbucketEmail {
    #[serde(default)]
    email: String,
    #[serde(default)]
    is_primary: bool,
    #[serde(default)]
    is_confirmed: bool,
}

#[derive(Deserialize)]
struct BitbucketEmails {
    #[serde(default)]
    values: Vec<BitbucketEmail>,
}

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let user: BitbucketUser = call.get(&format!("{}/user", call.base)).await?;
    let emails: BitbucketEmails = call.get(&format!("{}/user/emails", call.base)).await?;
    let emails = emails
        .values
        .into_iter()
        .filter(|e| !e.email.is_empty())
        .map(|e| Email {
            address: e.email,
            verified: e.is_confirmed,
            primary: e.is_primary,
        })
        .collect();
    let claims = Claims {
        issuer: call.base.to_string(),
        subject: user.uuid.clone(),
        name: user.display_name.clone(),
        picture: user.avatar.href.clone(),
        avatar_url: user.avatar.href,
        full_name: user.display_name,
        provider_id: user.uuid,
        ..Default::default()
    };
    Ok(UserData { emails, claims })
}

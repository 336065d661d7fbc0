//! Notion: GoTrue's `notion.go` (no scopes; the bot's owner is the user; Notion does not say
//! whether the email is verified and GoTrue trusts it).

use serde::Deserialize;

use super::claims::{Claims, UserData, primary_email};
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;

/// The API version GoTrue asks for.
const NOTION_VERSION: &str = "2021-08-16";

pub const SPEC: Spec = Spec {
    endpoints: |url| {
        let host = choose_host(url, "api.notion.com");
        Ok(Endpoints {
            authorize: format!("{host}/v1/oauth/authorize"),
            token: format!("{host}/v1/oauth/token"),
            api: host,
        })
    },
    scopes: &[],
    extra_scopes: false,
    credentials_in_body: false,
};

#[derive(Deserialize, Default)]
#[serde(default)]
struct Person {
    email: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NotionUser {
    id: String,
    name: String,
    avatar_url: Option<String>,
    person: Person,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Owner {
    user: NotionUser,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Bot {
    owner: Owner,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Me {
    bot: Bot,
}

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let me: Me = call
        .http
        .get_json(
            &format!("{}/v1/users/me", call.base),
            call.access_token,
            &[("Notion-Version", NOTION_VERSION)],
        )
        .await?;
    let user = me.bot.owner.user;
    let emails = primary_email(user.person.email.clone(), true);
    let avatar = user.avatar_url.unwrap_or_default();
    let claims = Claims {
        issuer: call.base.to_string(),
        subject: user.id.clone(),
        name: user.name.clone(),
        picture: avatar.clone(),
        avatar_url: avatar,
        full_name: user.name,
        provider_id: user.id,
        ..Default::default()
    };
    Ok(UserData { emails, claims })
}

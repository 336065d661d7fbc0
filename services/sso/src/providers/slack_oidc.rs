//! Slack (OpenID Connect): GoTrue's `slack_oidc.go` (the user from `openid.connect.userInfo`).

use serde::Deserialize;
use serde_json::json;

use super::claims::{Claims, UserData, primary_email};
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints: |url| {
        let host = choose_host(url, "slack.com");
        Ok(Endpoints {
            authorize: format!("{host}/openid/connect/authorize"),
            token: format!("{host}/api/openid.connect.token"),
            api: format!("{host}/api"),
        })
    },
    scopes: &["profile", "email", "openid"],
    extra_scopes: true,
    credentials_in_body: false,
};

#[derive(Deserialize, Default)]
#[serde(default)]
struct SlackUser {
    #[serde(rename = "https://slack.com/user_id")]
    id: String,
    #[serde(rename = "https://slack.com/team_id")]
    team_id: String,
    email: String,
    email_verified: bool,
    name: String,
    picture: String,
}

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let user: SlackUser = call.get(&format!("{}/openid.connect.userInfo", call.base)).await?;
    let emails = primary_email(user.email.clone(), user.email_verified);
    let mut custom_claims = serde_json::Map::new();
    custom_claims.insert("https://slack.com/team_id".into(), json!(user.team_id));
    let claims = Claims {
        issuer: call.base.to_string(),
        subject: user.id.clone(),
        name: user.name.clone(),
        picture: user.picture.clone(),
        custom_claims,
        avatar_url: user.picture,
        full_name: user.name,
        provider_id: user.id,
        ..Default::default()
    };
    Ok(UserData { emails, claims })
}

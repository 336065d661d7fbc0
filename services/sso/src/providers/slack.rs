//! Slack (the deprecated non-OIDC app type): GoTrue's `slack.go`. Like `slack_oidc` for the user,
//! but with the older authorize and token endpoints, and the email taken as verified (Slack does
//! not say).

use super::claims::{UserData, primary_email};
use super::slack_oidc;
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints: |url| {
        let host = choose_host(url, "slack.com");
        Ok(Endpoints {
            authorize: format!("{host}/oauth/authorize"),
            token: format!("{host}/api/oauth.access"),
            api: format!("{host}/api"),
        })
    },
    scopes: &["profile", "email", "openid"],
    extra_scopes: true,
    credentials_in_body: false,
};

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let mut data = slack_oidc::user_data(call).await?;
    data.emails = primary_email(data.emails.first().map(|e| e.address.clone()).unwrap_or_default(), true);
    Ok(data)
}

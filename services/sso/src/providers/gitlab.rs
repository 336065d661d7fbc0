//! GitLab (self-hosted through `GOTRUE_EXTERNAL_GITLAB_URL`): GoTrue's `gitlab.go`.

use serde::Deserialize;

use super::claims::{Claims, Email, UserData};
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints: |url| Ok(endpoints(url)),
    scopes: &["read_user"],
    extra_scopes: true,
    credentials_in_body: false,
};

fn endpoints(url: Option<&str>) -> Endpoints {
    let host = choose_host(url, "gitlab.com");
    Endpoints {
        authorize: format!("{host}/oauth/authorize"),
        token: format!("{host}/oauth/token"),
        api: host,
    }
}

#[derive(Deserialize)]
struct GitlabUser {
    id: i64,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    avatar_url: Option<String>,
    #[serde(default)]
    confirmed_at: Option<String>,
}

#[derive(Deserialize)]
struct GitlabEmail {
    #[serde(default)]
    email: String,
}

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let host = call.base;
    let user: GitlabUser = call.get(&format!("{host}/api/v4/user")).await?;
    let extra: Vec<GitlabEmail> = call.get(&format!("{host}/api/v4/user/emails")).await?;
    // GitLab does not say whether its additional addresses are confirmed: they count as unverified.
    let mut emails: Vec<Email> = extra
        .into_iter()
        .filter(|e| !e.email.is_empty())
        .map(|e| Email {
            address: e.email,
            verified: false,
            primary: false,
        })
        .collect();
    if let Some(email) = user.email.filter(|e| !e.is_empty()) {
        emails.push(Email {
            address: email,
            verified: user.confirmed_at.is_some_and(|at| !at.is_empty()),
            primary: true,
        });
    }
    let id = user.id.to_string();
    let name = user.name.unwrap_or_default();
    let avatar = user.avatar_url.unwrap_or_default();
    let claims = Claims {
        issuer: host.to_string(),
        subject: id.clone(),
        name: name.clone(),
        picture: avatar.clone(),
        avatar_url: avatar,
        full_name: name,
        provider_id: id,
        ..Default::default()
    };
    Ok(UserData { emails, claims })
}

//! GitHub (and GitHub Enterprise through `GOTRUE_EXTERNAL_GITHUB_URL`): GoTrue's `github.go`.

use serde::Deserialize;

use super::claims::{Claims, Email, UserData};
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints: |url| Ok(endpoints(url)),
    scopes: &["user:email"],
    extra_scopes: true,
    credentials_in_body: false,
};

/// github.com's API lives on api.github.com; an Enterprise server's under `/api/v3`.
fn endpoints(url: Option<&str>) -> Endpoints {
    let auth = choose_host(url, "github.com");
    let mut api = choose_host(url, "api.github.com");
    if !api.ends_with("api.github.com") {
        api.push_str("/api/v3");
    }
    Endpoints {
        authorize: format!("{auth}/login/oauth/authorize"),
        token: format!("{auth}/login/oauth/access_token"),
        api,
    }
}

#[derive(Deserialize)]
struct GithubUser {
    id: i64,
    #[serde(default)]
    login: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    avatar_url: Option<String>,
}

#[derive(Deserialize)]
struct GithubEmail {
    #[serde(default)]
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let api = call.base;
    let user: GithubUser = call.get(&format!("{api}/user")).await?;
    let id = user.id.to_string();
    let name = user.name.unwrap_or_default();
    let claims = Claims {
        issuer: api.to_string(),
        subject: id.clone(),
        name: name.clone(),
        preferred_username: user.login.clone(),
        avatar_url: user.avatar_url.unwrap_or_default(),
        full_name: name,
        provider_id: id,
        user_name: user.login,
        ..Default::default()
    };
    let emails: Vec<GithubEmail> = call.get(&format!("{api}/user/emails")).await?;
    let emails = emails
        .into_iter()
        .filter(|e| !e.email.is_empty())
        .map(|e| Email {
            address: e.email,
            verified: e.verified,
            primary: e.primary,
        })
        .collect();
    Ok(UserData { emails, claims })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enterprise_servers_have_their_api_under_api_v3() {
        let public = endpoints(None);
        assert_eq!(public.token, "https://github.com/login/oauth/access_token");
        assert_eq!(public.api, "https://api.github.com");
        let enterprise = endpoints(Some("https://git.corp.example/"));
        assert_eq!(enterprise.authorize, "https://git.corp.example/login/oauth/authorize");
        assert_eq!(enterprise.api, "https://git.corp.example/api/v3");
    }
}

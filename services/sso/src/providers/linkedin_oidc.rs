//! LinkedIn (OpenID Connect): GoTrue's `linkedin_oidc.go`. The user is read from the exchange's
//! ID token, issued by `https://www.linkedin.com/oauth` for the client id.

use super::claims::UserData;
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints: |url| {
        let host = choose_host(url, "www.linkedin.com");
        Ok(Endpoints {
            authorize: format!("{host}/oauth/v2/authorization"),
            token: format!("{host}/oauth/v2/accessToken"),
            api: host,
        })
    },
    scopes: &["openid", "email", "profile"],
    extra_scopes: true,
    credentials_in_body: false,
};

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let issuer = call.oidc_issuer;
    super::oidc_user_data(call, "linkedin_oidc", Some(issuer)).await
}

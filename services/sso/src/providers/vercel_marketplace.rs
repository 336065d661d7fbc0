//! Vercel Marketplace: GoTrue's `vercel_marketplace.go`. The user is read from the exchange's ID
//! token (required), issued by `https://marketplace.vercel.com` for the client id; a global user
//! id, when present, is the identity's subject.

use super::claims::UserData;
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints: |url| {
        let api = choose_host(url, "api.vercel.com");
        Ok(Endpoints {
            authorize: format!("{api}/oauth/v2/authorization"),
            token: format!("{api}/oauth/v2/accessToken"),
            api,
        })
    },
    scopes: &[],
    extra_scopes: true,
    credentials_in_body: false,
};

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    match call.token_extra.get("id_token").and_then(|v| v.as_str()) {
        Some(id_token) if !call.access_token.is_empty() => {
            let issuer = call.oidc_issuer;
            super::verified_id_token_user(call, id_token, issuer, Some(issuer), "vercel_marketplace").await
        }
        _ => Err(ApiError(
            "vercel_marketplace: no OIDC ID token present in response".into(),
        )),
    }
}

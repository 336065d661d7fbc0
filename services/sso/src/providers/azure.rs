//! Microsoft Entra ID (Azure): GoTrue's `azure.go`. `_URL` is the authority (default
//! `https://login.microsoftonline.com/common`); the user is read from the exchange's ID token,
//! verified against the keys of the tenant that issued it. A tenant-specific authority accepts
//! only its tenant's tokens.

use super::claims::UserData;
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;
use crate::oidc::claims::is_azure_issuer;
use crate::oidc::verify::unverified_issuer;

pub const SPEC: Spec = Spec {
    endpoints: |url| {
        let authority = choose_host(url, "login.microsoftonline.com/common");
        Ok(Endpoints {
            authorize: format!("{authority}/oauth2/v2.0/authorize"),
            token: format!("{authority}/oauth2/v2.0/token"),
            api: authority,
        })
    },
    scopes: &["openid"],
    extra_scopes: true,
    credentials_in_body: false,
};

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let Some(id_token) = call.token_extra.get("id_token").and_then(|v| v.as_str()) else {
        return Ok(UserData::default());
    };
    let issuer = unverified_issuer(id_token).ok_or_else(|| ApiError("azure: invalid ID token".into()))?;
    // A stand-in issuer (AUTH_EXTERNAL_AZURE_ISSUER) counts as Azure's.
    let stand_in = !call.oidc_issuer.is_empty() && issuer == call.oidc_issuer;
    if !is_azure_issuer(&issuer) && !stand_in {
        return Err(ApiError(format!("azure: ID token issuer not valid {issuer:?}")));
    }
    // A tenant's authority (not `common` or `organizations`) names the only issuer it accepts.
    let expected = format!("{}/v2.0", call.base);
    let tenant_specific =
        is_azure_issuer(&expected) && !expected.ends_with("/common/v2.0") && !expected.ends_with("/organizations/v2.0");
    if tenant_specific && issuer != expected {
        return Err(ApiError(format!(
            "azure: ID token issuer {issuer:?} does not match expected issuer {expected:?}"
        )));
    }
    super::verified_id_token_user(call, id_token, &issuer, Some(&issuer), "azure").await
}

//! A custom provider's user (GoTrue's `CustomOAuthProvider` / `CustomOIDCProvider.GetUserData`):
//! an OIDC provider's verified ID token when the code exchange returned one (audience among the
//! client ids), else the userinfo endpoint; then the admin's allow-list and attribute mapping.

use serde_json::{Map, Value};

use super::UserApi;
use super::claims::{Claims, UserData, primary_email};
use crate::custom::mapping;
use crate::http::ApiError;

/// What a custom provider's row says beyond its OAuth endpoints.
#[derive(Debug, Clone, Default)]
pub struct CustomSettings {
    pub identifier: String,
    /// OIDC providers: the issuer whose keys sign the ID tokens.
    pub oidc_issuer: Option<String>,
    /// The userinfo endpoint (OAuth 2.0: configured; OIDC: discovered).
    pub userinfo_url: Option<String>,
    pub acceptable_client_ids: Vec<String>,
    pub attribute_mapping: Map<String, Value>,
    pub custom_claims_allowlist: Vec<String>,
    /// Added to the authorization URL.
    pub authorization_params: Vec<(String, String)>,
    pub pkce_enabled: bool,
}

impl CustomSettings {
    /// The allow-list, then the mapping, then the email list the mapping may have changed.
    fn finish(&self, mut claims: Claims, raw: &Map<String, Value>) -> UserData {
        mapping::capture_allowed(raw, &self.custom_claims_allowlist, &mut claims);
        let claims = mapping::apply(claims, &self.attribute_mapping, raw);
        UserData {
            emails: primary_email(claims.email.clone(), claims.email_verified),
            claims,
        }
    }
}

pub async fn user_data(call: &UserApi<'_>, settings: &CustomSettings) -> Result<UserData, ApiError> {
    let id_token = call
        .token_extra
        .get("id_token")
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty());
    if let (Some(issuer), Some(id_token)) = (settings.oidc_issuer.as_deref(), id_token) {
        // The access token's at_hash is not checked in the callback, as in GoTrue.
        let token = call
            .oidc
            .verify(issuer, true, id_token, Some(issuer), None)
            .await
            .map_err(|e| ApiError(format!("failed to verify ID token: {e}")))?;
        let acceptable =
            std::iter::once(call.client_id).chain(settings.acceptable_client_ids.iter().map(String::as_str));
        if !acceptable
            .into_iter()
            .any(|id| token.audience.iter().any(|aud| aud == id))
        {
            return Err(ApiError(format!(
                "token audience {:?} does not match any acceptable client ID",
                token.audience
            )));
        }
        let parsed = crate::oidc::claims::user_data(&token, &settings.identifier).map_err(ApiError)?;
        return Ok(settings.finish(parsed.claims, &token.claims));
    }
    let url = settings
        .userinfo_url
        .as_deref()
        .filter(|url| !url.is_empty())
        .ok_or_else(|| ApiError("no ID token or userinfo endpoint available".into()))?;
    let raw: Map<String, Value> = call.get(url).await?;
    Ok(settings.finish(Claims::from_map(&raw), &raw))
}

//! `POST /token?grant_type=id_token` (GoTrue's `IdTokenGrant`): a native app signs in with the ID
//! token Apple, Google, Azure, Facebook (Limited Login), Keycloak, Kakao, Snapchat or an allowed
//! issuer gave it. The token is verified against the issuer's published keys; its audience must be
//! one of the provider's client ids, its nonce the SHA-256 of the app's (unless the provider skips
//! the check), its `at_hash` the access token's when one is sent. Then the identity signs in as
//! after an OAuth callback (or, with `link_identity`, joins the caller's account).

use auth_core::{ErrorCode, ServiceError};
use auth_proto::common::v1::SessionTokens;
use auth_proto::sso::v1::IdTokenRequest;
use sha2::Digest;
use uuid::Uuid;

use crate::oidc::claims::{
    self, FACEBOOK, GOOGLE, KAKAO, SNAPCHAT, VERCEL_MARKETPLACE, is_apple_issuer, is_azure_issuer,
};
use crate::oidc::verify::unverified_issuer;
use crate::state::SsoState;

const GOOGLE_USERINFO: &str = "https://www.googleapis.com/userinfo/v2/me";

/// The provider an ID token is for, and how to check it.
struct Choice {
    provider_type: String,
    issuer: String,
    client_ids: Vec<String>,
    skip_nonce_check: bool,
    email_optional: bool,
    /// A custom OIDC provider's discovery document, when not at the issuer's well-known place.
    discovery_url: Option<String>,
}

fn invalid(description: impl Into<String>) -> ServiceError {
    ServiceError::oauth("invalid request", description)
}

fn validation(message: impl Into<String>) -> ServiceError {
    ServiceError::bad_request(ErrorCode::ValidationFailed, message)
}

/// Go's `%q` for the printable strings that appear in these messages.
fn go_quote(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

impl SsoState {
    pub async fn sign_in_with_id_token(
        &self,
        request: IdTokenRequest,
        linking_target: Option<Uuid>,
    ) -> Result<SessionTokens, ServiceError> {
        let choice = self.id_token_provider(&request).await?;
        if let Some(url) = &choice.discovery_url {
            self.oidc.issuer_at(&choice.issuer, url).await.map_err(|cause| {
                ServiceError::internal(anyhow::anyhow!("custom provider's OIDC discovery: {cause}"))
            })?;
        }
        let apple = choice.provider_type == "apple";
        // Apple's discovery document names one issuer while tokens carry either of two; GoTrue
        // skips the issuer checks and checked the token's issuer itself (above).
        let expected_issuer = (!apple).then_some(choice.issuer.as_str());
        let access_token = (!request.access_token.is_empty()).then_some(request.access_token.as_str());
        let token = self
            .oidc
            .verify(&choice.issuer, !apple, &request.id_token, expected_issuer, access_token)
            .await
            .map_err(|cause| {
                tracing::info!(provider = %choice.provider_type, %cause, "ID token refused");
                invalid("Bad ID token")
            })?;
        let mut user = claims::user_data(&token, &choice.provider_type).map_err(|cause| {
            tracing::info!(provider = %choice.provider_type, %cause, "ID token claims unreadable");
            invalid("Bad ID token")
        })?;
        user.settle_email();
        if token.subject.is_empty() {
            return Err(invalid("Missing sub claim in id_token"));
        }
        let audience_ok = choice
            .client_ids
            .iter()
            .any(|id| !id.is_empty() && token.audience.iter().any(|aud| aud == id));
        if !audience_ok {
            return Err(invalid(format!(
                "Unacceptable audience in id_token: [{}]",
                token.audience.join(" ")
            )));
        }
        if !choice.skip_nonce_check {
            match (token.nonce.is_empty(), request.nonce.is_empty()) {
                (true, true) => {}
                (false, false) => {
                    // The app sends the raw nonce; the token carries its SHA-256 in hex.
                    let hashed = crate::http::hex(&sha2::Sha256::digest(request.nonce.as_bytes()));
                    if !bool::from(subtle::ConstantTimeEq::ct_eq(hashed.as_bytes(), token.nonce.as_bytes())) {
                        return Err(ServiceError::oauth("invalid nonce", "Nonces mismatch"));
                    }
                }
                _ => {
                    return Err(invalid(
                        "Passed nonce and nonce in id_token should either both exist or not.",
                    ));
                }
            }
        }
        let identity = user.identity_request(
            &choice.provider_type,
            choice.email_optional,
            request.context.clone(),
            String::new(),
        );
        let signed_in = match linking_target {
            Some(target) => self.link_identity(&target.to_string(), identity).await?,
            None => self.sign_in_identity(identity).await?,
        };
        self.issue_session(&signed_in.user_id, request.context).await
    }

    /// GoTrue's `IdTokenGrantParams.getProvider`, up to the provider's switch.
    async fn id_token_provider(&self, request: &IdTokenRequest) -> Result<Choice, ServiceError> {
        if request.id_token.is_empty() {
            return Err(invalid("id_token required"));
        }
        if request.provider.is_empty() && (request.client_id.is_empty() || request.issuer.is_empty()) {
            return Err(invalid("provider or client_id and issuer required"));
        }
        let external = &self.config.external;
        let configured = |key: &str| external.providers.get(key).cloned().unwrap_or_default();
        let provider = request.provider.as_str();
        let asked_issuer = request.issuer.as_str();
        let detected = unverified_issuer(&request.id_token);
        let (key, issuer): (&str, String) = match provider {
            p if p == "apple" || is_apple_issuer(asked_issuer) => {
                let detected =
                    detected.ok_or_else(|| validation("Unable to detect issuer in ID token for Apple provider"))?;
                if !is_apple_issuer(&detected) {
                    return Err(validation("Detected ID token issuer is not an Apple ID token issuer"));
                }
                if !asked_issuer.is_empty() && asked_issuer != detected {
                    return Err(validation("Provided issuer does not match ID token issuer"));
                }
                ("apple", detected)
            }
            p if p == "google" || asked_issuer == GOOGLE => ("google", self.google_issuer()),
            p if p == "azure" || is_azure_issuer(asked_issuer) => {
                let detected =
                    detected.ok_or_else(|| validation("Unable to detect issuer in ID token for Azure provider"))?;
                if !detected.starts_with("https://login.microsoftonline.com/")
                    && !detected.starts_with("https://sts.windows.net/")
                {
                    return Err(validation("Detected ID token issuer is not an Azure ID token issuer"));
                }
                if !asked_issuer.is_empty() && asked_issuer != detected {
                    return Err(validation("Provided issuer does not match ID token issuer"));
                }
                ("azure", detected)
            }
            p if p == "facebook" || asked_issuer == FACEBOOK => ("facebook", FACEBOOK.to_string()),
            p if p == "keycloak"
                || (configured("keycloak").enabled
                    && configured("keycloak")
                        .url
                        .as_deref()
                        .is_some_and(|url| !url.is_empty() && url == asked_issuer)) =>
            {
                ("keycloak", configured("keycloak").url.unwrap_or_default())
            }
            p if p == "kakao" || asked_issuer == KAKAO => ("kakao", KAKAO.to_string()),
            p if p == "vercel_marketplace" || asked_issuer == VERCEL_MARKETPLACE => {
                ("vercel_marketplace", VERCEL_MARKETPLACE.to_string())
            }
            p if p == "snapchat" || asked_issuer == SNAPCHAT => ("snapchat", SNAPCHAT.to_string()),
            p if p.starts_with(crate::custom::PREFIX) => return self.custom_id_token_provider(p).await,
            _ if external
                .allowed_id_token_issuers
                .iter()
                .any(|allowed| allowed == asked_issuer) =>
            {
                // The deprecated form: any allowed issuer, the client id as the app says.
                return Ok(Choice {
                    provider_type: asked_issuer.to_string(),
                    issuer: asked_issuer.to_string(),
                    client_ids: vec![request.client_id.clone()],
                    skip_nonce_check: false,
                    email_optional: false,
                    discovery_url: None,
                });
            }
            p => return Err(validation(format!("Custom OIDC provider {} not allowed", go_quote(p)))),
        };
        let settings = configured(key);
        if !settings.enabled {
            return Err(ServiceError::bad_request(
                ErrorCode::ProviderDisabled,
                format!("Provider (issuer {}) is not enabled", go_quote(&issuer)),
            ));
        }
        let mut client_ids = settings.client_ids.clone();
        if key == "apple"
            && let Some(bundle) = self.config.external.ios_bundle_id.as_ref().filter(|b| !b.is_empty())
        {
            client_ids.push(bundle.clone());
        }
        Ok(Choice {
            provider_type: key.to_string(),
            issuer,
            client_ids,
            // Facebook's Limited Login tokens carry no nonce GoTrue can check.
            skip_nonce_check: key == "facebook" || settings.skip_nonce_check,
            email_optional: settings.email_optional,
            discovery_url: None,
        })
    }

    /// GoTrue's `custom:` case of `getProvider`: an enabled OIDC custom provider, whose client id
    /// and acceptable client ids are the audiences.
    async fn custom_id_token_provider(&self, identifier: &str) -> Result<Choice, ServiceError> {
        if !self.config.custom_oauth.enabled {
            return Err(validation("Custom OAuth providers are disabled"));
        }
        let quoted = go_quote(identifier);
        let row = self
            .find_custom_provider(identifier)
            .await?
            .ok_or_else(|| validation(format!("Custom provider {quoted} not found")))?;
        if !row.enabled {
            return Err(ServiceError::bad_request(
                ErrorCode::ProviderDisabled,
                format!("Custom provider {quoted} is disabled"),
            ));
        }
        if !row.is_oidc() {
            return Err(validation(format!("Provider {quoted} is not an OIDC provider")));
        }
        let discovery_url = row.discovery_url();
        let issuer = row
            .issuer
            .ok_or_else(|| validation(format!("OIDC provider {quoted} missing issuer")))?;
        let mut client_ids = vec![row.client_id];
        client_ids.extend(row.acceptable_client_ids);
        Ok(Choice {
            provider_type: identifier.to_string(),
            issuer,
            client_ids,
            skip_nonce_check: row.skip_nonce_check,
            email_optional: row.email_optional,
            discovery_url,
        })
    }

    /// Google's user-info endpoint for the (rare) code exchange without an ID token: GoTrue's fixed
    /// one, or the stand-in issuer's.
    pub fn google_userinfo_url(&self, discovery: &crate::oidc::cache::Discovery) -> String {
        match self.config.external.oidc_issuer_overrides.get("google") {
            Some(_) => discovery.userinfo_endpoint.clone().unwrap_or_default(),
            None => GOOGLE_USERINFO.to_string(),
        }
    }

    /// Google's issuer: fixed, as in GoTrue, unless the suite's stand-in override names another.
    pub fn google_issuer(&self) -> String {
        self.oidc_issuer("google", GOOGLE)
    }

    /// A provider's fixed OIDC issuer, or the stand-in `AUTH_EXTERNAL_<P>_ISSUER` names.
    pub fn oidc_issuer(&self, provider: &str, fixed: &str) -> String {
        self.config
            .external
            .oidc_issuer_overrides
            .get(provider)
            .cloned()
            .unwrap_or_else(|| fixed.to_string())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting_is_go_s() {
        assert_eq!(super::go_quote("custom:x"), "\"custom:x\"");
    }
}

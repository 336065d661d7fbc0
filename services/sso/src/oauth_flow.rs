//! The OAuth 2.0 sign-in: `GET /authorize` (GoTrue's `GetExternalProviderRedirectURL`) and
//! `GET/POST /callback` (`ExternalProviderCallback`).
//!
//! `/authorize` records the flow with the token service (its id is the OAuth `state`, bound to this
//! one flow and usable once) and answers the provider's URL. The callback loads the flow, trades
//! the code for the provider's tokens, reads the user from the provider's API, has the user
//! service find, link or create the account, and has the token service finish the flow: a session
//! for the implicit flow, an auth code for PKCE. The provider's tokens are never logged.

use auth_core::{ErrorCode, ServiceError};
use auth_proto::sso::v1::{
    AuthorizeRequest, AuthorizeResponse, CallbackError, CallbackRequest, CallbackResponse, SignedIn, callback_response,
};
use auth_proto::token::v1::{FinishExternalFlowRequest, StartExternalFlowRequest, finish_external_flow_response};

use crate::providers::twitter::Twitter;
use crate::providers::{Endpoints, Kind, Provider, ProviderTokens};
use crate::state::SsoState;

/// How a provider is sent the user: OAuth 2.0 (every provider but one) or OAuth 1.0a (twitter).
enum Protocol {
    OAuth2(Box<Provider>),
    OAuth1(Twitter),
}

/// A callback that failed after its flow was found: redirected to the flow's target.
enum CallbackFailure {
    /// The provider's own error, forwarded as it came.
    Provider {
        error: String,
        description: String,
    },
    Service(ServiceError),
}

impl From<ServiceError> for CallbackFailure {
    fn from(error: ServiceError) -> Self {
        CallbackFailure::Service(error)
    }
}

impl CallbackFailure {
    /// GoTrue's `getErrorQueryString`.
    fn into_proto(self) -> CallbackError {
        match self {
            CallbackFailure::Provider { error, description } => CallbackError {
                error,
                error_description: description,
                error_code: String::new(),
            },
            CallbackFailure::Service(error) => {
                let oauth_error = match (error.code, error.http_status) {
                    (
                        ErrorCode::SignupDisabled | ErrorCode::UserBanned | ErrorCode::ProviderEmailNeedsVerification,
                        _,
                    ) => "access_denied",
                    (_, 400) => "invalid_request",
                    (_, 401) => "unauthorized_client",
                    (_, 403) => "access_denied",
                    (_, 503) => "temporarily_unavailable",
                    _ => "server_error",
                };
                if error.http_status >= 500 {
                    tracing::error!(error = %error, cause = ?error.source, "external sign-in failed");
                }
                CallbackError {
                    error: oauth_error.to_string(),
                    error_description: error.message.clone(),
                    error_code: error.code.as_str().to_string(),
                }
            }
        }
    }
}

/// Apple sends the user's name once, beside the code (GoTrue's `AppleProvider.ParseUser`).
fn apple_name(user_field: &str, user: &mut crate::providers::UserData) -> Result<(), ServiceError> {
    #[derive(serde::Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct Name {
        first_name: String,
        last_name: String,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct AppleUser {
        name: Name,
    }
    let parsed: AppleUser = serde_json::from_str(user_field)
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("Apple's user field: {e}")))?;
    let name = format!("{} {}", parsed.name.first_name, parsed.name.last_name)
        .trim()
        .to_string();
    user.claims.name = name.clone();
    user.claims.full_name = name;
    Ok(())
}

/// A PKCE verifier of 32 random bytes (43 characters), as Go's `oauth2.GenerateVerifier`.
fn random_verifier() -> String {
    oauth2::PkceCodeChallenge::new_random_sha256().1.secret().clone()
}

impl SsoState {
    /// The provider, built as GoTrue builds it: settings checked first, then (Google) the
    /// issuer's discovery document for its endpoints.
    async fn provider(&self, name: &str, scopes: &str) -> Result<Provider, String> {
        let name = name.to_lowercase();
        if name.starts_with(crate::custom::PREFIX) {
            return self.custom_provider(&name, scopes).await;
        }
        let config = self.config.external.providers.get(name.as_str());
        let (kind, _) = Provider::check_settings(&name, config)?;
        let discovered = match kind {
            Kind::Google | Kind::Apple => {
                let issuer = self
                    .oidc
                    .issuer(&self.oidc_issuer_of(&name), true)
                    .await
                    .map_err(|e| e.to_string())?;
                let api = match kind {
                    Kind::Google => self.google_userinfo_url(&issuer.discovery),
                    _ => String::new(),
                };
                Some(Endpoints {
                    authorize: issuer.discovery.authorization_endpoint.clone(),
                    token: issuer.discovery.token_endpoint.clone(),
                    api,
                })
            }
            _ => None,
        };
        Provider::build(&name, config, scopes, discovered)
    }

    /// The provider for `/authorize` and `/callback`: OAuth 2.0, or OAuth 1.0a for twitter.
    async fn protocol(&self, name: &str, scopes: &str) -> Result<Protocol, String> {
        if name == "twitter" {
            let config = self.config.external.providers.get("twitter");
            return Ok(Protocol::OAuth1(Twitter::from_config(config)?));
        }
        Ok(Protocol::OAuth2(Box::new(self.provider(name, scopes).await?)))
    }

    /// Whether an invitation with this token is pending (a read of `users`, which the user service
    /// owns; accepting it is the user service's).
    async fn invitation_exists(&self, token: &str) -> Result<bool, ServiceError> {
        let found: Option<Option<i32>> =
            sqlx::query_scalar!("SELECT 1 FROM users WHERE confirmation_token = $1 LIMIT 1", token)
                .fetch_optional(&self.db)
                .await?;
        Ok(found.is_some())
    }

    /// Where a provider's ID tokens come from, for those that are OIDC issuers.
    fn oidc_issuer_of(&self, provider: &str) -> String {
        match provider {
            "google" => self.google_issuer(),
            "apple" => self.oidc_issuer("apple", crate::oidc::claims::APPLE[0]),
            "linkedin_oidc" => self.oidc_issuer("linkedin_oidc", crate::oidc::claims::LINKEDIN),
            "vercel_marketplace" => self.oidc_issuer("vercel_marketplace", crate::oidc::claims::VERCEL_MARKETPLACE),
            // Azure's issuer is the tenant's, read from each token; only a stand-in is configured.
            "azure" => self.oidc_issuer("azure", ""),
            _ => String::new(),
        }
    }

    /// `linking_target`: the signed-in user a manual-linking flow adds the identity to.
    pub async fn authorize(
        &self,
        request: AuthorizeRequest,
        linking_target: Option<uuid::Uuid>,
    ) -> Result<AuthorizeResponse, ServiceError> {
        let provider_name = request.provider.to_lowercase();
        let protocol = self.protocol(&provider_name, &request.scopes).await.map_err(|e| {
            ServiceError::bad_request(ErrorCode::ValidationFailed, format!("Unsupported provider: {e}"))
        })?;
        if !request.invite_token.is_empty() && !self.invitation_exists(&request.invite_token).await? {
            return Err(ServiceError::not_found(
                ErrorCode::UserNotFound,
                "User identified by token not found",
            ));
        }
        auth_account::pkce::validate(&request.code_challenge_method, &request.code_challenge)?;
        let oauth2_provider = match &protocol {
            Protocol::OAuth2(provider) => Some(provider.as_ref()),
            Protocol::OAuth1(_) => None,
        };
        let email_optional = match &protocol {
            Protocol::OAuth2(provider) => provider.email_optional,
            Protocol::OAuth1(twitter) => twitter.email_optional,
        };
        // A provider that requires PKCE of its clients gets a verifier kept for the callback.
        let (client_state_id, pkce_verifier) = if oauth2_provider.is_some_and(Provider::requires_pkce) {
            let verifier = oauth2::PkceCodeVerifier::new(random_verifier());
            let id = crate::client_state::store(&self.db, &provider_name, verifier.secret()).await?;
            (id.to_string(), Some(verifier.secret().clone()))
        } else {
            (String::new(), None)
        };
        let flow_state_id = self
            .start_flow(StartExternalFlowRequest {
                provider_type: provider_name,
                code_challenge: request.code_challenge,
                code_challenge_method: request.code_challenge_method,
                referrer: request.referrer,
                invite_token: request.invite_token.clone(),
                linking_target_id: linking_target.map(|id| id.to_string()).unwrap_or_default(),
                email_optional,
                oauth_client_state_id: client_state_id,
            })
            .await?;
        // Go's url.Values iterate sorted; keep the URL stable for the same request.
        let mut extra: Vec<(String, String)> = request
            .query_params
            .into_iter()
            // WorkOS names its connection `provider`, which /authorize itself uses.
            .map(|(key, value)| {
                if key == "workos_provider" {
                    ("provider".into(), value)
                } else {
                    (key, value)
                }
            })
            .collect();
        extra.sort();
        let url = match &protocol {
            Protocol::OAuth2(provider) => provider.authorize_url(&flow_state_id, &extra, pkce_verifier.as_deref()),
            // OAuth 1.0a passes nothing on (GoTrue ignores the parameters for twitter).
            Protocol::OAuth1(twitter) => twitter
                .authorize_url(&self.http, &flow_state_id)
                .await
                .map_err(|cause| {
                    tracing::warn!(%cause, "Twitter refused a request token");
                    ServiceError::new(
                        500,
                        ErrorCode::UnexpectedFailure,
                        "Unable to get a request token from Twitter",
                    )
                })?,
        };
        Ok(AuthorizeResponse { url })
    }

    pub async fn callback(&self, request: CallbackRequest) -> Result<CallbackResponse, ServiceError> {
        if request.state.is_empty() {
            return Err(ServiceError::bad_request(
                ErrorCode::BadOauthCallback,
                "OAuth state parameter missing",
            ));
        }
        let flow = self.load_flow(&request.state).await?;
        let redirect_to = match &self.config.external.redirect_url {
            Some(url) if !url.is_empty() => url.clone(),
            _ if !flow.referrer.is_empty() => flow.referrer.clone(),
            _ => self.config.site_url.as_str().to_string(),
        };
        let outcome = match self.sign_in_with_code(&flow, &request).await {
            Ok(outcome) => outcome,
            Err(failure) => callback_response::Outcome::Error(failure.into_proto()),
        };
        Ok(CallbackResponse {
            redirect_to,
            outcome: Some(outcome),
        })
    }

    async fn sign_in_with_code(
        &self,
        flow: &auth_proto::token::v1::ExternalFlow,
        request: &CallbackRequest,
    ) -> Result<callback_response::Outcome, CallbackFailure> {
        let (mut user, tokens) = if flow.provider_type == "twitter" {
            self.twitter_user(flow, request).await?
        } else {
            self.oauth2_user(flow, request).await?
        };
        if user.emails.is_empty() && !flow.email_optional {
            return Err(ServiceError::new(
                500,
                ErrorCode::UnexpectedFailure,
                "Error getting user email from external provider",
            )
            .into());
        }
        if flow.provider_type == "apple" && !request.user.is_empty() {
            apple_name(&request.user, &mut user)?;
        }
        user.settle_email();
        let identity = user.identity_request(
            &flow.provider_type,
            flow.email_optional,
            request.context.clone(),
            flow.invite_token.clone(),
        );
        // A manual-linking flow adds the identity to the user who started it; any other signs in.
        let signed_in = if flow.linking_target_id.is_empty() {
            self.sign_in_identity(identity).await?
        } else {
            self.link_identity(&flow.linking_target_id, identity).await?
        };
        let finished = self
            .finish_flow(FinishExternalFlowRequest {
                flow_state_id: flow.flow_state_id.clone(),
                user_id: signed_in.user_id,
                provider_access_token: tokens.access_token.clone(),
                provider_refresh_token: tokens.refresh_token.clone(),
                context: request.context.clone(),
            })
            .await?;
        match finished.result {
            Some(finish_external_flow_response::Result::AuthCode(code)) => {
                Ok(callback_response::Outcome::AuthCode(code))
            }
            Some(finish_external_flow_response::Result::Session(session)) => {
                Ok(callback_response::Outcome::SignedIn(SignedIn {
                    session: Some(session),
                    provider_token: tokens.access_token,
                    provider_refresh_token: tokens.refresh_token,
                }))
            }
            None => {
                Err(ServiceError::internal(anyhow::anyhow!("the token service finished the flow with nothing")).into())
            }
        }
    }

    /// The OAuth 2.0 callback: the provider's error forwarded, the code traded (with the flow's
    /// PKCE verifier when the provider requires one), the user read from the provider.
    async fn oauth2_user(
        &self,
        flow: &auth_proto::token::v1::ExternalFlow,
        request: &CallbackRequest,
    ) -> Result<(crate::providers::UserData, ProviderTokens), CallbackFailure> {
        if !request.error.is_empty() {
            return Err(CallbackFailure::Provider {
                error: request.error.clone(),
                description: request.error_description.clone(),
            });
        }
        if request.code.is_empty() {
            return Err(ServiceError::bad_request(
                ErrorCode::BadOauthCallback,
                "OAuth callback with missing authorization code missing",
            )
            .into());
        }
        let provider = self.provider(&flow.provider_type, "").await.map_err(|e| {
            ServiceError::bad_request(
                ErrorCode::OauthProviderNotSupported,
                format!("Unsupported provider: {e}"),
            )
        })?;
        let pkce_verifier = if flow.oauth_client_state_id.is_empty() {
            None
        } else {
            Some(crate::client_state::take(&self.db, &flow.oauth_client_state_id, &flow.provider_type).await?)
        };
        if provider.requires_pkce() && pkce_verifier.is_none() {
            return Err(
                ServiceError::bad_request(ErrorCode::OauthInvalidState, "OAuth PKCE code verifier missing").into(),
            );
        }
        let tokens = provider
            .exchange(&self.http, &request.code, pkce_verifier.as_deref())
            .await
            .map_err(|cause| {
                // GoTrue shows the code's first four characters, nothing more.
                let shown: String = request.code.chars().take(4).collect();
                tracing::warn!(provider = %flow.provider_type, %cause, "code exchange failed");
                ServiceError::new(
                    500,
                    ErrorCode::UnexpectedFailure,
                    format!("Unable to exchange external code: {shown}"),
                )
            })?;
        let oidc_issuer = self.oidc_issuer_of(&flow.provider_type);
        let user = provider
            .user_data(&self.http, &tokens, &self.oidc, &oidc_issuer)
            .await
            .map_err(|cause| {
                tracing::warn!(provider = %flow.provider_type, %cause, "reading the provider's user failed");
                ServiceError::new(
                    500,
                    ErrorCode::UnexpectedFailure,
                    "Error getting user profile from external provider",
                )
            })?;
        Ok((user, tokens))
    }

    /// GoTrue's `oAuth1Callback`: the request token and verifier traded for an access token.
    async fn twitter_user(
        &self,
        flow: &auth_proto::token::v1::ExternalFlow,
        request: &CallbackRequest,
    ) -> Result<(crate::providers::UserData, ProviderTokens), CallbackFailure> {
        let twitter = Twitter::from_config(self.config.external.providers.get("twitter")).map_err(|e| {
            ServiceError::bad_request(
                ErrorCode::OauthProviderNotSupported,
                format!("Unsupported provider: {e}"),
            )
        })?;
        let (token, secret) = twitter
            .access_token(&self.http, &request.oauth_token, &request.oauth_verifier)
            .await
            .map_err(|cause| {
                tracing::warn!(provider = %flow.provider_type, %cause, "access token request failed");
                ServiceError::new(500, ErrorCode::UnexpectedFailure, "Unable to retrieve access token")
            })?;
        let user = twitter.user_data(&self.http, &token, &secret).await.map_err(|cause| {
            tracing::warn!(provider = %flow.provider_type, %cause, "reading the provider's user failed");
            ServiceError::new(
                500,
                ErrorCode::UnexpectedFailure,
                "Error getting user email from external provider",
            )
        })?;
        let tokens = ProviderTokens {
            access_token: token,
            refresh_token: String::new(),
            extra: serde_json::Map::new(),
        };
        Ok((user, tokens))
    }
}

//! What the user service works with, and its calls to the token and MFA services.

use std::sync::Arc;

use crate::password::PasswordHasher;
use auth_account::jwt::JwtKeys;
use auth_account::principal::{self, Principal, VerifiedToken};
use auth_core::grpc::TracedChannel;
use auth_core::redirect::RedirectPolicy;
use auth_core::{Config, ServiceError};
use auth_outbox::relay::RelayHandle;
use auth_proto::common::v1::{RequestContext, SessionTokens, User};
use auth_proto::mfa::v1::DeleteUserFactorsRequest;
use auth_proto::mfa::v1::mfa_service_client::MfaServiceClient;
use auth_proto::token::v1::token_service_client::TokenServiceClient;
use auth_proto::token::v1::{CreateFlowStateRequest, IssueAuthCodeRequest, IssueSessionRequest, RevokeSessionsRequest};
use tonic::metadata::MetadataMap;
use uuid::Uuid;

use crate::account_cache::AccountCache;
use crate::live_sessions::LiveSessions;

#[derive(Clone)]
pub struct UserState {
    pub config: Arc<Config>,
    pub db: sqlx::PgPool,
    pub keys: Arc<JwtKeys>,
    pub hasher: PasswordHasher,
    /// Wakes the outbox relay after a commit that wrote outbox rows.
    pub relay: RelayHandle,
    /// Which `redirect_to` targets links may carry (`GOTRUE_SITE_URL`, `GOTRUE_URI_ALLOW_LIST`).
    pub redirects: RedirectPolicy,
    /// GET /user answers kept in memory, dropped when Postgres reports a change.
    pub accounts: AccountCache,
    /// Confirms that a session served from the account cache is still open.
    pub live_sessions: LiveSessions,
    token: TokenServiceClient<TracedChannel>,
    mfa: MfaServiceClient<TracedChannel>,
}

impl UserState {
    pub fn new(
        config: Arc<Config>,
        db: sqlx::PgPool,
        relay: RelayHandle,
        accounts: AccountCache,
        live_sessions: LiveSessions,
    ) -> anyhow::Result<Self> {
        let suite = &config.suite;
        let channel =
            auth_core::grpc::traced_channel(&suite.token_url, suite.grpc_connect_timeout, suite.grpc_timeout)?;
        let mfa_channel =
            auth_core::grpc::traced_channel(&suite.mfa_url, suite.grpc_connect_timeout, suite.grpc_timeout)?;
        Ok(Self {
            keys: Arc::new(JwtKeys::from_config(&config.jwt)?),
            hasher: PasswordHasher::default(),
            relay,
            accounts,
            live_sessions,
            redirects: RedirectPolicy::new(&config),
            token: TokenServiceClient::new(channel),
            mfa: MfaServiceClient::new(mfa_channel),
            config,
            db,
        })
    }

    pub async fn authenticate(&self, metadata: &MetadataMap) -> Result<Principal, ServiceError> {
        principal::authenticate(metadata, &self.keys, &self.config, &self.db).await
    }

    pub fn verify_bearer(&self, metadata: &MetadataMap) -> Result<VerifiedToken, ServiceError> {
        principal::verify_bearer(metadata, &self.keys, &self.config)
    }

    /// The signed-in user for GET /user, with [`Self::authenticate`]'s checks: from the account
    /// cache when it holds this user and session and the session is confirmed still open, else
    /// read (and remembered for next time). Admin tokens and tokens without a session always read
    /// the database.
    pub async fn current_user(&self, token: VerifiedToken) -> Result<User, ServiceError> {
        let cacheable = match (token.user_id, token.session_id) {
            (Some(user_id), Some(session_id)) if !token.is_admin => Some((user_id, session_id)),
            _ => None,
        };
        if let Some((user_id, session_id)) = cacheable
            && let Some(user) = self.accounts.user_with_session(user_id, session_id)
            && self.live_sessions.still_signed_in(user_id, session_id).await?
        {
            return Ok(user);
        }
        let ticket = self.accounts.ticket();
        let loaded = match token.user_id {
            Some(user_id) => principal::find_user_and_session(&self.db, user_id, token.session_id).await?,
            None => None,
        };
        let principal = principal::assemble(token, loaded, &self.config, &self.db).await?;
        let user = principal.require_user()?;
        let answer = user.to_proto();
        if let (Some(ticket), Some(_), Some(session)) = (ticket, cacheable, &principal.session) {
            self.accounts.store(ticket, user, session, answer.clone());
        }
        Ok(answer)
    }

    fn service_request<T>(&self, body: T) -> Result<tonic::Request<T>, ServiceError> {
        principal::service_request(&self.keys, &self.config, body)
    }

    /// Asks the token service for a session for a user who just proved who they are.
    pub async fn issue_session(
        &self,
        user_id: Uuid,
        method: &str,
        context: Option<RequestContext>,
    ) -> Result<SessionTokens, ServiceError> {
        let request = self.service_request(IssueSessionRequest {
            user_id: user_id.to_string(),
            authentication_method: method.to_string(),
            context,
        })?;
        let response = self
            .token
            .clone()
            .issue_session(request)
            .await
            .map_err(ServiceError::forwarded)?;
        Ok(response.into_inner())
    }

    /// Starts a PKCE flow for a user: the link sent next will yield an auth code, not tokens.
    pub async fn create_flow_state(
        &self,
        user_id: Uuid,
        method: &str,
        code_challenge: &str,
        code_challenge_method: &str,
    ) -> Result<(), ServiceError> {
        let request = self.service_request(CreateFlowStateRequest {
            user_id: user_id.to_string(),
            authentication_method: method.to_string(),
            provider_type: method.to_string(),
            code_challenge: code_challenge.to_string(),
            code_challenge_method: code_challenge_method.to_string(),
        })?;
        self.token
            .clone()
            .create_flow_state(request)
            .await
            .map_err(ServiceError::forwarded)?;
        Ok(())
    }

    /// The auth code of the user's PKCE flow for `method`, now that its link was verified.
    pub async fn issue_auth_code(&self, user_id: Uuid, method: &str) -> Result<String, ServiceError> {
        let request = self.service_request(IssueAuthCodeRequest {
            user_id: user_id.to_string(),
            authentication_method: method.to_string(),
        })?;
        let response = self
            .token
            .clone()
            .issue_auth_code(request)
            .await
            .map_err(ServiceError::forwarded)?;
        Ok(response.into_inner().auth_code)
    }

    /// Ends the user's other sessions (all of them when `keep` is `None`).
    pub async fn revoke_sessions(&self, user_id: Uuid, keep: Option<Uuid>) -> Result<(), ServiceError> {
        let request = self.service_request(RevokeSessionsRequest {
            user_id: user_id.to_string(),
            keep_session_id: keep.map(|id| id.to_string()).unwrap_or_default(),
        })?;
        self.token
            .clone()
            .revoke_sessions(request)
            .await
            .map_err(ServiceError::forwarded)?;
        Ok(())
    }

    /// Asks the MFA service (their owner) to remove every factor and WebAuthn credential of a user.
    pub async fn delete_factors(&self, user_id: Uuid) -> Result<(), ServiceError> {
        let request = self.service_request(DeleteUserFactorsRequest {
            user_id: user_id.to_string(),
        })?;
        self.mfa
            .clone()
            .delete_user_factors(request)
            .await
            .map_err(ServiceError::forwarded)?;
        Ok(())
    }

    /// The audience of the request: `X-JWT-AUD` when sent, else `GOTRUE_JWT_AUD`.
    pub fn request_aud(&self, context: Option<&RequestContext>) -> String {
        context
            .map(|c| c.audience.clone())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| self.config.jwt.aud.clone())
    }
}

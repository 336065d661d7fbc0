//! What the MFA service works with, and its calls to the token service.

use std::sync::Arc;

use auth_account::jwt::JwtKeys;
use auth_account::principal::{self, Principal};
use auth_core::grpc::TracedChannel;
use auth_core::{Config, ServiceError};
use auth_outbox::relay::RelayHandle;
use auth_proto::common::v1 as pb;
use auth_proto::token::v1::token_service_client::TokenServiceClient;
use auth_proto::token::v1::{DowngradeFactorSessionsRequest, IssueSessionRequest, StepUpSessionRequest};
use tonic::metadata::MetadataMap;
use uuid::Uuid;

#[derive(Clone)]
pub struct MfaState {
    pub config: Arc<Config>,
    pub db: sqlx::PgPool,
    keys: Arc<JwtKeys>,
    token: TokenServiceClient<TracedChannel>,
    /// Wakes the outbox relay after a commit that wrote outbox rows (SMS codes, notifications).
    pub relay: RelayHandle,
    /// The WebAuthn relying party, built at first use (`GOTRUE_WEBAUTHN_*` may be unset when
    /// WebAuthn is not used).
    pub webauthn: Arc<std::sync::OnceLock<Arc<webauthn_rs::Webauthn>>>,
    /// The passkey relying party (the same settings, webauthn-rs's core), built at first use.
    pub passkey_rp: Arc<std::sync::OnceLock<Arc<webauthn_rs_core::WebauthnCore>>>,
}

impl MfaState {
    pub fn new(config: Arc<Config>, db: sqlx::PgPool, relay: RelayHandle) -> anyhow::Result<Self> {
        let suite = &config.suite;
        let channel =
            auth_core::grpc::traced_channel(&suite.token_url, suite.grpc_connect_timeout, suite.grpc_timeout)?;
        Ok(Self {
            keys: Arc::new(JwtKeys::from_config(&config.jwt)?),
            token: TokenServiceClient::new(channel),
            config,
            db,
            relay,
            webauthn: Arc::default(),
            passkey_rp: Arc::default(),
        })
    }

    pub async fn authenticate(&self, metadata: &MetadataMap) -> Result<Principal, ServiceError> {
        principal::authenticate(metadata, &self.keys, &self.config, &self.db).await
    }

    /// A call to the token service carrying this service's own short-lived `service_role` token.
    fn as_service<T>(&self, body: T) -> Result<tonic::Request<T>, ServiceError> {
        principal::service_request(&self.keys, &self.config, body)
    }

    /// Asks the token service (the sessions' owner) to drop a removed factor's step-up.
    pub async fn downgrade_factor_sessions(
        &self,
        user_id: Uuid,
        factor_id: Uuid,
        authentication_method: &str,
    ) -> Result<u64, ServiceError> {
        let request = self.as_service(DowngradeFactorSessionsRequest {
            user_id: user_id.to_string(),
            factor_id: factor_id.to_string(),
            authentication_method: authentication_method.to_string(),
        })?;
        let response = self
            .token
            .clone()
            .downgrade_factor_sessions(request)
            .await
            .map_err(ServiceError::forwarded)?;
        Ok(response.into_inner().downgraded)
    }

    /// Asks the token service to step the caller's session up with a factor just verified.
    pub async fn step_up_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        factor_id: Option<Uuid>,
        authentication_method: &str,
    ) -> Result<pb::SessionTokens, ServiceError> {
        let request = self.as_service(StepUpSessionRequest {
            user_id: user_id.to_string(),
            session_id: session_id.to_string(),
            factor_id: factor_id.map(|id| id.to_string()).unwrap_or_default(),
            authentication_method: authentication_method.to_string(),
            context: None,
        })?;
        let response = self
            .token
            .clone()
            .step_up_session(request)
            .await
            .map_err(ServiceError::forwarded)?;
        Ok(response.into_inner())
    }

    /// Asks the token service for a new session of a user who just signed in here (passkeys).
    pub async fn issue_session(
        &self,
        user_id: Uuid,
        authentication_method: &str,
        context: Option<pb::RequestContext>,
    ) -> Result<pb::SessionTokens, ServiceError> {
        let request = self.as_service(IssueSessionRequest {
            user_id: user_id.to_string(),
            authentication_method: authentication_method.to_string(),
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
}

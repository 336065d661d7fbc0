//! What the sso service works with: the configuration, the HTTP client for providers, and its
//! calls to the user service (accounts) and the token service (flows and sessions), each carrying
//! this service's own short-lived `service_role` token.

use std::sync::Arc;
use std::time::Duration;

use auth_account::jwt::JwtKeys;
use auth_account::principal;
use auth_core::grpc::TracedChannel;
use auth_core::{Config, ServiceError};
use auth_proto::token::v1::token_service_client::TokenServiceClient;
use auth_proto::token::v1::{
    ExternalFlow, FinishExternalFlowRequest, FinishExternalFlowResponse, IssueSessionRequest, LoadExternalFlowRequest,
    StartExternalFlowRequest,
};
use auth_proto::user::v1::user_service_client::UserServiceClient;
use auth_proto::user::v1::{ExternalIdentityRequest, ExternalIdentityResponse, LinkExternalIdentityRequest};

use crate::http::ProviderHttp;
use crate::oidc::OidcCache;

/// GoTrue's `GOTRUE_INTERNAL_HTTP_TIMEOUT` default for calls to providers.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct SsoState {
    pub config: Arc<Config>,
    /// Read only, to authenticate the callers of manual linking.
    pub db: sqlx::PgPool,
    pub http: ProviderHttp,
    /// Issuers' discovery documents and keys, for ID tokens.
    pub oidc: OidcCache,
    keys: Arc<JwtKeys>,
    token: TokenServiceClient<TracedChannel>,
    user: UserServiceClient<TracedChannel>,
}

impl SsoState {
    pub fn new(config: Arc<Config>, db: sqlx::PgPool) -> anyhow::Result<Self> {
        let suite = &config.suite;
        let channel = |url: &str| auth_core::grpc::traced_channel(url, suite.grpc_connect_timeout, suite.grpc_timeout);
        let http = ProviderHttp::new(PROVIDER_TIMEOUT, config.external.provider_ca_certs.as_deref())?;
        Ok(Self {
            oidc: OidcCache::new(
                http.clone(),
                config.external.oidc_provider_cache_ttl,
                config.external.oidc_jwks_refresh_interval,
            ),
            http,
            keys: Arc::new(JwtKeys::from_config(&config.jwt)?),
            token: TokenServiceClient::new(channel(&suite.token_url)?),
            user: UserServiceClient::new(channel(&suite.user_url)?),
            config,
            db,
        })
    }

    /// The caller of a user's own request, with the REST API's checks.
    pub async fn authenticate(
        &self,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<principal::Principal, ServiceError> {
        principal::authenticate(metadata, &self.keys, &self.config, &self.db).await
    }

    fn as_service<T>(&self, body: T) -> Result<tonic::Request<T>, ServiceError> {
        principal::service_request(&self.keys, &self.config, body)
    }

    pub async fn start_flow(&self, request: StartExternalFlowRequest) -> Result<String, ServiceError> {
        let request = self.as_service(request)?;
        let response = self
            .token
            .clone()
            .start_external_flow(request)
            .await
            .map_err(ServiceError::forwarded)?;
        Ok(response.into_inner().flow_state_id)
    }

    pub async fn load_flow(&self, flow_state_id: &str) -> Result<ExternalFlow, ServiceError> {
        let request = self.as_service(LoadExternalFlowRequest {
            flow_state_id: flow_state_id.to_string(),
        })?;
        let response = self
            .token
            .clone()
            .load_external_flow(request)
            .await
            .map_err(ServiceError::forwarded)?;
        Ok(response.into_inner())
    }

    pub async fn finish_flow(
        &self,
        request: FinishExternalFlowRequest,
    ) -> Result<FinishExternalFlowResponse, ServiceError> {
        let request = self.as_service(request)?;
        let response = self
            .token
            .clone()
            .finish_external_flow(request)
            .await
            .map_err(ServiceError::forwarded)?;
        Ok(response.into_inner())
    }

    pub async fn sign_in_identity(
        &self,
        request: ExternalIdentityRequest,
    ) -> Result<ExternalIdentityResponse, ServiceError> {
        let request = self.as_service(request)?;
        let response = self
            .user
            .clone()
            .sign_in_with_external_identity(request)
            .await
            .map_err(ServiceError::forwarded)?;
        Ok(response.into_inner())
    }

    pub async fn link_identity(
        &self,
        target_user_id: &str,
        identity: ExternalIdentityRequest,
    ) -> Result<ExternalIdentityResponse, ServiceError> {
        let request = self.as_service(LinkExternalIdentityRequest {
            target_user_id: target_user_id.to_string(),
            identity: Some(identity),
        })?;
        let response = self
            .user
            .clone()
            .link_external_identity(request)
            .await
            .map_err(ServiceError::forwarded)?;
        Ok(response.into_inner())
    }

    /// A session for a user an ID token signed in (amr `oauth`, as GoTrue records it).
    pub async fn issue_session(
        &self,
        user_id: &str,
        context: Option<auth_proto::common::v1::RequestContext>,
    ) -> Result<auth_proto::common::v1::SessionTokens, ServiceError> {
        let request = self.as_service(IssueSessionRequest {
            user_id: user_id.to_string(),
            authentication_method: "oauth".into(),
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

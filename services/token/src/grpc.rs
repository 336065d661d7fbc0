//! gRPC handlers: authenticate, decode, call the domain, encode. No logic lives here.

use std::sync::Arc;

use auth_account::jwt::JwtKeys;
use auth_account::principal;
use auth_core::{Config, ErrorCode, ServiceError};
use auth_proto::common::v1::SessionTokens;
use auth_proto::token::v1::{
    CreateFlowStateRequest, CreateFlowStateResponse, DowngradeFactorSessionsRequest, DowngradeFactorSessionsResponse,
    ExchangeAuthCodeRequest, ExternalFlow, FinishExternalFlowRequest, FinishExternalFlowResponse, GetJwksRequest,
    GetJwksResponse, IssueAuthCodeRequest, IssueAuthCodeResponse, IssueSessionRequest, LoadExternalFlowRequest,
    LogoutRequest, LogoutResponse, RefreshSessionRequest, RevokeSessionsRequest, RevokeSessionsResponse,
    StartExternalFlowRequest, StepUpSessionRequest, VerifyAccessTokenRequest, VerifyAccessTokenResponse,
    token_service_server::TokenService,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::jwks;
use crate::session::{Client, TokenState};

pub struct TokenGrpc {
    state: TokenState,
    /// The published key set never changes while the process runs: built once, served from memory.
    public_keys_json: Vec<String>,
}

impl TokenGrpc {
    pub fn new(config: Arc<Config>, db: sqlx::PgPool) -> anyhow::Result<Self> {
        let public_keys_json = jwks::public_jwks(&config.jwt.keys)?
            .iter()
            .map(|key| serde_json::Value::Object(key.clone()).to_string())
            .collect();
        let keys = Arc::new(JwtKeys::from_config(&config.jwt)?);
        Ok(Self {
            state: TokenState { config, db, keys },
            public_keys_json,
        })
    }

    async fn authenticate<T>(&self, request: &Request<T>) -> Result<principal::Principal, ServiceError> {
        let state = &self.state;
        principal::authenticate(request.metadata(), &state.keys, &state.config, &state.db).await
    }
}

fn parse_uuid(value: &str, what: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(value)
        .map_err(|_| ServiceError::bad_request(ErrorCode::ValidationFailed, format!("{what} must be a UUID")))
}

#[tonic::async_trait]
impl TokenService for TokenGrpc {
    #[tracing::instrument(skip_all)]
    async fn get_jwks(&self, _request: Request<GetJwksRequest>) -> Result<Response<GetJwksResponse>, Status> {
        Ok(Response::new(GetJwksResponse {
            keys_json: self.public_keys_json.clone(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn issue_session(&self, request: Request<IssueSessionRequest>) -> Result<Response<SessionTokens>, Status> {
        self.authenticate(&request).await?.require_admin()?;
        let body = request.into_inner();
        let user_id = parse_uuid(&body.user_id, "user_id")?;
        let client = Client::from_proto(body.context.as_ref());
        let tokens = self
            .state
            .issue_session(user_id, &body.authentication_method, &client)
            .await?;
        Ok(Response::new(tokens))
    }

    #[tracing::instrument(skip_all)]
    async fn refresh_session(
        &self,
        request: Request<RefreshSessionRequest>,
    ) -> Result<Response<SessionTokens>, Status> {
        let body = request.into_inner();
        let client = Client::from_proto(body.context.as_ref());
        Ok(Response::new(self.state.refresh(&body.refresh_token, &client).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn logout(&self, request: Request<LogoutRequest>) -> Result<Response<LogoutResponse>, Status> {
        let principal = self.authenticate(&request).await?;
        let scope = request.into_inner().scope;
        let scope = match scope.as_str() {
            "" | "global" => "global",
            "local" => "local",
            "others" => "others",
            _ => {
                return Err(ServiceError::bad_request(
                    ErrorCode::ValidationFailed,
                    format!("Unsupported logout scope {scope:?}"),
                )
                .into());
            }
        };
        let user = principal.require_user()?;
        let session = principal.session.as_ref().map(|s| s.id);
        self.state.logout(user, session, scope).await?;
        Ok(Response::new(LogoutResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn verify_access_token(
        &self,
        request: Request<VerifyAccessTokenRequest>,
    ) -> Result<Response<VerifyAccessTokenResponse>, Status> {
        let token = request.into_inner().access_token;
        let mut metadata = tonic::metadata::MetadataMap::new();
        if let Ok(value) = format!("Bearer {token}").parse() {
            metadata.insert("authorization", value);
        }
        let state = &self.state;
        let principal = principal::authenticate(&metadata, &state.keys, &state.config, &state.db).await?;
        Ok(Response::new(VerifyAccessTokenResponse {
            claims_json: serde_json::Value::Object(principal.claims.raw.clone()).to_string(),
            user: principal.user.as_ref().map(|u| u.to_proto()),
            session_id: principal.session.as_ref().map(|s| s.id.to_string()).unwrap_or_default(),
            is_admin: principal.is_admin,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_sessions(
        &self,
        request: Request<RevokeSessionsRequest>,
    ) -> Result<Response<RevokeSessionsResponse>, Status> {
        self.authenticate(&request).await?.require_admin()?;
        let body = request.into_inner();
        let user_id = parse_uuid(&body.user_id, "user_id")?;
        let keep = match body.keep_session_id.as_str() {
            "" => None,
            id => Some(parse_uuid(id, "keep_session_id")?),
        };
        let revoked = self.state.revoke_sessions(user_id, keep).await?;
        Ok(Response::new(RevokeSessionsResponse { revoked }))
    }

    #[tracing::instrument(skip_all)]
    async fn downgrade_factor_sessions(
        &self,
        request: Request<DowngradeFactorSessionsRequest>,
    ) -> Result<Response<DowngradeFactorSessionsResponse>, Status> {
        self.authenticate(&request).await?.require_admin()?;
        let body = request.into_inner();
        let user_id = parse_uuid(&body.user_id, "user_id")?;
        let factor_id = parse_uuid(&body.factor_id, "factor_id")?;
        let downgraded = self
            .state
            .downgrade_factor_sessions(user_id, factor_id, &body.authentication_method)
            .await?;
        Ok(Response::new(DowngradeFactorSessionsResponse { downgraded }))
    }

    #[tracing::instrument(skip_all)]
    async fn step_up_session(&self, request: Request<StepUpSessionRequest>) -> Result<Response<SessionTokens>, Status> {
        self.authenticate(&request).await?.require_admin()?;
        let body = request.into_inner();
        let tokens = self
            .state
            .step_up_session(
                parse_uuid(&body.user_id, "user_id")?,
                parse_uuid(&body.session_id, "session_id")?,
                // empty: a recovery code, which is no factor
                match body.factor_id.as_str() {
                    "" => None,
                    id => Some(parse_uuid(id, "factor_id")?),
                },
                &body.authentication_method,
            )
            .await?;
        Ok(Response::new(tokens))
    }

    #[tracing::instrument(skip_all)]
    async fn create_flow_state(
        &self,
        request: Request<CreateFlowStateRequest>,
    ) -> Result<Response<CreateFlowStateResponse>, Status> {
        self.authenticate(&request).await?.require_admin()?;
        let body = request.into_inner();
        let user_id = parse_uuid(&body.user_id, "user_id")?;
        let id = self
            .state
            .create_flow_state(
                user_id,
                &body.authentication_method,
                &body.provider_type,
                &body.code_challenge,
                &body.code_challenge_method,
            )
            .await?;
        Ok(Response::new(CreateFlowStateResponse {
            flow_state_id: id.to_string(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn issue_auth_code(
        &self,
        request: Request<IssueAuthCodeRequest>,
    ) -> Result<Response<IssueAuthCodeResponse>, Status> {
        self.authenticate(&request).await?.require_admin()?;
        let body = request.into_inner();
        let user_id = parse_uuid(&body.user_id, "user_id")?;
        let auth_code = self.state.issue_auth_code(user_id, &body.authentication_method).await?;
        Ok(Response::new(IssueAuthCodeResponse { auth_code }))
    }

    #[tracing::instrument(skip_all)]
    async fn start_external_flow(
        &self,
        request: Request<StartExternalFlowRequest>,
    ) -> Result<Response<CreateFlowStateResponse>, Status> {
        self.authenticate(&request).await?.require_admin()?;
        let id = self.state.start_external_flow(request.get_ref()).await?;
        Ok(Response::new(CreateFlowStateResponse {
            flow_state_id: id.to_string(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn load_external_flow(
        &self,
        request: Request<LoadExternalFlowRequest>,
    ) -> Result<Response<ExternalFlow>, Status> {
        self.authenticate(&request).await?.require_admin()?;
        let flow = self.state.load_external_flow(&request.get_ref().flow_state_id).await?;
        Ok(Response::new(flow))
    }

    #[tracing::instrument(skip_all)]
    async fn finish_external_flow(
        &self,
        request: Request<FinishExternalFlowRequest>,
    ) -> Result<Response<FinishExternalFlowResponse>, Status> {
        self.authenticate(&request).await?.require_admin()?;
        let body = request.into_inner();
        let user_id = parse_uuid(&body.user_id, "user_id")?;
        let client = Client::from_proto(body.context.as_ref());
        let response = self
            .state
            .finish_external_flow(
                &body.flow_state_id,
                user_id,
                &body.provider_access_token,
                &body.provider_refresh_token,
                &client,
            )
            .await?;
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all)]
    async fn exchange_auth_code(
        &self,
        request: Request<ExchangeAuthCodeRequest>,
    ) -> Result<Response<SessionTokens>, Status> {
        let body = request.into_inner();
        let client = Client::from_proto(body.context.as_ref());
        let tokens = self
            .state
            .exchange_auth_code(&body.auth_code, &body.code_verifier, &client)
            .await?;
        Ok(Response::new(tokens))
    }
}

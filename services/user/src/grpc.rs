//! gRPC handlers: authenticate, decode, call the domain, encode. No logic lives here.

use auth_core::{ErrorCode, ServiceError};
use auth_proto::common::v1::{SessionTokens, User};
use auth_proto::user::v1::{
    AdminDeleteUserRequest, AdminDeleteUserResponse, AdminListUsersRequest, AdminListUsersResponse,
    AdminUserAttributes, AdminUserRequest, ExternalIdentityRequest, ExternalIdentityResponse, GenerateLinkRequest,
    GenerateLinkResponse, GetUserRequest, InviteRequest, LinkExternalIdentityRequest, ListAuditLogRequest,
    ListAuditLogResponse, ReauthenticateRequest, RecoverRequest, ResendRequest, SendOtpRequest, SendResponse,
    SignInWithPasswordRequest, SignUpRequest, SignUpResponse, UnlinkIdentityRequest, UnlinkIdentityResponse,
    UpdateUserRequest, VerifyRequest, VerifyResponse, user_service_server::UserService,
};
use tonic::{Request, Response, Status};

use crate::state::UserState;

pub struct UserGrpc {
    pub state: UserState,
}

#[tonic::async_trait]
impl UserService for UserGrpc {
    #[tracing::instrument(skip_all)]
    async fn sign_up(&self, request: Request<SignUpRequest>) -> Result<Response<SignUpResponse>, Status> {
        Ok(Response::new(self.state.sign_up(request.into_inner()).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn sign_in_with_password(
        &self,
        request: Request<SignInWithPasswordRequest>,
    ) -> Result<Response<SessionTokens>, Status> {
        Ok(Response::new(
            self.state.sign_in_with_password(request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn get_user(&self, request: Request<GetUserRequest>) -> Result<Response<User>, Status> {
        let token = self.state.verify_bearer(request.metadata())?;
        let token_aud = token.claims.aud().map(str::to_owned);
        let user = self.state.current_user(token).await?;
        // GoTrue's UserGet: the token must be for the audience the request asks for.
        let audience = self.state.request_aud(request.get_ref().context.as_ref());
        if token_aud.as_deref() != Some(audience.as_str()) {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "Token audience doesn't match request audience",
            )
            .into());
        }
        Ok(Response::new(user))
    }

    #[tracing::instrument(skip_all)]
    async fn update_user(&self, request: Request<UpdateUserRequest>) -> Result<Response<User>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        let updated = self.state.update_user(&principal, request.into_inner()).await;
        self.forget_own_change(principal.user.as_ref().map(|user| user.id));
        Ok(Response::new(updated?))
    }

    #[tracing::instrument(skip_all)]
    async fn verify(&self, request: Request<VerifyRequest>) -> Result<Response<VerifyResponse>, Status> {
        Ok(Response::new(self.state.verify(request.into_inner()).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn recover(&self, request: Request<RecoverRequest>) -> Result<Response<SendResponse>, Status> {
        Ok(Response::new(self.state.recover(request.into_inner()).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn send_otp(&self, request: Request<SendOtpRequest>) -> Result<Response<SendResponse>, Status> {
        Ok(Response::new(self.state.send_otp(request.into_inner()).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn resend(&self, request: Request<ResendRequest>) -> Result<Response<SendResponse>, Status> {
        Ok(Response::new(self.state.resend(request.into_inner()).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn admin_list_users(
        &self,
        request: Request<AdminListUsersRequest>,
    ) -> Result<Response<AdminListUsersResponse>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        Ok(Response::new(
            self.state.admin_list_users(&principal, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn admin_get_user(&self, request: Request<AdminUserRequest>) -> Result<Response<User>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        Ok(Response::new(
            self.state.admin_get_user(&principal, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn admin_create_user(&self, request: Request<AdminUserAttributes>) -> Result<Response<User>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        Ok(Response::new(
            self.state.admin_create_user(&principal, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn admin_update_user(&self, request: Request<AdminUserAttributes>) -> Result<Response<User>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        let target = request.get_ref().user_id.parse().ok();
        let updated = self.state.admin_update_user(&principal, request.into_inner()).await;
        self.forget_own_change(target);
        Ok(Response::new(updated?))
    }

    #[tracing::instrument(skip_all)]
    async fn admin_delete_user(
        &self,
        request: Request<AdminDeleteUserRequest>,
    ) -> Result<Response<AdminDeleteUserResponse>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        let target = request.get_ref().user_id.parse().ok();
        let deleted = self.state.admin_delete_user(&principal, request.into_inner()).await;
        self.forget_own_change(target);
        deleted?;
        Ok(Response::new(AdminDeleteUserResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn invite(&self, request: Request<InviteRequest>) -> Result<Response<User>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        Ok(Response::new(
            self.state.invite(&principal, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn generate_link(
        &self,
        request: Request<GenerateLinkRequest>,
    ) -> Result<Response<GenerateLinkResponse>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        Ok(Response::new(
            self.state.generate_link(&principal, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn list_audit_log(
        &self,
        request: Request<ListAuditLogRequest>,
    ) -> Result<Response<ListAuditLogResponse>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        Ok(Response::new(
            self.state.list_audit_log(&principal, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn sign_in_with_external_identity(
        &self,
        request: Request<ExternalIdentityRequest>,
    ) -> Result<Response<ExternalIdentityResponse>, Status> {
        self.state.authenticate(request.metadata()).await?.require_admin()?;
        Ok(Response::new(
            self.state.sign_in_with_external_identity(request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn link_external_identity(
        &self,
        request: Request<LinkExternalIdentityRequest>,
    ) -> Result<Response<ExternalIdentityResponse>, Status> {
        self.state.authenticate(request.metadata()).await?.require_admin()?;
        let body = request.into_inner();
        let identity = body.identity.unwrap_or_default();
        Ok(Response::new(
            self.state
                .link_external_identity(&body.target_user_id, identity)
                .await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn unlink_identity(
        &self,
        request: Request<UnlinkIdentityRequest>,
    ) -> Result<Response<UnlinkIdentityResponse>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        self.state.unlink_identity(&principal, request.into_inner()).await?;
        Ok(Response::new(UnlinkIdentityResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn reauthenticate(&self, request: Request<ReauthenticateRequest>) -> Result<Response<SendResponse>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        let sent = self.state.reauthenticate(&principal, request.into_inner()).await;
        self.forget_own_change(principal.user.as_ref().map(|user| user.id));
        Ok(Response::new(sent?))
    }
}

impl UserGrpc {
    /// After a change this replica made to a user: its cached GET /user answer goes now, not when
    /// Postgres' notification arrives (the caller's next request may come first).
    fn forget_own_change(&self, user_id: Option<uuid::Uuid>) {
        if let Some(user_id) = user_id {
            self.state.accounts.forget(user_id);
        }
    }
}

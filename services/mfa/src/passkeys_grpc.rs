//! gRPC handlers of `PasskeyService`: check the feature is on (GoTrue answers a disabled feature
//! before looking at the caller), authenticate, call the domain (`passkeys/`), encode.

use auth_proto::common::v1::SessionTokens;
use auth_proto::mfa::v1::passkey_service_server::PasskeyService;
use auth_proto::mfa::v1::{
    DeletePasskeyResponse, Passkey, PasskeyCeremony, PasskeyList, PasskeyOptionsRequest, PasskeyRef,
    PasskeyVerifyRequest, RenamePasskeyRequest,
};
use tonic::{Request, Response, Status};

use crate::state::MfaState;

pub struct PasskeyGrpc {
    pub state: MfaState,
}

#[tonic::async_trait]
impl PasskeyService for PasskeyGrpc {
    #[tracing::instrument(skip_all)]
    async fn registration_options(
        &self,
        request: Request<PasskeyOptionsRequest>,
    ) -> Result<Response<PasskeyCeremony>, Status> {
        self.state.require_passkeys()?;
        let principal = self.state.authenticate(request.metadata()).await?;
        Ok(Response::new(
            self.state.passkey_registration_options(&principal).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn registration_verify(&self, request: Request<PasskeyVerifyRequest>) -> Result<Response<Passkey>, Status> {
        self.state.require_passkeys()?;
        let principal = self.state.authenticate(request.metadata()).await?;
        Ok(Response::new(
            self.state
                .passkey_registration_verify(&principal, request.into_inner())
                .await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn authentication_options(
        &self,
        _request: Request<PasskeyOptionsRequest>,
    ) -> Result<Response<PasskeyCeremony>, Status> {
        Ok(Response::new(self.state.passkey_authentication_options().await?))
    }

    #[tracing::instrument(skip_all)]
    async fn authentication_verify(
        &self,
        request: Request<PasskeyVerifyRequest>,
    ) -> Result<Response<SessionTokens>, Status> {
        Ok(Response::new(
            self.state.passkey_authentication_verify(request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn list(&self, request: Request<PasskeyOptionsRequest>) -> Result<Response<PasskeyList>, Status> {
        self.state.require_passkeys()?;
        let principal = self.state.authenticate(request.metadata()).await?;
        Ok(Response::new(self.state.list_passkeys(&principal).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn rename(&self, request: Request<RenamePasskeyRequest>) -> Result<Response<Passkey>, Status> {
        self.state.require_passkeys()?;
        let principal = self.state.authenticate(request.metadata()).await?;
        Ok(Response::new(
            self.state.rename_passkey(&principal, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn delete(&self, request: Request<PasskeyRef>) -> Result<Response<DeletePasskeyResponse>, Status> {
        self.state.require_passkeys()?;
        let principal = self.state.authenticate(request.metadata()).await?;
        self.state.delete_passkey(&principal, request.into_inner()).await?;
        Ok(Response::new(DeletePasskeyResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn admin_list(&self, request: Request<PasskeyRef>) -> Result<Response<PasskeyList>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        Ok(Response::new(
            self.state.admin_list_passkeys(&principal, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn admin_delete(&self, request: Request<PasskeyRef>) -> Result<Response<DeletePasskeyResponse>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        self.state
            .admin_delete_passkey(&principal, request.into_inner())
            .await?;
        Ok(Response::new(DeletePasskeyResponse {}))
    }
}

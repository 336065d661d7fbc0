//! gRPC handlers: authenticate, call the domain, encode. No logic lives here.

use auth_proto::common::v1::{Factor, SessionTokens};
use auth_proto::mfa::v1::mfa_service_server::MfaService;
use auth_proto::mfa::v1::{
    AdminFactorRequest, AdminListFactorsRequest, AdminListFactorsResponse, AdminUpdateFactorRequest,
    ChallengeFactorRequest, ChallengeFactorResponse, DeleteUserFactorsRequest, DeleteUserFactorsResponse,
    EnrollFactorRequest, EnrollFactorResponse, GenerateRecoveryCodesResponse, RecoveryCodesRequest,
    RecoveryCodesStatusResponse, UnenrollFactorRequest, UnenrollFactorResponse, UseRecoveryCodeRequest,
    VerifyFactorRequest,
};
use tonic::{Request, Response, Status};

use crate::state::MfaState;

pub struct MfaGrpc {
    pub state: MfaState,
}

#[tonic::async_trait]
impl MfaService for MfaGrpc {
    #[tracing::instrument(skip_all)]
    async fn enroll(&self, request: Request<EnrollFactorRequest>) -> Result<Response<EnrollFactorResponse>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        Ok(Response::new(
            self.state.enroll(&principal, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn challenge(
        &self,
        request: Request<ChallengeFactorRequest>,
    ) -> Result<Response<ChallengeFactorResponse>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        Ok(Response::new(
            self.state.challenge(&principal, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn verify(&self, request: Request<VerifyFactorRequest>) -> Result<Response<SessionTokens>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        Ok(Response::new(
            self.state.verify(&principal, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn unenroll(
        &self,
        request: Request<UnenrollFactorRequest>,
    ) -> Result<Response<UnenrollFactorResponse>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        Ok(Response::new(
            self.state.unenroll(&principal, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn generate_recovery_codes(
        &self,
        request: Request<RecoveryCodesRequest>,
    ) -> Result<Response<GenerateRecoveryCodesResponse>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        Ok(Response::new(self.state.generate_recovery_codes(&principal).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn recovery_codes_status(
        &self,
        request: Request<RecoveryCodesRequest>,
    ) -> Result<Response<RecoveryCodesStatusResponse>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        Ok(Response::new(self.state.recovery_codes_status(&principal).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn use_recovery_code(
        &self,
        request: Request<UseRecoveryCodeRequest>,
    ) -> Result<Response<SessionTokens>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        let code = request.into_inner().code;
        Ok(Response::new(self.state.use_recovery_code(&principal, &code).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn admin_list_factors(
        &self,
        request: Request<AdminListFactorsRequest>,
    ) -> Result<Response<AdminListFactorsResponse>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        let factors = self.state.admin_list_factors(&principal, request.into_inner()).await?;
        Ok(Response::new(AdminListFactorsResponse { factors }))
    }

    #[tracing::instrument(skip_all)]
    async fn admin_update_factor(
        &self,
        request: Request<AdminUpdateFactorRequest>,
    ) -> Result<Response<Factor>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        Ok(Response::new(
            self.state.admin_update_factor(&principal, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn admin_delete_factor(&self, request: Request<AdminFactorRequest>) -> Result<Response<Factor>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        Ok(Response::new(
            self.state.admin_delete_factor(&principal, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_user_factors(
        &self,
        request: Request<DeleteUserFactorsRequest>,
    ) -> Result<Response<DeleteUserFactorsResponse>, Status> {
        let principal = self.state.authenticate(request.metadata()).await?;
        Ok(Response::new(
            self.state.delete_user_factors(&principal, request.into_inner()).await?,
        ))
    }
}

//! gRPC handlers: authenticate, call the domain, encode. No logic lives here.

use auth_proto::common::v1::Factor;
use auth_proto::mfa::v1::mfa_service_server::MfaService;
use auth_proto::mfa::v1::{
    AdminFactorRequest, AdminListFactorsRequest, AdminListFactorsResponse, AdminUpdateFactorRequest,
    DeleteUserFactorsRequest, DeleteUserFactorsResponse,
};
use tonic::{Request, Response, Status};

use crate::state::MfaState;

pub struct MfaGrpc {
    pub state: MfaState,
}

#[tonic::async_trait]
impl MfaService for MfaGrpc {
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

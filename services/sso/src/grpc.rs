//! gRPC handlers: decode, call the flow, encode. The gateway is the only caller of these browser
//! flows; they need no caller token (the flow's `state` is what binds a callback to its start).

use auth_proto::sso::v1::sso_service_server::SsoService;
use auth_proto::sso::v1::{AuthorizeRequest, AuthorizeResponse, CallbackRequest, CallbackResponse};
use tonic::{Request, Response, Status};

use crate::state::SsoState;

pub struct SsoGrpc {
    pub state: SsoState,
}

#[tonic::async_trait]
impl SsoService for SsoGrpc {
    #[tracing::instrument(skip_all)]
    async fn authorize(&self, request: Request<AuthorizeRequest>) -> Result<Response<AuthorizeResponse>, Status> {
        Ok(Response::new(self.state.authorize(request.into_inner()).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn callback(&self, request: Request<CallbackRequest>) -> Result<Response<CallbackResponse>, Status> {
        Ok(Response::new(self.state.callback(request.into_inner()).await?))
    }
}

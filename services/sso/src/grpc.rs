//! gRPC handlers: decode, call the flow, encode. The browser flows need no caller token (the flow's
//! `state` binds a callback to its start), except manual linking, which acts for the caller.

use auth_proto::common::v1::SessionTokens;
use auth_proto::sso::v1::sso_service_server::SsoService;
use auth_proto::sso::v1::{
    AuthorizeRequest, AuthorizeResponse, CallbackRequest, CallbackResponse, CustomProvider, CustomProviderParams,
    CustomProviderRef, DeleteCustomProviderResponse, IdTokenRequest, ListCustomProvidersRequest,
    ListCustomProvidersResponse,
};
use tonic::{Request, Response, Status};

use crate::state::SsoState;

pub struct SsoGrpc {
    pub state: SsoState,
}

#[tonic::async_trait]
impl SsoService for SsoGrpc {
    #[tracing::instrument(skip_all)]
    async fn authorize(&self, request: Request<AuthorizeRequest>) -> Result<Response<AuthorizeResponse>, Status> {
        // Manual linking acts for the caller: the REST API's authentication, then its user.
        let linking_target = if request.get_ref().link_identity {
            let principal = self.state.authenticate(request.metadata()).await?;
            Some(principal.require_user()?.id)
        } else {
            None
        };
        Ok(Response::new(
            self.state.authorize(request.into_inner(), linking_target).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn sign_in_with_id_token(&self, request: Request<IdTokenRequest>) -> Result<Response<SessionTokens>, Status> {
        // GoTrue checks the parameters before it looks at a linking caller.
        let linking_target = if request.get_ref().link_identity && !request.get_ref().id_token.is_empty() {
            if request.metadata().get("authorization").is_none() {
                return Err(auth_core::ServiceError::oauth(
                    "invalid request",
                    "Linking requires a valid user access token in Authorization",
                )
                .into());
            }
            let principal = self.state.authenticate(request.metadata()).await?;
            Some(principal.require_user()?.id)
        } else {
            None
        };
        Ok(Response::new(
            self.state
                .sign_in_with_id_token(request.into_inner(), linking_target)
                .await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn callback(&self, request: Request<CallbackRequest>) -> Result<Response<CallbackResponse>, Status> {
        Ok(Response::new(self.state.callback(request.into_inner()).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn list_custom_providers(
        &self,
        request: Request<ListCustomProvidersRequest>,
    ) -> Result<Response<ListCustomProvidersResponse>, Status> {
        self.require_admin(&request).await?;
        let providers = self
            .state
            .list_custom_providers(&request.get_ref().provider_type)
            .await?;
        Ok(Response::new(ListCustomProvidersResponse { providers }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_custom_provider(
        &self,
        request: Request<CustomProviderRef>,
    ) -> Result<Response<CustomProvider>, Status> {
        self.require_admin(&request).await?;
        Ok(Response::new(
            self.state.get_custom_provider(&request.get_ref().identifier).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn create_custom_provider(
        &self,
        request: Request<CustomProviderParams>,
    ) -> Result<Response<CustomProvider>, Status> {
        self.require_admin(&request).await?;
        Ok(Response::new(
            self.state.create_custom_provider(request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn update_custom_provider(
        &self,
        request: Request<CustomProviderParams>,
    ) -> Result<Response<CustomProvider>, Status> {
        self.require_admin(&request).await?;
        Ok(Response::new(
            self.state.update_custom_provider(request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_custom_provider(
        &self,
        request: Request<CustomProviderRef>,
    ) -> Result<Response<DeleteCustomProviderResponse>, Status> {
        self.require_admin(&request).await?;
        self.state.delete_custom_provider(&request.get_ref().identifier).await?;
        Ok(Response::new(DeleteCustomProviderResponse {}))
    }
}

impl SsoGrpc {
    /// The admin API's callers: a valid token of an admin role.
    async fn require_admin<T>(&self, request: &Request<T>) -> Result<(), auth_core::ServiceError> {
        self.state.authenticate(request.metadata()).await?.require_admin()
    }
}

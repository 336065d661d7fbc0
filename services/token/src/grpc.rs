//! gRPC handlers: decode, call the domain, encode. No logic lives here.

use auth_core::Config;
use auth_proto::token::v1::{GetJwksRequest, GetJwksResponse, token_service_server::TokenService};
use tonic::{Request, Response, Status};

use crate::jwks;

pub struct TokenGrpc {
    /// The published key set never changes while the process runs: built once, served from memory.
    public_keys_json: Vec<String>,
}

impl TokenGrpc {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let public_keys_json = jwks::public_jwks(&config.jwt.keys)?
            .iter()
            .map(|key| serde_json::Value::Object(key.clone()).to_string())
            .collect();
        Ok(Self { public_keys_json })
    }
}

#[tonic::async_trait]
impl TokenService for TokenGrpc {
    #[tracing::instrument(skip_all)]
    async fn get_jwks(&self, _request: Request<GetJwksRequest>) -> Result<Response<GetJwksResponse>, Status> {
        Ok(Response::new(GetJwksResponse {
            keys_json: self.public_keys_json.clone(),
        }))
    }
}

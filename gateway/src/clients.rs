//! gRPC clients of the services. Each wraps one lazily-connected channel: HTTP/2 multiplexes every
//! concurrent call over it, it reconnects by itself after a service restarts, and a call to a service
//! that is down fails within the connect timeout instead of hanging.

use auth_core::config::SuiteConfig;
use auth_core::grpc::TracedChannel;
use auth_proto::mfa::v1::mfa_service_client::MfaServiceClient;
use auth_proto::mfa::v1::passkey_service_client::PasskeyServiceClient;
use auth_proto::sso::v1::sso_service_client::SsoServiceClient;
use auth_proto::token::v1::token_service_client::TokenServiceClient;
use auth_proto::user::v1::user_service_client::UserServiceClient;

#[derive(Clone)]
pub struct ServiceClients {
    pub token: TokenServiceClient<TracedChannel>,
    pub user: UserServiceClient<TracedChannel>,
    pub mfa: MfaServiceClient<TracedChannel>,
    /// The mfa process's passkey API, over the same channel as `mfa`.
    pub passkeys: PasskeyServiceClient<TracedChannel>,
    pub sso: SsoServiceClient<TracedChannel>,
}

/// The largest answer the gateway reads from a service. GoTrue bounds neither a user's metadata (only
/// the 1 MiB body) nor `per_page`, so an admin listing of users with large metadata can be tens of
/// MiB; tonic's default of 4 MiB would turn it into a 500.
pub const MAX_ANSWER_BYTES: usize = 256 << 20;

impl ServiceClients {
    pub fn new(suite: &SuiteConfig) -> anyhow::Result<Self> {
        let channel = |url: &str| auth_core::grpc::traced_channel(url, suite.grpc_connect_timeout, suite.grpc_timeout);
        let mfa_channel = channel(&suite.mfa_url)?;
        Ok(Self {
            token: TokenServiceClient::new(channel(&suite.token_url)?).max_decoding_message_size(MAX_ANSWER_BYTES),
            user: UserServiceClient::new(channel(&suite.user_url)?).max_decoding_message_size(MAX_ANSWER_BYTES),
            mfa: MfaServiceClient::new(mfa_channel.clone()).max_decoding_message_size(MAX_ANSWER_BYTES),
            passkeys: PasskeyServiceClient::new(mfa_channel).max_decoding_message_size(MAX_ANSWER_BYTES),
            sso: SsoServiceClient::new(channel(&suite.sso_url)?),
        })
    }
}

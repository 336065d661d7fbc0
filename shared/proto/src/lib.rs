//! Generated code for the suite's protobuf packages (`proto/auth/<svc>/v1`).
//!
//! Each module mirrors a package: `auth_proto::token::v1::token_service_client::TokenServiceClient`, etc.

#![allow(clippy::all, clippy::pedantic, missing_docs, rust_2018_idioms)]

pub mod common {
    pub mod v1 {
        tonic::include_proto!("auth.common.v1");
    }
}

pub mod token {
    pub mod v1 {
        tonic::include_proto!("auth.token.v1");
    }
}

pub mod user {
    pub mod v1 {
        tonic::include_proto!("auth.user.v1");
    }
}

pub mod mfa {
    pub mod v1 {
        tonic::include_proto!("auth.mfa.v1");
    }
}

pub mod sso {
    pub mod v1 {
        tonic::include_proto!("auth.sso.v1");
    }
}

pub mod notification {
    pub mod v1 {
        tonic::include_proto!("auth.notification.v1");
    }
}

/// Fully-qualified gRPC service names, as registered with the health service.
pub mod service_names {
    pub const TOKEN: &str = "auth.token.v1.TokenService";
    pub const USER: &str = "auth.user.v1.UserService";
    pub const MFA: &str = "auth.mfa.v1.MfaService";
    pub const SSO: &str = "auth.sso.v1.SsoService";
    pub const NOTIFICATION: &str = "auth.notification.v1.NotificationService";
}

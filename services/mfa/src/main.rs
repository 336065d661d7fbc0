use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    auth_core::runtime::run_service("mfa", |c| &c.suite.mfa_url, auth_mfa::serve).await
}

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    auth_core::runtime::run_service("sso", |c| &c.suite.sso_url, auth_sso::serve).await
}

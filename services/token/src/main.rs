use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    auth_core::runtime::run_service("token", |c| &c.suite.token_url, auth_token::serve).await
}

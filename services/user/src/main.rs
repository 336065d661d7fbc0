use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    auth_core::runtime::run_service("user", |c| &c.suite.user_url, auth_user::serve).await
}

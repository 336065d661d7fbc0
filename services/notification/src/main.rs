use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    auth_core::runtime::run_service("notification", |c| &c.suite.notification_url, auth_notification::serve).await
}

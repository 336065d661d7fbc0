//! `auth-healthcheck`: exits 0 when a process of the suite is healthy, 1 otherwise. For container
//! health checks, where images carry no curl or grpcurl.
//!
//!     auth-healthcheck --grpc 127.0.0.1:50051 auth.token.v1.TokenService
//!     auth-healthcheck --http http://127.0.0.1:9999/health

use std::process::ExitCode;
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    auth_core::install_tls_provider();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let healthy = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["--grpc", addr, service] => grpc(addr, service).await,
        ["--http", url] => http(url).await,
        _ => {
            eprintln!("usage: auth-healthcheck --grpc HOST:PORT SERVICE | --http URL");
            return ExitCode::from(2);
        }
    };
    if healthy { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

async fn grpc(addr: &str, service: &str) -> bool {
    match auth_core::grpc::channel(
        &format!("http://{addr}"),
        Duration::from_secs(2),
        Duration::from_secs(3),
    ) {
        Ok(channel) => auth_core::grpc::is_serving(channel, service).await,
        Err(_) => false,
    }
}

async fn http(url: &str) -> bool {
    let Ok(client) = reqwest::Client::builder().timeout(Duration::from_secs(3)).build() else {
        return false;
    };
    matches!(client.get(url).send().await, Ok(response) if response.status().is_success())
}

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use auth_core::Config;

/// GoTrue's listen address: `GOTRUE_API_HOST` (all interfaces when empty) and `PORT`.
fn listen_addr(config: &Config) -> anyhow::Result<SocketAddr> {
    let host = if config.api.host.is_empty() {
        "0.0.0.0"
    } else {
        &config.api.host
    };
    let host = if host == "localhost" { "127.0.0.1" } else { host };
    format!("{host}:{}", config.api.port)
        .parse()
        .with_context(|| format!("GOTRUE_API_HOST {host:?} is not an IP address"))
}

#[tokio::main]
async fn main() -> ExitCode {
    auth_core::runtime::run_main("gateway", listen_addr, |process| {
        auth_gateway::serve(process.config, process.listener, process.shutdown)
    })
    .await
}

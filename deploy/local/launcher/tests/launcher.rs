//! The launcher with the real binaries: the suite comes up wired and healthy, a killed process is
//! restarted on its address, and SIGTERM stops everything.
//!
//! Needs every binary built in the same target directory (`cargo build --workspace --bins`, which the
//! README's test command runs first).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is the test failing"
)]

use std::path::{Path, PathBuf};

use auth_testkit::LaunchedSuite;
use auth_testkit::launched::is_gone;
use nix::sys::signal::Signal;
use serde_json::Value;

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_auth-launcher"))
        .parent()
        .expect("bin dir")
        .to_path_buf()
}

#[tokio::test]
async fn launcher_runs_wires_restarts_and_stops_the_real_binaries() -> anyhow::Result<()> {
    auth_core::install_tls_provider();
    let suite = LaunchedSuite::start(&bin_dir(), &[("GOTRUE_MAILER_AUTOCONFIRM", "true".into())]).await?;
    let base = suite.base_url.clone();
    let http = reqwest::Client::new();
    let settings: Value = http.get(format!("{base}/settings")).send().await?.json().await?;
    assert_eq!(settings["mailer_autoconfirm"], true, "the env file reached the gateway");
    assert_eq!(http.get(format!("{base}/health")).send().await?.status(), 200);
    assert_eq!(
        http.get(format!("{base}/.well-known/jwks.json")).send().await?.status(),
        200
    );
    for name in ["gateway", "token", "user", "mfa", "sso", "notification"] {
        assert!(suite.pid(name).is_ok(), "{name} has no pid: {:?}", suite.pids);
    }

    // kill the token service outright: the launcher brings it back on the same address and the
    // gateway reconnects by itself
    let token_pid = suite.pid("token")?;
    suite.signal("token", Signal::SIGKILL)?;
    auth_testkit::retry_until(|| async {
        matches!(http.get(format!("{base}/.well-known/jwks.json")).send().await, Ok(r) if r.status() == 200)
            && is_gone(token_pid)
    })
    .await?;

    // a graceful stop of everything
    let status = suite.shutdown().await?;
    assert!(status.success(), "launcher exited with {status}");
    assert!(
        http.get(format!("{base}/health")).send().await.is_err(),
        "gateway still answering"
    );
    Ok(())
}

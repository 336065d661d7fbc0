//! The launcher with the real binaries: the suite comes up wired and healthy, a killed process is
//! restarted on its address, and SIGTERM stops everything.
//!
//! Needs every binary built in the same target directory (`cargo build --workspace --bins`, which the
//! README's test command runs first).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_auth-launcher"))
        .parent()
        .expect("bin dir")
        .to_path_buf()
}

fn signal(pid: u32, signal: Signal) {
    kill(Pid::from_raw(i32::try_from(pid).expect("pid fits")), signal).expect("signal delivered");
}

#[tokio::test]
async fn launcher_runs_wires_restarts_and_stops_the_real_binaries() -> anyhow::Result<()> {
    auth_core::install_tls_provider();
    for binary in auth_testkit::SUITE_BINARIES {
        anyhow::ensure!(
            bin_dir().join(binary).exists(),
            "{binary} is not built: run `cargo build --workspace --bins`"
        );
    }
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let database = format!("auth_test_launcher_{}", &unique[..12]);
    auth_testkit::create_database(&database).await?;
    let env_file = std::env::temp_dir().join(format!("auth-launcher-{unique}.env"));
    std::fs::write(
        &env_file,
        format!(
            "DATABASE_URL={}\nPORT=0\nGOTRUE_API_HOST=127.0.0.1\nAUTH_NATS_PREFIX=tl{}\n\
             GOTRUE_SITE_URL=http://localhost:3000\nAPI_EXTERNAL_URL=http://localhost:9999\n\
             GOTRUE_JWT_SECRET=launcher-test-secret-0123456789-0123456789\nGOTRUE_MAILER_AUTOCONFIRM=true\n",
            auth_testkit::database_url_for(&database),
            &unique[..10],
        ),
    )?;

    let mut launcher = Command::new(env!("CARGO_BIN_EXE_auth-launcher"))
        .arg("--bin-dir")
        .arg(bin_dir())
        .arg("--env-file")
        .arg(&env_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdout = BufReader::new(launcher.stdout.take().expect("piped")).lines();
    let ready: Value = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = stdout.next_line().await? {
            if let Ok(value) = serde_json::from_str::<Value>(&line)
                && value.get("ready").is_some()
            {
                return Ok(value);
            }
        }
        anyhow::bail!("launcher exited before the suite was ready")
    })
    .await??;

    let base = ready["ready"].as_str().expect("gateway URL").to_string();
    let http = reqwest::Client::new();
    let settings: Value = http.get(format!("{base}/settings")).send().await?.json().await?;
    assert_eq!(settings["mailer_autoconfirm"], true, "the env file reached the gateway");
    assert_eq!(http.get(format!("{base}/health")).send().await?.status(), 200);
    assert_eq!(
        http.get(format!("{base}/.well-known/jwks.json")).send().await?.status(),
        200
    );
    for name in ["gateway", "token", "user", "mfa", "sso", "notification"] {
        assert!(ready["processes"][name].is_u64(), "{name} has no pid: {ready}");
    }

    // kill the token service outright: the launcher brings it back on the same address and the
    // gateway reconnects by itself
    let token_pid = ready["processes"]["token"].as_u64().expect("pid") as u32;
    signal(token_pid, Signal::SIGKILL);
    auth_testkit::retry_until(|| async {
        matches!(http.get(format!("{base}/.well-known/jwks.json")).send().await, Ok(r) if r.status() == 200)
            && !Path::new(&format!("/proc/{token_pid}")).exists()
    })
    .await?;

    // a graceful stop of everything
    signal(launcher.id().expect("running"), Signal::SIGTERM);
    let status = tokio::time::timeout(Duration::from_secs(30), launcher.wait()).await??;
    assert!(status.success(), "launcher exited with {status}");
    assert!(
        http.get(format!("{base}/health")).send().await.is_err(),
        "gateway still answering"
    );

    std::fs::remove_file(&env_file)?;
    auth_testkit::drop_database(&database).await?;
    Ok(())
}

//! `--check-config` on every binary: an operator validates an env file without starting anything.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is the test failing"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use auth_testkit::SUITE_BINARIES;

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_auth-launcher"))
        .parent()
        .expect("bin dir")
        .to_path_buf()
}

/// Runs `binary --check-config --env-file FILE` with only FILE's settings (a clean environment).
fn check(binary: &str, env_file: &str) -> anyhow::Result<(i32, String, String)> {
    let dir = std::env::temp_dir().join(format!("check-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("suite.env");
    std::fs::write(&file, env_file)?;
    let output = Command::new(bin_dir().join(binary))
        .arg("--check-config")
        .arg("--env-file")
        .arg(&file)
        .env_clear()
        .current_dir(&dir)
        .output()?;
    std::fs::remove_dir_all(&dir)?;
    Ok((
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

const GOOD: &str = "\
# a GoTrue env file, in GoTrue's syntax
export GOTRUE_SITE_URL=http://localhost:3000
API_EXTERNAL_URL=http://localhost:9999
DATABASE_URL=postgres://postgres:secret@127.0.0.1:5432/postgres
GOTRUE_JWT_SECRET=\"a-secret-that-is-long-enough-for-hs256-0123\"
GOTRUE_MAILER_SUBJECTS_CONFIRMATION=Confirm your signup please
NATS_URL=nats://127.0.0.1:4222
";

#[test]
fn every_binary_checks_its_configuration_without_starting() -> anyhow::Result<()> {
    for binary in SUITE_BINARIES {
        let (code, stdout, stderr) = check(binary, GOOD)?;
        assert_eq!(code, 0, "{binary}: {stderr}");
        let line: serde_json::Value = serde_json::from_str(stdout.trim())?;
        assert_eq!(line["config"], "ok", "{binary}: {stdout}");

        let bad = format!("{GOOD}GOTRUE_JWT_EXP=soon\nGOTRUE_MAILER_AUTOCONFIRM=perhaps\nGOTRUE_SITE_URL=\n");
        let (code, stdout, stderr) = check(binary, &bad)?;
        assert_eq!(code, 2, "{binary}: {stdout}");
        for variable in ["GOTRUE_JWT_EXP", "GOTRUE_MAILER_AUTOCONFIRM", "GOTRUE_SITE_URL"] {
            assert!(stderr.contains(variable), "{binary} does not name {variable}: {stderr}");
        }
    }
    Ok(())
}

/// Each process is asked only for what it uses: the gateway starts without a database URL or a
/// signing key (the deploy files give it neither); every service refuses to start without them.
#[test]
fn each_process_requires_only_what_it_uses() -> anyhow::Result<()> {
    let without_db_and_key: String = GOOD
        .lines()
        .filter(|line| !line.starts_with("DATABASE_URL=") && !line.starts_with("GOTRUE_JWT_SECRET="))
        .map(|line| format!("{line}\n"))
        .collect();
    for binary in SUITE_BINARIES {
        let (code, stdout, stderr) = check(binary, &without_db_and_key)?;
        if *binary == "auth-gateway" {
            assert_eq!(code, 0, "{binary}: {stderr}");
            assert!(stdout.contains("\"ok\""), "{binary}: {stdout}");
        } else {
            assert_eq!(code, 2, "{binary}: {stdout}");
            for variable in ["DATABASE_URL", "GOTRUE_JWT_SECRET"] {
                assert!(stderr.contains(variable), "{binary} does not name {variable}: {stderr}");
            }
        }
    }
    Ok(())
}

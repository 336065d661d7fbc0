//! The suite as users run it: the six real binaries under `auth-launcher`, as separate processes.
//!
//! [`crate::Suite`] runs everything in the test process, which cannot show what a `SIGKILL` does to
//! a process. Tests that need real processes (a notifier killed mid-send), and the benchmark, start a
//! [`LaunchedSuite`] instead: a fresh database, a private NATS prefix, every setting written to an env
//! file (`--env-file`), and the launcher's `{"ready": ...}` line awaited.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use auth_core::Config;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running launcher and the processes it supervises.
pub struct LaunchedSuite {
    /// `http://127.0.0.1:<port>` of the gateway.
    pub base_url: String,
    /// A pool on the suite's database, for assertions.
    pub db: PgPool,
    /// Every setting the processes were started with (the env file's contents).
    pub settings: BTreeMap<String, String>,
    /// The pid each process had when the suite became ready (`gateway`, `token`, `notification`, ...).
    pub pids: BTreeMap<String, u32>,
    launcher: Child,
    bin_dir: PathBuf,
    database: String,
    env_file: PathBuf,
}

impl LaunchedSuite {
    /// Starts `auth-launcher` from `bin_dir` (where `cargo build --workspace --bins` put every
    /// binary) with the test defaults overridden by `settings`.
    pub async fn start(bin_dir: &Path, settings: &[(&str, String)]) -> anyhow::Result<Self> {
        for binary in crate::SUITE_BINARIES.iter().chain(&["auth-launcher"]) {
            anyhow::ensure!(
                bin_dir.join(binary).exists(),
                "{binary} is not built in {}: run `cargo build --workspace --bins`",
                bin_dir.display()
            );
        }
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let database = format!("auth_test_launched_{}", &unique[..12]);
        crate::create_database(&database).await?;
        let mut env = crate::test_environment(&database, &unique);
        env.insert("PORT".into(), "0".into());
        env.insert("GOTRUE_API_HOST".into(), "127.0.0.1".into());
        env.extend(settings.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let env_file = std::env::temp_dir().join(format!("auth-launched-{unique}.env"));
        let contents: String = env
            .iter()
            .map(|(k, v)| format!("{k}={}\n", env_file_value(v)))
            .collect();
        std::fs::write(&env_file, contents)?;

        let mut launcher = Command::new(bin_dir.join("auth-launcher"))
            .arg("--bin-dir")
            .arg(bin_dir)
            .arg("--env-file")
            .arg(&env_file)
            // The environment wins over the env file, so the test's own environment (deploy/local/test
            // exports NATS_URL, say) must not override what this suite was given.
            .envs(&env)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start auth-launcher")?;
        let mut stdout = BufReader::new(launcher.stdout.take().context("stdout is piped")?).lines();
        let ready: Value = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = stdout.next_line().await? {
                if let Ok(value) = serde_json::from_str::<Value>(&line)
                    && value.get("ready").is_some()
                {
                    return Ok(value);
                }
            }
            anyhow::bail!("the launcher exited before the suite was ready")
        })
        .await
        .context("the suite was not ready within 120 s")??;
        let base_url = ready["ready"].as_str().context("gateway URL")?.to_string();
        let pids = ready["processes"]
            .as_object()
            .context("processes")?
            .iter()
            .filter_map(|(name, pid)| Some((name.clone(), u32::try_from(pid.as_u64()?).ok()?)))
            .collect();

        let config = Config::from_pairs(env.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let db = auth_core::db::connect(&config.db, "auth_testkit").await?;
        Ok(Self {
            base_url,
            db,
            settings: env,
            pids,
            launcher,
            bin_dir: bin_dir.to_path_buf(),
            database,
            env_file,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The pid `name` had at start.
    pub fn pid(&self, name: &str) -> anyhow::Result<u32> {
        self.pids
            .get(name)
            .copied()
            .with_context(|| format!("no process {name}"))
    }

    /// Sends `signal` to the process `name` started as (the launcher restarts it if it dies).
    pub fn signal(&self, name: &str, signal: Signal) -> anyhow::Result<()> {
        send_signal(self.pid(name)?, signal)
    }

    /// Starts one more process of service `name` (e.g. a second `notification` replica) beside the
    /// launcher's, on the same settings, and waits until it reports healthy. It is killed when the
    /// returned child is dropped.
    pub async fn spawn_replica(&self, name: &str) -> anyhow::Result<Child> {
        let service = crate::Service::ALL
            .into_iter()
            .find(|s| s.process_name() == name)
            .with_context(|| format!("{name} is not a gRPC service"))?;
        let mut child = Command::new(self.bin_dir.join(format!("auth-{name}")))
            .args(["--listen", "127.0.0.1:0", "--env-file"])
            .arg(&self.env_file)
            .envs(&self.settings)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let mut stdout = BufReader::new(child.stdout.take().context("stdout is piped")?).lines();
        let addr: String = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = stdout.next_line().await? {
                if let Ok(value) = serde_json::from_str::<Value>(&line)
                    && let Some(addr) = value["listening"].as_str()
                {
                    return Ok(addr.to_string());
                }
            }
            anyhow::bail!("{name} exited before listening")
        })
        .await
        .with_context(|| format!("{name} did not listen within 60 s"))??;
        let channel = auth_core::grpc::channel(
            &format!("http://{addr}"),
            Duration::from_secs(1),
            Duration::from_secs(10),
        )?;
        crate::retry_until(|| auth_core::grpc::is_serving(channel.clone(), service.grpc_name())).await?;
        Ok(child)
    }

    /// Stops the launcher gracefully (SIGTERM to everything), then drops the database and the NATS
    /// stream. Returns the launcher's exit status.
    pub async fn shutdown(mut self) -> anyhow::Result<ExitStatus> {
        let launcher_pid = self.launcher.id().context("the launcher is still running")?;
        send_signal(launcher_pid, Signal::SIGTERM)?;
        let status = tokio::time::timeout(Duration::from_secs(30), self.launcher.wait())
            .await
            .context("the launcher did not stop within 30 s")??;
        self.db.close().await;
        let _ = std::fs::remove_file(&self.env_file);
        if let Some(prefix) = self.settings.get("AUTH_NATS_PREFIX")
            && let Some(url) = self.settings.get("NATS_URL")
            && let Err(e) = crate::delete_nats_stream_at(url, prefix).await
        {
            tracing::warn!(error = %e, "NATS stream cleanup failed");
        }
        crate::drop_database(&self.database).await?;
        Ok(status)
    }
}

/// A value as the env file parser (dotenv syntax) reads it back unchanged: double-quoted, with `\`
/// and `"` escaped.
fn env_file_value(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn send_signal(pid: u32, signal: Signal) -> anyhow::Result<()> {
    kill(Pid::from_raw(i32::try_from(pid)?), signal).with_context(|| format!("signal {signal} to {pid}"))
}

/// Whether process `pid` has exited (and been reaped).
pub fn is_gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

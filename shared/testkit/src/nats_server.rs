//! A NATS server of the test's own, for tests that stop and restart the broker: the shared local
//! server must keep running for every other test.
//!
//! It runs `nats-server` with JetStream and a private store directory, on a port chosen once, so a
//! restarted server is found at the same address with the same streams and consumers.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::Signal;
use tokio::process::{Child, Command};

pub struct PrivateNats {
    port: u16,
    store: PathBuf,
    child: Option<Child>,
}

/// `AUTH_TEST_NATS_SERVER`, else `nats-server` on the `PATH`, else Debian's `/usr/sbin/nats-server`.
fn server_program() -> PathBuf {
    if let Ok(program) = std::env::var("AUTH_TEST_NATS_SERVER") {
        return program.into();
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.exists());
    on_path.unwrap_or_else(|| "/usr/sbin/nats-server".into())
}

impl PrivateNats {
    /// Starts a server on a free loopback port and waits until it accepts clients.
    pub async fn start() -> anyhow::Result<Self> {
        // The port is taken from a listener the OS chose and released just before the server binds it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let store = std::env::temp_dir().join(format!("auth-test-nats-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&store)?;
        let mut server = Self {
            port,
            store,
            child: None,
        };
        server.run().await?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn run(&mut self) -> anyhow::Result<()> {
        let program = server_program();
        let child = Command::new(&program)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(&self.store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        self.child = Some(child);
        let url = self.url();
        crate::retry_until(|| async {
            // Ready when JetStream answers its API (any answer, rather than "no responders").
            match async_nats::connect(&url).await {
                Ok(client) => client.request("$JS.API.INFO", "".into()).await.is_ok(),
                Err(_) => false,
            }
        })
        .await
        .context("the private NATS server did not start")
    }

    /// Stops the server gracefully (SIGTERM, as an orchestrator's restart does) and waits for it.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                crate::launched::send_signal(pid, Signal::SIGTERM)?;
            }
            tokio::time::timeout(Duration::from_secs(30), child.wait())
                .await
                .context("nats-server did not stop within 30 s")??;
        }
        Ok(())
    }

    /// Starts the stopped server again on the same port and store.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        self.run().await
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

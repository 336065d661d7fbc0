//! What every binary of the suite does before and after its own work: read `--listen`/`--env-file`,
//! load the configuration, start logging, bind, announce the bound address, and turn SIGTERM/SIGINT
//! into a graceful shutdown.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Needs};
use crate::telemetry;

/// Command-line arguments shared by every binary.
#[derive(Debug, Default, Clone)]
pub struct ProcessArgs {
    /// `--listen ADDR`: overrides the address derived from the configuration (`127.0.0.1:0` picks a
    /// free port; the bound address is announced on stdout).
    pub listen: Option<SocketAddr>,
    /// `--env-file FILE`: read variables from FILE (the environment still wins). Default: `.env` if present.
    pub env_file: Option<PathBuf>,
    /// `--check-config`: load and check the configuration (naming every bad variable), then exit:
    /// 0 when it is good, 2 when not. Nothing is started, bound or connected.
    pub check_config: bool,
}

impl ProcessArgs {
    pub fn parse(process: &str, args: impl IntoIterator<Item = String>) -> anyhow::Result<Self> {
        let mut parsed = Self::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--listen" => {
                    let value = args.next().context("--listen needs an address")?;
                    parsed.listen = Some(value.parse().with_context(|| format!("--listen {value}"))?);
                }
                "--env-file" => {
                    parsed.env_file = Some(args.next().context("--env-file needs a path")?.into());
                }
                "--check-config" => parsed.check_config = true,
                "-h" | "--help" => anyhow::bail!(
                    "usage: auth-{process} [--listen ADDR] [--env-file FILE] [--check-config]\n\
                     Configuration comes from GOTRUE_* variables; see README.md."
                ),
                other => anyhow::bail!("unknown argument {other}; see --help"),
            }
        }
        Ok(parsed)
    }
}

/// What a process body receives.
pub struct Process {
    pub name: &'static str,
    pub config: Arc<Config>,
    pub listener: TcpListener,
    pub shutdown: CancellationToken,
}

/// The line printed on stdout once a process is bound. The launcher and the tests read it to learn
/// the address when the process was started with port 0.
pub fn announce_listening(process: &str, addr: SocketAddr) {
    let line = serde_json::json!({ "listening": addr.to_string(), "process": process });
    let mut stdout = std::io::stdout().lock();
    // A closed stdout must not stop the process; the address is in the logs too.
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// A token cancelled by SIGTERM or SIGINT.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
        tracing::info!("shutdown requested");
        cancel.cancel();
    });
    token
}

/// Runs a binary that needs no database and signs no tokens (the gateway): `default_listen` picks
/// the address from the configuration unless `--listen` is given; `body` does the process's own
/// work until shutdown. Configuration errors exit with 2, runtime failures with 1.
pub async fn run_main<F, Fut>(
    name: &'static str,
    default_listen: fn(&Config) -> anyhow::Result<SocketAddr>,
    body: F,
) -> ExitCode
where
    F: FnOnce(Process) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    run_main_with(name, Needs::NOTHING_MORE, default_listen, body).await
}

async fn run_main_with<L, F, Fut>(name: &'static str, needs: Needs, default_listen: L, body: F) -> ExitCode
where
    L: FnOnce(&Config) -> anyhow::Result<SocketAddr>,
    F: FnOnce(Process) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let args = match ProcessArgs::parse(name, std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("auth-{name}: {e:#}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::load_for(args.env_file.as_deref(), needs) {
        Ok(config) => Arc::new(config),
        Err(e) => {
            eprintln!("auth-{name}: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        return check_config_only(name, &config, args.listen, default_listen);
    }
    let _telemetry = match telemetry::init(name, &config.log, &config.tracing) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("auth-{name}: cannot start telemetry: {e:#}");
            return ExitCode::from(2);
        }
    };

    let result = async {
        let addr = match args.listen {
            Some(addr) => addr,
            None => default_listen(&config)?,
        };
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let shutdown = shutdown_on_signals();
        if config.metrics.enabled {
            crate::metrics::serve(name, &config.metrics, shutdown.clone()).await?;
        }
        announce_listening(name, listener.local_addr()?);
        let process = Process {
            name,
            config,
            listener,
            shutdown,
        };
        body(process).await
    }
    .await;

    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "auth-{name} failed");
            eprintln!("auth-{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--check-config`: the configuration loaded; the listen address must resolve too. Prints one JSON
/// line on stdout (`{"config":"ok",...}`) so scripts can tell.
fn check_config_only<L>(name: &str, config: &Config, listen: Option<SocketAddr>, default_listen: L) -> ExitCode
where
    L: FnOnce(&Config) -> anyhow::Result<SocketAddr>,
{
    let addr = match listen.map_or_else(|| default_listen(config), Ok) {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("auth-{name}: {e:#}");
            return ExitCode::from(2);
        }
    };
    let line = serde_json::json!({ "config": "ok", "process": format!("auth-{name}"), "listen": addr.to_string() });
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    ExitCode::SUCCESS
}

/// The listen address for a service whose clients reach it at `url`: all interfaces, the URL's port.
pub fn listen_addr_from_url(url: &str) -> anyhow::Result<SocketAddr> {
    let parsed = url::Url::parse(url).with_context(|| format!("invalid service URL {url}"))?;
    let port = parsed
        .port_or_known_default()
        .with_context(|| format!("service URL {url} has no port"))?;
    Ok(SocketAddr::from(([0, 0, 0, 0], port)))
}

/// What a gRPC service receives: the configuration, a migrated database pool, its listener and the
/// shutdown token. Tests build one directly; binaries get one from [`run_service`].
#[cfg(feature = "db")]
pub struct ServiceContext {
    pub config: Arc<Config>,
    pub db: sqlx::PgPool,
    pub listener: TcpListener,
    pub shutdown: CancellationToken,
}

/// `main` of a gRPC service: [`run_main`] plus connecting to Postgres and applying the migrations
/// (under a lock, so the six processes may start together). The service listens on the port of its
/// own URL (`service_url`, e.g. `AUTH_TOKEN_URL`) unless `--listen` says otherwise.
#[cfg(feature = "db")]
pub async fn run_service<F, Fut>(name: &'static str, service_url: fn(&Config) -> &str, serve: F) -> ExitCode
where
    F: FnOnce(ServiceContext) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let default_listen = move |config: &Config| listen_addr_from_url(service_url(config));
    run_main_with(name, Needs::SERVICE, default_listen, |process| async move {
        crate::db::migrate(&process.config.db).await?;
        let db = crate::db::connect(&process.config.db, &format!("auth_{name}")).await?;
        if process.config.metrics.enabled {
            crate::metrics::sample_pool(db.clone(), process.shutdown.clone());
        }
        serve(ServiceContext {
            config: process.config,
            db,
            listener: process.listener,
            shutdown: process.shutdown,
        })
        .await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_parse() {
        let args = ProcessArgs::parse(
            "token",
            ["--listen", "127.0.0.1:0", "--env-file", "x.env"].map(String::from),
        )
        .expect("valid");
        assert_eq!(args.listen, Some("127.0.0.1:0".parse().expect("addr")));
        assert_eq!(args.env_file, Some(PathBuf::from("x.env")));
        assert!(ProcessArgs::parse("token", ["--bogus".to_string()]).is_err());
    }

    #[test]
    fn service_listens_on_its_url_port() {
        assert_eq!(
            listen_addr_from_url("http://token:50051").expect("valid"),
            "0.0.0.0:50051".parse().expect("addr")
        );
    }
}

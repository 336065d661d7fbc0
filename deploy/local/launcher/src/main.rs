//! Runs the whole suite on this machine, without Docker (`deploy/local/up` builds and calls it).
//!
//! - Each service starts with `--listen 127.0.0.1:0`, binds a free port and announces it on stdout;
//!   the launcher passes those addresses to the processes that call it (`AUTH_*_URL`). Services start
//!   in call-graph order (token and notification, then user and mfa, then sso, then the gateway).
//! - It waits until every service answers its gRPC health check and the gateway its `/health`, then
//!   prints one JSON line `{"ready": "<gateway URL>", "processes": {name: pid}}`.
//! - Every line a process prints is forwarded with its name in front.
//! - A process that dies is restarted on the address it had, with backoff.
//! - SIGINT/SIGTERM stops everything: SIGTERM to each process, SIGKILL after 10 s.
//!
//! Settings come from the environment and `--env-file` (the environment wins); every process gets both.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, oneshot};
use tokio_util::sync::CancellationToken;

/// A process of the suite, in start order, with the services it calls.
struct Spec {
    name: &'static str,
    /// `AUTH_*_URL` under which the others reach it (none for the gateway).
    url_variable: Option<&'static str>,
    grpc_name: Option<&'static str>,
}

const SPECS: &[Spec] = &[
    Spec {
        name: "token",
        url_variable: Some("AUTH_TOKEN_URL"),
        grpc_name: Some(auth_proto::service_names::TOKEN),
    },
    Spec {
        name: "notification",
        url_variable: Some("AUTH_NOTIFICATION_URL"),
        grpc_name: Some(auth_proto::service_names::NOTIFICATION),
    },
    Spec {
        name: "user",
        url_variable: Some("AUTH_USER_URL"),
        grpc_name: Some(auth_proto::service_names::USER),
    },
    Spec {
        name: "mfa",
        url_variable: Some("AUTH_MFA_URL"),
        grpc_name: Some(auth_proto::service_names::MFA),
    },
    Spec {
        name: "sso",
        url_variable: Some("AUTH_SSO_URL"),
        grpc_name: Some(auth_proto::service_names::SSO),
    },
    Spec {
        name: "gateway",
        url_variable: None,
        grpc_name: None,
    },
];

struct Options {
    bin_dir: PathBuf,
    env_file: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut bin_dir = None;
    let mut env_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bin-dir" => bin_dir = Some(PathBuf::from(args.next().context("--bin-dir needs a path")?)),
            "--env-file" => env_file = Some(PathBuf::from(args.next().context("--env-file needs a path")?)),
            "-h" | "--help" => anyhow::bail!("usage: auth-launcher [--bin-dir DIR] [--env-file FILE]"),
            other => anyhow::bail!("unknown argument {other}; see --help"),
        }
    }
    let bin_dir = match bin_dir {
        Some(dir) => dir,
        None => std::env::current_exe()?
            .parent()
            .context("executable has no directory")?
            .to_path_buf(),
    };
    Ok(Options { bin_dir, env_file })
}

/// One supervised process.
struct Supervised {
    name: &'static str,
    program: PathBuf,
    /// Fixed after the first start so dependents keep reaching it across restarts.
    listen: Option<SocketAddr>,
    /// `OTEL_EXPORTER_PROMETHEUS_PORT` for this process: processes on one host need a port each.
    metrics_port: u16,
    pid: Arc<Mutex<Option<u32>>>,
}

#[tokio::main]
async fn main() -> ExitCode {
    auth_core::install_tls_provider();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("[launcher] {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let options = parse_args()?;
    let shutdown = auth_core::runtime::shutdown_on_signals();
    let mut wiring: Vec<(String, String)> = Vec::new();
    let mut supervised = Vec::new();
    let mut gateway_addr = None;

    let metrics_base = metrics_base_port(&options);
    for (index, spec) in SPECS.iter().enumerate() {
        let program = options.bin_dir.join(format!("auth-{}", spec.name));
        anyhow::ensure!(
            program.exists(),
            "{} not found: build with `cargo build --bins` first",
            program.display()
        );
        // Services bind a free loopback port; the gateway uses GOTRUE_API_HOST/PORT as GoTrue does.
        let listen = spec.url_variable.map(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let mut process = Supervised {
            name: spec.name,
            program,
            listen,
            // Port 0 stays 0 (each picks a free port and announces it).
            metrics_port: if metrics_base == 0 {
                0
            } else {
                metrics_base.saturating_add(u16::try_from(index).unwrap_or(u16::MAX))
            },
            pid: Arc::new(Mutex::new(None)),
        };
        let (child, addr) = start(&process, &options, &wiring).await?;
        if let Some(variable) = spec.url_variable {
            wiring.push((variable.to_string(), format!("http://{addr}")));
            process.listen = Some(addr);
        } else {
            gateway_addr = Some(addr);
        }
        *process.pid.lock().await = child.id();
        wait_healthy(spec, addr, &shutdown).await?;
        supervised.push((process, child));
    }

    let gateway_addr = gateway_addr.context("gateway did not start")?;
    let mut pids = BTreeMap::new();
    for (process, _) in &supervised {
        pids.insert(process.name, *process.pid.lock().await);
    }
    let gateway_url = format!("http://{}", loopback_if_unspecified(gateway_addr));
    // stdout carries only this machine-readable line; everything else goes to stderr
    #[allow(clippy::print_stdout)]
    {
        println!("{}", serde_json::json!({ "ready": gateway_url, "processes": pids }));
    }
    eprintln!("[launcher] suite ready at {gateway_url} (Ctrl-C to stop)");

    let options = Arc::new(options);
    let wiring = Arc::new(wiring);
    let mut tasks = Vec::new();
    for (process, child) in supervised {
        tasks.push(tokio::spawn(supervise(
            process,
            child,
            options.clone(),
            wiring.clone(),
            shutdown.clone(),
        )));
    }
    for task in tasks {
        task.await??;
    }
    eprintln!("[launcher] stopped");
    Ok(())
}

/// The first metrics port (`OTEL_EXPORTER_PROMETHEUS_PORT` from the environment or the env file,
/// else GoTrue's 9100); process number `i` serves its metrics on the base + `i`.
fn metrics_base_port(options: &Options) -> u16 {
    const VARIABLE: &str = "OTEL_EXPORTER_PROMETHEUS_PORT";
    let from_file = || {
        let text = std::fs::read_to_string(options.env_file.as_ref()?).ok()?;
        auth_core::env_file::parse(&text).ok()?.remove(VARIABLE)
    };
    std::env::var(VARIABLE)
        .ok()
        .or_else(from_file)
        .and_then(|port| port.trim().parse().ok())
        .unwrap_or(9100)
}

fn loopback_if_unspecified(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

/// Starts one process and returns it with the address it announced.
async fn start(
    process: &Supervised,
    options: &Options,
    wiring: &[(String, String)],
) -> anyhow::Result<(Child, SocketAddr)> {
    let mut command = Command::new(&process.program);
    if let Some(listen) = process.listen {
        command.args(["--listen", &listen.to_string()]);
    }
    if let Some(env_file) = &options.env_file {
        command.arg("--env-file").arg(env_file);
    }
    command
        .envs(wiring.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("OTEL_EXPORTER_PROMETHEUS_PORT", process.metrics_port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {}", process.program.display()))?;

    let (announced, address) = oneshot::channel();
    let stdout = child.stdout.take().context("stdout is piped")?;
    let stderr = child.stderr.take().context("stderr is piped")?;
    tokio::spawn(forward_lines(process.name, stdout, Some(announced)));
    tokio::spawn(forward_lines(process.name, stderr, None));

    let addr = tokio::time::timeout(Duration::from_secs(60), address)
        .await
        .with_context(|| format!("{} did not announce its address within 60 s", process.name))?
        .with_context(|| format!("{} exited before listening (see its log above)", process.name))?;
    Ok((child, addr))
}

/// Forwards a process's output line by line with its name in front, picking out the
/// `{"listening": ...}` announcement.
async fn forward_lines(
    name: &'static str,
    stream: impl tokio::io::AsyncRead + Unpin,
    mut announced: Option<oneshot::Sender<SocketAddr>>,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(addr) = parse_announcement(&line)
            && let Some(sender) = announced.take()
        {
            let _ = sender.send(addr);
            continue;
        }
        eprintln!("[{name:>12}] {line}");
    }
}

fn parse_announcement(line: &str) -> Option<SocketAddr> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    value.get("listening")?.as_str()?.parse().ok()
}

/// Polls the process's health endpoint until it answers (gRPC health for services, `/health` for
/// the gateway). Gives up after 60 s or on shutdown.
async fn wait_healthy(spec: &Spec, addr: SocketAddr, shutdown: &CancellationToken) -> anyhow::Result<()> {
    let addr = loopback_if_unspecified(addr);
    let deadline = Instant::now() + Duration::from_secs(60);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let channel = auth_core::grpc::channel(
        &format!("http://{addr}"),
        Duration::from_secs(1),
        Duration::from_secs(2),
    )?;
    let mut backoff = Duration::from_millis(10);
    loop {
        let healthy = match spec.grpc_name {
            Some(grpc_name) => auth_core::grpc::is_serving(channel.clone(), grpc_name).await,
            None => matches!(http.get(format!("http://{addr}/health")).send().await, Ok(r) if r.status().is_success()),
        };
        if healthy {
            eprintln!("[launcher] {} healthy on {addr}", spec.name);
            return Ok(());
        }
        anyhow::ensure!(!shutdown.is_cancelled(), "stopped while waiting for {}", spec.name);
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} did not become healthy within 60 s",
            spec.name
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(250));
    }
}

/// Keeps one process running until shutdown: restarts it when it dies, then stops it gracefully.
async fn supervise(
    process: Supervised,
    mut child: Child,
    options: Arc<Options>,
    wiring: Arc<Vec<(String, String)>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut backoff = Duration::from_millis(200);
    loop {
        let started = Instant::now();
        tokio::select! {
            status = child.wait() => {
                let status = status?;
                if shutdown.is_cancelled() {
                    return Ok(());
                }
                // A process that ran for a while earns a fresh backoff.
                if started.elapsed() > Duration::from_secs(30) {
                    backoff = Duration::from_millis(200);
                }
                eprintln!("[launcher] {} exited ({status}); restarting in {backoff:?}", process.name);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => return Ok(()),
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                match start(&process, &options, &wiring).await {
                    Ok((restarted, addr)) => {
                        *process.pid.lock().await = restarted.id();
                        eprintln!("[launcher] {} restarted on {addr}", process.name);
                        child = restarted;
                    }
                    Err(e) => {
                        eprintln!("[launcher] restarting {} failed: {e:#}; giving up on it", process.name);
                        return Ok(());
                    }
                }
            }
            _ = shutdown.cancelled() => {
                stop(process.name, &mut child).await;
                return Ok(());
            }
        }
    }
}

/// SIGTERM, then SIGKILL if the process has not exited within 10 s.
async fn stop(name: &str, child: &mut Child) {
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
        Ok(_) => eprintln!("[launcher] {name} stopped"),
        Err(_) => {
            eprintln!("[launcher] {name} did not stop within 10 s; killing it");
            let _ = child.kill().await;
        }
    }
}

//! Load benchmarks of the whole suite, as users run it: the six release binaries under the launcher,
//! on the local Postgres and NATS, driven from this process.
//!
//!     cargo build --release --workspace --bins
//!     target/release/auth-bench sessions [--seconds N]    # sign-in, refresh, GET /user
//!     target/release/auth-bench sessions --target URL [--target-jwt-secret S] [--target-db URL]
//!                                                        # the same, side by side with any GoTrue
//!     target/release/auth-bench pipeline [--messages N]   # email: request → NATS → notifier → SMTP
//!     target/release/auth-bench admin-users [--users N]   # GET /admin/users… with a million users
//!     target/release/auth-bench oauth [--seconds N] [--provider-port P] [--target URL]
//!                                                        # external sign-in: /authorize + /callback
//!
//! Without a subcommand it runs `sessions`.

mod admin_users;
mod oauth;
mod pipeline;
mod sessions;
mod versus;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

/// The `p` quantile (0..=1) of sorted `latencies`, in milliseconds.
fn percentile_ms(latencies: &[Duration], p: f64) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
    latencies[index].as_secs_f64() * 1000.0
}

/// The value after `--name`, parsed, or `default`.
fn option(name: &str, default: u64) -> anyhow::Result<u64> {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .map(|s| s.parse().with_context(|| format!("{name} takes a number")))
        .transpose()
        .map(|value| value.unwrap_or(default))
}

/// The text after `--name`, if given.
fn text_option(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    auth_core::install_tls_provider();
    let bin_dir: PathBuf = std::env::current_exe()?
        .parent()
        .context("binary directory")?
        .to_path_buf();
    match std::env::args().nth(1).as_deref() {
        Some("admin-users") => admin_users::run(&bin_dir, option("--users", 1_000_000)?).await,
        Some("pipeline") => pipeline::run(&bin_dir, usize::try_from(option("--messages", 1000)?)?).await,
        Some("oauth") => {
            let port = u16::try_from(option("--provider-port", 0)?)?;
            oauth::run(&bin_dir, option("--seconds", 10)?, port, text_option("--target")).await
        }
        Some("sessions") | None => sessions_or_versus(&bin_dir).await,
        Some(flag) if flag.starts_with("--") => sessions_or_versus(&bin_dir).await,
        Some(other) => anyhow::bail!("unknown benchmark {other}: use `sessions`, `pipeline`, `admin-users` or `oauth`"),
    }
}

/// `sessions` alone, or side by side with `--target`.
async fn sessions_or_versus(bin_dir: &std::path::Path) -> anyhow::Result<()> {
    let seconds = option("--seconds", 10)?;
    match versus::Target::from_args()? {
        Some(target) => versus::run(bin_dir, seconds, target).await,
        None => sessions::run(bin_dir, seconds).await,
    }
}

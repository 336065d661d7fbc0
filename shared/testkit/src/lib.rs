//! Starts the whole suite for a test.
//!
//! [`Suite::start`] creates a fresh database, migrates it, binds every service and the gateway on
//! `127.0.0.1:0`, runs them in-process (each its own `serve`), and returns once every one reports
//! healthy. NATS is the local server (`NATS_URL`) under a prefix unique to the suite, so tests run in
//! parallel without seeing each other's messages. [`Suite::shutdown`] stops everything and drops the
//! database and the NATS stream.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! let suite = auth_testkit::Suite::builder().env("GOTRUE_DISABLE_SIGNUP", "true").start().await?;
//! let settings: serde_json::Value = suite.get("/settings").await?.json().await?;
//! assert_eq!(settings["disable_signup"], true);
//! suite.shutdown().await;
//! # Ok(()) }
//! ```

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is the test failing"
)]

pub mod jwt;
pub mod launched;
pub mod nats_server;
pub mod oauth;
pub mod otlp;
pub mod sms;
pub mod smtp;
pub mod traces;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use auth_core::Config;
use auth_core::runtime::ServiceContext;
use sqlx::{AssertSqlSafe, Executor, PgPool};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use launched::LaunchedSuite;
pub use nats_server::PrivateNats;
pub use sms::FakeSmsProvider;
pub use smtp::SmtpSink;

/// What to run when the servers below are not given: it starts the suite's own Postgres and NATS
/// (deploy/local/infra.sh) and prints their URLs as exports. `deploy/local/test` does it by itself.
const INFRA_HINT: &str = "run `eval \"$(deploy/local/infra env)\"` first, or use deploy/local/test";

/// Where tests create their databases: a maintenance database on a server where the test user may
/// create databases. Required: the suite's own cluster has a generated password.
fn admin_database_url() -> anyhow::Result<String> {
    std::env::var("AUTH_TEST_DATABASE_URL").with_context(|| format!("AUTH_TEST_DATABASE_URL is not set: {INFRA_HINT}"))
}

/// The NATS server the tests use; by default the suite's own (deploy/local/infra.sh).
fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:44222".to_string())
}

/// Every binary the workspace builds for running the suite.
pub const SUITE_BINARIES: &[&str] = &[
    "auth-gateway",
    "auth-token",
    "auth-user",
    "auth-mfa",
    "auth-sso",
    "auth-notification",
];

/// The gRPC services of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    Token,
    User,
    Mfa,
    Sso,
    Notification,
}

impl Service {
    pub const ALL: [Service; 5] = [
        Service::Token,
        Service::User,
        Service::Mfa,
        Service::Sso,
        Service::Notification,
    ];

    /// The variable that tells the other processes where this service is.
    pub fn url_variable(self) -> &'static str {
        match self {
            Service::Token => "AUTH_TOKEN_URL",
            Service::User => "AUTH_USER_URL",
            Service::Mfa => "AUTH_MFA_URL",
            Service::Sso => "AUTH_SSO_URL",
            Service::Notification => "AUTH_NOTIFICATION_URL",
        }
    }

    /// Its process (and binary `auth-<name>`) name.
    pub fn process_name(self) -> &'static str {
        match self {
            Service::Token => "token",
            Service::User => "user",
            Service::Mfa => "mfa",
            Service::Sso => "sso",
            Service::Notification => "notification",
        }
    }

    /// The fully-qualified gRPC service name it reports to health checks.
    pub fn grpc_name(self) -> &'static str {
        use auth_proto::service_names as names;
        match self {
            Service::Token => names::TOKEN,
            Service::User => names::USER,
            Service::Mfa => names::MFA,
            Service::Sso => names::SSO,
            Service::Notification => names::NOTIFICATION,
        }
    }

    fn serve(self, ctx: ServiceContext) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>> {
        match self {
            Service::Token => Box::pin(auth_token::serve(ctx)),
            Service::User => Box::pin(auth_user::serve(ctx)),
            Service::Mfa => Box::pin(auth_mfa::serve(ctx)),
            Service::Sso => Box::pin(auth_sso::serve(ctx)),
            Service::Notification => Box::pin(auth_notification::serve(ctx)),
        }
    }
}

/// One running in-process server.
struct Running {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await.context("server task panicked")?
    }
}

/// An extra instance of a service running beside the suite's own, on the same configuration and
/// database (e.g. a second notifier replica sharing the durable consumer).
pub struct Replica {
    running: Running,
}

impl Replica {
    pub fn addr(&self) -> SocketAddr {
        self.running.addr
    }

    /// Graceful shutdown, as on SIGTERM.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.running.stop().await
    }
}

/// Configures a [`Suite`] before it starts.
#[derive(Default)]
pub struct SuiteBuilder {
    env: BTreeMap<String, String>,
    shared_database: Option<String>,
}

impl SuiteBuilder {
    /// Sets a configuration variable (`GOTRUE_*`, `AUTH_*`) for every process of the suite.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.to_string(), value.to_string());
        self
    }

    /// Runs against the database of `other` instead of a fresh one, as several GoTrue instances with
    /// different settings share one database (the way the official clients' test suites run).
    pub fn share_database_with(mut self, other: &Suite) -> Self {
        self.shared_database = Some(other.database_name.clone());
        self
    }

    pub async fn start(self) -> anyhow::Result<Suite> {
        Suite::start_with(self).await
    }
}

/// The whole suite, running in this test process.
pub struct Suite {
    /// `http://127.0.0.1:<port>` of the gateway.
    pub base_url: String,
    pub http: reqwest::Client,
    pub config: Arc<Config>,
    /// A pool on the suite's database (search_path = the namespace), for assertions and fixtures.
    pub db: PgPool,
    pub smtp: SmtpSink,
    pub sms: FakeSmsProvider,
    database_name: String,
    owns_database: bool,
    services: BTreeMap<Service, Running>,
    gateway: Option<Running>,
}

impl Suite {
    pub fn builder() -> SuiteBuilder {
        SuiteBuilder::default()
    }

    /// A suite with the test defaults.
    pub async fn start() -> anyhow::Result<Self> {
        Self::builder().start().await
    }

    async fn start_with(builder: SuiteBuilder) -> anyhow::Result<Self> {
        init_test_tracing();
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let (database_name, owns_database) = match builder.shared_database {
            Some(name) => (name, false),
            None => {
                let name = format!("auth_test_{}", &unique[..16]);
                create_database(&name).await?;
                (name, true)
            }
        };

        let smtp = SmtpSink::start().await?;
        let sms = FakeSmsProvider::start().await?;

        let mut listeners = BTreeMap::new();
        for service in Service::ALL {
            listeners.insert(service, TcpListener::bind("127.0.0.1:0").await?);
        }
        let gateway_listener = TcpListener::bind("127.0.0.1:0").await?;

        let mut env = test_environment(&database_name, &unique);
        env.extend(smtp.settings().into_iter().map(|(k, v)| (k.to_string(), v)));
        // Twilio, pointed at the fake provider; tests switch providers with `env`.
        env.insert("GOTRUE_SMS_PROVIDER".into(), "twilio".into());
        env.insert("GOTRUE_SMS_TWILIO_ACCOUNT_SID".into(), "AC123".into());
        env.insert("GOTRUE_SMS_TWILIO_AUTH_TOKEN".into(), "twilio-test-token".into());
        env.insert("GOTRUE_SMS_TWILIO_MESSAGE_SERVICE_SID".into(), "MG123".into());
        env.insert("AUTH_SMS_API_URL".into(), sms.base_url());
        for (service, listener) in &listeners {
            env.insert(
                service.url_variable().into(),
                format!("http://{}", listener.local_addr()?),
            );
        }
        env.insert("PORT".into(), gateway_listener.local_addr()?.port().to_string());
        env.extend(builder.env);
        let config = Arc::new(Config::from_pairs(env).map_err(|e| anyhow::anyhow!("{e}"))?);

        auth_core::db::migrate(&config.db).await?;
        let db = auth_core::db::connect(&config.db, "auth_testkit").await?;

        let mut suite = Suite {
            base_url: format!("http://{}", gateway_listener.local_addr()?),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()?,
            config: config.clone(),
            db,
            smtp,
            sms,
            database_name,
            owns_database,
            services: BTreeMap::new(),
            gateway: None,
        };
        for (service, listener) in listeners {
            suite.spawn_service(service, listener);
        }
        let shutdown = CancellationToken::new();
        let addr = gateway_listener.local_addr()?;
        let task = tokio::spawn(auth_gateway::serve(config, gateway_listener, shutdown.clone()));
        suite.gateway = Some(Running { addr, shutdown, task });

        for service in Service::ALL {
            suite.wait_serving(service).await?;
        }
        suite.wait_gateway_healthy().await?;
        Ok(suite)
    }

    fn spawn_service(&mut self, service: Service, listener: TcpListener) {
        let addr = listener.local_addr().expect("bound listener has an address");
        let shutdown = CancellationToken::new();
        let ctx = ServiceContext {
            config: self.config.clone(),
            db: self.db.clone(),
            listener,
            shutdown: shutdown.clone(),
        };
        let task = tokio::spawn(service.serve(ctx));
        self.services.insert(service, Running { addr, shutdown, task });
    }

    /// Starts another instance of `service` on a free port and waits until it is healthy.
    pub async fn spawn_replica(&self, service: Service) -> anyhow::Result<Replica> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let ctx = ServiceContext {
            config: self.config.clone(),
            db: self.db.clone(),
            listener,
            shutdown: shutdown.clone(),
        };
        let task = tokio::spawn(service.serve(ctx));
        let channel = auth_core::grpc::channel(
            &format!("http://{addr}"),
            Duration::from_secs(1),
            Duration::from_secs(10),
        )?;
        retry_until(|| auth_core::grpc::is_serving(channel.clone(), service.grpc_name()))
            .await
            .with_context(|| format!("the {service:?} replica never became healthy"))?;
        Ok(Replica {
            running: Running { addr, shutdown, task },
        })
    }

    /// The gRPC address of a running service.
    pub fn service_addr(&self, service: Service) -> Option<SocketAddr> {
        self.services.get(&service).map(|running| running.addr)
    }

    /// A channel to a service, as an internal client would open one.
    pub fn channel(&self, service: Service) -> anyhow::Result<tonic::transport::Channel> {
        let addr = self.service_addr(service).context("service is not running")?;
        auth_core::grpc::channel(
            &format!("http://{addr}"),
            Duration::from_secs(1),
            Duration::from_secs(10),
        )
    }

    /// Stops a service (graceful shutdown, as on SIGTERM). Its address stays reserved for [`Suite::restart`].
    pub async fn stop(&mut self, service: Service) -> anyhow::Result<SocketAddr> {
        let running = self.services.remove(&service).context("service is not running")?;
        let addr = running.addr;
        running.stop().await?;
        Ok(addr)
    }

    /// Starts a stopped service again on the address it had, and waits until it is healthy.
    pub async fn restart(&mut self, service: Service, addr: SocketAddr) -> anyhow::Result<()> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("rebinding {addr}"))?;
        self.spawn_service(service, listener);
        self.wait_serving(service).await
    }

    /// Waits until `service` answers its gRPC health check with SERVING.
    pub async fn wait_serving(&self, service: Service) -> anyhow::Result<()> {
        let channel = self.channel(service)?;
        retry_until(|| auth_core::grpc::is_serving(channel.clone(), service.grpc_name()))
            .await
            .with_context(|| format!("{service:?} never became healthy"))
    }

    async fn wait_gateway_healthy(&mut self) -> anyhow::Result<()> {
        let url = self.url("/health");
        let exited = || self.gateway.as_ref().is_some_and(|g| g.task.is_finished());
        let waited = retry_until(|| async {
            exited() || matches!(self.http.get(&url).send().await, Ok(response) if response.status().is_success())
        })
        .await;
        if exited()
            && let Some(gateway) = self.gateway.take()
        {
            // Surface why the gateway stopped instead of timing out.
            gateway
                .task
                .await
                .context("gateway task panicked")?
                .context("the gateway failed to start")?;
            anyhow::bail!("the gateway exited during start-up");
        }
        waited.context("the gateway never became healthy")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn get(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        self.http.get(self.url(path)).send().await
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Result<reqwest::Response> {
        self.http.post(self.url(path)).json(body).send().await
    }

    /// A request builder for anything else (headers, methods, raw bodies).
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// Stops every process, then drops the database (if this suite created it) and the NATS stream.
    pub async fn shutdown(mut self) {
        if let Some(gateway) = self.gateway.take()
            && let Err(e) = gateway.stop().await
        {
            tracing::warn!(error = %e, "gateway stopped with an error");
        }
        for (service, running) in std::mem::take(&mut self.services) {
            if let Err(e) = running.stop().await {
                tracing::warn!(?service, error = %e, "service stopped with an error");
            }
        }
        self.db.close().await;
        if let Err(e) = delete_nats_stream(&self.config.suite.nats_prefix).await {
            tracing::warn!(error = %e, "NATS stream cleanup failed");
        }
        if self.owns_database
            && let Err(e) = drop_database(&self.database_name).await
        {
            tracing::warn!(error = %e, "database cleanup failed");
        }
    }
}

/// The configuration every test suite starts from; builder variables override it.
fn test_environment(database_name: &str, unique: &str) -> BTreeMap<String, String> {
    let database_url = database_url_for(database_name);
    [
        ("GOTRUE_SITE_URL", "http://localhost:3000"),
        ("API_EXTERNAL_URL", "http://localhost:9999"),
        ("GOTRUE_JWT_SECRET", jwt::TEST_JWT_SECRET),
        ("GOTRUE_JWT_AUD", "authenticated"),
        ("GOTRUE_DB_MAX_POOL_SIZE", "20"),
        ("NATS_URL", &nats_url()),
        ("AUTH_NATS_PREFIX", &format!("t{}", &unique[..12])),
        ("DATABASE_URL", &database_url),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The URL of database `name` on the test server.
pub fn database_url_for(name: &str) -> String {
    // Test harness: without a server there is nothing to test, so say how to get one and stop.
    let admin_url = admin_database_url().unwrap_or_else(|e| panic!("{e:#}"));
    let mut url = url_without_database(&admin_url);
    url.push('/');
    url.push_str(name);
    url
}

fn url_without_database(url: &str) -> String {
    // postgres://user@host:port/db?params → postgres://user@host:port
    let without_params = url.split('?').next().unwrap_or(url);
    match without_params.rfind('/') {
        Some(slash) if slash > "postgres://".len() => without_params[..slash].to_string(),
        _ => without_params.to_string(),
    }
}

async fn admin_pool() -> anyhow::Result<PgPool> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_database_url()?)
        .await
        .with_context(|| format!("cannot reach the test Postgres (AUTH_TEST_DATABASE_URL): {INFRA_HINT}"))
}

/// Creates an empty database (owned by `owner` when given).
pub async fn create_database_owned_by(name: &str, owner: Option<&str>) -> anyhow::Result<()> {
    let pool = admin_pool().await?;
    let owner = owner.map(|o| format!(" OWNER \"{o}\"")).unwrap_or_default();
    pool.execute(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"{owner}")))
        .await?;
    pool.close().await;
    Ok(())
}

pub async fn create_database(name: &str) -> anyhow::Result<()> {
    create_database_owned_by(name, None).await
}

pub async fn drop_database(name: &str) -> anyhow::Result<()> {
    let pool = admin_pool().await?;
    pool.execute(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .await?;
    pool.close().await;
    Ok(())
}

/// Runs SQL on the maintenance database (roles and other cluster-wide fixtures).
pub async fn admin_execute(sql: &str) -> anyhow::Result<()> {
    let pool = admin_pool().await?;
    pool.execute(AssertSqlSafe(sql.to_string())).await?;
    pool.close().await;
    Ok(())
}

async fn delete_nats_stream(prefix: &str) -> anyhow::Result<()> {
    delete_nats_stream_at(&nats_url(), prefix).await
}

async fn delete_nats_stream_at(url: &str, prefix: &str) -> anyhow::Result<()> {
    let client = auth_core::nats::connect(url).await?;
    let jetstream = async_nats::jetstream::new(client);
    let name = auth_core::nats::notification_stream_name(prefix);
    // The stream may not exist (the notifier never started): not an error.
    let _ = jetstream.delete_stream(&name).await;
    let _ = jetstream
        .delete_key_value(auth_core::nats::rate_limit_bucket_name(prefix))
        .await;
    Ok(())
}

/// Fixed private test signing keys (`"rsa"` RS256, `"ec"` ES256, `"ed"` EdDSA), generated once for
/// the tests and never used elsewhere.
pub fn test_jwk(kind: &str) -> serde_json::Value {
    let all: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/test_jwks.json")).expect("fixture is JSON");
    all[kind].clone()
}

/// Polls `check` until it is true, backing off from 5 ms to 100 ms, for at most 30 s. Readiness is
/// decided by the check itself (a health call), never by a fixed sleep.
pub async fn retry_until<F, Fut>(mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut backoff = Duration::from_millis(5);
    loop {
        if check().await {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "gave up after 30s");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(100));
    }
}

/// Reads a GoTrue error response, checks its status and `error_code` (in the default format), and
/// returns the body for further assertions.
pub async fn assert_gotrue_error(response: reqwest::Response, status: u16, error_code: &str) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    let header = response
        .headers()
        .get("x-sb-error-code")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body: serde_json::Value = response.json().await.expect("error responses are JSON");
    assert_eq!(body["code"], status, "body: {body}");
    assert_eq!(body["error_code"], error_code, "body: {body}");
    assert!(body["msg"].is_string(), "body: {body}");
    assert_eq!(header.as_deref(), Some(error_code), "x-sb-error-code header");
    body
}

fn init_test_tracing() {
    auth_core::install_tls_provider();
    // Quiet unless TEST_LOG or RUST_LOG asks for output.
    if std::env::var_os("TEST_LOG").is_some() || std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

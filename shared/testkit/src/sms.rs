//! A fake SMS provider: an HTTP server that records every request and answers like the provider.
//! Point a provider's base URL at [`FakeSmsProvider::base_url`]. Answers can be switched to failures to
//! exercise retries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};

/// One request the provider received.
#[derive(Debug, Clone)]
pub struct ReceivedSms {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    /// The raw body: form-encoded for Twilio/Textlocal/Vonage, JSON for MessageBird.
    pub body: String,
}

impl ReceivedSms {
    /// A form field of the body (`To`, `Body`, ...).
    pub fn form_field(&self, name: &str) -> Option<String> {
        url_decode_pairs(&self.body)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

#[derive(Clone)]
struct Shared {
    sender: mpsc::UnboundedSender<ReceivedSms>,
    /// The status to answer with; 200 unless a test asks for failures.
    status: Arc<AtomicU16>,
}

#[derive(Clone)]
pub struct FakeSmsProvider {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    received: Arc<Mutex<mpsc::UnboundedReceiver<ReceivedSms>>>,
}

impl FakeSmsProvider {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let status = Arc::new(AtomicU16::new(200));
        let shared = Shared {
            sender,
            status: status.clone(),
        };
        let app = Router::new().fallback(record).with_state(shared);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            status,
            received: Arc::new(Mutex::new(receiver)),
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answer every following request with `status` (e.g. 503 to simulate an outage).
    pub fn respond_with(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub async fn next_within(&self, timeout: Duration) -> Option<ReceivedSms> {
        let mut received = self.received.lock().await;
        tokio::time::timeout(timeout, received.recv()).await.ok().flatten()
    }

    pub async fn next(&self) -> Option<ReceivedSms> {
        self.next_within(Duration::from_secs(10)).await
    }
}

async fn record(State(shared): State<Shared>, request: Request) -> impl IntoResponse {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_else(|_| Bytes::new());
    let status = StatusCode::from_u16(shared.status.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK);
    let _ = shared.sender.send(ReceivedSms {
        method,
        path,
        authorization,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    // A shape that satisfies every provider's success check: Twilio's `sid`/`status`, MessageBird's
    // `id`, Textlocal's `status`, Vonage's `messages[].status`.
    let message_id = uuid::Uuid::new_v4().to_string();
    let body = serde_json::json!({
        "sid": message_id, "id": message_id, "status": if status.is_success() { "queued" } else { "failed" },
        "messages": [{ "status": if status.is_success() { "0" } else { "1" }, "message-id": message_id }],
    });
    (status, axum::Json(body))
}

fn url_decode_pairs(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes()).into_owned().collect()
}

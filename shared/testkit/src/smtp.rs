//! An SMTP server that accepts every message and keeps it for the test to read.
//!
//! It speaks just enough SMTP for real clients (lettre): EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT.
//! No TLS, no authentication: point `GOTRUE_SMTP_HOST`/`GOTRUE_SMTP_PORT` at it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body, as sent (CRLF line ends, dot-stuffing removed).
    pub data: String,
}

impl ReceivedMail {
    /// The value of header `name` (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        let mut lines = self.data.split("\r\n").take_while(|line| !line.is_empty()).peekable();
        while let Some(line) = lines.next() {
            if line.to_ascii_lowercase().starts_with(&prefix) {
                let mut value = line[prefix.len()..].trim().to_string();
                while let Some(next) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
                    value.push(' ');
                    value.push_str(next.trim());
                    lines.next();
                }
                return Some(value);
            }
        }
        None
    }

    /// The body after the headers, with a quoted-printable transfer encoding undone.
    pub fn body(&self) -> String {
        let raw = self.data.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        let quoted = self
            .header("Content-Transfer-Encoding")
            .is_some_and(|encoding| encoding.eq_ignore_ascii_case("quoted-printable"));
        if quoted {
            quoted_printable::decode(raw, quoted_printable::ParseMode::Robust)
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_else(|_| raw.to_string())
        } else {
            raw.to_string()
        }
    }
}

#[derive(Clone)]
pub struct SmtpSink {
    addr: SocketAddr,
    received: Arc<Mutex<mpsc::UnboundedReceiver<ReceivedMail>>>,
    /// How many of the next messages to refuse (451, a temporary failure) instead of accepting.
    refusals: Arc<AtomicUsize>,
}

impl SmtpSink {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let refusals = Arc::new(AtomicUsize::new(0));
        let session_refusals = refusals.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sender = sender.clone();
                let refusals = session_refusals.clone();
                tokio::spawn(async move {
                    if let Err(e) = session(stream, sender, refusals).await {
                        tracing::debug!(error = %e, "SMTP sink session ended");
                    }
                });
            }
        });
        Ok(Self {
            addr,
            received: Arc::new(Mutex::new(receiver)),
            refusals,
        })
    }

    /// Refuses the next `count` messages with `451` (as a struggling mail server would).
    pub fn refuse_next(&self, count: usize) {
        self.refusals.store(count, Ordering::SeqCst);
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The settings that point the suite's mailer at this sink.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("GOTRUE_SMTP_HOST", "127.0.0.1".into()),
            ("GOTRUE_SMTP_PORT", self.addr.port().to_string()),
            ("GOTRUE_SMTP_ADMIN_EMAIL", "admin@example.com".into()),
            ("GOTRUE_SMTP_SENDER_NAME", "Auth Suite Tests".into()),
        ]
    }

    /// The next message, waiting up to `timeout` for it.
    pub async fn next_within(&self, timeout: Duration) -> Option<ReceivedMail> {
        let mut received = self.received.lock().await;
        tokio::time::timeout(timeout, received.recv()).await.ok().flatten()
    }

    /// The next message (waits up to 10 s).
    pub async fn next(&self) -> Option<ReceivedMail> {
        self.next_within(Duration::from_secs(10)).await
    }

    /// Reads mail into `seen` (how often each `Message-ID` arrived) until it holds `expected`
    /// distinct messages, then keeps listening for `quiet` to catch late duplicates. Fails when the
    /// messages stop coming for `patience` before that.
    pub async fn collect_by_message_id(
        &self,
        seen: &mut HashMap<String, usize>,
        expected: usize,
        quiet: Duration,
        patience: Duration,
    ) -> anyhow::Result<()> {
        while seen.len() < expected {
            let mail = self
                .next_within(patience)
                .await
                .with_context(|| format!("only {} of {expected} emails arrived", seen.len()))?;
            *seen.entry(mail.header("Message-ID").unwrap_or_default()).or_default() += 1;
        }
        while let Some(mail) = self.next_within(quiet).await {
            *seen.entry(mail.header("Message-ID").unwrap_or_default()).or_default() += 1;
        }
        Ok(())
    }
}

async fn session(
    stream: TcpStream,
    sender: mpsc::UnboundedSender<ReceivedMail>,
    refusals: Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 auth-testkit SMTP sink ready\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    while let Some(line) = lines.next_line().await? {
        let command = line.get(..4).unwrap_or(&line).to_ascii_uppercase();
        let reply: &[u8] = match command.as_str() {
            "EHLO" => b"250-auth-testkit\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" | "NOOP" => b"250 OK\r\n",
            "MAIL" => {
                from = address_of(&line);
                to.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                to.push(address_of(&line));
                b"250 OK\r\n"
            }
            "RSET" => {
                from.clear();
                to.clear();
                b"250 OK\r\n"
            }
            "DATA" => {
                write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let mut data = String::new();
                while let Some(line) = lines.next_line().await? {
                    if line == "." {
                        break;
                    }
                    // RFC 5321 §4.5.2: a leading dot was doubled by the client.
                    data.push_str(
                        line.strip_prefix('.')
                            .filter(|_| line.starts_with(".."))
                            .unwrap_or(&line),
                    );
                    data.push_str("\r\n");
                }
                let refuse = refusals
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1))
                    .is_ok();
                let mail = ReceivedMail {
                    from: from.clone(),
                    to: std::mem::take(&mut to),
                    data,
                };
                if refuse {
                    b"451 Try again later\r\n"
                } else {
                    let _ = sender.send(mail);
                    b"250 OK: queued\r\n"
                }
            }
            "QUIT" => {
                write.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 Command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
    Ok(())
}

/// `MAIL FROM:<a@b> SIZE=1` → `a@b`
fn address_of(line: &str) -> String {
    let start = line.find('<').map(|i| i + 1).unwrap_or(0);
    let end = line[start..].find('>').map(|i| start + i).unwrap_or(line.len());
    line[start..end].to_string()
}

//! Sending one email over SMTP (lettre), with GoTrue's TLS choice: implicit TLS on port 465,
//! STARTTLS when the server offers it on any other port.

use std::time::Duration;

use anyhow::Context;
use auth_core::config::SmtpConfig;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// `None` when no SMTP host is configured (then no email can be delivered). Without
    /// `GOTRUE_SMTP_ADMIN_EMAIL` mail comes from `noreply@<host of GOTRUE_SITE_URL>`.
    pub fn from_config(config: &SmtpConfig, site_url: &url::Url) -> anyhow::Result<Option<Self>> {
        if config.host.is_empty() {
            return Ok(None);
        }
        let builder = if config.port == 465 {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host).context("GOTRUE_SMTP_HOST")?
        } else {
            let tls = TlsParameters::new(config.host.clone()).context("GOTRUE_SMTP_HOST")?;
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host).tls(Tls::Opportunistic(tls))
        };
        let mut builder = builder.port(config.port).timeout(Some(SMTP_TIMEOUT));
        if !config.user.is_empty() {
            builder = builder.credentials(Credentials::new(
                config.user.clone(),
                config.pass.expose_secret().to_string(),
            ));
        }
        let admin_email = if config.admin_email.is_empty() {
            format!("noreply@{}", site_url.host_str().unwrap_or("localhost"))
        } else {
            config.admin_email.clone()
        };
        let address = admin_email
            .parse()
            .with_context(|| format!("GOTRUE_SMTP_ADMIN_EMAIL `{admin_email}` is not an email address"))?;
        let name = (!config.sender_name.is_empty()).then(|| config.sender_name.clone());
        Ok(Some(Self {
            transport: builder.build(),
            from: Mailbox::new(name, address),
        }))
    }

    /// Sends one HTML email. `message_id` (the outbox id) becomes the Message-ID, so a message can be
    /// traced from the request to the recipient's mailbox.
    pub async fn send(&self, to: &str, subject: &str, html: String, message_id: &str) -> anyhow::Result<()> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(to
                .parse()
                .with_context(|| format!("recipient `{to}` is not an email address"))?)
            .subject(subject)
            .message_id(Some(format!("<{message_id}@auth-suite>")))
            .header(ContentType::TEXT_HTML)
            .body(html)
            .context("building the email")?;
        self.transport.send(message).await.context("SMTP delivery")?;
        Ok(())
    }
}

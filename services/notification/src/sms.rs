//! Sending SMS (and WhatsApp) messages through the provider's HTTP API, as GoTrue's
//! `sms_provider` package does: same endpoints, fields and success checks, so an operator's
//! `GOTRUE_SMS_*` settings work unchanged. `AUTH_SMS_API_URL` replaces the provider's base URL.

use std::time::Duration;

use auth_core::config::SmsConfig;
use secrecy::ExposeSecret;

/// GoTrue's provider timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct SmsSender {
    config: SmsConfig,
    http: reqwest::Client,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Sms,
    Whatsapp,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Whatsapp => "whatsapp",
        }
    }
}

impl SmsSender {
    /// `None` when no provider is usable; requests then fail (and are retried, then dead-lettered)
    /// with the configuration problem as the reason.
    pub fn from_config(config: &SmsConfig) -> anyhow::Result<Option<Self>> {
        if let Some(problem) = config.provider_problem() {
            tracing::info!(%problem, "SMS delivery disabled");
            return Ok(None);
        }
        auth_core::install_tls_provider();
        let http = reqwest::Client::builder().timeout(TIMEOUT).build()?;
        Ok(Some(Self {
            config: config.clone(),
            http,
        }))
    }

    /// GoTrue's `generateSMSFromTemplate`: `{{ .Code }}` becomes the code.
    pub fn render(template: &str, otp: &str) -> String {
        #[expect(clippy::expect_used, reason = "a constant pattern, compiled by every test run")]
        static CODE: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new(r"\{\{\s*\.Code\s*\}\}").expect("static pattern"));
        CODE.replace_all(template, regex::NoExpand(otp)).into_owned()
    }

    /// Sends `message` to `phone` (E.164 digits) and returns the provider's message id.
    pub async fn send(&self, phone: &str, message: &str, channel: Channel, otp: &str) -> anyhow::Result<String> {
        match self.config.provider.as_str() {
            "twilio" => self.twilio(phone, message, channel, otp).await,
            _ if channel == Channel::Whatsapp => {
                anyhow::bail!("channel whatsapp is not supported by {}", self.config.provider)
            }
            "messagebird" => self.messagebird(phone, message).await,
            "textlocal" => self.textlocal(phone, message).await,
            "vonage" => self.vonage(phone, message).await,
            other => anyhow::bail!("SMS provider {other:?} is not supported"),
        }
    }

    fn base<'a>(&'a self, default: &'a str) -> &'a str {
        self.config.api_url.as_deref().unwrap_or(default).trim_end_matches('/')
    }

    async fn twilio(&self, phone: &str, message: &str, channel: Channel, otp: &str) -> anyhow::Result<String> {
        let twilio = &self.config.twilio;
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.base("https://api.twilio.com"),
            twilio.account_sid
        );
        let mut to = format!("+{phone}");
        let mut from = twilio.message_service_sid.clone();
        let mut form = vec![("Channel", channel.as_str().to_string())];
        if channel == Channel::Whatsapp {
            to = format!("whatsapp:{to}");
            let digits = from.trim_start_matches('+');
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                from = format!("whatsapp:{from}");
            }
            if twilio.content_sid.is_empty() {
                form.push(("Body", message.to_string()));
            } else {
                form.push(("ContentSid", twilio.content_sid.clone()));
                form.push(("ContentVariables", serde_json::json!({"1": otp}).to_string()));
            }
        } else {
            form.push(("Body", message.to_string()));
        }
        form.push(("To", to));
        form.push(("From", from));
        let response = self
            .http
            .post(url)
            .basic_auth(&twilio.account_sid, Some(twilio.auth_token.expose_secret()))
            .form(&form)
            .send()
            .await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let text = |key: &str| body[key].as_str().unwrap_or_default().to_string();
        if !(status == reqwest::StatusCode::OK || status == reqwest::StatusCode::CREATED) {
            anyhow::bail!("twilio answered {status}: {} (code {})", text("message"), body["code"]);
        }
        if matches!(text("status").as_str(), "failed" | "undelivered") {
            anyhow::bail!(
                "twilio error: {} {} for message {}",
                text("error_message"),
                body["error_code"],
                text("sid")
            );
        }
        Ok(text("sid"))
    }

    async fn messagebird(&self, phone: &str, message: &str) -> anyhow::Result<String> {
        let bird = &self.config.messagebird;
        let url = format!("{}/messages", self.base("https://rest.messagebird.com"));
        let form = [
            ("originator", bird.originator.as_str()),
            ("body", message),
            ("recipients", phone),
            ("type", "sms"),
            ("datacoding", "unicode"),
        ];
        let response = self
            .http
            .post(url)
            .header(
                "Authorization",
                format!("AccessKey {}", bird.access_key.expose_secret()),
            )
            .form(&form)
            .send()
            .await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            anyhow::bail!("messagebird answered {status}: {body}");
        }
        Ok(body["id"].as_str().unwrap_or_default().to_string())
    }

    async fn textlocal(&self, phone: &str, message: &str) -> anyhow::Result<String> {
        let textlocal = &self.config.textlocal;
        let url = format!("{}/send", self.base("https://api.textlocal.in"));
        let form = [
            ("sender", textlocal.sender.as_str()),
            ("apikey", textlocal.api_key.expose_secret()),
            ("message", message),
            ("numbers", phone),
        ];
        let response = self.http.post(url).form(&form).send().await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() || body["status"] != "success" {
            anyhow::bail!("textlocal answered {status}: {body}");
        }
        Ok(body["batch_id"].as_str().map(str::to_string).unwrap_or_default())
    }

    async fn vonage(&self, phone: &str, message: &str) -> anyhow::Result<String> {
        let vonage = &self.config.vonage;
        let url = format!("{}/sms/json", self.base("https://rest.nexmo.com"));
        let form = [
            ("from", vonage.from.as_str()),
            ("to", phone),
            ("text", message),
            ("api_key", vonage.api_key.as_str()),
            ("api_secret", vonage.api_secret.expose_secret()),
        ];
        let response = self.http.post(url).form(&form).send().await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let first = &body["messages"][0];
        if !status.is_success() || first["status"] != "0" {
            anyhow::bail!(
                "vonage error: {} (status: {}) for message {}",
                first["error-text"],
                first["status"],
                first["message-id"]
            );
        }
        Ok(first["message-id"].as_str().unwrap_or_default().to_string())
    }
}

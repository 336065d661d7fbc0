//! The outbox: email and SMS requests stored with the change they belong to.
//!
//! A flow that must send an email or SMS stores the code's hash on the user and writes the delivery
//! request to `outbox_messages` in the same transaction. The relay publishes it to JetStream and the
//! notifier sends it; if the transaction rolls back, nothing is sent, and if it commits, the message
//! cannot be lost.
//!
//! Every service that sends (user, mfa) writes through this crate and runs a [`relay`]; the relays
//! share the table safely, so any replica of any of them publishes any row.

pub mod budget;
pub mod relay;

use auth_core::{Config, ErrorCode, ServiceError};
pub use auth_proto::notification::v1::SmsKind;
use auth_proto::notification::v1::{EmailKind, EmailRequested, SmsChannel, SmsRequested};
use chrono::Utc;
use prost::Message;
use rand::Rng;
use sha2::{Digest, Sha224};
use sqlx::PgConnection;
use uuid::Uuid;

/// A uniformly random `length`-digit code (GoTrue's `GenerateOtp`).
pub fn generate_otp(length: usize) -> String {
    let mut rng = rand::rng();
    (0..length)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// GoTrue's token hash: lower-case hex SHA-224 of the address followed by the code.
pub fn token_hash(address: &str, otp: &str) -> String {
    let digest = Sha224::digest(format!("{address}{otp}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What an email request carries besides its kind and recipient.
#[derive(Debug, Default)]
pub struct EmailContent {
    pub otp: String,
    pub token_hash: String,
    /// GoTrue's `type` in the link: signup, email_change, ...
    pub link_type: &'static str,
    pub redirect_to: String,
    pub new_email: String,
    pub data_json: String,
    /// `{{ .Email }}` when it is not the recipient (the email-changed notification goes to the old
    /// address and names the new one); empty means the recipient.
    pub account_email: String,
    /// `{{ .OldEmail }}`, `{{ .OldPhone }}`, `{{ .Phone }}` of the account-change notifications.
    pub old_email: String,
    pub old_phone: String,
    pub phone: String,
    /// `{{ .FactorType }}` of the MFA factor notifications.
    pub factor_type: String,
    /// `{{ .Provider }}` of the identity linked/unlinked notifications.
    pub provider: String,
}

pub async fn enqueue_email(
    conn: &mut PgConnection,
    config: &Config,
    kind: EmailKind,
    to: &str,
    content: EmailContent,
) -> sqlx::Result<Uuid> {
    let id = Uuid::new_v4();
    let redirect_to = if content.redirect_to.is_empty() {
        config.site_url.to_string()
    } else {
        content.redirect_to.clone()
    };
    // Notifications carry no code, so no link.
    let confirmation_url = if content.link_type.is_empty() {
        String::new()
    } else {
        action_link(config, content.link_type, &content.token_hash, &redirect_to)
    };
    let email = if content.account_email.is_empty() {
        to.to_string()
    } else {
        content.account_email
    };
    let event = EmailRequested {
        message_id: id.to_string(),
        kind: kind as i32,
        to: to.to_string(),
        site_url: config.site_url.to_string(),
        confirmation_url,
        email,
        new_email: content.new_email,
        token: content.otp,
        token_hash: content.token_hash,
        redirect_to,
        data_json: content.data_json,
        requested_at: auth_account::users::timestamp(Some(Utc::now())),
        old_email: content.old_email,
        old_phone: content.old_phone,
        phone: content.phone,
        factor_type: content.factor_type,
        provider: content.provider,
    };
    insert(conn, config, id, "email_requested", event.encode_to_vec()).await?;
    Ok(id)
}

/// GoTrue's action link: `GOTRUE_MAILER_URLPATHS_<kind>` resolved against `API_EXTERNAL_URL`, with
/// the token hash, the link type and where to land afterwards.
pub fn action_link(config: &Config, link_type: &str, token_hash: &str, redirect_to: &str) -> String {
    let paths = &config.mailer.url_paths;
    let path = match link_type {
        "invite" => &paths.invite,
        "recovery" | "magiclink" => &paths.recovery,
        "email_change" => &paths.email_change,
        _ => &paths.confirmation,
    };
    let mut link = config
        .api
        .external_url
        .join(path)
        .unwrap_or_else(|_| config.api.external_url.clone());
    link.set_query(None);
    link.set_fragment(None);
    // GoTrue's getPath writes the query by hand: token and type escaped, redirect_to as given unless
    // it holds `&`, `=` or `#` (encodeRedirectURL), which clients compare the link against.
    format!(
        "{link}?token={}&type={}&redirect_to={}",
        go_query_escape(token_hash),
        go_query_escape(link_type),
        encode_redirect_url(redirect_to)
    )
}

/// GoTrue's `encodeRedirectURL`: a redirect URL that contains `&`, `=` or `#` was not encoded by
/// its sender and is escaped; any other is inserted verbatim.
fn encode_redirect_url(redirect_to: &str) -> std::borrow::Cow<'_, str> {
    if redirect_to.contains(['&', '=', '#']) {
        go_query_escape(redirect_to).into()
    } else {
        redirect_to.into()
    }
}

/// Go's `url.QueryEscape`: everything but ASCII letters, digits and `-_.~` is percent-encoded,
/// spaces become `+`.
fn go_query_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => escaped.push(byte as char),
            b' ' => escaped.push('+'),
            _ => escaped.push_str(&format!("%{byte:02X}")),
        }
    }
    escaped
}

/// Queues `otp` for `phone`; `kind` picks the template the notifier writes it with.
pub async fn enqueue_sms(
    conn: &mut PgConnection,
    config: &Config,
    kind: SmsKind,
    phone: &str,
    channel: &str,
    otp: &str,
) -> sqlx::Result<Uuid> {
    let id = Uuid::new_v4();
    let event = SmsRequested {
        message_id: id.to_string(),
        phone: phone.to_string(),
        channel: if channel == "whatsapp" {
            SmsChannel::Whatsapp
        } else {
            SmsChannel::Sms
        } as i32,
        otp: otp.to_string(),
        requested_at: auth_account::users::timestamp(Some(Utc::now())),
        kind: kind as i32,
    };
    insert(conn, config, id, "sms_requested", event.encode_to_vec()).await?;
    Ok(id)
}

pub const INVALID_CHANNEL: &str = "Invalid channel, supported values are 'sms' or 'whatsapp'. 'whatsapp' is only supported if Twilio or Twilio Verify is used as the provider.";

/// `sms` always; `whatsapp` only with Twilio providers.
pub fn check_channel(channel: &str, sms_provider: &str) -> Result<(), ServiceError> {
    match channel {
        "sms" => Ok(()),
        "whatsapp" if sms_provider == "twilio" || sms_provider == "twilio_verify" => Ok(()),
        _ => Err(ServiceError::bad_request(ErrorCode::ValidationFailed, INVALID_CHANNEL)),
    }
}

/// 429 with GoTrue's message when the previous message went out less than `frequency` ago.
pub fn check_frequency(
    sent_at: Option<chrono::DateTime<Utc>>,
    frequency: std::time::Duration,
    code: ErrorCode,
) -> Result<(), ServiceError> {
    let Some(sent_at) = sent_at else { return Ok(()) };
    let frequency = chrono::Duration::from_std(frequency).unwrap_or_default();
    let next = sent_at + frequency;
    let now = Utc::now();
    if next > now {
        let wait = (next - now).num_milliseconds().div_euclid(1000) + 1;
        let wait = wait.min(frequency.num_seconds().max(1));
        return Err(ServiceError::new(
            429,
            code,
            format!("For security purposes, you can only request this after {wait} seconds."),
        ));
    }
    Ok(())
}

async fn insert(conn: &mut PgConnection, config: &Config, id: Uuid, event: &str, payload: Vec<u8>) -> sqlx::Result<()> {
    let subject = auth_core::nats::notification_subject(&config.suite.nats_prefix, event);
    // The request's trace travels with the message, so its delivery joins the same trace.
    let headers = sqlx::types::Json(auth_core::telemetry::current_trace_headers());
    sqlx::query!(
        "INSERT INTO outbox_messages (id, subject, payload, headers) VALUES ($1, $2, $3, $4)",
        id,
        subject,
        payload,
        headers as _
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_urls_are_escaped_only_when_go_would() {
        assert_eq!(encode_redirect_url("http://localhost:3000"), "http://localhost:3000");
        assert_eq!(
            encode_redirect_url("https://app.io/welcome?x"),
            "https://app.io/welcome?x"
        );
        assert_eq!(
            encode_redirect_url("https://app.io/cb?a=1&b=2#top"),
            "https%3A%2F%2Fapp.io%2Fcb%3Fa%3D1%26b%3D2%23top"
        );
        assert_eq!(go_query_escape("a b~*"), "a+b~%2A");
    }

    #[test]
    fn token_hash_is_gotrues_sha224_hex() {
        // printf 'a@b.c123456' | sha224sum
        assert_eq!(
            token_hash("a@b.c", "123456"),
            "19fc8045654795b943ae7db4b637d9ee44d1dc98644c90a3fb01fa3f"
        );
        assert_eq!(token_hash("a@b.c", "123456").len(), 56);
        let otp = generate_otp(8);
        assert_eq!(otp.len(), 8);
        assert!(otp.bytes().all(|b| b.is_ascii_digit()));
    }
}

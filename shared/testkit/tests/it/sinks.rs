//! The test doubles themselves: the SMTP sink receives what a real SMTP client (lettre) sends, and
//! the fake SMS provider records what an HTTP client posts.

use auth_testkit::{FakeSmsProvider, SmtpSink};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

#[tokio::test]
async fn smtp_sink_captures_messages_from_a_real_client() -> anyhow::Result<()> {
    let sink = SmtpSink::start().await?;
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(sink.addr().port())
        .build();
    let message = Message::builder()
        .from("Auth <noreply@example.com>".parse::<Mailbox>()?)
        .to("someone@example.com".parse::<Mailbox>()?)
        .subject("Confirm Your Signup")
        .body(".leading dot\nFollow this link to confirm your user".to_string())?;
    mailer.send(message).await?;

    let mail = sink.next().await.expect("a message");
    assert_eq!(mail.from, "noreply@example.com");
    assert_eq!(mail.to, vec!["someone@example.com".to_string()]);
    assert_eq!(mail.header("Subject").as_deref(), Some("Confirm Your Signup"));
    assert!(
        mail.data.contains("\r\n.leading dot\r\n"),
        "dot-stuffing undone: {}",
        mail.data
    );
    assert!(sink.next_within(std::time::Duration::from_millis(50)).await.is_none());
    Ok(())
}

#[tokio::test]
async fn fake_sms_provider_records_requests_and_can_fail() -> anyhow::Result<()> {
    auth_core::install_tls_provider();
    let sms = FakeSmsProvider::start().await?;
    let http = reqwest::Client::new();
    let url = format!("{}/2010-04-01/Accounts/AC123/Messages.json", sms.base_url());
    let response = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("To=%2B15555550100&Body=Your+code+is+123456")
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let received = sms.next().await.expect("a request");
    assert_eq!(received.path, "/2010-04-01/Accounts/AC123/Messages.json");
    assert_eq!(received.form_field("To").as_deref(), Some("+15555550100"));
    assert_eq!(received.form_field("Body").as_deref(), Some("Your code is 123456"));

    sms.respond_with(503);
    assert_eq!(http.post(&url).body("To=1").send().await?.status(), 503);
    Ok(())
}

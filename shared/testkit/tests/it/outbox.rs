//! The delivery pipeline: an email request written with its token goes outbox → relay → JetStream →
//! notifier → SMTP, exactly once; rows written while the relay was down are delivered when it is back.

use std::time::Duration;

use auth_core::nats;
use auth_proto::notification::v1::notification_service_client::NotificationServiceClient;
use auth_proto::notification::v1::{EmailKind, EmailRequested, ListDeadLettersRequest};
use auth_testkit::jwt::service_role_token;
use auth_testkit::{Service, Suite, retry_until};
use prost::Message as _;
use serde_json::json;
use uuid::Uuid;

use crate::support::*;

/// The status of the (only) delivery-log row, if there is one yet.
async fn delivery_status(suite: &Suite) -> Option<String> {
    sqlx::query_scalar("SELECT status FROM notification_deliveries")
        .fetch_optional(&suite.db)
        .await
        .ok()
        .flatten()
}

async fn unpublished(suite: &Suite) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM outbox_messages WHERE published_at IS NULL")
            .fetch_one(&suite.db)
            .await?,
    )
}

#[tokio::test]
async fn a_confirmation_email_is_delivered_once_through_jetstream() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let address = email();
    let response = suite
        .post_json("/signup", &json!({"email": address, "password": "password-123"}))
        .await?;
    assert_eq!(response.status(), 200);

    let mail = suite.smtp.next().await.expect("the confirmation email");
    assert_eq!(mail.to, vec![address.clone()]);
    assert_eq!(mail.header("Subject").as_deref(), Some("Confirm your email address"));
    assert_eq!(
        mail.header("From").as_deref(),
        Some("\"Auth Suite Tests\" <admin@example.com>")
    );
    let (outbox_id, token_hash): (Uuid, String) =
        sqlx::query_as("SELECT o.id, u.confirmation_token FROM outbox_messages o, users u WHERE u.email = $1")
            .bind(&address)
            .fetch_one(&suite.db)
            .await?;
    assert_eq!(mail.header("Message-ID"), Some(format!("<{outbox_id}@auth-suite>")));
    assert!(
        mail.body().contains(&format!("token={token_hash}&amp;type=signup")),
        "the link carries the token hash: {}",
        mail.body()
    );
    retry_until(|| async { delivery_status(&suite).await.as_deref() == Some("sent") }).await?;
    assert_eq!(unpublished(&suite).await?, 0);
    assert!(
        suite.smtp.next_within(Duration::from_secs(1)).await.is_none(),
        "delivered once"
    );
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn rows_written_while_the_relay_was_down_are_published_when_it_is_back() -> anyhow::Result<()> {
    let mut suite = Suite::start().await?;
    let addr = suite.stop(Service::User).await?;

    // Requests committed just before a crash: in the outbox, never published.
    let subject = nats::notification_subject(&suite.config.suite.nats_prefix, "email_requested");
    let mut ids = Vec::new();
    for n in 0..3 {
        let id = Uuid::new_v4();
        let payload = EmailRequested {
            message_id: id.to_string(),
            kind: EmailKind::Recovery as i32,
            to: format!("waiting-{n}@example.com"),
            email: format!("waiting-{n}@example.com"),
            ..Default::default()
        };
        sqlx::query("INSERT INTO outbox_messages (id, subject, payload) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(&subject)
            .bind(payload.encode_to_vec())
            .execute(&suite.db)
            .await?;
        ids.push(id.to_string());
    }
    // A row of another suite sharing the database is not this relay's to publish.
    sqlx::query("INSERT INTO outbox_messages (id, subject, payload) VALUES ($1, 'elsewhere.notification.v1.email_requested', '')")
        .bind(Uuid::new_v4())
        .execute(&suite.db)
        .await?;

    suite.restart(Service::User, addr).await?;
    let mut delivered = Vec::new();
    for _ in 0..3 {
        let mail = suite.smtp.next().await.expect("a waiting email");
        delivered.push(mail.header("Message-ID").unwrap_or_default());
    }
    delivered.sort();
    let mut expected: Vec<String> = ids.iter().map(|id| format!("<{id}@auth-suite>")).collect();
    expected.sort();
    assert_eq!(delivered, expected, "each waiting request delivered once");
    retry_until(|| async { unpublished(&suite).await.is_ok_and(|n| n == 1) }).await?;
    let foreign_published: bool =
        sqlx::query_scalar("SELECT published_at IS NOT NULL FROM outbox_messages WHERE subject LIKE 'elsewhere.%'")
            .fetch_one(&suite.db)
            .await?;
    assert!(!foreign_published);
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_refusing_mail_server_delays_the_email_but_does_not_lose_it() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    suite.smtp.refuse_next(2);
    let address = email();
    let response = suite
        .post_json("/signup", &json!({"email": address, "password": "password-123"}))
        .await?;
    assert_eq!(response.status(), 200);

    // Refused twice (retried after 1 s, then 2 s), accepted the third time.
    let mail = suite
        .smtp
        .next_within(Duration::from_secs(20))
        .await
        .expect("delivered after the refusals");
    assert_eq!(mail.to, vec![address]);
    // The notifier marks the row right after the server's 250.
    retry_until(|| async { delivery_status(&suite).await.as_deref() == Some("sent") }).await?;
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM notification_deliveries")
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(attempts, 3);
    assert!(suite.smtp.next_within(Duration::from_secs(1)).await.is_none(), "once");
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_email_refused_on_every_attempt_is_dead_lettered() -> anyhow::Result<()> {
    let suite = Suite::builder().env("AUTH_NOTIFY_MAX_ATTEMPTS", "2").start().await?;
    suite.smtp.refuse_next(usize::MAX);
    let address = email();
    let response = suite
        .post_json("/signup", &json!({"email": address, "password": "password-123"}))
        .await?;
    assert_eq!(response.status(), 200);
    retry_until(|| async { delivery_status(&suite).await.as_deref() == Some("dead_lettered") }).await?;
    let (attempts, error): (i32, Option<String>) =
        sqlx::query_as("SELECT attempts, last_error FROM notification_deliveries")
            .fetch_one(&suite.db)
            .await?;
    assert_eq!(attempts, 2);
    assert!(error.is_some_and(|e| e.contains("451")), "the server's answer is kept");

    // Visible over the notification service's gRPC API, to admin callers only.
    let mut api = NotificationServiceClient::new(suite.channel(Service::Notification)?);
    let anonymous = api.list_dead_letters(ListDeadLettersRequest::default()).await;
    assert_eq!(anonymous.expect_err("no token").code(), tonic::Code::Unauthenticated);
    let mut request = tonic::Request::new(ListDeadLettersRequest::default());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {}", service_role_token()).parse()?);
    let listed = api.list_dead_letters(request).await?.into_inner().dead_letters;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].channel, "email");
    assert_eq!(listed[0].recipient, address);
    assert_eq!(listed[0].attempts, 2);
    assert!(listed[0].last_error.contains("451"));
    assert!(!listed[0].sent_by.is_empty());
    suite.shutdown().await;
    Ok(())
}

/// Signs up `count` new addresses, `parallel` at a time, and returns them.
async fn sign_up_burst(suite: &Suite, count: usize, parallel: usize) -> anyhow::Result<Vec<String>> {
    let addresses: Vec<String> = (0..count).map(|_| email()).collect();
    for chunk in addresses.chunks(parallel) {
        let requests = chunk.iter().map(|address| {
            let body = json!({"email": address, "password": "password-123"});
            async move { suite.post_json("/signup", &body).await }
        });
        for response in futures::future::join_all(requests).await {
            let response = response?;
            anyhow::ensure!(response.status() == 200, "signup: {}", response.status());
        }
    }
    Ok(addresses)
}

/// Reads mail from the sink until `expected` distinct messages arrived, then keeps listening for
/// `quiet` to catch late duplicates. Returns how often each Message-ID was received.
async fn collect_mail(
    suite: &Suite,
    expected: usize,
    quiet: Duration,
) -> anyhow::Result<std::collections::HashMap<String, usize>> {
    let mut seen = std::collections::HashMap::new();
    suite
        .smtp
        .collect_by_message_id(&mut seen, expected, quiet, Duration::from_secs(30))
        .await?;
    Ok(seen)
}

/// Two notifier replicas share one durable consumer: both deliver part of a burst, and the total is
/// exact (every message once).
#[tokio::test]
async fn two_notifier_replicas_share_a_burst_and_send_each_message_once() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_RATE_LIMIT_EMAIL_SENT", "100000")
        .start()
        .await?;
    let replica = suite.spawn_replica(Service::Notification).await?;
    let addresses = sign_up_burst(&suite, 120, 12).await?;
    let seen = collect_mail(&suite, addresses.len(), Duration::from_secs(2)).await?;
    assert_eq!(seen.len(), addresses.len());
    assert!(seen.values().all(|&n| n == 1), "a message was sent twice: {seen:?}");

    let per_replica: Vec<(Option<String>, i64)> =
        sqlx::query_as("SELECT sent_by, count(*) FROM notification_deliveries WHERE status = 'sent' GROUP BY sent_by")
            .fetch_all(&suite.db)
            .await?;
    assert_eq!(per_replica.len(), 2, "both replicas delivered: {per_replica:?}");
    assert_eq!(per_replica.iter().map(|(_, n)| n).sum::<i64>(), 120);
    replica.stop().await?;
    suite.shutdown().await;
    Ok(())
}

/// The notifier stops in the middle of a burst of 200 sign-ups and comes back later: every email is
/// delivered, none twice.
#[tokio::test]
async fn a_notifier_stopped_mid_burst_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let mut suite = Suite::builder()
        .env("GOTRUE_RATE_LIMIT_EMAIL_SENT", "100000")
        .env("AUTH_NOTIFY_ACK_WAIT", "2s")
        .start()
        .await?;
    let first_part = sign_up_burst(&suite, 60, 12).await?;
    let mut seen = std::collections::HashMap::<String, usize>::new();
    while seen.len() < 20 {
        let mail = suite.smtp.next().await.expect("mail while the notifier runs");
        *seen.entry(mail.header("Message-ID").unwrap_or_default()).or_default() += 1;
    }
    let addr = suite.stop(Service::Notification).await?;
    let rest = sign_up_burst(&suite, 140, 14).await?;
    // Messages in flight when it stopped may still arrive; nothing new is sent while it is down.
    while let Some(mail) = suite.smtp.next_within(Duration::from_secs(1)).await {
        *seen.entry(mail.header("Message-ID").unwrap_or_default()).or_default() += 1;
    }
    assert!(seen.len() < 200, "the notifier was really down");
    suite.restart(Service::Notification, addr).await?;
    let later = collect_mail(&suite, 200 - seen.len(), Duration::from_secs(5)).await?;
    for (id, n) in later {
        *seen.entry(id).or_default() += n;
    }
    assert_eq!(seen.len(), first_part.len() + rest.len());
    assert!(seen.values().all(|&n| n == 1), "a message was sent twice");
    let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM notification_deliveries WHERE status = 'sent'")
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(sent, 200);
    suite.shutdown().await;
    Ok(())
}

/// `GOTRUE_MAILER_TEMPLATES_*`: the body is fetched once and cached, fills GoTrue's variables
/// (including `.Data`), and a template server that fails leaves GoTrue's built-in body in use.
#[tokio::test]
async fn custom_templates_are_fetched_cached_and_fall_back() -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let app = axum::Router::new().route(
        "/templates/confirm.html",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async {
                "<p>Welcome {{ .Data.name }}! Your code is {{ .Token }}. <a href=\"{{ .ConfirmationURL }}\">go</a></p>"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let suite = Suite::builder()
        .env(
            "GOTRUE_MAILER_TEMPLATES_CONFIRMATION",
            &format!("{base}/templates/confirm.html"),
        )
        .env(
            "GOTRUE_MAILER_TEMPLATES_RECOVERY",
            &format!("{base}/templates/missing.html"),
        )
        .env("GOTRUE_MAILER_AUTOCONFIRM", "false")
        .start()
        .await?;
    for _ in 0..2 {
        let response = suite
            .post_json(
                "/signup",
                &json!({"email": email(), "password": "password-123", "data": {"name": "Ada"}}),
            )
            .await?;
        assert_eq!(response.status(), 200);
        let mail = suite.smtp.next().await.expect("the confirmation email");
        let body = mail.body();
        assert!(body.contains("Welcome Ada! Your code is "), "{body}");
        assert!(body.contains("/verify?token="), "{body}");
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "fetched once, then cached");

    // A recovery template that cannot be fetched: GoTrue's built-in body goes out instead.
    let address = email();
    let confirmed = suite
        .post_json("/signup", &json!({"email": address, "password": "password-123"}))
        .await?;
    assert_eq!(confirmed.status(), 200);
    let _ = suite.smtp.next().await.expect("the third confirmation email");
    let response = suite.post_json("/recover", &json!({"email": address})).await?;
    assert_eq!(response.status(), 200);
    let mail = suite.smtp.next().await.expect("the recovery email");
    assert!(mail.body().contains("Reset password"), "{}", mail.body());
    suite.shutdown().await;
    Ok(())
}

/// Issue 13 security item 1: NATS is not trusted. A message published on the notification subject by
/// anyone but the suite's relay (no outbox row, or a real row's id with another payload) sends
/// nothing, and the genuine message still goes out once.
#[tokio::test]
async fn messages_that_match_no_outbox_row_are_never_sent() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let jetstream = async_nats::jetstream::new(nats::connect(&suite.config.suite.nats_url).await?);
    let subject = nats::notification_subject(&suite.config.suite.nats_prefix, "email_requested");
    let forged = |id: Uuid, to: &str| EmailRequested {
        message_id: id.to_string(),
        kind: EmailKind::Recovery as i32,
        to: to.to_string(),
        email: to.to_string(),
        confirmation_url: "https://evil.example/reset".into(),
        ..Default::default()
    };

    // An id the suite never wrote.
    jetstream
        .publish(
            subject.clone(),
            forged(Uuid::new_v4(), "victim@example.com").encode_to_vec().into(),
        )
        .await?
        .await?;
    // A genuine request ...
    let address = email();
    let response = suite
        .post_json("/signup", &json!({"email": address, "password": PASSWORD}))
        .await?;
    assert_eq!(response.status(), 200);
    let genuine = last_email_request(&suite, &address).await?;
    // ... and a copy of its id with the recipient and link changed.
    let genuine_id = Uuid::parse_str(&genuine.message_id)?;
    jetstream
        .publish(
            subject.clone(),
            forged(genuine_id, "victim@example.com").encode_to_vec().into(),
        )
        .await?
        .await?;

    let mail = suite.smtp.next().await.expect("the genuine email");
    assert_eq!(mail.header("Message-ID"), Some(format!("<{genuine_id}@auth-suite>")));
    assert!(
        mail.body().contains(&genuine.token_hash),
        "the genuine link, not the forged one"
    );
    assert!(
        suite.smtp.next_within(Duration::from_secs(2)).await.is_none(),
        "nothing forged was sent"
    );
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM notification_deliveries")
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(logged, 1, "only the genuine message reached the delivery log");
    suite.shutdown().await;
    Ok(())
}

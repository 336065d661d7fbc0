//! The user service answers GET /user from memory (services/user/src/account_cache.rs), yet every
//! committed change to an account reaches it, whoever makes it: the suite's services, or plain SQL.
//!
//! "From memory" is shown with a change that bypasses triggers (`session_replication_role =
//! replica`, so Postgres sends no notification): it stays unseen while the account is cached.

use std::time::{Duration, Instant};

use auth_proto::user::v1::GetUserRequest;
use auth_proto::user::v1::user_service_client::UserServiceClient;
use auth_testkit::{Service, Suite, retry_until};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::*;

/// Runs `sql` (binding `user`, then `extra`) without firing triggers: no change notification is
/// sent, so a cached account stays cached.
async fn write_silently(suite: &Suite, sql: &'static str, user: Uuid, extra: Option<&Value>) -> anyhow::Result<()> {
    let mut tx = suite.db.begin().await?;
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await?;
    let mut query = sqlx::query(sql).bind(user);
    if let Some(extra) = extra {
        query = query.bind(extra);
    }
    query.execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Writes `user_metadata` without a change notification.
async fn write_metadata_silently(suite: &Suite, user: Uuid, metadata: &Value) -> anyhow::Result<()> {
    write_silently(
        suite,
        "UPDATE users SET raw_user_meta_data = $2 WHERE id = $1",
        user,
        Some(metadata),
    )
    .await
}

async fn listener_connections(suite: &Suite) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'auth_user_account_cache'",
    )
    .fetch_one(&suite.db)
    .await?)
}

/// Polls GET /user until `user_metadata[key]` is `value`.
async fn wait_for_metadata(suite: &Suite, authorization: &str, key: &str, value: Value) -> anyhow::Result<()> {
    retry_until(|| async {
        user_metadata(suite, authorization)
            .await
            .is_ok_and(|metadata| metadata[key] == value)
    })
    .await
}

/// A second user-service replica (the gateway talks to the first) and a channel to it.
async fn second_user_replica(suite: &Suite) -> anyhow::Result<(auth_testkit::Replica, tonic::transport::Channel)> {
    let replica = suite.spawn_replica(Service::User).await?;
    let channel = auth_core::grpc::channel(
        &format!("http://{}", replica.addr()),
        Duration::from_secs(1),
        Duration::from_secs(10),
    )?;
    Ok((replica, channel))
}

/// GET /user asked of one user-service replica directly (as an internal gRPC client would): the
/// user's `user_metadata`.
fn metadata_from(
    channel: &tonic::transport::Channel,
    authorization: &str,
) -> impl Future<Output = anyhow::Result<Value>> + use<> {
    let mut client = UserServiceClient::new(channel.clone());
    let mut request = tonic::Request::new(GetUserRequest { context: None });
    let header = authorization.parse();
    async move {
        request.metadata_mut().insert("authorization", header?);
        let user = client.get_user(request).await?.into_inner();
        Ok(serde_json::from_str(&user.user_metadata_json)?)
    }
}

/// Proves the account is being served from memory by whatever `read_metadata` asks (the gateway,
/// or one replica directly): a silent write is not seen. The first reads may miss (the listener
/// connects after the service reports healthy), so it tries for a while.
async fn assert_cached_by<F, Fut>(suite: &Suite, user: Uuid, mut read_metadata: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Value>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    for round in 0.. {
        anyhow::ensure!(Instant::now() < deadline, "GET /user never came from memory");
        let before = read_metadata().await?;
        write_metadata_silently(suite, user, &json!({"round": round})).await?;
        let after = read_metadata().await?;
        if after == before && before["round"] != json!(round) {
            return Ok(());
        }
    }
    unreachable!()
}

async fn assert_served_from_memory(suite: &Suite, authorization: &str, user: Uuid) -> anyhow::Result<()> {
    assert_cached_by(suite, user, || user_metadata(suite, authorization)).await
}

#[tokio::test]
async fn get_user_comes_from_memory_and_follows_every_committed_change() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let address = email();
    let session = sign_up(&suite, &address).await?;
    let auth = bearer(&session);
    let id = user_id(&session);
    assert_served_from_memory(&suite, &auth, id).await?;

    // A change through the suite's own API is seen by the very next request.
    let response = put_user(&suite, &auth, &json!({"data": {"via": "api"}})).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(user_metadata(&suite, &auth).await?["via"], "api");

    // Plain SQL on each table the answer is made of.
    assert_served_from_memory(&suite, &auth, id).await?;
    sqlx::query("UPDATE users SET raw_user_meta_data = '{\"via\": \"sql\"}' WHERE id = $1")
        .bind(id)
        .execute(&suite.db)
        .await?;
    wait_for_metadata(&suite, &auth, "via", json!("sql")).await?;
    sqlx::query("UPDATE identities SET identity_data = identity_data || '{\"nickname\": \"sql\"}' WHERE user_id = $1")
        .bind(id)
        .execute(&suite.db)
        .await?;
    retry_until(|| async {
        match get_user(&suite, &auth).await {
            Ok(response) => response
                .json::<Value>()
                .await
                .is_ok_and(|user| user["identities"][0]["identity_data"]["nickname"] == "sql"),
            Err(_) => false,
        }
    })
    .await?;

    // One statement over more than 100 users notifies "everything changed".
    assert_served_from_memory(&suite, &auth, id).await?;
    sqlx::query(
        "INSERT INTO users (instance_id, id, aud, role, email, created_at, updated_at, is_sso_user, is_anonymous) \
         SELECT '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated', \
                'bulk-' || n || '-' || gen_random_uuid() || '@example.com', now(), now(), false, false \
         FROM generate_series(1, 150) n",
    )
    .execute(&suite.db)
    .await?;
    sqlx::query("UPDATE users SET raw_user_meta_data = coalesce(raw_user_meta_data, '{}') || '{\"bulk\": true}'")
        .execute(&suite.db)
        .await?;
    wait_for_metadata(&suite, &auth, "bulk", json!(true)).await?;

    // The listening connection is lost: what it might have missed is not served, and it listens again.
    assert_served_from_memory(&suite, &auth, id).await?;
    let hidden = user_metadata(&suite, &auth).await?;
    write_metadata_silently(&suite, id, &json!({"via": "while-listening"})).await?;
    assert_eq!(user_metadata(&suite, &auth).await?, hidden, "still cached");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'auth_user_account_cache'",
    )
    .execute(&suite.db)
    .await?;
    wait_for_metadata(&suite, &auth, "via", json!("while-listening")).await?;
    retry_until(|| async { listener_connections(&suite).await.is_ok_and(|n| n == 1) }).await?;
    assert_served_from_memory(&suite, &auth, id).await?;
    sqlx::query("UPDATE users SET raw_user_meta_data = '{\"via\": \"after-reconnect\"}' WHERE id = $1")
        .bind(id)
        .execute(&suite.db)
        .await?;
    wait_for_metadata(&suite, &auth, "via", json!("after-reconnect")).await?;

    // A session that ends (here through the token service) stops authenticating with the very
    // next request, though the account is in memory.
    assert_served_from_memory(&suite, &auth, id).await?;
    let logout = suite
        .request(reqwest::Method::POST, "/logout")
        .header("Authorization", &auth)
        .send()
        .await?;
    assert_eq!(logout.status(), 204);
    let gone = get_user(&suite, &auth).await?;
    auth_testkit::assert_gotrue_error(gone, 403, "session_not_found").await;

    // A user deleted by SQL is gone for a token of a session that was cached.
    let session = sign_in(&suite, &address).await?;
    let auth = bearer(&session);
    assert_served_from_memory(&suite, &auth, id).await?;
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(&suite.db)
        .await?;
    let gone = get_user(&suite, &auth).await?;
    auth_testkit::assert_gotrue_error(gone, 403, "user_not_found").await;
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_zero_ttl_turns_the_cache_off() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("AUTH_USER_CACHE_TTL", "0")
        .start()
        .await?;
    let session = sign_up(&suite, &email()).await?;
    let auth = bearer(&session);
    for round in 0..20 {
        user_metadata(&suite, &auth).await?;
        write_metadata_silently(&suite, user_id(&session), &json!({"round": round})).await?;
        assert_eq!(user_metadata(&suite, &auth).await?["round"], json!(round));
    }
    assert_eq!(listener_connections(&suite).await?, 0);
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_change_made_through_one_replica_reaches_the_cache_of_another() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let session = sign_up(&suite, &email()).await?;
    let auth = bearer(&session);
    let id = user_id(&session);
    let (replica, channel) = second_user_replica(&suite).await?;
    // GET /user asked of the second replica directly, as an internal client would.
    let read_from_replica = || metadata_from(&channel, &auth);
    assert_cached_by(&suite, id, read_from_replica).await?;

    // Changed through the gateway's replica: the other one drops its copy when Postgres tells it.
    let response = put_user(&suite, &auth, &json!({"data": {"via": "the other replica"}})).await?;
    assert_eq!(response.status(), 200);
    retry_until(|| async {
        read_from_replica()
            .await
            .is_ok_and(|metadata| metadata["via"] == "the other replica")
    })
    .await?;
    replica.stop().await?;
    suite.shutdown().await;
    Ok(())
}

/// What must never wait for a notification: a session's end and a ban. Both are made here without
/// one (no trigger fires), so only the confirming read on each cache hit can see them.
#[tokio::test]
async fn an_ended_session_or_a_ban_is_refused_without_waiting_for_the_notification() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let address = email();
    let session = sign_up(&suite, &address).await?;
    let id = user_id(&session);

    let auth = bearer(&session);
    assert_served_from_memory(&suite, &auth, id).await?;
    write_silently(
        &suite,
        "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE user_id = $1)",
        id,
        None,
    )
    .await?;
    write_silently(&suite, "DELETE FROM sessions WHERE user_id = $1", id, None).await?;
    auth_testkit::assert_gotrue_error(get_user(&suite, &auth).await?, 403, "session_not_found").await;

    let auth = bearer(&sign_in(&suite, &address).await?);
    assert_served_from_memory(&suite, &auth, id).await?;
    write_silently(
        &suite,
        "UPDATE users SET banned_until = now() + interval '1 hour' WHERE id = $1",
        id,
        None,
    )
    .await?;
    auth_testkit::assert_gotrue_error(get_user(&suite, &auth).await?, 403, "user_banned").await;
    suite.shutdown().await;
    Ok(())
}

/// The attack run's finding: a logout answered by one replica, then GET /user asked of another
/// replica that had the account in memory. Every round must be refused at once.
#[tokio::test]
async fn after_logout_no_replica_serves_the_session() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let address = email();
    let id = user_id(&sign_up(&suite, &address).await?);
    let (replica, channel) = second_user_replica(&suite).await?;
    for round in 0..20 {
        let auth = bearer(&sign_in(&suite, &address).await?);
        let read_from_replica = || metadata_from(&channel, &auth);
        assert_cached_by(&suite, id, read_from_replica).await?;
        let logout = suite
            .request(reqwest::Method::POST, "/logout?scope=local")
            .header("Authorization", &auth)
            .send()
            .await?;
        assert_eq!(logout.status(), 204);
        let error = read_from_replica().await.expect_err("the ended session was served");
        assert!(
            error
                .to_string()
                .contains("Session from session_id claim in JWT does not exist"),
            "round {round}: {error}"
        );
    }
    replica.stop().await?;
    suite.shutdown().await;
    Ok(())
}

//! GET /user from memory.
//!
//! GET /user is the suite's hottest call (clients poll it, `getUser()` runs on every page load), and
//! GoTrue answers each one with queries. Here each user-service replica keeps the answer for the
//! accounts it has served: the user as sent, when its ban ends, and the sessions it has seen alive.
//! Correctness comes from Postgres, not from timers: the migration
//! `suite_account_change_notifications` makes every committed change to a user, its identities, its
//! factors, or the end of one of its sessions `NOTIFY suite_accounts_changed`, whoever made it, and
//! this module drops the account when the notification arrives.
//!
//! A session's end and a ban are not left to the notification: every answer served from memory is
//! first confirmed by a read of the session (`crate::live_sessions`, batched across requests). A
//! notification is delivered a moment after its commit, and the replica that answers the next
//! request need not be the one that ended the session, so without that read a token could still
//! read `GET /user` after its `POST /logout` had answered 204. The user, identities and factors
//! (the bulk of the answer) still come from memory.
//!
//! Two rules keep a stale answer out:
//! - An answer read from the database is stored only if no notification arrived since before the
//!   read began (the generation counter): a change that committed during the read is never papered
//!   over by the older answer.
//! - While the listening connection is down, nothing is served from or stored in the cache, and it
//!   is emptied when listening resumes, since notifications sent meanwhile are lost.
//!
//! The TTL (`AUTH_USER_CACHE_TTL`) only bounds how old an entry may get; 0 turns the cache off.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use auth_account::principal::SessionRecord;
use auth_account::users::UserRecord;
use auth_core::config::DbConfig;
use auth_proto::common::v1::User;
use chrono::{DateTime, Utc};
use quick_cache::sync::Cache;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The channel the migration's triggers notify.
pub const CHANNEL: &str = "suite_accounts_changed";

/// Sessions remembered per account; a user signed in on more devices is read from the table for
/// the others.
const SESSIONS_PER_ACCOUNT: usize = 8;

#[derive(Clone)]
pub struct AccountCache {
    /// `None` when the cache is turned off.
    inner: Option<Arc<Inner>>,
}

struct Inner {
    accounts: Cache<Uuid, Arc<CachedAccount>>,
    /// Bumped by every notification and every change of the listener's state.
    generation: AtomicU64,
    /// Whether notifications are being received right now.
    listening: AtomicBool,
    ttl: Duration,
}

struct CachedAccount {
    user: User,
    banned_until: Option<DateTime<Utc>>,
    /// Sessions of this user seen alive since the account was stored.
    session_ids: Vec<Uuid>,
    stored_at: Instant,
}

/// Taken before reading the database, handed back to [`AccountCache::store`].
#[derive(Debug, Clone, Copy)]
pub struct ReadTicket(u64);

impl AccountCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        let inner = (!ttl.is_zero()).then(|| {
            Arc::new(Inner {
                accounts: Cache::new(capacity),
                generation: AtomicU64::new(0),
                listening: AtomicBool::new(false),
                ttl,
            })
        });
        Self { inner }
    }

    /// The GET /user answer for `user_id` when `session_id` is one of its sessions seen alive, and
    /// the user is not banned now. `None` means: ask the database.
    pub fn user_with_session(&self, user_id: Uuid, session_id: Uuid) -> Option<User> {
        let answer = self.lookup(user_id, session_id);
        let result = if answer.is_some() { "hit" } else { "miss" };
        metrics::counter!("account_cache_lookups_total", "result" => result).increment(1);
        answer
    }

    fn lookup(&self, user_id: Uuid, session_id: Uuid) -> Option<User> {
        let inner = self.inner.as_ref()?;
        if !inner.listening.load(Ordering::SeqCst) {
            return None;
        }
        let account = inner.accounts.get(&user_id)?;
        let fresh = account.stored_at.elapsed() < inner.ttl;
        let banned = account.banned_until.is_some_and(|until| until > Utc::now());
        (fresh && !banned && account.session_ids.contains(&session_id)).then(|| account.user.clone())
    }

    /// Call before reading an account from the database; `None` when nothing may be stored now.
    pub fn ticket(&self) -> Option<ReadTicket> {
        let inner = self.inner.as_ref()?;
        let generation = inner.generation.load(Ordering::SeqCst);
        inner.listening.load(Ordering::SeqCst).then_some(ReadTicket(generation))
    }

    /// Remembers what the database said for a user and one of its sessions (`answer` is the user
    /// as GET /user sends it), unless something changed since `ticket` was taken.
    pub fn store(&self, ticket: ReadTicket, user: &UserRecord, session: &SessionRecord, answer: User) {
        let Some(inner) = self.inner.as_ref() else { return };
        // A session of another user is looked up by id alone (as GoTrue does); its end would be
        // notified under the other user, so it is never remembered here.
        if session.user_id != user.id || !inner.unchanged_since(ticket) {
            return;
        }
        let mut session_ids = match inner.accounts.get(&user.id) {
            // No notification since the ticket, so the sessions already remembered are still alive.
            Some(existing) => existing.session_ids.clone(),
            None => Vec::new(),
        };
        if !session_ids.contains(&session.id) {
            if session_ids.len() == SESSIONS_PER_ACCOUNT {
                session_ids.remove(0);
            }
            session_ids.push(session.id);
        }
        let account = CachedAccount {
            user: answer,
            banned_until: user.banned_until,
            session_ids,
            stored_at: Instant::now(),
        };
        inner.accounts.insert(user.id, Arc::new(account));
        // A notification that arrived between the check and the insert has either already dropped
        // the old entry (so drop ours) or will drop ours after this point.
        if !inner.unchanged_since(ticket) {
            inner.accounts.remove(&user.id);
        }
    }

    /// Drops one account, for a change this replica just committed (its notification may come a
    /// moment after the caller's next request).
    pub fn forget(&self, user_id: Uuid) {
        if let Some(inner) = &self.inner {
            inner.generation.fetch_add(1, Ordering::SeqCst);
            inner.accounts.remove(&user_id);
        }
    }

    /// Applies one notification's payload: user ids separated by commas, or `*` for all.
    fn apply(&self, payload: &str) {
        let Some(inner) = &self.inner else { return };
        inner.generation.fetch_add(1, Ordering::SeqCst);
        if payload == "*" {
            inner.accounts.clear();
            return;
        }
        for id in payload.split(',') {
            match Uuid::parse_str(id.trim()) {
                Ok(id) => {
                    inner.accounts.remove(&id);
                }
                // Not ours to read: be safe and forget everything.
                Err(_) => inner.accounts.clear(),
            }
        }
    }

    fn set_listening(&self, listening: bool) {
        if let Some(inner) = &self.inner {
            inner.listening.store(listening, Ordering::SeqCst);
            inner.generation.fetch_add(1, Ordering::SeqCst);
            inner.accounts.clear();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |inner| inner.accounts.len())
    }
}

impl Inner {
    fn unchanged_since(&self, ticket: ReadTicket) -> bool {
        self.listening.load(Ordering::SeqCst) && self.generation.load(Ordering::SeqCst) == ticket.0
    }
}

/// Listens for account changes on a connection of its own until `shutdown`, reconnecting with
/// backoff; the cache is served only while listening.
pub fn spawn_listener(cache: AccountCache, db: &DbConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    if cache.inner.is_none() {
        return Ok(());
    }
    // A pool of one, apart from the request pool: the listener holds its connection for good.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with(auth_core::db::connect_options(db, "auth_user_account_cache")?);
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            match listen(&cache, &pool, &shutdown).await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(error) => {
                    tracing::warn!(%error, "account cache: not listening for changes; GET /user reads the database");
                }
            }
            cache.set_listening(false);
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        pool.close().await;
    });
    Ok(())
}

/// One listening connection's life: `Ok` when it was lost or shutdown came, `Err` if it could not
/// start.
async fn listen(cache: &AccountCache, pool: &sqlx::PgPool, shutdown: &CancellationToken) -> sqlx::Result<()> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    // Whatever was notified before this point is lost to us: start empty.
    cache.set_listening(true);
    tracing::debug!("account cache: listening for changes");
    loop {
        let received = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            received = listener.try_recv() => received,
        };
        match received {
            Ok(Some(notification)) => cache.apply(notification.payload()),
            // The connection dropped; notifications may have been missed.
            Ok(None) => return Ok(()),
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: Uuid) -> UserRecord {
        UserRecord {
            id,
            aud: Some("authenticated".into()),
            role: Some("authenticated".into()),
            email: Some("someone@example.com".into()),
            phone: None,
            encrypted_password: None,
            email_confirmed_at: None,
            phone_confirmed_at: None,
            confirmed_at: None,
            invited_at: None,
            confirmation_sent_at: None,
            recovery_sent_at: None,
            email_change: None,
            email_change_sent_at: None,
            phone_change: None,
            phone_change_sent_at: None,
            reauthentication_token: None,
            reauthentication_sent_at: None,
            last_sign_in_at: None,
            raw_app_meta_data: None,
            raw_user_meta_data: None,
            created_at: None,
            updated_at: None,
            banned_until: None,
            deleted_at: None,
            is_sso_user: false,
            is_anonymous: false,
            identities: sqlx::types::Json(Vec::new()),
            factors: sqlx::types::Json(Vec::new()),
        }
    }

    fn session(user_id: Uuid) -> SessionRecord {
        SessionRecord {
            id: Uuid::new_v4(),
            user_id,
            created_at: None,
            refreshed_at: None,
            aal: None,
            not_after: None,
        }
    }

    fn listening_cache() -> AccountCache {
        let cache = AccountCache::new(Duration::from_secs(60), 100);
        cache.set_listening(true);
        cache
    }

    #[test]
    fn serves_a_stored_session_only() {
        let cache = listening_cache();
        let id = Uuid::new_v4();
        let known = session(id);
        cache.store(cache.ticket().unwrap(), &user(id), &known, user(id).to_proto());
        assert!(cache.user_with_session(id, known.id).is_some());
        assert!(cache.user_with_session(id, Uuid::new_v4()).is_none());
        let second = session(id);
        cache.store(cache.ticket().unwrap(), &user(id), &second, user(id).to_proto());
        assert!(cache.user_with_session(id, known.id).is_some());
        assert!(cache.user_with_session(id, second.id).is_some());
    }

    #[test]
    fn a_change_during_the_read_is_not_papered_over() {
        let cache = listening_cache();
        let id = Uuid::new_v4();
        let ticket = cache.ticket().unwrap();
        cache.apply(&id.to_string());
        cache.store(ticket, &user(id), &session(id), user(id).to_proto());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn notifications_drop_named_accounts_or_all() {
        let cache = listening_cache();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let (session_a, session_b) = (session(a), session(b));
        cache.store(cache.ticket().unwrap(), &user(a), &session_a, user(a).to_proto());
        cache.store(cache.ticket().unwrap(), &user(b), &session_b, user(b).to_proto());
        cache.apply(&format!("{a},{}", Uuid::new_v4()));
        assert!(cache.user_with_session(a, session_a.id).is_none());
        assert!(cache.user_with_session(b, session_b.id).is_some());
        cache.apply("*");
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn nothing_is_served_or_stored_while_not_listening() {
        let cache = listening_cache();
        let id = Uuid::new_v4();
        let known = session(id);
        let ticket = cache.ticket().unwrap();
        cache.store(ticket, &user(id), &known, user(id).to_proto());
        cache.set_listening(false);
        assert!(cache.user_with_session(id, known.id).is_none());
        assert!(cache.ticket().is_none());
        cache.store(ticket, &user(id), &known, user(id).to_proto());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn another_users_session_and_banned_users_are_not_served() {
        let cache = listening_cache();
        let id = Uuid::new_v4();
        let foreign = session(Uuid::new_v4());
        cache.store(cache.ticket().unwrap(), &user(id), &foreign, user(id).to_proto());
        assert_eq!(cache.len(), 0);
        let mut banned = user(id);
        banned.banned_until = Some(Utc::now() + chrono::Duration::hours(1));
        let own = session(id);
        cache.store(cache.ticket().unwrap(), &banned, &own, banned.to_proto());
        assert!(cache.user_with_session(id, own.id).is_none());
    }

    #[test]
    fn turned_off_by_a_zero_ttl() {
        let cache = AccountCache::new(Duration::ZERO, 100);
        cache.set_listening(true);
        assert!(cache.ticket().is_none());
    }
}

//! The project-wide send budgets (`GOTRUE_RATE_LIMIT_EMAIL_SENT`, `GOTRUE_RATE_LIMIT_SMS_SENT`),
//! kept in one `send_rate_limits` row each so that every replica spends the same budget (GoTrue's
//! live in each process's memory).
//!
//! A send takes one unit on the request's own transaction: a request that fails spends nothing, and
//! no second pooled connection is needed while the transaction holds one (which could exhaust the
//! pool under load). The budget row stays locked until the request commits, a few milliseconds, so
//! sends are serialised per project; at GoTrue's default budgets (30 an hour) that is no limit.

use auth_core::config::SendRate;
use auth_core::{Config, ErrorCode, ServiceError};
use sqlx::PgConnection;

#[derive(Debug, Clone, Copy)]
pub enum Budget {
    Email,
    Sms,
}

impl Budget {
    fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }

    fn exceeded(self) -> ServiceError {
        match self {
            Self::Email => ServiceError::new(429, ErrorCode::OverEmailSendRateLimit, "email rate limit exceeded"),
            Self::Sms => ServiceError::new(429, ErrorCode::OverSmsSendRateLimit, "SMS rate limit exceeded"),
        }
    }
}

/// Takes one send from `budget`, or answers GoTrue's 429.
pub async fn spend(conn: &mut PgConnection, budget: Budget, rate: SendRate) -> Result<(), ServiceError> {
    let granted = match rate {
        SendRate::Interval { events, window } => {
            let limit = events.floor();
            if limit < 1.0 {
                return Err(budget.exceeded());
            }
            // Fixed windows aligned to the epoch: every replica agrees on the current one.
            sqlx::query_scalar::<_, i32>(
                "INSERT INTO send_rate_limits AS l (name, window_start, used, updated_at) \
                 VALUES ($1, to_timestamp(floor(extract(epoch FROM now()) / $2) * $2), 1, now()) \
                 ON CONFLICT (name) DO UPDATE \
                   SET used = CASE WHEN l.window_start IS NOT DISTINCT FROM EXCLUDED.window_start \
                                   THEN l.used + 1 ELSE 1 END, \
                       window_start = EXCLUDED.window_start, updated_at = now() \
                   WHERE l.window_start IS DISTINCT FROM EXCLUDED.window_start OR l.used < $3 \
                 RETURNING used",
            )
            .bind(budget.name())
            .bind(window.as_secs_f64().max(1.0))
            .bind(limit)
            .fetch_optional(&mut *conn)
            .await?
            .is_some()
        }
        SendRate::Burst { events, refill_every } => {
            if events == 0 {
                return Err(budget.exceeded());
            }
            // A bucket of `events` units refilled one per `refill_every`, as golang.org/x/time/rate.
            sqlx::query_scalar::<_, f64>(
                "INSERT INTO send_rate_limits AS l (name, tokens, updated_at) VALUES ($1, $2 - 1, now()) \
                 ON CONFLICT (name) DO UPDATE \
                   SET tokens = least($2, l.tokens + extract(epoch FROM now() - l.updated_at) / $3) - 1, \
                       updated_at = now() \
                   WHERE least($2, l.tokens + extract(epoch FROM now() - l.updated_at) / $3) >= 1 \
                 RETURNING tokens",
            )
            .bind(budget.name())
            .bind(events as f64)
            .bind(refill_every.as_secs_f64())
            .fetch_optional(&mut *conn)
            .await?
            .is_some()
        }
    };
    if granted { Ok(()) } else { Err(budget.exceeded()) }
}

/// Takes one email for a notification (an account change, an MFA factor added or removed), as
/// GoTrue's `sendEmail` does: no budget applies with `GOTRUE_MAILER_AUTOCONFIRM`, and a spent budget
/// skips the notification with a warning (`Ok(false)`) rather than failing the change it reports.
pub async fn spend_on_notification(
    conn: &mut PgConnection,
    config: &Config,
    kind: auth_proto::notification::v1::EmailKind,
) -> Result<bool, ServiceError> {
    if config.mailer.autoconfirm {
        return Ok(true);
    }
    match spend(conn, Budget::Email, config.rate_limit.email_sent).await {
        Ok(()) => Ok(true),
        Err(refused) if refused.http_status == 429 => {
            tracing::warn!(?kind, "notification skipped: email rate limit exceeded");
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

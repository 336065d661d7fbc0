//! GoTrue's `Session.CheckValidity`: whether a session is still alive under the configured timebox,
//! inactivity timeout, `not_after` and low-AAL grace period. The token service applies it on every
//! refresh; every service applies it to admin tokens that name a session.

use chrono::{DateTime, NaiveDateTime, Utc};

use auth_core::config::SessionsConfig;

/// The outcome of the check; each refusal has its own message on the refresh grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    Valid,
    /// Past `not_after` or the timebox.
    Expired,
    /// Not refreshed within the inactivity timeout.
    TimedOut,
    /// Still at a lower AAL than the user could reach, past the grace period.
    LowAal,
}

/// The session times the check reads.
#[derive(Debug, Clone, Copy)]
pub struct SessionTimes<'a> {
    pub created_at: Option<DateTime<Utc>>,
    pub refreshed_at: Option<NaiveDateTime>,
    pub not_after: Option<DateTime<Utc>>,
    pub aal: Option<&'a str>,
}

impl SessionTimes<'_> {
    /// GoTrue's `LastRefreshedAt`: `refreshed_at`, else the refresh token's time if later than the
    /// session's creation, else the creation.
    pub fn last_refreshed_at(&self, token_time: Option<DateTime<Utc>>) -> DateTime<Utc> {
        let created = self.created_at.unwrap_or_default();
        match self.refreshed_at {
            Some(at) => at.and_utc(),
            None => token_time.filter(|t| *t > created).unwrap_or(created),
        }
    }

    /// Checks the session at `now`. `highest_aal` is the user's highest reachable AAL;
    /// `token_time` the time of the refresh token presented, if any.
    pub fn validity(
        &self,
        config: &SessionsConfig,
        now: DateTime<Utc>,
        highest_aal: &str,
        token_time: Option<DateTime<Utc>>,
    ) -> Validity {
        let created = self.created_at.unwrap_or_default();
        if self.not_after.is_some_and(|limit| now > limit) {
            return Validity::Expired;
        }
        if config.timebox.is_some_and(|timebox| now > created + timebox) {
            return Validity::Expired;
        }
        if config
            .inactivity_timeout
            .is_some_and(|timeout| now > self.last_refreshed_at(token_time) + timeout)
        {
            return Validity::TimedOut;
        }
        let aal = self.aal.unwrap_or("aal1");
        if config
            .allow_low_aal
            .is_some_and(|allowed| aal < highest_aal && now > created + allowed)
        {
            return Validity::LowAal;
        }
        Validity::Valid
    }
}

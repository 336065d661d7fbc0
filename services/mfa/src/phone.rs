//! Phone factors (GoTrue's `enrollPhoneFactor`, `challengePhoneFactor`, `verifyPhoneFactor`): a
//! number per factor, a code sent by SMS or WhatsApp for each challenge.
//!
//! Where the suite differs from GoTrue:
//! - the code is sent through the outbox, written in the challenge's own transaction: a challenge
//!   that is not stored sends nothing, and a stored one is never lost (GoTrue calls the SMS
//!   provider inside the request and answers 500 when it fails);
//! - the challenge stores the code's hash, not the code (GoTrue stores it as it is, or encrypted);
//! - the least time between two challenges (`GOTRUE_MFA_PHONE_MAX_FREQUENCY`) is claimed with the
//!   factor's row lock, so concurrent challenges on several replicas cannot both send.

use auth_core::config::Config;
use auth_core::{ErrorCode, ServiceError};
use auth_outbox::SmsKind;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::store;

/// The number to enrol, as stored (E.164 digits), with GoTrue's answers for a missing or bad one.
pub fn number_to_enroll(phone: &str) -> Result<String, ServiceError> {
    if phone.is_empty() {
        return Err(ServiceError::bad_request(
            ErrorCode::ValidationFailed,
            "Phone number required to enroll Phone factor",
        ));
    }
    auth_account::users::normalize_phone(phone).ok_or_else(|| {
        ServiceError::bad_request(
            ErrorCode::ValidationFailed,
            "Invalid phone number format (E.164 required)",
        )
    })
}

/// GoTrue's rule for a number: a verified factor on it must be removed before another is enrolled;
/// unverified ones on it are replaced.
pub async fn make_room_for_number(db: &sqlx::PgPool, user_id: Uuid, phone: &str) -> Result<(), ServiceError> {
    if store::has_verified_phone(db, user_id, phone).await? {
        return Err(ServiceError::unprocessable(
            ErrorCode::MfaVerifiedFactorExists,
            "A verified phone factor already exists, unenroll the existing factor to continue",
        ));
    }
    store::delete_unverified_phone(db, user_id, phone).await?;
    Ok(())
}

/// A code about to be sent for a challenge of a phone factor.
pub struct PhoneCode {
    phone: String,
    channel: String,
    otp: String,
    /// what the challenge stores
    pub hash: String,
}

impl PhoneCode {
    /// A fresh code for `phone` over `channel` (`sms` when empty); 400 for a channel the provider
    /// cannot use.
    pub fn new(config: &Config, phone: Option<&str>, channel: &str) -> Result<Self, ServiceError> {
        let channel = if channel.is_empty() { "sms" } else { channel };
        auth_outbox::check_channel(channel, &config.sms.provider)?;
        let phone = phone
            .filter(|p| !p.is_empty())
            .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("phone factor without a number")))?;
        let otp = auth_outbox::generate_otp(config.mfa.phone_otp_length);
        Ok(Self {
            hash: auth_outbox::token_hash(phone, &otp),
            phone: phone.to_string(),
            channel: channel.to_string(),
            otp,
        })
    }

    /// Claims the factor's next challenge (429 `over_sms_send_rate_limit` within
    /// `GOTRUE_MFA_PHONE_MAX_FREQUENCY` of the last one) and queues the SMS, on the challenge's
    /// transaction.
    pub async fn send(self, conn: &mut PgConnection, config: &Config, factor_id: Uuid) -> Result<(), ServiceError> {
        let frequency = config.mfa.phone_max_frequency;
        if let Err(last) = store::claim_challenge_slot(conn, factor_id, frequency.as_secs_f64()).await? {
            return Err(too_soon(last, frequency));
        }
        auth_outbox::enqueue_sms(
            conn,
            config,
            SmsKind::MfaChallenge,
            &self.phone,
            &self.channel,
            &self.otp,
        )
        .await?;
        Ok(())
    }
}

/// GoTrue's `generateFrequencyLimitErrorMessage`: the whole seconds left.
fn too_soon(last: DateTime<Utc>, frequency: std::time::Duration) -> ServiceError {
    let next = last + chrono::Duration::from_std(frequency).unwrap_or_default();
    let left = (next - Utc::now()).num_seconds().max(0);
    ServiceError::new(
        429,
        ErrorCode::OverSmsSendRateLimit,
        format!("For security purposes, you can only request this after {left} seconds."),
    )
}

/// Whether `code` is the one sent for the challenge that stored `stored_hash`, compared in
/// constant time.
pub fn code_matches(phone: Option<&str>, stored_hash: Option<&str>, code: &str) -> bool {
    let (Some(phone), Some(stored)) = (phone, stored_hash) else {
        return false;
    };
    let presented = auth_outbox::token_hash(phone, code);
    bool::from(presented.as_bytes().ct_eq(stored.as_bytes()))
}

pub fn invalid_code() -> ServiceError {
    ServiceError::unprocessable(ErrorCode::MfaVerificationFailed, "Invalid MFA Phone code entered")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_only_their_own_hash() {
        let hash = auth_outbox::token_hash("15550001111", "123456");
        assert!(code_matches(Some("15550001111"), Some(&hash), "123456"));
        assert!(!code_matches(Some("15550001111"), Some(&hash), "123457"));
        assert!(!code_matches(Some("15550002222"), Some(&hash), "123456"));
        assert!(!code_matches(Some("15550001111"), None, "123456"));
        assert!(!code_matches(None, Some(&hash), "123456"));
    }

    #[test]
    fn numbers_are_stored_as_e164_digits() {
        assert_eq!(number_to_enroll("+1 555 000 1111").ok().as_deref(), Some("15550001111"));
        assert_eq!(
            number_to_enroll("").map_err(|e| e.message).err().as_deref(),
            Some("Phone number required to enroll Phone factor")
        );
        assert!(number_to_enroll("not a number").is_err());
    }
}

//! MFA recovery codes: the suite's extension (GoTrue has none, supabase/auth#1342), off unless
//! `AUTH_MFA_RECOVERY_CODES_ENABLED`.
//!
//! A user with a verified factor, at AAL2, generates a set of `AUTH_MFA_RECOVERY_CODES_COUNT` codes
//! (a new set replaces the old). Each is 16 characters from a 32-letter alphabet without look-alikes
//! (80 random bits), shown once as `XXXX-XXXX-XXXX-XXXX`; only its SHA-256 is stored, which is
//! enough for a secret of that strength. A code used in place of a factor steps the caller's
//! session up to AAL2 with the amr method `mfa/recovery_code` and is spent by the statement that
//! checks it, so it works once across replicas. Codes are checked while the user still has a
//! verified factor, and go with the user's factors when the account is deleted.

use auth_account::audit::{self, AuditAction};
use auth_account::principal::Principal;
use auth_account::users::UserRecord;
use auth_core::{ErrorCode, ServiceError};
use auth_proto::common::v1 as pb;
use auth_proto::mfa::v1::{GenerateRecoveryCodesResponse, RecoveryCodesStatusResponse};
use rand::Rng;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::factors::signed_in;
use crate::state::MfaState;
use crate::store;

/// No 0/O, 1/I: codes are read off paper.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const CODE_LENGTH: usize = 16;
pub const AMR_METHOD: &str = "mfa/recovery_code";

fn new_code() -> String {
    let mut rng = rand::rng();
    let mut code = String::with_capacity(CODE_LENGTH + 3);
    for position in 0..CODE_LENGTH {
        if position > 0 && position % 4 == 0 {
            code.push('-');
        }
        code.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
    }
    code
}

/// What is stored of a code: SHA-256 (hex) of the code as typed, without dashes, spaces or case.
fn code_hash(code: &str) -> String {
    let normalized: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    Sha256::digest(normalized.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl MfaState {
    fn require_recovery_codes(&self) -> Result<(), ServiceError> {
        if self.config.suite.mfa_recovery_codes_enabled {
            Ok(())
        } else {
            Err(ServiceError::not_found(
                ErrorCode::FeatureDisabled,
                "MFA recovery codes are disabled",
            ))
        }
    }

    /// Recovery codes stand in for a factor, so the user must have one.
    async fn require_verified_factor(&self, user: &UserRecord) -> Result<(), ServiceError> {
        let factors = store::summaries(&self.db, user.id).await?;
        if factors.iter().any(|f| f.verified) {
            Ok(())
        } else {
            Err(ServiceError::unprocessable(
                ErrorCode::MfaFactorNotFound,
                "Recovery codes need a verified factor",
            ))
        }
    }

    /// `POST /factors/recovery-codes`: a new set, replacing the old; needs AAL2.
    pub async fn generate_recovery_codes(
        &self,
        principal: &Principal,
    ) -> Result<GenerateRecoveryCodesResponse, ServiceError> {
        self.require_recovery_codes()?;
        let (user, _, aal2) = signed_in(principal)?;
        self.require_verified_factor(user).await?;
        if !aal2 {
            return Err(ServiceError::forbidden(
                ErrorCode::InsufficientAal,
                "AAL2 required to generate recovery codes",
            ));
        }
        let count = self.config.suite.mfa_recovery_codes_count as usize;
        let codes: Vec<String> = (0..count).map(|_| new_code()).collect();
        let hashes: Vec<String> = codes.iter().map(|code| code_hash(code)).collect();
        let mut tx = self.db.begin().await?;
        let created_at = store::replace_recovery_codes(&mut tx, user.id, &hashes).await?;
        audit::record(
            &mut *tx,
            user,
            AuditAction::RecoveryCodesGenerated,
            Some(json!({"count": count})),
        )
        .await?;
        tx.commit().await?;
        Ok(GenerateRecoveryCodesResponse {
            codes,
            created_at: created_at.timestamp(),
        })
    }

    /// `GET /factors/recovery-codes`: how many are left (never the codes).
    pub async fn recovery_codes_status(
        &self,
        principal: &Principal,
    ) -> Result<RecoveryCodesStatusResponse, ServiceError> {
        self.require_recovery_codes()?;
        let (user, _, _) = signed_in(principal)?;
        let count = store::count_recovery_codes(&self.db, user.id).await?;
        Ok(RecoveryCodesStatusResponse {
            total: u32::try_from(count.total).unwrap_or_default(),
            remaining: u32::try_from(count.remaining).unwrap_or_default(),
            created_at: count.created_at.map(|at| at.timestamp()).unwrap_or_default(),
        })
    }

    /// `POST /factors/recovery-codes/verify {code}`: the caller's session at AAL2, the code spent.
    pub async fn use_recovery_code(
        &self,
        principal: &Principal,
        code: &str,
    ) -> Result<pb::SessionTokens, ServiceError> {
        self.require_recovery_codes()?;
        let (user, session_id, _) = signed_in(principal)?;
        if code.trim().is_empty() {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "Code needs to be non-empty",
            ));
        }
        self.require_verified_factor(user).await?;
        let mut tx = self.db.begin().await?;
        if !store::spend_recovery_code(&mut tx, user.id, &code_hash(code)).await? {
            return Err(ServiceError::unprocessable(
                ErrorCode::MfaVerificationFailed,
                "Invalid recovery code entered",
            ));
        }
        audit::record(&mut *tx, user, AuditAction::RecoveryCodeUsed, None).await?;
        tx.commit().await?;
        self.step_up_session(user.id, session_id, None, AMR_METHOD).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_and_hashed_as_typed() {
        let code = new_code();
        assert_eq!(code.len(), 19);
        assert_eq!(code.matches('-').count(), 3);
        assert!(code.bytes().all(|b| b == b'-' || ALPHABET.contains(&b)));
        let typed = code.to_lowercase().replace('-', " ");
        assert_eq!(code_hash(&typed), code_hash(&code));
        assert_ne!(code_hash(&new_code()), code_hash(&code));
    }
}

//! `POST /token?grant_type=password`.
//!
//! An unknown account, an account without a password and a wrong password all answer
//! `invalid_credentials` after the same amount of work (one argon2id verification), so neither the
//! answer nor its timing tells which part was wrong. GoTrue answers unknown accounts at once; we do not.

use crate::password::check_strength;
use auth_account::login;
use auth_account::users::{self, UserRecord};
use auth_core::{ErrorCode, ServiceError};
use auth_proto::common::v1::{SessionTokens, WeakPassword};
use auth_proto::user::v1::SignInWithPasswordRequest;
use chrono::Utc;
use serde_json::json;

use crate::state::UserState;
use crate::store::identities::Provider;

fn invalid_credentials() -> ServiceError {
    ServiceError::bad_request(ErrorCode::InvalidCredentials, "Invalid login credentials")
}

impl UserState {
    pub async fn sign_in_with_password(
        &self,
        request: SignInWithPasswordRequest,
    ) -> Result<SessionTokens, ServiceError> {
        let config = &self.config;
        if !request.email.is_empty() && !request.phone.is_empty() {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "Only an email address or phone number should be provided on login.",
            ));
        }
        let aud = self.request_aud(request.context.as_ref());
        let (provider, user) = if !request.email.is_empty() {
            if !config.external.email_enabled {
                return Err(ServiceError::unprocessable(
                    ErrorCode::EmailProviderDisabled,
                    "Email logins are disabled",
                ));
            }
            (
                Provider::Email,
                users::find_by_email(&self.db, &request.email, &aud).await?,
            )
        } else if !request.phone.is_empty() {
            if !config.external.phone_enabled {
                return Err(ServiceError::unprocessable(
                    ErrorCode::PhoneProviderDisabled,
                    "Phone logins are disabled",
                ));
            }
            let phone = request
                .phone
                .strip_prefix('+')
                .unwrap_or(&request.phone)
                .replace(' ', "");
            (Provider::Phone, users::find_by_phone(&self.db, &phone, &aud).await?)
        } else {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "missing email or phone",
            ));
        };

        let user = self.check_password(user, &request.password).await?;
        if user.is_banned(Utc::now()) {
            return Err(ServiceError::bad_request(ErrorCode::UserBanned, "User is banned"));
        }
        match provider {
            Provider::Email if !user.is_email_confirmed() => {
                return Err(ServiceError::bad_request(
                    ErrorCode::EmailNotConfirmed,
                    "Email not confirmed",
                ));
            }
            Provider::Phone if !user.is_phone_confirmed() => {
                return Err(ServiceError::bad_request(
                    ErrorCode::PhoneNotConfirmed,
                    "Phone not confirmed",
                ));
            }
            _ => {}
        }
        // A password that no longer meets the policy still signs in, with a warning in the response.
        let weak_password = match check_strength(&config.password, &request.password) {
            Err(e) if e.code == ErrorCode::WeakPassword => Some(WeakPassword {
                message: e.message.clone(),
                reasons: e
                    .metadata
                    .get(auth_core::error::WEAK_PASSWORD_REASONS_KEY)
                    .map(|r| r.split(',').map(str::to_string).collect())
                    .unwrap_or_default(),
            }),
            _ => None,
        };

        let login = login::record(&self.db, &user, json!({"provider": provider.as_str()})).await?;
        let mut tokens = match self.issue_session(user.id, "password", request.context).await {
            Ok(tokens) => tokens,
            Err(error) => {
                login::undo(&self.db, login).await;
                return Err(error);
            }
        };
        tokens.weak_password = weak_password;
        Ok(tokens)
    }

    /// Verifies the password (upgrading an old hash to argon2id on success). Every failure looks and
    /// takes the same.
    async fn check_password(&self, user: Option<UserRecord>, password: &str) -> Result<UserRecord, ServiceError> {
        let Some(user) = user.filter(UserRecord::has_password) else {
            self.hasher.verify_nothing(password).await;
            return Err(invalid_credentials());
        };
        let stored = user.encrypted_password.clone().unwrap_or_default();
        let verified = match self.verify_password(user.id, password, &stored).await {
            Ok(verified) => verified,
            Err(e) => {
                tracing::warn!(user_id = %user.id, error = %e, "stored password hash cannot be checked");
                return Err(invalid_credentials());
            }
        };
        if !verified.matches {
            return Err(invalid_credentials());
        }
        if verified.needs_rehash {
            match self.hash_password(user.id, password).await {
                Ok(upgraded) => {
                    // Only replace the hash we verified: a concurrent password change wins.
                    let mut conn = self.db.acquire().await?;
                    crate::store::users::upgrade_password_hash(&mut conn, user.id, &upgraded, &stored).await?;
                }
                Err(e) => tracing::warn!(user_id = %user.id, error = %e, "password hash upgrade failed"),
            }
        }
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unknown_account_and_wrong_password_read_the_same() {
        let a = super::invalid_credentials();
        assert_eq!(
            (a.http_status, a.code.as_str(), a.message.as_str()),
            (400, "invalid_credentials", "Invalid login credentials")
        );
    }
}

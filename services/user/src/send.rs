//! The flows whose whole job is to send a code: `POST /recover`, `POST /magiclink`, `POST /otp`,
//! `POST /resend` and `GET /reauthenticate`, in GoTrue's order of checks and with its answers.
//!
//! None of them reveals whether an address has an account where GoTrue does not: unknown addresses
//! get the same `{}` as known ones (`/otp` with `create_user: false` is GoTrue's documented
//! exception).

use auth_account::audit::{self, AuditAction};
use auth_account::principal::Principal;
use auth_account::users::{self, UserRecord};
use auth_core::{ErrorCode, ServiceError};
use auth_proto::user::v1::{
    ReauthenticateRequest, RecoverRequest, ResendRequest, SendOtpRequest, SendResponse, SignUpRequest,
};
use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::json;

use crate::code_purpose::{EmailCode, PhoneCode};
use crate::codes::{Delivery, Pkce};
use crate::state::UserState;
use crate::validate;

fn sent(message_id: impl Into<String>) -> SendResponse {
    SendResponse {
        message_id: message_id.into(),
    }
}

fn nothing_sent() -> SendResponse {
    sent(String::new())
}

/// A random password that satisfies `GOTRUE_PASSWORD_REQUIRED_CHARACTERS` (GoTrue's
/// `GeneratePassword`): accounts created by a code get one nobody knows.
pub(crate) fn random_password(required_sets: &[String], length: usize) -> String {
    const ALPHANUMERIC: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    let mut chars: Vec<char> = required_sets
        .iter()
        .filter_map(|set| {
            let set: Vec<char> = set.chars().collect();
            (!set.is_empty()).then(|| set[rng.random_range(0..set.len())])
        })
        .collect();
    while chars.len() < length {
        chars.push(char::from(ALPHANUMERIC[rng.random_range(0..ALPHANUMERIC.len())]));
    }
    chars.shuffle(&mut rng);
    chars.into_iter().collect()
}

impl UserState {
    /// `POST /recover`.
    pub async fn recover(&self, request: RecoverRequest) -> Result<SendResponse, ServiceError> {
        if request.email.is_empty() {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "Password recovery requires an email",
            ));
        }
        let email = validate::email(&request.email)?;
        validate::pkce(&request.code_challenge_method, &request.code_challenge)?;
        let aud = self.request_aud(request.context.as_ref());
        let Some(user) = users::find_by_email(&self.db, &email, &aud).await? else {
            return Ok(nothing_sent());
        };
        let delivery = Delivery::Email {
            code: EmailCode::Recovery,
            pkce: Pkce::requested("recovery", &request.code_challenge, &request.code_challenge_method),
            redirect_to: &request.redirect_to,
        };
        self.send_code_now(&user, AuditAction::UserRecoveryRequested, None, delivery)
            .await?;
        Ok(nothing_sent())
    }

    /// `POST /otp` and `POST /magiclink`.
    pub async fn send_otp(&self, request: SendOtpRequest) -> Result<SendResponse, ServiceError> {
        if request.magic_link_endpoint {
            return self.magic_link(request).await;
        }
        if !request.email.is_empty() && !request.phone.is_empty() {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "Only an email address or phone number should be provided",
            ));
        }
        if !request.email.is_empty() && !request.channel.is_empty() {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "Channel should only be specified with Phone OTP",
            ));
        }
        validate::pkce(&request.code_challenge_method, &request.code_challenge)?;
        if !request.create_user {
            let aud = self.request_aud(request.context.as_ref());
            let exists = if !request.email.is_empty() {
                let email = validate::email(&request.email)?;
                users::find_by_email(&self.db, &email, &aud).await?.is_some()
            } else if !request.phone.is_empty() {
                let phone = validate::phone(&request.phone)?;
                users::find_by_phone(&self.db, &phone, &aud).await?.is_some()
            } else {
                true
            };
            if !exists {
                return Err(ServiceError::unprocessable(
                    ErrorCode::OtpDisabled,
                    "Signups not allowed for otp",
                ));
            }
        }
        if !request.email.is_empty() {
            self.magic_link(request).await
        } else if !request.phone.is_empty() {
            self.sms_otp(request).await
        } else {
            Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "One of email or phone must be set",
            ))
        }
    }

    /// GoTrue's `MagicLink`: a confirmed user gets a sign-in link; an unknown or unconfirmed one is
    /// signed up, and the confirmation email doubles as the link.
    async fn magic_link(&self, request: SendOtpRequest) -> Result<SendResponse, ServiceError> {
        if !self.config.external.email_enabled {
            return Err(ServiceError::unprocessable(
                ErrorCode::EmailProviderDisabled,
                "Email logins are disabled",
            ));
        }
        if !self.config.external.magic_link_enabled {
            return Err(ServiceError::unprocessable(
                ErrorCode::EmailProviderDisabled,
                "Login with magic link is disabled",
            ));
        }
        if request.email.is_empty() {
            return Err(ServiceError::unprocessable(
                ErrorCode::ValidationFailed,
                "Password recovery requires an email",
            ));
        }
        let email = validate::email(&request.email)?;
        validate::pkce(&request.code_challenge_method, &request.code_challenge)?;
        let aud = self.request_aud(request.context.as_ref());
        let user = users::find_by_email(&self.db, &email, &aud).await?;
        let user = match user {
            Some(user) if user.is_email_confirmed() => user,
            _ => {
                self.sign_up_for_code(&request, &email, "").await?;
                if !self.config.mailer.autoconfirm {
                    return Ok(nothing_sent()); // the confirmation email is the magic link
                }
                // Autoconfirmed just now: send the link to the confirmed account.
                users::find_by_email(&self.db, &email, &aud).await?.ok_or_else(|| {
                    ServiceError::internal(anyhow::anyhow!("user signed up for a magic link vanished"))
                })?
            }
        };
        let delivery = Delivery::Email {
            code: EmailCode::MagicLink,
            pkce: Pkce::requested("magiclink", &request.code_challenge, &request.code_challenge_method),
            redirect_to: &request.redirect_to,
        };
        self.send_code_now(&user, AuditAction::UserRecoveryRequested, None, delivery)
            .await?;
        Ok(nothing_sent())
    }

    /// GoTrue's `SmsOtp`: a code to a confirmed phone, or a sign-up for a new one.
    async fn sms_otp(&self, request: SendOtpRequest) -> Result<SendResponse, ServiceError> {
        if !self.config.external.phone_enabled {
            return Err(ServiceError::bad_request(
                ErrorCode::PhoneProviderDisabled,
                "Unsupported phone provider",
            ));
        }
        let channel = if request.channel.is_empty() {
            "sms"
        } else {
            request.channel.as_str()
        };
        let phone = validate::phone(&request.phone)?;
        auth_outbox::check_channel(channel, &self.config.sms.provider)?;
        let aud = self.request_aud(request.context.as_ref());
        let user = users::find_by_phone(&self.db, &phone, &aud).await?;
        let user = match user {
            Some(user) if user.is_phone_confirmed() => user,
            _ => {
                self.sign_up_for_code(&request, "", &phone).await?;
                if !self.config.sms.autoconfirm {
                    return Ok(nothing_sent());
                }
                users::find_by_phone(&self.db, &phone, &aud)
                    .await?
                    .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("user signed up for an SMS code vanished")))?
            }
        };
        let delivery = Delivery::Phone {
            code: PhoneCode::Confirmation,
            phone: &phone,
            channel,
        };
        let traits = Some(json!({"channel": channel}));
        let message_id = self
            .send_code_now(&user, AuditAction::UserRecoveryRequested, traits, delivery)
            .await?;
        Ok(sent(message_id))
    }

    /// The sign-up GoTrue runs inside `/otp` and `/magiclink` for a new address: a random password
    /// nobody knows, the caller's metadata and PKCE parameters.
    async fn sign_up_for_code(&self, request: &SendOtpRequest, email: &str, phone: &str) -> Result<(), ServiceError> {
        let length = if phone.is_empty() { 33 } else { 64 };
        self.sign_up(SignUpRequest {
            email: email.to_string(),
            phone: phone.to_string(),
            password: random_password(&self.config.password.required_characters, length),
            data_json: request.data_json.clone(),
            channel: request.channel.clone(),
            code_challenge: request.code_challenge.clone(),
            code_challenge_method: request.code_challenge_method.clone(),
            context: request.context.clone(),
            redirect_to: request.redirect_to.clone(),
        })
        .await?;
        Ok(())
    }

    /// `POST /resend`.
    pub async fn resend(&self, request: ResendRequest) -> Result<SendResponse, ServiceError> {
        let kind = request.r#type.as_str();
        match kind {
            "signup" | "email_change" => validate::pkce(&request.code_challenge_method, &request.code_challenge)?,
            "sms" | "phone_change" => {}
            _ => {
                return Err(ServiceError::bad_request(
                    ErrorCode::ValidationFailed,
                    "Missing one of these types: signup, email_change, sms, phone_change",
                ));
            }
        }
        let Some(user) = self.resend_addressee(&request, kind).await? else {
            return Ok(nothing_sent());
        };
        let pending = match kind {
            "signup" => !user.is_email_confirmed(),
            "sms" => !user.is_phone_confirmed(),
            "email_change" => !user.email_change.as_deref().unwrap_or_default().is_empty(),
            _ => !user.phone_change.as_deref().unwrap_or_default().is_empty(),
        };
        if !pending {
            return Ok(nothing_sent());
        }

        let pkce = !request.code_challenge.is_empty();
        // The PKCE flow is the token service's: started before the transaction opens, so no call is
        // made while it holds locks (should the transaction fail, the flow only expires unused).
        let flow_method = match kind {
            "signup" => Some("email/signup"),
            "email_change" => Some("email_change"),
            _ => None,
        };
        if pkce && let Some(method) = flow_method {
            self.create_flow_state(user.id, method, &request.code_challenge, &request.code_challenge_method)
                .await?;
        }
        let mut tx = self.db.begin().await?;
        let message_id = match kind {
            "signup" => {
                audit::record(&mut *tx, &user, AuditAction::UserConfirmationRequested, None).await?;
                self.send_email_code(&mut tx, &user, EmailCode::Confirmation, pkce, &request.redirect_to)
                    .await?;
                String::new()
            }
            "sms" => {
                audit::record(&mut *tx, &user, AuditAction::UserRecoveryRequested, None).await?;
                self.send_phone_code(&mut tx, &user, PhoneCode::Confirmation, user.phone(), "sms")
                    .await?
            }
            "email_change" => {
                let new_email = user.email_change.clone().unwrap_or_default();
                self.send_email_change(&mut tx, &user, &new_email, pkce, &request.redirect_to)
                    .await?;
                String::new()
            }
            _ => {
                let new_phone = user.phone_change.clone().unwrap_or_default();
                self.send_phone_code(&mut tx, &user, PhoneCode::PhoneChange, &new_phone, "sms")
                    .await?
            }
        };
        tx.commit().await?;
        self.relay.nudge();
        Ok(sent(message_id))
    }

    /// The user a resend is for, named by exactly one of email and phone (`None`: unknown, and
    /// nothing is sent, as GoTrue answers).
    async fn resend_addressee(&self, request: &ResendRequest, kind: &str) -> Result<Option<UserRecord>, ServiceError> {
        if request.email.is_empty() && kind == "signup" {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "Type provided requires an email address",
            ));
        }
        if request.phone.is_empty() && kind == "sms" {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "Type provided requires a phone number",
            ));
        }
        let aud = self.request_aud(request.context.as_ref());
        Ok(match (request.email.is_empty(), request.phone.is_empty()) {
            (false, false) => {
                return Err(ServiceError::bad_request(
                    ErrorCode::ValidationFailed,
                    "Only an email address or phone number should be provided.",
                ));
            }
            (false, true) => {
                if !self.config.external.email_enabled {
                    return Err(ServiceError::bad_request(
                        ErrorCode::EmailProviderDisabled,
                        "Email logins are disabled",
                    ));
                }
                let email = validate::email(&request.email)?;
                users::find_by_email(&self.db, &email, &aud).await?
            }
            (true, false) => {
                if !self.config.external.phone_enabled {
                    return Err(ServiceError::bad_request(
                        ErrorCode::PhoneProviderDisabled,
                        "Phone logins are disabled",
                    ));
                }
                let phone = validate::phone(&request.phone)?;
                users::find_by_phone(&self.db, &phone, &aud).await?
            }
            (true, true) => {
                return Err(ServiceError::bad_request(
                    ErrorCode::ValidationFailed,
                    "Missing email address or phone number",
                ));
            }
        })
    }

    /// `GET /reauthenticate`: a code to the confirmed email (or phone) of the signed-in user, for
    /// `PUT /user {password, nonce}`.
    pub async fn reauthenticate(
        &self,
        principal: &Principal,
        _request: ReauthenticateRequest,
    ) -> Result<SendResponse, ServiceError> {
        let user: &UserRecord = principal.require_user()?;
        let (email, phone) = (user.email(), user.phone());
        if email.is_empty() && phone.is_empty() {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "Reauthentication requires the user to have an email or a phone number",
            ));
        }
        if !email.is_empty() && !user.is_email_confirmed() {
            return Err(ServiceError::unprocessable(
                ErrorCode::EmailNotConfirmed,
                "Please verify your email first.",
            ));
        }
        if email.is_empty() && !user.is_phone_confirmed() {
            return Err(ServiceError::unprocessable(
                ErrorCode::PhoneNotConfirmed,
                "Please verify your phone first.",
            ));
        }
        let delivery = if email.is_empty() {
            Delivery::Phone {
                code: PhoneCode::Reauthentication,
                phone,
                channel: "sms",
            }
        } else {
            Delivery::Email {
                code: EmailCode::Reauthentication,
                pkce: None,
                redirect_to: "",
            }
        };
        let message_id = self
            .send_code_now(user, AuditAction::UserReauthenticateRequested, None, delivery)
            .await?;
        Ok(sent(message_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_passwords_cover_every_required_set() {
        let sets = vec!["abc".to_string(), "XYZ".to_string(), "!@".to_string()];
        for _ in 0..50 {
            let password = random_password(&sets, 33);
            assert_eq!(password.chars().count(), 33);
            for set in &sets {
                assert!(
                    password.chars().any(|c| set.contains(c)),
                    "{password} lacks one of {set}"
                );
            }
        }
    }
}

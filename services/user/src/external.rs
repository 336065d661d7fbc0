//! External identities (OAuth/OIDC sign-in, asked for by the sso service): GoTrue's
//! `createAccountFromExternalIdentity` with its automatic linking decision
//! (`models.DetermineAccountLinking`).
//!
//! The provider's identity is found, linked to the account that already holds one of its
//! *verified* emails, or made into a new account. An unverified email never links: it makes a new
//! account (without the address when another account holds it), which must confirm the address
//! before it signs in. An unconfirmed account that an external identity claims keeps only that
//! identity and loses its password, so whoever registered the address first cannot get in
//! (GoTrue's guard against pre-account takeover).

use auth_account::audit::{self, AuditAction};
use auth_account::users::{self, UserRecord};
use auth_core::{ErrorCode, ServiceError};
use auth_proto::user::v1::{ExternalIdentityRequest, ExternalIdentityResponse, ProviderEmail};
use chrono::Utc;
use serde_json::{Map, Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::code_purpose::EmailCode;
use crate::state::UserState;
use crate::{store, validate};

/// The linking domain every provider is in unless configured otherwise.
const DEFAULT_DOMAIN: &str = "default";

/// GoTrue's `AccountLinkingDecision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// The identity is known: `identity` of `user`.
    AccountExists { user: Uuid, identity: Uuid },
    /// A new account, with the candidate email unless another account holds it.
    CreateAccount,
    /// A new identity of an account that holds one of the verified emails.
    LinkAccount { user: Uuid },
}

impl Decision {
    fn as_str(self) -> &'static str {
        match self {
            Decision::AccountExists { .. } => "account_exists",
            Decision::CreateAccount => "create_account",
            Decision::LinkAccount { .. } => "link_account",
        }
    }
}

/// The address a new account gets and whether the provider verified it (GoTrue's
/// `CandidateEmail`: the primary email).
#[derive(Debug, Clone, Default)]
struct Candidate {
    email: String,
    verified: bool,
}

/// GoTrue's `GetAccountLinkingDomain`.
fn linking_domain<'a>(provider: &'a str, domains: &'a std::collections::BTreeMap<String, String>) -> &'a str {
    if provider.starts_with("sso:") {
        return provider;
    }
    domains.get(provider).map_or(DEFAULT_DOMAIN, String::as_str)
}

fn candidate(emails: &[ProviderEmail]) -> Candidate {
    emails
        .iter()
        .find(|e| e.primary)
        .map(|e| Candidate {
            email: e.email.to_lowercase(),
            verified: e.verified,
        })
        .unwrap_or_default()
}

impl UserState {
    pub async fn sign_in_with_external_identity(
        &self,
        request: ExternalIdentityRequest,
    ) -> Result<ExternalIdentityResponse, ServiceError> {
        let config = &self.config;
        let provider = request.provider.as_str();
        if provider.is_empty() || request.subject.is_empty() {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "provider and subject are required",
            ));
        }
        let identity_data = validate::metadata(&request.identity_data_json)?;
        if !request.invite_token.is_empty() {
            return self.accept_invite_with_identity(&request, &identity_data).await;
        }
        let aud = self.request_aud(request.context.as_ref());
        let mut candidate = candidate(&request.emails);
        let verified_emails: Vec<String> = request
            .emails
            .iter()
            .filter(|e| e.verified || config.mailer.autoconfirm)
            .map(|e| e.email.to_lowercase())
            .collect();
        let domains = &config.external.provider_linking_domains;
        let domain = linking_domain(provider, domains);

        let mut tx = self.db.begin().await?;
        // One sign-in per identity at a time: two first callbacks must not make two accounts.
        sqlx::query!(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
            format!("identity:{provider}:{}", request.subject)
        )
        .execute(&mut *tx)
        .await?;

        let decision = self
            .decide(
                &mut tx,
                provider,
                &request.subject,
                &verified_emails,
                domain,
                &aud,
                &mut candidate,
            )
            .await?;
        let (user_id, identity_id) = match decision {
            Decision::AccountExists { user, identity } => {
                store::identities::refresh_external(&mut tx, identity, &identity_data).await?;
                store::users::merge_user_metadata(&mut tx, user, &identity_data).await?;
                store::users::refresh_providers(&mut tx, user).await?;
                (user, identity)
            }
            Decision::LinkAccount { user } => {
                let identity =
                    store::identities::insert_external(&mut tx, user, provider, &request.subject, &identity_data)
                        .await?;
                store::users::merge_user_metadata(&mut tx, user, &identity_data).await?;
                store::users::refresh_providers(&mut tx, user).await?;
                let record = store::users::load(&mut tx, user).await?;
                let traits = json!({"identity_id": identity, "provider": provider, "provider_id": request.subject});
                audit::record(&mut *tx, &record, AuditAction::IdentityLinked, Some(traits)).await?;
                (user, identity)
            }
            Decision::CreateAccount => {
                if config.disable_signup {
                    return Err(ServiceError::unprocessable(
                        ErrorCode::SignupDisabled,
                        "Signups not allowed for this instance",
                    ));
                }
                let user = Uuid::new_v4();
                let new_user = store::users::ExternalNewUser {
                    id: user,
                    aud: &aud,
                    role: &config.jwt.default_group_name,
                    provider,
                    email: (!candidate.email.is_empty()).then_some(candidate.email.as_str()),
                    user_metadata: &identity_data,
                    // GoTrue's reuse of is_sso_user: accounts of other linking domains may share an address.
                    is_sso_user: domain != DEFAULT_DOMAIN,
                };
                store::users::insert_external(&mut tx, new_user).await?;
                let identity =
                    store::identities::insert_external(&mut tx, user, provider, &request.subject, &identity_data)
                        .await?;
                (user, identity)
            }
        };

        let user = store::users::load(&mut tx, user_id).await?;
        if user.is_banned(Utc::now()) {
            return Err(ServiceError::forbidden(ErrorCode::UserBanned, "User is banned"));
        }
        let has_email = !(request.email_optional && candidate.email.is_empty());
        if has_email && !user.is_email_confirmed() {
            self.keep_only_identity(&mut tx, &user, provider, identity_id, &identity_data)
                .await?;
            if candidate.verified || config.mailer.autoconfirm {
                audit::record(
                    &mut *tx,
                    &user,
                    AuditAction::UserSignedUp,
                    Some(json!({"provider": provider})),
                )
                .await?;
                store::users::confirm_email(&mut tx, user_id).await?;
                store::one_time_tokens::delete_all(&mut tx, user_id).await?;
            } else {
                let sent = !candidate.email.is_empty();
                if sent {
                    self.send_email_code(&mut tx, &user, EmailCode::Confirmation, false, "")
                        .await?;
                }
                if !config.mailer.allow_unverified_email_sign_ins {
                    // GoTrue commits the account (and the confirmation email) before refusing.
                    tx.commit().await?;
                    if sent {
                        self.relay.nudge();
                    }
                    return Err(needs_verification(provider, sent));
                }
            }
        } else {
            audit::record(&mut *tx, &user, AuditAction::Login, Some(json!({"provider": provider}))).await?;
        }
        store::users::record_sign_in(&mut tx, user_id).await?;
        tx.commit().await?;
        self.relay.nudge();
        Ok(ExternalIdentityResponse {
            user_id: user_id.to_string(),
            decision: decision.as_str().to_string(),
        })
    }

    /// GoTrue's `processInvite`: the invited user (found by the invitation's token) takes the
    /// identity, provided the provider vouches for the invited address; the account is confirmed
    /// (the invitation proved the address) and keeps only this identity and no password.
    async fn accept_invite_with_identity(
        &self,
        request: &ExternalIdentityRequest,
        identity_data: &Map<String, Value>,
    ) -> Result<ExternalIdentityResponse, ServiceError> {
        let provider = request.provider.as_str();
        let mut tx = self.db.begin().await?;
        let user = store::users::lock_by_confirmation_token(&mut tx, &request.invite_token)
            .await?
            .ok_or_else(|| ServiceError::not_found(ErrorCode::InviteNotFound, "Invite not found"))?;
        if !request
            .emails
            .iter()
            .any(|e| e.email.eq_ignore_ascii_case(user.email()))
        {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "Invited email does not match emails from external provider",
            ));
        }
        let identity_id =
            store::identities::insert_external(&mut tx, user.id, provider, &request.subject, identity_data).await?;
        let mut app_metadata = user.app_metadata();
        app_metadata.insert("provider".into(), json!(provider));
        store::users::set_app_metadata(&mut tx, user.id, app_metadata).await?;
        store::users::refresh_providers(&mut tx, user.id).await?;
        store::users::merge_user_metadata(&mut tx, user.id, identity_data).await?;
        audit::record(
            &mut *tx,
            &user,
            AuditAction::InviteAccepted,
            Some(json!({"provider": provider})),
        )
        .await?;
        self.keep_only_identity(&mut tx, &user, provider, identity_id, identity_data)
            .await?;
        store::users::confirm_email(&mut tx, user.id).await?;
        store::one_time_tokens::delete_all(&mut tx, user.id).await?;
        store::users::record_sign_in(&mut tx, user.id).await?;
        tx.commit().await?;
        self.accounts.forget(user.id);
        Ok(ExternalIdentityResponse {
            user_id: user.id.to_string(),
            decision: "accept_invite".into(),
        })
    }

    /// GoTrue's `DetermineAccountLinking`. `candidate` loses its email when it must not be used.
    #[allow(clippy::too_many_arguments)]
    async fn decide(
        &self,
        conn: &mut PgConnection,
        provider: &str,
        subject: &str,
        verified_emails: &[String],
        domain: &str,
        aud: &str,
        candidate: &mut Candidate,
    ) -> Result<Decision, ServiceError> {
        if let Some(found) = store::identities::find_by_provider_id(conn, subject, provider).await? {
            return Ok(Decision::AccountExists {
                user: found.user_id,
                identity: found.id,
            });
        }
        let domains = &self.config.external.provider_linking_domains;
        if verified_emails.is_empty() {
            // Unverified: always a new account, and without the address when someone holds it.
            if !candidate.email.is_empty() && self.email_taken(conn, &candidate.email, aud, domains).await? {
                candidate.email.clear();
            }
            return Ok(Decision::CreateAccount);
        }
        let similar_identities = store::identities::providers_with_emails(conn, verified_emails).await?;
        let similar_users = if domain == DEFAULT_DOMAIN {
            store::users::ids_with_emails(conn, verified_emails).await?
        } else {
            Vec::new()
        };
        let linking_users: Vec<Uuid> = similar_identities
            .iter()
            .filter(|(p, _)| linking_domain(p, domains) == domain)
            .map(|(_, user)| *user)
            .collect();
        let multiple = || {
            ServiceError::internal(anyhow::anyhow!(
                "Multiple accounts with the same email address in the same linking domain detected: {domain}"
            ))
        };
        match linking_users.first() {
            None => match similar_users.as_slice() {
                [] => Ok(Decision::CreateAccount),
                [user] => Ok(Decision::LinkAccount { user: *user }),
                _ => Err(multiple()),
            },
            Some(first) if linking_users.iter().all(|user| user == first) => Ok(Decision::LinkAccount { user: *first }),
            Some(_) => Err(multiple()),
        }
    }

    /// GoTrue's `IsDuplicatedEmail`: an account of the audience in the default linking domain has it.
    async fn email_taken(
        &self,
        conn: &mut PgConnection,
        email: &str,
        aud: &str,
        domains: &std::collections::BTreeMap<String, String>,
    ) -> Result<bool, ServiceError> {
        let holders = store::identities::providers_with_emails(conn, &[email.to_string()]).await?;
        for (provider, user_id) in holders {
            if linking_domain(&provider, domains) != DEFAULT_DOMAIN {
                continue;
            }
            if users::find_by_id(&mut *conn, user_id)
                .await?
                .is_some_and(|user| user.aud.as_deref() == Some(aud))
            {
                return Ok(true);
            }
        }
        Ok(users::find_by_email(&mut *conn, email, aud).await?.is_some())
    }

    /// GoTrue's `RemoveUnconfirmedIdentities`: an unconfirmed account claimed by an external
    /// identity keeps that identity only, its metadata, and no password.
    async fn keep_only_identity(
        &self,
        conn: &mut PgConnection,
        user: &UserRecord,
        provider: &str,
        identity_id: Uuid,
        identity_data: &Map<String, Value>,
    ) -> Result<(), ServiceError> {
        if provider != "email" && provider != "phone" {
            store::users::clear_password(conn, user.id).await?;
        }
        store::users::set_user_metadata(conn, user.id, identity_data.clone()).await?;
        store::identities::delete_all_but(conn, user.id, identity_id).await?;
        store::users::refresh_providers(conn, user.id).await?;
        Ok(())
    }
}

fn needs_verification(provider: &str, sent: bool) -> ServiceError {
    let message = if sent {
        format!("Unverified email with {provider}. A confirmation email has been sent to your {provider} email")
    } else {
        format!("Unverified email with {provider}. Verify the email with {provider} in order to sign in")
    };
    ServiceError::unprocessable(ErrorCode::ProviderEmailNeedsVerification, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linking_domains_as_gotrue_names_them() {
        let domains = [("custom:a".to_string(), "social".to_string())].into_iter().collect();
        assert_eq!(linking_domain("github", &domains), "default");
        assert_eq!(linking_domain("custom:a", &domains), "social");
        assert_eq!(linking_domain("sso:1234", &domains), "sso:1234");
    }

    #[test]
    fn the_candidate_is_the_primary_email_lower_cased() {
        let emails = vec![
            ProviderEmail {
                email: "Other@Example.com".into(),
                verified: true,
                primary: false,
            },
            ProviderEmail {
                email: "Main@Example.com".into(),
                verified: false,
                primary: true,
            },
        ];
        let found = candidate(&emails);
        assert_eq!(found.email, "main@example.com");
        assert!(!found.verified);
        assert!(candidate(&[]).email.is_empty());
    }
}

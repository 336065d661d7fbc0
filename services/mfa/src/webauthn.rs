//! WebAuthn factors (GoTrue's `enrollWebAuthnFactor`, `challengeWebAuthnFactor`,
//! `verifyWebAuthnFactor`), with webauthn-rs as the relying party.
//!
//! - An unverified factor is challenged with registration options (`type: "create"`); its
//!   verification registers the authenticator's credential on the factor, which stores it in
//!   `web_authn_credential`.
//! - A verified factor is challenged with assertion options (`type: "request"`) allowing every
//!   verified WebAuthn factor of the user, as GoTrue's `BeginLogin(user)`; its verification checks
//!   the assertion against them, and (better than GoTrue) stores the credential's new signature
//!   counter, so a cloned authenticator is noticed.
//! - The ceremony's state lives in the challenge's `web_authn_session_data` between the two
//!   requests.
//!
//! The relying party is `GOTRUE_WEBAUTHN_RP_ID`, `_RP_DISPLAY_NAME` and `_RP_ORIGINS`, as in GoTrue.
//! Credentials are stored as GoTrue stores them (`gotrue_credential.rs`), so factors registered by
//! either work with the other.

use auth_account::users::UserRecord;
use auth_core::config::WebAuthnConfig;
use auth_core::{ErrorCode, ServiceError};
use auth_proto::mfa::v1::WebAuthnCeremony;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url,
    Webauthn, WebauthnBuilder,
};

use crate::gotrue_credential;
use crate::store::{self, OwnedFactor};

/// What `mfa_challenges.web_authn_session_data` holds between challenge and verify.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Ceremony {
    Registration(PasskeyRegistration),
    Authentication(PasskeyAuthentication),
}

#[derive(Debug, Serialize, Deserialize)]
struct SessionData {
    suite_ceremony: Ceremony,
}

/// A credential to store on a factor after a verification.
pub struct CredentialUpdate {
    pub factor_id: Uuid,
    pub credential: Value,
}

/// The relying party of `GOTRUE_WEBAUTHN_*`; 500 when it is not configured, as GoTrue's
/// `webauthn.New` fails.
pub fn relying_party(config: &WebAuthnConfig) -> Result<Webauthn, ServiceError> {
    let misconfigured = |what: &str| {
        tracing::error!(what, "WebAuthn is not configured");
        ServiceError::server_misconfigured(format!("WebAuthn is not configured: {what}"))
    };
    if config.rp_id.is_empty() {
        return Err(misconfigured("GOTRUE_WEBAUTHN_RP_ID is required"));
    }
    if config.rp_display_name.is_empty() {
        return Err(misconfigured("GOTRUE_WEBAUTHN_RP_DISPLAY_NAME is required"));
    }
    let origins: Vec<Url> = config.rp_origins.iter().filter_map(|o| Url::parse(o).ok()).collect();
    let Some((first, others)) = origins.split_first() else {
        return Err(misconfigured("GOTRUE_WEBAUTHN_RP_ORIGINS is required"));
    };
    let mut builder = WebauthnBuilder::new(&config.rp_id, first)
        .map_err(|e| misconfigured(&format!("GOTRUE_WEBAUTHN_RP_ID and _RP_ORIGINS do not match: {e}")))?
        .rp_name(&config.rp_display_name);
    for origin in others {
        builder = builder.append_allowed_origin(origin);
    }
    builder
        .build()
        .map_err(|e| misconfigured(&format!("invalid relying party: {e}")))
}

fn internal(error: impl std::fmt::Display) -> ServiceError {
    ServiceError::internal(anyhow::anyhow!("WebAuthn: {error}"))
}

/// The user's verified WebAuthn credentials, with the factor holding each.
async fn verified_passkeys(db: &sqlx::PgPool, user_id: Uuid) -> Result<Vec<(Uuid, Passkey)>, ServiceError> {
    let stored = store::verified_webauthn_credentials(db, user_id).await?;
    Ok(stored
        .into_iter()
        .filter_map(
            |(factor_id, credential)| match gotrue_credential::from_gotrue(&credential?) {
                Ok(passkey) => Some((factor_id, passkey)),
                Err(error) => {
                    tracing::warn!(%factor_id, error, "a WebAuthn factor's stored credential cannot be read");
                    None
                }
            },
        )
        .collect())
}

/// Starts the factor's ceremony: the options for the browser and the state to store with the
/// challenge.
pub async fn start(
    rp: &Webauthn,
    db: &sqlx::PgPool,
    user: &UserRecord,
    factor: &OwnedFactor,
) -> Result<(WebAuthnCeremony, Value), ServiceError> {
    let known = verified_passkeys(db, user.id).await?;
    let (kind, options, ceremony) = if factor.verified {
        let passkeys: Vec<Passkey> = known.into_iter().map(|(_, passkey)| passkey).collect();
        let (options, state) = rp.start_passkey_authentication(&passkeys).map_err(internal)?;
        let options = serde_json::to_value(options).map_err(internal)?;
        ("request", options, Ceremony::Authentication(state))
    } else {
        let exclude = known.iter().map(|(_, passkey)| passkey.cred_id().clone()).collect();
        let (options, state) = rp
            .start_passkey_registration(user.id, user.email(), user.email(), Some(exclude))
            .map_err(internal)?;
        let options = serde_json::to_value(options).map_err(internal)?;
        ("create", options, Ceremony::Registration(state))
    };
    let session_data = serde_json::to_value(SessionData {
        suite_ceremony: ceremony,
    })
    .map_err(internal)?;
    Ok((
        WebAuthnCeremony {
            r#type: kind.to_string(),
            json: options.to_string(),
        },
        session_data,
    ))
}

/// GoTrue's checks of `webauthn` in a verification, before the challenge is looked at.
pub fn check_answer(answer: Option<&WebAuthnCeremony>) -> Result<&WebAuthnCeremony, ServiceError> {
    let invalid = |message: &str| ServiceError::bad_request(ErrorCode::ValidationFailed, message);
    let answer = answer.ok_or_else(|| invalid("WebAuthn config required"))?;
    if answer.r#type != "create" && answer.r#type != "request" {
        return Err(invalid("WebAuthn type must be create or request"));
    }
    if answer.json.is_empty() || answer.json == "null" {
        return Err(invalid("credential_response required"));
    }
    Ok(answer)
}

/// Checks the authenticator's answer against the ceremony the challenge stored; the credential to
/// store on which factor.
pub async fn finish(
    rp: &Webauthn,
    db: &sqlx::PgPool,
    user: &UserRecord,
    factor: &OwnedFactor,
    session_data: Option<Value>,
    answer: &WebAuthnCeremony,
) -> Result<CredentialUpdate, ServiceError> {
    let invalid_response = || ServiceError::bad_request(ErrorCode::ValidationFailed, "Invalid credential_response");
    let rejected = |error: webauthn_rs::prelude::WebauthnError| {
        tracing::info!(%error, "WebAuthn verification failed");
        ServiceError::unprocessable(
            ErrorCode::MfaVerificationFailed,
            "Failed to validate WebAuthn MFA response",
        )
    };
    let stored: SessionData = session_data
        .and_then(|data| serde_json::from_value(data).ok())
        .ok_or_else(|| {
            ServiceError::unprocessable(
                ErrorCode::MfaVerificationFailed,
                "The challenge holds no WebAuthn ceremony of this suite",
            )
        })?;
    match (stored.suite_ceremony, answer.r#type.as_str()) {
        (Ceremony::Registration(state), "create") => {
            let response: RegisterPublicKeyCredential =
                serde_json::from_str(&answer.json).map_err(|_| invalid_response())?;
            let passkey = rp.finish_passkey_registration(&response, &state).map_err(rejected)?;
            let credential = gotrue_credential::to_gotrue(&passkey).map_err(internal)?;
            Ok(CredentialUpdate {
                factor_id: factor.id,
                credential,
            })
        }
        (Ceremony::Authentication(state), "request") => {
            let response: PublicKeyCredential = serde_json::from_str(&answer.json).map_err(|_| invalid_response())?;
            let result = rp.finish_passkey_authentication(&response, &state).map_err(rejected)?;
            let (factor_id, mut passkey) = verified_passkeys(db, user.id)
                .await?
                .into_iter()
                .find(|(_, passkey)| passkey.cred_id() == result.cred_id())
                .ok_or_else(|| rejected(webauthn_rs::prelude::WebauthnError::CredentialNotFound))?;
            passkey.update_credential(&result);
            let credential = gotrue_credential::to_gotrue(&passkey).map_err(internal)?;
            Ok(CredentialUpdate { factor_id, credential })
        }
        _ => Err(ServiceError::bad_request(
            ErrorCode::ValidationFailed,
            "WebAuthn type does not match the challenge",
        )),
    }
}

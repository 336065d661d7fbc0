//! The WebAuthn side of passkeys, with webauthn-rs's core as the relying party.
//!
//! webauthn-rs's high-level API decides two things GoTrue decides differently, and a passkey
//! registered by one server must sign in on the other:
//! - the user handle: GoTrue's is the user's UUID as text (36 bytes), webauthn-rs's its 16 raw
//!   bytes. The handle is written into the authenticator at registration and comes back with every
//!   discoverable sign-in, so registration here writes GoTrue's, and sign-in reads both.
//! - discoverable credentials: a passkey sign-in names no user, so the credential must live on the
//!   authenticator (`residentKey: required`, as GoTrue asks); webauthn-rs's passkeys do not ask.
//!
//! User verification is "preferred", as in GoTrue. The signature counter must move forward: an
//! assertion that does not advance a counting authenticator is refused as a possible clone, where
//! GoTrue only notes it.

use auth_account::users::UserRecord;
use auth_core::ServiceError;
use auth_core::config::WebAuthnConfig;
use serde::{Deserialize, Serialize};
use serde_cbor_2::Value as Cbor;
use serde_json::Value;
use uuid::Uuid;
use webauthn_rs::prelude::Url;
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::internals::AuthenticatorData;
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, AttestationFormat, AuthenticationResult, AuthenticationState,
    AuthenticatorTransport, Credential, ParsedAttestation, PublicKeyCredential, RegisterPublicKeyCredential,
    RegisteredExtensions, Registration, RegistrationState, UserVerificationPolicy,
};

use super::names::friendly_name;
use super::store::{NewPasskey, StoredPasskey};
use crate::gotrue_credential::{cose_bytes, cose_key};

const POLICY: UserVerificationPolicy = UserVerificationPolicy::Preferred;

/// What `webauthn_challenges.session_data` holds between the two requests of a ceremony. The
/// `suite_` key tells it from go-webauthn's `SessionData`, which GoTrue writes there.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Ceremony {
    Registration(RegistrationState),
    Authentication(AuthenticationState),
}

#[derive(Debug, Serialize, Deserialize)]
struct SessionData {
    suite_passkey_ceremony: Ceremony,
}

fn internal(error: impl std::fmt::Display) -> ServiceError {
    ServiceError::internal(anyhow::anyhow!("passkeys: {error}"))
}

/// The relying party of `GOTRUE_WEBAUTHN_*` for passkeys. Its settings are checked as for WebAuthn
/// factors (500 when one is missing or the origins do not belong to the RP id).
pub fn relying_party(config: &WebAuthnConfig) -> Result<WebauthnCore, ServiceError> {
    crate::webauthn::relying_party(config)?;
    let origins: Vec<Url> = config.rp_origins.iter().filter_map(|o| Url::parse(o).ok()).collect();
    Ok(WebauthnCore::new_unsafe_experts_only(
        &config.rp_display_name,
        &config.rp_id,
        origins,
        config.challenge_expiry,
        Some(false),
        Some(false),
    ))
}

/// The handle GoTrue gives a user's credentials: the UUID as text.
fn user_handle(user_id: Uuid) -> Vec<u8> {
    user_id.to_string().into_bytes()
}

/// The user a discoverable assertion names: GoTrue's handle, or the raw 16 bytes.
pub fn user_of_handle(handle: &[u8]) -> Option<Uuid> {
    std::str::from_utf8(handle)
        .ok()
        .and_then(|text| Uuid::parse_str(text).ok())
        .or_else(|| Uuid::from_slice(handle).ok())
}

/// GoTrue's `WebAuthnName`: the email, else the phone (the id when the account has neither).
fn account_name(user: &UserRecord) -> String {
    [user.email(), user.phone()]
        .into_iter()
        .find(|name| !name.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| user.id.to_string())
}

/// GoTrue's `WebAuthnDisplayName`: `user_metadata.name`, else the account name.
fn display_name(user: &UserRecord) -> String {
    user.user_metadata()
        .get("name")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| account_name(user))
}

/// Creation options for a new passkey of `user` (its existing ones excluded), and the state to keep.
pub fn start_registration(
    rp: &WebauthnCore,
    user: &UserRecord,
    existing: &[StoredPasskey],
) -> Result<(Value, Value), ServiceError> {
    let exclude = existing.iter().map(|p| p.credential_id.clone()).collect();
    let builder = rp
        .new_challenge_register_builder(&user_handle(user.id), &account_name(user), &display_name(user))
        .map_err(internal)?
        .attestation(AttestationConveyancePreference::None)
        .user_verification_policy(POLICY)
        .require_resident_key(true)
        .exclude_credentials(Some(exclude));
    let (options, state) = rp.generate_challenge_register(builder).map_err(internal)?;
    let session_data = SessionData {
        suite_passkey_ceremony: Ceremony::Registration(state),
    };
    Ok((
        serde_json::to_value(options.public_key).map_err(internal)?,
        serde_json::to_value(session_data).map_err(internal)?,
    ))
}

/// Request options for a discoverable sign-in (no user, no allowed credentials).
pub fn start_authentication(rp: &WebauthnCore) -> Result<(Value, Value), ServiceError> {
    let builder = rp
        .new_challenge_authenticate_builder(Vec::new(), Some(POLICY))
        .map_err(internal)?;
    let (options, state) = rp.generate_challenge_authenticate(builder).map_err(internal)?;
    let session_data = SessionData {
        suite_passkey_ceremony: Ceremony::Authentication(state),
    };
    Ok((
        serde_json::to_value(options.public_key).map_err(internal)?,
        serde_json::to_value(session_data).map_err(internal)?,
    ))
}

/// Why an answer was refused; the endpoints turn it into GoTrue's error.
#[derive(Debug)]
pub enum Refusal {
    /// The answer is not a credential of the expected kind.
    Malformed(String),
    /// It is one, and it does not check out.
    Rejected(String),
}

fn stored_ceremony(session_data: Value) -> Result<Ceremony, Refusal> {
    serde_json::from_value::<SessionData>(session_data)
        .map(|data| data.suite_passkey_ceremony)
        .map_err(|_| Refusal::Rejected("the challenge holds no passkey ceremony of this suite".into()))
}

/// Checks the authenticator's answer to a registration ceremony; the passkey to store.
pub fn finish_registration(
    rp: &WebauthnCore,
    user_id: Uuid,
    session_data: Value,
    answer: &str,
) -> Result<NewPasskey, Refusal> {
    let response: RegisterPublicKeyCredential =
        serde_json::from_str(answer).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let Ceremony::Registration(state) = stored_ceremony(session_data)? else {
        return Err(Refusal::Rejected("the challenge is not a registration".into()));
    };
    let credential = rp
        .register_credential(&response, &state, None)
        .map_err(|e| Refusal::Rejected(e.to_string()))?;
    let aaguid = authenticator_model(&response);
    let public_key = cose_bytes(&credential.cred).map_err(Refusal::Rejected)?;
    Ok(NewPasskey {
        user_id,
        credential_id: credential.cred_id.to_vec(),
        public_key,
        attestation_type: attestation_type(&credential.attestation_format),
        aaguid,
        sign_count: i64::from(credential.counter),
        transports: transport_names(credential.transports.as_deref().unwrap_or_default()),
        backup_eligible: credential.backup_eligible,
        backed_up: credential.backup_state,
        friendly_name: friendly_name(aaguid),
    })
}

/// A sign-in answer, read before the passkey it names is looked up.
pub struct Assertion {
    response: PublicKeyCredential,
    pub user_id: Uuid,
}

impl Assertion {
    pub fn parse(answer: &str) -> Result<Self, Refusal> {
        let response: PublicKeyCredential =
            serde_json::from_str(answer).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let user_id = response
            .get_user_unique_id()
            .and_then(user_of_handle)
            .ok_or_else(|| Refusal::Rejected("the assertion names no user of this suite".into()))?;
        Ok(Self { response, user_id })
    }

    pub fn credential_id(&self) -> &[u8] {
        self.response.get_credential_id()
    }

    /// Checks the assertion against the stored passkey it names and the stored ceremony.
    pub fn verify(
        &self,
        rp: &WebauthnCore,
        session_data: Value,
        passkey: &StoredPasskey,
    ) -> Result<AuthenticationResult, Refusal> {
        let Ceremony::Authentication(state) = stored_ceremony(session_data)? else {
            return Err(Refusal::Rejected("the challenge is not a sign-in".into()));
        };
        let credential = to_credential(passkey).map_err(Refusal::Rejected)?;
        rp.authenticate_single_credential(&self.response, &state, &credential)
            .map_err(|e| Refusal::Rejected(e.to_string()))
    }
}

/// A stored passkey as webauthn-rs checks assertions with it. What GoTrue does not store (the
/// registration's extensions, attestation chain and verification flag) reads back as "not
/// requested", "none" and "not verified": none of them is needed to check a later assertion.
fn to_credential(passkey: &StoredPasskey) -> Result<Credential, String> {
    Ok(Credential {
        cred_id: passkey.credential_id.clone(),
        cred: cose_key(&passkey.public_key)?,
        counter: u32::try_from(passkey.sign_count).unwrap_or(u32::MAX),
        transports: Some(
            passkey
                .transports
                .0
                .iter()
                .filter_map(|name| name.parse::<AuthenticatorTransport>().ok())
                .collect(),
        ),
        user_verified: false,
        backup_eligible: passkey.backup_eligible,
        backup_state: passkey.backed_up,
        registration_policy: POLICY,
        extensions: RegisteredExtensions::none(),
        attestation: ParsedAttestation::default(),
        attestation_format: AttestationFormat::None,
    })
}

/// go-webauthn's `AttestationType`: the attestation statement's format (`none`, `packed`, ...).
fn attestation_type(format: &AttestationFormat) -> String {
    serde_json::to_value(format)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "none".to_string())
}

fn transport_names(transports: &[AuthenticatorTransport]) -> Vec<String> {
    transports
        .iter()
        .filter_map(|t| serde_json::to_value(t).ok()?.as_str().map(str::to_string))
        .filter(|name| name != "unknown")
        .collect()
}

/// The authenticator model's AAGUID from the registration's authenticator data; `None` when it
/// is withheld (all zeros) or cannot be read.
fn authenticator_model(response: &RegisterPublicKeyCredential) -> Option<Uuid> {
    let object: Cbor = serde_cbor_2::from_slice(response.response.attestation_object.as_ref()).ok()?;
    let Cbor::Map(entries) = object else { return None };
    let auth_data = entries.iter().find_map(|(key, value)| match (key, value) {
        (Cbor::Text(name), Cbor::Bytes(bytes)) if name == "authData" => Some(bytes),
        _ => None,
    })?;
    let parsed = AuthenticatorData::<Registration>::try_from(auth_data.as_slice()).ok()?;
    let aaguid = Uuid::from_bytes(parsed.acd?.aaguid);
    (!aaguid.is_nil()).then_some(aaguid)
}

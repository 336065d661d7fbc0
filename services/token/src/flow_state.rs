//! PKCE flow states (`flow_state`): started by the user service when a client sends a
//! `code_challenge`, given an auth code when the emailed link is verified, and traded once for a
//! session by `POST /token?grant_type=pkce`.

use auth_account::audit::{self, AuditAction};
use auth_account::users;
use auth_core::{ErrorCode, ServiceError};
use auth_proto::common::v1 as pb;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::session::{Client, TokenState};

/// `code_challenge_method` as stored (enum `code_challenge_method`): GoTrue accepts any case.
pub(crate) fn parse_challenge_method(method: &str) -> Result<&'static str, ServiceError> {
    match method.to_ascii_lowercase().as_str() {
        "s256" => Ok("s256"),
        "plain" => Ok("plain"),
        _ => Err(ServiceError::bad_request(
            ErrorCode::ValidationFailed,
            format!("unsupported code_challenge method {method:?}"),
        )),
    }
}

/// RFC 7636 §4.6, compared in constant time.
fn verifier_matches(challenge: &str, method: &str, verifier: &str) -> Result<(), ServiceError> {
    let expected = match method {
        "s256" => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        "plain" => verifier.to_string(),
        _ => {
            return Err(ServiceError::bad_request(
                ErrorCode::BadCodeVerifier,
                "code challenge method not supported",
            ));
        }
    };
    if bool::from(expected.as_bytes().ct_eq(challenge.as_bytes())) {
        Ok(())
    } else {
        Err(ServiceError::bad_request(
            ErrorCode::BadCodeVerifier,
            "code challenge does not match previously saved code verifier",
        ))
    }
}

struct PendingFlow {
    id: Uuid,
    user_id: Option<Uuid>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    provider_type: String,
    authentication_method: String,
    created_at: Option<DateTime<Utc>>,
    auth_code_issued_at: Option<DateTime<Utc>>,
    provider_access_token: Option<String>,
    provider_refresh_token: Option<String>,
}

impl TokenState {
    pub async fn create_flow_state(
        &self,
        user_id: Uuid,
        authentication_method: &str,
        provider_type: &str,
        code_challenge: &str,
        code_challenge_method: &str,
    ) -> Result<Uuid, ServiceError> {
        let method = parse_challenge_method(code_challenge_method)?;
        let id = Uuid::new_v4();
        sqlx::query!(
            "INSERT INTO flow_state (id, user_id, auth_code, code_challenge_method, code_challenge, provider_type, \
               authentication_method, created_at, updated_at) \
             VALUES ($1, $2, $3, $4::text::code_challenge_method, $5, $6, $7, now(), now())",
            id,
            user_id,
            Uuid::new_v4().to_string(),
            method,
            code_challenge,
            provider_type,
            authentication_method
        )
        .execute(&self.db)
        .await?;
        Ok(id)
    }

    /// GoTrue's `issueAuthCode`: the user's latest PKCE flow for the method, stamped with the time
    /// its code was handed out (magic-link codes expire from then).
    pub async fn issue_auth_code(&self, user_id: Uuid, authentication_method: &str) -> Result<String, ServiceError> {
        let code: Option<Option<String>> = sqlx::query_scalar!(
            "UPDATE flow_state SET auth_code_issued_at = now(), updated_at = now() \
             WHERE id = (SELECT id FROM flow_state WHERE user_id = $1 AND authentication_method = $2 \
                         ORDER BY created_at DESC NULLS LAST, id DESC LIMIT 1) \
             RETURNING CASE WHEN coalesce(code_challenge, '') <> '' THEN auth_code END",
            user_id,
            authentication_method
        )
        .fetch_optional(&self.db)
        .await?;
        match code {
            None => Err(ServiceError::unprocessable(
                ErrorCode::FlowStateNotFound,
                "No valid flow state found for user.",
            )),
            Some(None) => Err(ServiceError::unprocessable(
                ErrorCode::FlowStateNotFound,
                "Flow state does not have an auth code (not a PKCE flow).",
            )),
            Some(Some(code)) => Ok(code),
        }
    }

    /// GoTrue's PKCE grant. The flow's row stays locked from lookup to deletion, and the session is
    /// created in the same transaction, so two requests racing with one code get one session between
    /// them (GoTrue can hand out two) and a failure leaves the code usable.
    pub async fn exchange_auth_code(
        &self,
        auth_code: &str,
        code_verifier: &str,
        client: &Client,
    ) -> Result<pb::SessionTokens, ServiceError> {
        if auth_code.is_empty() || code_verifier.is_empty() {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "invalid request: both auth code and code verifier should be non-empty",
            ));
        }
        let not_found = || {
            ServiceError::not_found(
                ErrorCode::FlowStateNotFound,
                "invalid flow state, no valid flow state found",
            )
        };
        let mut tx = self.db.begin().await?;
        let flow = sqlx::query_as!(
            PendingFlow,
            r#"SELECT id, user_id, code_challenge, code_challenge_method::text AS "code_challenge_method?",
                 provider_type, authentication_method, created_at, auth_code_issued_at,
                 provider_access_token, provider_refresh_token
               FROM flow_state WHERE auth_code = $1 LIMIT 1 FOR UPDATE"#,
            auth_code
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(not_found)?;
        let user_id = flow.user_id.ok_or_else(not_found)?;

        let expiry = chrono::Duration::from_std(self.config.external.flow_state_expiry).unwrap_or_default();
        let started = if flow.authentication_method == "magiclink" && flow.auth_code_issued_at.is_some() {
            flow.auth_code_issued_at
        } else {
            flow.created_at
        };
        if started.is_none_or(|at| Utc::now() > at + expiry) {
            return Err(ServiceError::unprocessable(
                ErrorCode::FlowStateExpired,
                "invalid flow state, flow state has expired",
            ));
        }
        verifier_matches(
            flow.code_challenge.as_deref().unwrap_or_default(),
            flow.code_challenge_method.as_deref().unwrap_or_default(),
            code_verifier,
        )?;

        let user = users::find_by_id(&mut *tx, user_id).await?.ok_or_else(not_found)?;
        audit::record(
            &mut *tx,
            &user,
            AuditAction::Login,
            Some(json!({"provider_type": flow.provider_type})),
        )
        .await?;
        sqlx::query!("DELETE FROM flow_state WHERE id = $1", flow.id)
            .execute(&mut *tx)
            .await?;
        // On the transaction's own connection: a second pooled one could run out under load.
        let mut tokens = self
            .issue_session_on(&mut *tx, user_id, &flow.authentication_method, client)
            .await?;
        tx.commit().await?;
        // An OAuth sign-in's provider tokens are handed to the app once, with the session.
        tokens.provider_token = flow.provider_access_token.unwrap_or_default();
        tokens.provider_refresh_token = flow.provider_refresh_token.unwrap_or_default();
        Ok(tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_verifier_is_base64url_sha256() {
        // Computed independently: base64url(sha256(verifier)) without padding.
        let verifier = "dBjftJeZ4CVP-mJ0kRhUhLdK8j0xDRWMWg5YhOl3ow8";
        let challenge = "skDAEAK0_zMlEwUaLICj7ebbmLBBegHGx3ilRTPegrA";
        assert!(verifier_matches(challenge, "s256", verifier).is_ok());
        assert!(verifier_matches(challenge, "s256", "something-else-entirely-0123456789abcdef").is_err());
        assert!(verifier_matches(verifier, "plain", verifier).is_ok());
        assert!(verifier_matches(challenge, "plain", verifier).is_err());
        assert_eq!(parse_challenge_method("S256").unwrap(), "s256");
        assert!(parse_challenge_method("md5").is_err());
    }
}

//! External sign-in flows (`flow_state` rows with `authentication_method = 'oauth'`): GoTrue v2.196
//! records one for every `/authorize`, PKCE or not, and uses its id as the OAuth `state`. The sso
//! service starts the flow, loads it back at the callback and finishes it once the user service
//! has found or made the account.

use auth_core::{ErrorCode, ServiceError};
use auth_proto::token::v1::{
    ExternalFlow, FinishExternalFlowResponse, StartExternalFlowRequest, finish_external_flow_response,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::flow_state::parse_challenge_method;
use crate::session::{Client, TokenState};

/// The `authentication_method` of external flows, and the amr method of their sessions.
const OAUTH: &str = "oauth";

fn bad_state(message: &str) -> ServiceError {
    ServiceError::bad_request(ErrorCode::BadOauthState, message)
}

fn already_used() -> ServiceError {
    ServiceError::bad_request(ErrorCode::FlowStateAlreadyUsed, "State has already been used")
}

fn optional_uuid(text: &str, what: &str) -> Result<Option<Uuid>, ServiceError> {
    if text.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(text)
        .map(Some)
        .map_err(|_| ServiceError::bad_request(ErrorCode::ValidationFailed, format!("{what} must be a UUID")))
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

struct FlowRow {
    id: Uuid,
    provider_type: String,
    code_challenge: Option<String>,
    referrer: Option<String>,
    invite_token: Option<String>,
    linking_target_id: Option<Uuid>,
    email_optional: bool,
    oauth_client_state_id: Option<Uuid>,
    user_id: Option<Uuid>,
    created_at: Option<DateTime<Utc>>,
}

impl FlowRow {
    fn is_pkce(&self) -> bool {
        self.code_challenge.as_deref().is_some_and(|c| !c.is_empty())
    }
}

impl TokenState {
    pub async fn start_external_flow(&self, request: &StartExternalFlowRequest) -> Result<Uuid, ServiceError> {
        let pkce = !request.code_challenge.is_empty();
        let method = if pkce {
            Some(parse_challenge_method(&request.code_challenge_method)?)
        } else {
            None
        };
        let linking_target_id = optional_uuid(&request.linking_target_id, "linking_target_id")?;
        let client_state_id = optional_uuid(&request.oauth_client_state_id, "oauth_client_state_id")?;
        let id = Uuid::new_v4();
        // GoTrue gives every flow an auth code; only a PKCE flow ever hands it out.
        sqlx::query!(
            "INSERT INTO flow_state (id, auth_code, code_challenge_method, code_challenge, provider_type, \
               authentication_method, referrer, invite_token, linking_target_id, email_optional, oauth_client_state_id, \
               created_at, updated_at) \
             VALUES ($1, $2, $3::text::code_challenge_method, $4, $5, $6, $7, $8, $9, $10, $11, now(), now())",
            id,
            Uuid::new_v4().to_string(),
            method,
            non_empty(&request.code_challenge),
            request.provider_type,
            OAUTH,
            non_empty(&request.referrer),
            non_empty(&request.invite_token),
            linking_target_id,
            request.email_optional,
            client_state_id
        )
        .execute(&self.db)
        .await?;
        // Anyone can start a flow and abandon it: clear a few day-old ones each time, as GoTrue's
        // cleanup does, so the table cannot grow without bound.
        sqlx::query!(
            "DELETE FROM flow_state WHERE id IN (SELECT id FROM flow_state \
               WHERE created_at < now() - interval '24 hours' LIMIT 100 FOR UPDATE SKIP LOCKED)"
        )
        .execute(&self.db)
        .await?;
        Ok(id)
    }

    /// GoTrue's `loadExternalStateFromUUID`.
    pub async fn load_external_flow(&self, flow_state_id: &str) -> Result<ExternalFlow, ServiceError> {
        let id = Uuid::parse_str(flow_state_id).map_err(|_| bad_state("OAuth state parameter is invalid"))?;
        let flow = self
            .find_flow(&self.db, id, false)
            .await?
            .ok_or_else(|| bad_state("OAuth state not found or expired"))?;
        self.check_usable(&flow)?;
        Ok(ExternalFlow {
            flow_state_id: flow.id.to_string(),
            provider_type: flow.provider_type.clone(),
            pkce: flow.is_pkce(),
            referrer: flow.referrer.clone().unwrap_or_default(),
            invite_token: flow.invite_token.clone().unwrap_or_default(),
            linking_target_id: flow.linking_target_id.map(|id| id.to_string()).unwrap_or_default(),
            email_optional: flow.email_optional,
            oauth_client_state_id: flow.oauth_client_state_id.map(|id| id.to_string()).unwrap_or_default(),
        })
    }

    /// The callback's end: PKCE flows get the user, the provider's tokens and the time the code
    /// was handed out, under the row's lock (a second callback with the same state is refused);
    /// implicit flows become a session and disappear in one transaction.
    pub async fn finish_external_flow(
        &self,
        flow_state_id: &str,
        user_id: Uuid,
        provider_access_token: &str,
        provider_refresh_token: &str,
        client: &Client,
    ) -> Result<FinishExternalFlowResponse, ServiceError> {
        let id = Uuid::parse_str(flow_state_id).map_err(|_| bad_state("OAuth state parameter is invalid"))?;
        let mut tx = self.db.begin().await?;
        let flow = self
            .find_flow(&mut *tx, id, true)
            .await?
            .ok_or_else(|| bad_state("OAuth state not found or expired"))?;
        self.check_usable(&flow)?;
        let result = if flow.is_pkce() {
            let auth_code: Option<String> = sqlx::query_scalar!(
                "UPDATE flow_state SET user_id = $2, provider_access_token = $3, provider_refresh_token = $4, \
                   auth_code_issued_at = now(), updated_at = now() WHERE id = $1 RETURNING auth_code",
                id,
                user_id,
                non_empty(provider_access_token),
                non_empty(provider_refresh_token)
            )
            .fetch_one(&mut *tx)
            .await?;
            finish_external_flow_response::Result::AuthCode(auth_code.unwrap_or_default())
        } else {
            sqlx::query!("DELETE FROM flow_state WHERE id = $1", id)
                .execute(&mut *tx)
                .await?;
            let tokens = self.issue_session_on(&mut *tx, user_id, OAUTH, client).await?;
            finish_external_flow_response::Result::Session(tokens)
        };
        tx.commit().await?;
        Ok(FinishExternalFlowResponse { result: Some(result) })
    }

    async fn find_flow<'e>(
        &self,
        db: impl sqlx::PgExecutor<'e>,
        id: Uuid,
        for_update: bool,
    ) -> Result<Option<FlowRow>, ServiceError> {
        // Two statements rather than a formatted one, so both stay compile-checked.
        let row = if for_update {
            sqlx::query_as!(
                FlowRow,
                "SELECT id, provider_type, code_challenge, referrer, invite_token, linking_target_id, email_optional, \
                   oauth_client_state_id, user_id, created_at FROM flow_state WHERE id = $1 AND authentication_method = 'oauth' FOR UPDATE",
                id
            )
            .fetch_optional(db)
            .await?
        } else {
            sqlx::query_as!(
                FlowRow,
                "SELECT id, provider_type, code_challenge, referrer, invite_token, linking_target_id, email_optional, \
                   oauth_client_state_id, user_id, created_at FROM flow_state WHERE id = $1 AND authentication_method = 'oauth'",
                id
            )
            .fetch_optional(db)
            .await?
        };
        Ok(row)
    }

    fn check_usable(&self, flow: &FlowRow) -> Result<(), ServiceError> {
        let expiry = chrono::Duration::from_std(self.config.external.flow_state_expiry).unwrap_or_default();
        if flow.created_at.is_none_or(|at| Utc::now() > at + expiry) {
            return Err(bad_state("OAuth state has expired"));
        }
        // The user is set when the callback succeeds: a second callback with the same state is a replay.
        if flow.is_pkce() && flow.user_id.is_some() {
            return Err(already_used());
        }
        Ok(())
    }
}

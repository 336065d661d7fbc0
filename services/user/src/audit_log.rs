//! `GET /admin/audit` (GoTrue's `adminAuditLog`): the audit log, newest first, a page at a time,
//! optionally narrowed by `query=author:…`, `action:…` or `type:…` (a case-insensitive substring
//! of the payload field, as GoTrue matches it).

use auth_account::principal::Principal;
use auth_core::{ErrorCode, ServiceError};
use auth_proto::user::v1::{AuditLogEntry, ListAuditLogRequest, ListAuditLogResponse};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::state::UserState;

const DEFAULT_PER_PAGE: u64 = 50;

/// The payload fields a `query` scope searches (GoTrue's `filterColumnMap`).
fn scope_fields(scope: &str) -> Option<&'static [&'static str]> {
    match scope {
        "author" => Some(&["actor_username", "actor_name"]),
        "action" => Some(&["action"]),
        "type" => Some(&["log_type"]),
        _ => None,
    }
}

/// `scope:text` → the fields to search and the text; `None` when the log is not narrowed.
fn parse_query(query: &str) -> Result<Option<(&'static [&'static str], &str)>, ServiceError> {
    if query.is_empty() {
        return Ok(None);
    }
    let invalid = || ServiceError::bad_request(ErrorCode::ValidationFailed, format!("Invalid query scope: {query}"));
    let (scope, text) = query.split_once(':').ok_or_else(invalid)?;
    let fields = scope_fields(scope).ok_or_else(invalid)?;
    Ok((!text.is_empty()).then_some((fields, text)))
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    id: Uuid,
    payload: Option<String>,
    created_at: Option<DateTime<Utc>>,
    ip_address: String,
}

impl UserState {
    pub async fn list_audit_log(
        &self,
        principal: &Principal,
        request: ListAuditLogRequest,
    ) -> Result<ListAuditLogResponse, ServiceError> {
        principal.require_admin()?;
        let filter = parse_query(&request.query)?;
        let page = request.page.max(1);
        let per_page = if request.per_page == 0 {
            DEFAULT_PER_PAGE
        } else {
            request.per_page
        };
        // GoTrue matches `%text%` without escaping, so `%` and `_` in the text are wildcards there too.
        let (condition, pattern) = match filter {
            Some((fields, text)) => {
                let any_field = fields
                    .iter()
                    .map(|field| format!("payload->>'{field}' ILIKE $1"))
                    .collect::<Vec<_>>()
                    .join(" OR ");
                (format!("AND ({any_field})"), format!("%{text}%"))
            }
            None => ("AND $1::text IS NOT NULL".to_string(), String::new()),
        };
        let scope =
            format!("FROM audit_log_entries WHERE instance_id = '00000000-0000-0000-0000-000000000000' {condition}");

        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) {scope}")))
            .bind(&pattern)
            .fetch_one(&self.db)
            .await?;
        let offset = (page - 1).saturating_mul(per_page);
        let rows: Vec<EntryRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, payload::text AS payload, created_at, ip_address {scope} \
             ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        )))
        .bind(&pattern)
        .bind(i64::try_from(per_page).unwrap_or(i64::MAX))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.db)
        .await?;

        Ok(ListAuditLogResponse {
            entries: rows
                .into_iter()
                .map(|row| AuditLogEntry {
                    id: row.id.to_string(),
                    payload_json: row.payload.unwrap_or_else(|| "{}".into()),
                    created_at: auth_account::users::timestamp(row.created_at),
                    ip_address: row.ip_address,
                })
                .collect(),
            total: u64::try_from(total).unwrap_or(0),
            page,
            per_page,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_scopes_are_gotrues() {
        assert!(parse_query("").unwrap().is_none());
        assert!(parse_query("action:").unwrap().is_none());
        let (fields, text) = parse_query("author:ann:x").unwrap().unwrap();
        assert_eq!(fields, &["actor_username", "actor_name"]);
        assert_eq!(text, "ann:x");
        assert_eq!(parse_query("type:team").unwrap().unwrap().0, &["log_type"]);
        for bad in ["author", "who:ann", ":x"] {
            let error = parse_query(bad).unwrap_err();
            assert_eq!(error.message, format!("Invalid query scope: {bad}"));
        }
    }
}

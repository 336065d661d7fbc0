//! `GET /admin/audit` (GoTrue's `adminAuditLog`): the audit log, newest first, a page at a time,
//! optionally narrowed by `query=author:…`, `action:…` or `type:…` (a case-insensitive substring
//! of the payload field, as GoTrue matches it).

use auth_account::principal::Principal;
use auth_core::{ErrorCode, ServiceError};
use auth_proto::user::v1::{AuditLogEntry, ListAuditLogRequest, ListAuditLogResponse};
use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder};
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
        // The filter decides which payload fields are compared, so the statement is built here, the
        // field names from `scope_fields` and the text bound. GoTrue matches `%text%` without
        // escaping, so `%` and `_` in the text are wildcards there too.
        let pattern = filter.map(|(fields, text)| (fields, format!("%{text}%")));
        let scoped = |select: &'static str| {
            let mut query = QueryBuilder::<Postgres>::new(select);
            query.push(" FROM audit_log_entries WHERE instance_id = '00000000-0000-0000-0000-000000000000'");
            if let Some((fields, pattern)) = &pattern {
                query.push(" AND (");
                for (n, field) in fields.iter().enumerate() {
                    if n > 0 {
                        query.push(" OR ");
                    }
                    query
                        .push(format_args!("payload->>'{field}' ILIKE "))
                        .push_bind(pattern.clone());
                }
                query.push(")");
            }
            query
        };

        let total: i64 = scoped("SELECT count(*)")
            .build_query_scalar()
            .fetch_one(&self.db)
            .await?;
        let offset = (page - 1).saturating_mul(per_page);
        let mut page_query = scoped("SELECT id, payload::text AS payload, created_at, ip_address");
        page_query
            .push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::try_from(per_page).unwrap_or(i64::MAX))
            .push(" OFFSET ")
            .push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
        let rows: Vec<EntryRow> = page_query.build_query_as().fetch_all(&self.db).await?;

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

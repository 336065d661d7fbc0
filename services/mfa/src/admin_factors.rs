//! The admin factor API (GoTrue's `adminUserGetFactors`, `adminUserUpdateFactor`,
//! `adminUserDeleteFactor`): an admin lists, renames or removes a user's factors.
//!
//! Removing a factor must also take back what it granted: sessions stepped up to AAL2 with it fall
//! back to AAL1. The sessions are the token service's, so it is asked first; should removing the
//! factor then fail, the only effect is that the user steps up again, never a factor that is gone
//! but still vouching for a session.
//!
//! The user service's soft delete removes all of a user's factors and credentials through
//! [`MfaState::delete_user_factors`]: these tables are written only here.

use auth_account::audit::{self, AuditAction};
use auth_account::principal::Principal;
use auth_account::users::{self, FactorRecord, UserRecord};
use auth_core::{ErrorCode, ServiceError};
use auth_proto::common::v1 as pb;
use auth_proto::mfa::v1::{
    AdminFactorRequest, AdminListFactorsRequest, AdminUpdateFactorRequest, DeleteUserFactorsRequest,
    DeleteUserFactorsResponse,
};
use serde_json::json;
use uuid::Uuid;

use crate::factors::amr_method;
use crate::state::MfaState;
use crate::store;

fn parse_id(text: &str, name: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(text)
        .map_err(|_| ServiceError::not_found(ErrorCode::ValidationFailed, format!("{name} must be an UUID")))
}

impl MfaState {
    /// GoTrue's `loadUser`: 404 for a malformed id or a missing user.
    pub(crate) async fn load_user(&self, user_id: &str) -> Result<UserRecord, ServiceError> {
        let id = parse_id(user_id, "user_id")?;
        users::find_by_id(&self.db, id)
            .await?
            .ok_or_else(|| ServiceError::not_found(ErrorCode::UserNotFound, "User not found"))
    }

    /// GoTrue's `loadFactor`: the user's own factor, 404 otherwise.
    async fn load_factor(&self, user: &UserRecord, factor_id: &str) -> Result<FactorRecord, ServiceError> {
        let id = parse_id(factor_id, "factor_id")?;
        store::find_record(&self.db, user.id, id)
            .await?
            .ok_or_else(|| ServiceError::not_found(ErrorCode::MfaFactorNotFound, "Factor not found"))
    }

    pub async fn admin_list_factors(
        &self,
        principal: &Principal,
        request: AdminListFactorsRequest,
    ) -> Result<Vec<pb::Factor>, ServiceError> {
        principal.require_admin()?;
        let user = self.load_user(&request.user_id).await?;
        Ok(user.factors.0.iter().map(FactorRecord::to_proto).collect())
    }

    pub async fn admin_update_factor(
        &self,
        principal: &Principal,
        request: AdminUpdateFactorRequest,
    ) -> Result<pb::Factor, ServiceError> {
        principal.require_admin()?;
        let user = self.load_user(&request.user_id).await?;
        let factor = self.load_factor(&user, &request.factor_id).await?;
        // As GoTrue: a phone is only taken for a phone factor, and ignored otherwise.
        let phone = match request.phone.as_str() {
            "" => None,
            _ if factor.factor_type != "phone" => None,
            text => Some(users::normalize_phone(text).ok_or_else(|| {
                ServiceError::bad_request(
                    ErrorCode::ValidationFailed,
                    "Invalid phone number format (E.164 required)",
                )
            })?),
        };
        let friendly_name = Some(request.friendly_name.as_str()).filter(|name| !name.is_empty());

        let mut tx = self.db.begin().await?;
        let updated = store::update(&mut tx, factor.id, friendly_name, phone.as_deref()).await?;
        audit::record_by_admin(
            &mut *tx,
            principal.claims.role(),
            AuditAction::FactorUpdated,
            Some(json!({"user_id": user.id, "factor_id": factor.id, "factor_type": factor.factor_type})),
        )
        .await?;
        tx.commit().await?;
        Ok(updated.to_proto())
    }

    pub async fn admin_delete_factor(
        &self,
        principal: &Principal,
        request: AdminFactorRequest,
    ) -> Result<pb::Factor, ServiceError> {
        principal.require_admin()?;
        let user = self.load_user(&request.user_id).await?;
        let factor = self.load_factor(&user, &request.factor_id).await?;
        self.downgrade_factor_sessions(user.id, factor.id, amr_method(&factor.factor_type))
            .await?;

        let mut tx = self.db.begin().await?;
        // GoTrue names the factor's owner as the actor of its removal.
        audit::record(
            &mut *tx,
            &user,
            AuditAction::FactorDeleted,
            Some(json!({"user_id": user.id, "factor_id": factor.id})),
        )
        .await?;
        store::delete(&mut tx, factor.id).await?;
        tx.commit().await?;
        Ok(factor.to_proto())
    }

    /// Removes every factor (challenges go with them) and WebAuthn credential of a user, for the
    /// user service's soft delete. The user's sessions are ended by the token service first, so
    /// there is no step-up left to downgrade.
    pub async fn delete_user_factors(
        &self,
        principal: &Principal,
        request: DeleteUserFactorsRequest,
    ) -> Result<DeleteUserFactorsResponse, ServiceError> {
        principal.require_admin()?;
        let user_id = Uuid::parse_str(&request.user_id)
            .map_err(|_| ServiceError::bad_request(ErrorCode::ValidationFailed, "user_id must be an UUID"))?;
        let mut tx = self.db.begin().await?;
        let (factors, credentials) = store::delete_all_of_user(&mut tx, user_id).await?;
        tx.commit().await?;
        Ok(DeleteUserFactorsResponse { factors, credentials })
    }
}

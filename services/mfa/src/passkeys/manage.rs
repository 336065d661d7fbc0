//! A user's passkeys (GoTrue's `PasskeyList`, `PasskeyUpdate`, `PasskeyDelete`) and the admin's view
//! of them (`AdminPasskeyList`, `AdminPasskeyDelete`).

use auth_account::audit::{self, AuditAction};
use auth_account::principal::Principal;
use auth_core::{ErrorCode, ServiceError};
use auth_proto::mfa::v1::{Passkey, PasskeyList, PasskeyRef, RenamePasskeyRequest};
use serde_json::json;

use super::store::{self, StoredPasskey};
use super::{parse_passkey_id, passkey_not_found};
use crate::state::MfaState;

/// GoTrue's limit on a passkey's name, counted here in characters (GoTrue counts bytes, which
/// its own message does not say and which refuses names in most scripts far sooner).
const MAX_FRIENDLY_NAME_CHARS: usize = 120;

fn listed(passkeys: &[StoredPasskey]) -> PasskeyList {
    PasskeyList {
        passkeys: passkeys.iter().map(StoredPasskey::to_proto).collect(),
    }
}

impl MfaState {
    /// `GET /passkeys`: the caller's, oldest first.
    pub async fn list_passkeys(&self, principal: &Principal) -> Result<PasskeyList, ServiceError> {
        self.require_passkeys()?;
        let user = principal.require_user()?;
        Ok(listed(&store::list(&self.db, user.id).await?))
    }

    /// `PATCH /passkeys/{passkey_id}` `{friendly_name}`.
    pub async fn rename_passkey(
        &self,
        principal: &Principal,
        request: RenamePasskeyRequest,
    ) -> Result<Passkey, ServiceError> {
        self.require_passkeys()?;
        let user = principal.require_user()?;
        let id = parse_passkey_id(&request.passkey_id)?;
        let name = request.friendly_name;
        if name.is_empty() {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "friendly_name is required",
            ));
        }
        if name.chars().count() > MAX_FRIENDLY_NAME_CHARS {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "friendly_name must be 120 characters or less",
            ));
        }
        let mut passkey = store::find(&self.db, user.id, id)
            .await?
            .ok_or_else(passkey_not_found)?;
        let mut tx = self.db.begin().await?;
        store::rename(&mut tx, passkey.id, &name).await?;
        audit::record(
            &mut *tx,
            user,
            AuditAction::PasskeyUpdated,
            Some(json!({"passkey_id": passkey.id})),
        )
        .await?;
        tx.commit().await?;
        passkey.friendly_name = name;
        Ok(passkey.to_proto())
    }

    /// `DELETE /passkeys/{passkey_id}`: at AAL2 when the user has a verified factor.
    pub async fn delete_passkey(&self, principal: &Principal, request: PasskeyRef) -> Result<(), ServiceError> {
        self.require_passkeys()?;
        let user = self.require_passkey_management_aal(principal).await?;
        let id = parse_passkey_id(&request.passkey_id)?;
        let mut tx = self.db.begin().await?;
        if !store::delete(&mut tx, user.id, id).await? {
            return Err(passkey_not_found());
        }
        audit::record(
            &mut *tx,
            user,
            AuditAction::PasskeyDeleted,
            Some(json!({"passkey_id": id})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// `GET /admin/users/{user_id}/passkeys`
    pub async fn admin_list_passkeys(
        &self,
        principal: &Principal,
        request: PasskeyRef,
    ) -> Result<PasskeyList, ServiceError> {
        principal.require_admin()?;
        let user = self.load_user(&request.user_id).await?;
        Ok(listed(&store::list(&self.db, user.id).await?))
    }

    /// `DELETE /admin/users/{user_id}/passkeys/{passkey_id}`
    pub async fn admin_delete_passkey(&self, principal: &Principal, request: PasskeyRef) -> Result<(), ServiceError> {
        principal.require_admin()?;
        let user = self.load_user(&request.user_id).await?;
        let id = parse_passkey_id(&request.passkey_id)?;
        let mut tx = self.db.begin().await?;
        if !store::delete(&mut tx, user.id, id).await? {
            return Err(passkey_not_found());
        }
        audit::record_by_admin(
            &mut *tx,
            principal.claims.role(),
            AuditAction::PasskeyDeleted,
            Some(json!({"user_id": user.id, "passkey_id": id})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

//! `POST /invite` (GoTrue's `invite.go`): an admin invites an address. A new address becomes a
//! password-less user with an email identity; an existing unconfirmed one is invited again; a
//! confirmed one is refused. The invitation carries the confirmation code, so `/verify` with
//! `type=invite` signs the user in.

use auth_account::audit::{self, AuditAction};
use auth_account::principal::Principal;
use auth_account::users::{self, UserRecord};
use auth_core::{ErrorCode, ServiceError};
use auth_proto::common::v1 as pb;
use auth_proto::user::v1::InviteRequest;
use serde_json::{Map, Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::code_purpose::EmailCode;
use crate::state::UserState;
use crate::store;
use crate::store::identities::Provider;
use crate::validate;

impl UserState {
    pub async fn invite(&self, principal: &Principal, request: InviteRequest) -> Result<pb::User, ServiceError> {
        principal.require_admin()?;
        let email = validate::email(&request.email)?;
        let data = validate::metadata(&request.data_json)?;
        let aud = self.request_aud(request.context.as_ref());

        let mut tx = self.db.begin().await?;
        let user = match users::find_by_email(&mut *tx, &email, &aud).await? {
            Some(user) if user.is_email_confirmed() => {
                return Err(ServiceError::unprocessable(
                    ErrorCode::EmailExists,
                    "A user with this email address has already been registered",
                ));
            }
            Some(user) => user,
            None => create_email_user(&mut tx, self, Uuid::new_v4(), &aud, &email, None, &data).await?,
        };
        audit::record_by_admin(
            &mut *tx,
            principal.claims.role(),
            AuditAction::UserInvited,
            Some(json!({"user_id": user.id, "user_email": user.email()})),
        )
        .await?;
        self.send_email_code(&mut tx, &user, EmailCode::Invite, false, &request.redirect_to)
            .await?;
        store::users::mark_invited(&mut tx, user.id).await?;
        let invited = store::users::load(&mut tx, user.id).await?;
        tx.commit().await?;
        self.relay.nudge();
        Ok(invited.to_proto())
    }
}

/// A new, unconfirmed user of `email` with its email identity (what invitations and generated
/// sign-up links create). `password_hash` is `None` for a password-less invitee.
pub(crate) async fn create_email_user(
    conn: &mut PgConnection,
    state: &UserState,
    id: Uuid,
    aud: &str,
    email: &str,
    password_hash: Option<&str>,
    data: &Map<String, Value>,
) -> Result<UserRecord, ServiceError> {
    let new_user = store::users::NewUser {
        id,
        aud,
        role: &state.config.jwt.default_group_name,
        provider: Provider::Email,
        address: email,
        password_hash,
        user_metadata: data,
        anonymous: false,
    };
    store::users::insert(conn, new_user).await?;
    store::identities::insert(
        conn,
        id,
        "email",
        json!({"sub": id.to_string(), "email": email, "email_verified": false, "phone_verified": false}),
    )
    .await?;
    store::users::load(conn, id).await
}

//! Sign in with Apple: GoTrue's `apple.go`. Endpoints from Apple's discovery document (`_URL` is
//! ignored), scopes `email name` (the app's are ignored), the callback posted as a form, and the
//! user read from the exchange's ID token (Apple's issuer names vary, so the token's issuer is not
//! compared, as in GoTrue), its audience the client id. The name arrives once, in the callback's
//! `user` field (see `oauth_flow.rs`).

use super::Spec;
use super::UserApi;
use super::claims::UserData;
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints: |_| Err("Apple's endpoints come from its discovery document".into()),
    scopes: &["email", "name"],
    extra_scopes: false,
    credentials_in_body: false,
};

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    super::oidc_user_data(call, "apple", None).await
}

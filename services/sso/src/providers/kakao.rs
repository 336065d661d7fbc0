//! Kakao: GoTrue's `kakao.go` (client credentials in the token request's body; an email counts as
//! verified only when Kakao says it is both valid and verified).

use serde::Deserialize;

use super::claims::{Claims, UserData, primary_email};
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints: |url| {
        let auth = choose_host(url, "kauth.kakao.com");
        Ok(Endpoints {
            authorize: format!("{auth}/oauth/authorize"),
            token: format!("{auth}/oauth/token"),
            api: choose_host(url, "kapi.kakao.com"),
        })
    },
    scopes: &["account_email", "profile_image", "profile_nickname"],
    extra_scopes: true,
    credentials_in_body: true,
};

#[derive(Deserialize, Default)]
#[serde(default)]
struct Profile {
    nickname: String,
    profile_image_url: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Account {
    profile: Profile,
    email: String,
    is_email_valid: bool,
    is_email_verified: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct KakaoUser {
    id: i64,
    kakao_account: Account,
}

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let user: KakaoUser = call.get(&format!("{}/v2/user/me", call.base)).await?;
    let account = user.kakao_account;
    let emails = primary_email(
        account.email.clone(),
        account.is_email_verified && account.is_email_valid,
    );
    let id = user.id.to_string();
    let nickname = account.profile.nickname;
    let claims = Claims {
        issuer: call.base.to_string(),
        subject: id.clone(),
        name: nickname.clone(),
        preferred_username: nickname.clone(),
        avatar_url: account.profile.profile_image_url,
        full_name: nickname.clone(),
        provider_id: id,
        user_name: nickname,
        ..Default::default()
    };
    Ok(UserData { emails, claims })
}

//! Facebook: GoTrue's `facebook.go`. The Graph API call carries `appsecret_proof` (HMAC-SHA256 of
//! the access token keyed with the app secret); Facebook only returns confirmed emails.

use serde::Deserialize;

use super::claims::{Claims, UserData, primary_email};
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints: |url| {
        Ok(Endpoints {
            authorize: format!("{}/dialog/oauth", choose_host(url, "www.facebook.com")),
            token: format!("{}/oauth/access_token", choose_host(url, "graph.facebook.com")),
            api: format!(
                "{}/me?fields=email,first_name,last_name,name,picture",
                choose_host(url, "graph.facebook.com")
            ),
        })
    },
    scopes: &["email"],
    extra_scopes: true,
    credentials_in_body: false,
};

#[derive(Deserialize, Default)]
#[serde(default)]
struct PictureData {
    url: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Picture {
    data: PictureData,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FacebookUser {
    id: String,
    email: String,
    first_name: String,
    last_name: String,
    name: String,
    picture: Picture,
}

fn appsecret_proof(secret: &str, access_token: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    #[allow(clippy::expect_used)] // HMAC takes keys of any length
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(access_token.as_bytes());
    crate::http::hex(&mac.finalize().into_bytes())
}

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let profile_url = call.base;
    let proof = appsecret_proof(call.client_secret, call.access_token);
    let user: FacebookUser = call.get(&format!("{profile_url}&appsecret_proof={proof}")).await?;
    let emails = primary_email(user.email.clone(), true);
    let name = format!("{} {}", user.first_name, user.last_name).trim().to_string();
    let claims = Claims {
        issuer: profile_url.to_string(),
        subject: user.id.clone(),
        name: name.clone(),
        nickname: user.name.clone(),
        picture: user.picture.data.url.clone(),
        slug: user.name,
        avatar_url: user.picture.data.url,
        full_name: name,
        provider_id: user.id,
        ..Default::default()
    };
    Ok(UserData { emails, claims })
}

#[cfg(test)]
mod tests {
    #[test]
    fn appsecret_proof_is_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::appsecret_proof("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

//! Snapchat: GoTrue's `snapchat.go` (a GraphQL query on the Kit API; the issuer is fixed).

use serde::Deserialize;

use super::claims::{Claims, UserData, primary_email};
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;

const ISSUER: &str = "https://accounts.snapchat.com/accounts/oauth2/token";
const QUERY: &str = "{me { externalId displayName bitmoji { avatar id } email } }";

pub const SPEC: Spec = Spec {
    endpoints: |url| {
        let accounts = choose_host(url, "accounts.snapchat.com");
        Ok(Endpoints {
            authorize: format!("{accounts}/accounts/oauth2/auth"),
            token: format!("{accounts}/accounts/oauth2/token"),
            api: format!("{}/v1/me", choose_host(url, "kit.snapchat.com")),
        })
    },
    scopes: &[
        "https://auth.snapchat.com/oauth2/api/user.external_id",
        "https://auth.snapchat.com/oauth2/api/user.display_name",
        "https://auth.snapchat.com/oauth2/api/user.bitmoji.avatar",
    ],
    extra_scopes: true,
    credentials_in_body: false,
};

#[derive(Deserialize, Default)]
#[serde(default)]
struct Bitmoji {
    avatar: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Me {
    external_id: String,
    display_name: String,
    bitmoji: Bitmoji,
    email: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Data {
    me: Me,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Answer {
    data: Data,
}

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let mut url = url::Url::parse(call.base).map_err(|e| ApiError(format!("bad profile URL: {e}")))?;
    url.query_pairs_mut().append_pair("query", QUERY);
    let answer: Answer = call.get(url.as_str()).await?;
    let me = answer.data.me;
    let emails = primary_email(me.email.clone(), true);
    let claims = Claims {
        issuer: ISSUER.to_string(),
        subject: me.external_id.clone(),
        name: me.display_name.clone(),
        picture: me.bitmoji.avatar.clone(),
        slug: me.display_name.clone(),
        avatar_url: me.bitmoji.avatar,
        full_name: me.display_name,
        provider_id: me.external_id,
        ..Default::default()
    };
    Ok(UserData { emails, claims })
}

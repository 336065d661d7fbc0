//! LinkedIn (the deprecated v2 API app type): GoTrue's `linkedin.go`. The profile's localized
//! names in its preferred locale, the first display image, and the member's email address (taken
//! as verified).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::claims::{Claims, UserData, primary_email};
use super::{Endpoints, Spec, UserApi, choose_host};
use crate::http::ApiError;

pub const SPEC: Spec = Spec {
    endpoints: |url| {
        let api = choose_host(url, "api.linkedin.com");
        Ok(Endpoints {
            authorize: format!("{api}/oauth/v2/authorization"),
            token: format!("{api}/oauth/v2/accessToken"),
            api,
        })
    },
    scopes: &["r_emailaddress", "r_liteprofile"],
    extra_scopes: true,
    credentials_in_body: false,
};

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Locale {
    country: String,
    language: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LocalizedName {
    localized: Map<String, Value>,
    preferred_locale: Locale,
}

impl LocalizedName {
    fn preferred(&self) -> String {
        let key = format!("{}_{}", self.preferred_locale.language, self.preferred_locale.country);
        self.localized
            .get(&key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Profile {
    id: String,
    first_name: LocalizedName,
    last_name: LocalizedName,
    profile_picture: Value,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Elements {
    elements: Vec<Value>,
}

pub async fn user_data(call: &UserApi<'_>) -> Result<UserData, ApiError> {
    let profile: Profile = call
        .get(&format!(
            "{}/v2/me?projection=(id,firstName,lastName,profilePicture(displayImage~:playableStreams))",
            call.base
        ))
        .await?;
    let emails: Elements = call
        .get(&format!(
            "{}/v2/emailAddress?q=members&projection=(elements*(handle~))",
            call.base
        ))
        .await?;
    let email = emails
        .elements
        .first()
        .and_then(|e| e.pointer("/handle~/emailAddress"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let avatar = profile
        .profile_picture
        .pointer("/displayImage~/elements/0/identifiers/0/identifier")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = format!("{} {}", profile.first_name.preferred(), profile.last_name.preferred())
        .trim()
        .to_string();
    let claims = Claims {
        issuer: call.base.to_string(),
        subject: profile.id.clone(),
        name: name.clone(),
        picture: avatar.clone(),
        email: email.clone(),
        email_verified: true,
        avatar_url: avatar,
        full_name: name,
        provider_id: profile.id,
        ..Default::default()
    };
    Ok(UserData {
        emails: primary_email(email, true),
        claims,
    })
}

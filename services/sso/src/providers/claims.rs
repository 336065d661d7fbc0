//! What a provider tells about its user, in GoTrue's shape (`provider.Claims`, stored as the
//! identity's `identity_data` and merged into `user_metadata`): empty fields are left out, except
//! `email_verified` and `phone_verified`, which GoTrue always writes.

use serde::Serialize;
use serde_json::{Map, Value};

/// One email address the provider reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Email {
    pub address: String,
    pub verified: bool,
    pub primary: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Claims {
    #[serde(rename = "iss", skip_serializing_if = "String::is_empty")]
    pub issuer: String,
    #[serde(rename = "sub", skip_serializing_if = "String::is_empty")]
    pub subject: String,
    /// Only ID tokens read generically carry these three, as GoTrue copies them.
    #[serde(rename = "aud", skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<f64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub family_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub given_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub middle_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub nickname: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub preferred_username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub profile: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub picture: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub website: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gender: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub birthdate: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub zoneinfo: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub locale: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub email: String,
    pub email_verified: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub phone: String,
    pub phone_verified: bool,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub custom_claims: Map<String, Value>,
    // GoTrue's deprecated duplicates, still written (apps read them).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub full_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub avatar_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub slug: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub provider_id: String,
    #[serde(rename = "user_name", skip_serializing_if = "String::is_empty")]
    pub user_name: String,
}

/// A text claim: absent or null reads as empty; a number as its decimal text (some providers send
/// numeric subjects).
pub fn text(claims: &Map<String, Value>, name: &str) -> String {
    match claims.get(name) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        _ => String::new(),
    }
}

/// A boolean claim; `"true"` as text counts too (some providers send their flags as strings).
pub fn flag(claims: &Map<String, Value>, name: &str) -> bool {
    match claims.get(name) {
        Some(Value::Bool(flag)) => *flag,
        Some(Value::String(text)) => text.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

impl Claims {
    /// The standard and GoTrue's own claims out of a JSON object (an ID token's payload, a
    /// userinfo answer), as GoTrue decodes `provider.Claims`: other keys are dropped.
    pub fn from_map(c: &Map<String, Value>) -> Claims {
        let number = |name: &str| c.get(name).and_then(Value::as_f64);
        Claims {
            issuer: text(c, "iss"),
            subject: text(c, "sub"),
            audience: match c.get("aud") {
                Some(Value::String(aud)) => vec![aud.clone()],
                Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).map(str::to_string).collect(),
                _ => Vec::new(),
            },
            iat: number("iat"),
            exp: number("exp"),
            name: text(c, "name"),
            family_name: text(c, "family_name"),
            given_name: text(c, "given_name"),
            middle_name: text(c, "middle_name"),
            nickname: text(c, "nickname"),
            preferred_username: text(c, "preferred_username"),
            profile: text(c, "profile"),
            picture: text(c, "picture"),
            website: text(c, "website"),
            gender: text(c, "gender"),
            birthdate: text(c, "birthdate"),
            zoneinfo: text(c, "zoneinfo"),
            locale: text(c, "locale"),
            email: text(c, "email"),
            email_verified: flag(c, "email_verified"),
            phone: text(c, "phone"),
            phone_verified: flag(c, "phone_verified"),
            custom_claims: c
                .get("custom_claims")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            full_name: text(c, "full_name"),
            avatar_url: text(c, "avatar_url"),
            slug: text(c, "slug"),
            provider_id: text(c, "provider_id"),
            user_name: text(c, "user_name"),
        }
    }
}

/// The one address a provider reports (as its primary email), or none when it reports none.
pub fn primary_email(address: String, verified: bool) -> Vec<Email> {
    if address.is_empty() {
        Vec::new()
    } else {
        vec![Email {
            address,
            verified,
            primary: true,
        }]
    }
}

/// A provider's answer about the signed-in user.
#[derive(Debug, Clone, Default)]
pub struct UserData {
    pub emails: Vec<Email>,
    pub claims: Claims,
}

impl UserData {
    /// GoTrue's callback step before linking: the identity's `email` / `email_verified` are the
    /// primary address's, else the last one listed.
    pub fn settle_email(&mut self) {
        self.claims.email_verified = false;
        let chosen = self.emails.iter().find(|e| e.primary).or_else(|| self.emails.last());
        if let Some(email) = chosen {
            self.claims.email = email.address.clone();
            self.claims.email_verified = email.verified;
        }
    }

    /// What the user service is asked to sign in (or link) for `provider`.
    pub fn identity_request(
        &self,
        provider: &str,
        email_optional: bool,
        context: Option<auth_proto::common::v1::RequestContext>,
        invite_token: String,
    ) -> auth_proto::user::v1::ExternalIdentityRequest {
        auth_proto::user::v1::ExternalIdentityRequest {
            provider: provider.to_string(),
            subject: self.claims.subject.clone(),
            emails: self
                .emails
                .iter()
                .map(|e| auth_proto::user::v1::ProviderEmail {
                    email: e.address.clone(),
                    verified: e.verified,
                    primary: e.primary,
                })
                .collect(),
            identity_data_json: Value::Object(self.identity_data()).to_string(),
            email_optional,
            context,
            invite_token,
        }
    }

    pub fn identity_data(&self) -> Map<String, Value> {
        match serde_json::to_value(&self.claims) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_fields_are_left_out_but_the_verified_flags_are_not() {
        let data = UserData {
            emails: vec![],
            claims: Claims {
                subject: "42".into(),
                ..Default::default()
            },
        };
        let map = data.identity_data();
        assert_eq!(
            Value::Object(map),
            serde_json::json!({"sub": "42", "email_verified": false, "phone_verified": false})
        );
    }

    #[test]
    fn the_primary_email_wins_else_the_last() {
        let mut data = UserData {
            emails: vec![
                Email {
                    address: "a@x.com".into(),
                    verified: true,
                    primary: false,
                },
                Email {
                    address: "b@x.com".into(),
                    verified: false,
                    primary: false,
                },
            ],
            ..Default::default()
        };
        data.settle_email();
        assert_eq!(
            (data.claims.email.as_str(), data.claims.email_verified),
            ("b@x.com", false)
        );
        data.emails[0].primary = true;
        data.settle_email();
        assert_eq!(
            (data.claims.email.as_str(), data.claims.email_verified),
            ("a@x.com", true)
        );
    }
}

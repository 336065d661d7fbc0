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

//! What a one-time code is for, in the words of each API that names one, and where each is stored.
//!
//! Four closed sets, because each API accepts a different one: the emails the suite sends
//! ([`EmailCode`]), the SMS codes ([`PhoneCode`]), the links an admin may generate ([`LinkType`],
//! GoTrue's `generate_link` types) and the `type` of `/verify` ([`VerifyType`], which also has the
//! ambiguous `email`). One enum for all would let, say, `/verify?type=reauthentication` type-check,
//! and every `match` would need arms that cannot happen. Every purpose maps to the one storage
//! vocabulary, [`OneTimeTokenKind`] (the `users` column and the `one_time_tokens.token_type` of its
//! hash), so what a code is for and where it lives are decided here only.

use auth_account::users::UserRecord;
use auth_core::{ErrorCode, ServiceError};
use auth_proto::notification::v1::EmailKind;
use chrono::{DateTime, Utc};

pub use crate::store::one_time_tokens::OneTimeTokenKind;

/// The emails that carry a code for the user's own address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailCode {
    /// Sign-up confirmation (also what an unconfirmed user gets for a magic link).
    Confirmation,
    Recovery,
    MagicLink,
    Reauthentication,
    /// An admin's invitation (`/invite`): the confirmation code, sent whenever the admin asks.
    Invite,
}

impl EmailCode {
    pub fn token_kind(self) -> OneTimeTokenKind {
        match self {
            Self::Confirmation | Self::Invite => OneTimeTokenKind::Confirmation,
            Self::Recovery | Self::MagicLink => OneTimeTokenKind::Recovery,
            Self::Reauthentication => OneTimeTokenKind::Reauthentication,
        }
    }

    pub fn email_kind(self) -> EmailKind {
        match self {
            Self::Confirmation => EmailKind::Confirmation,
            Self::Recovery => EmailKind::Recovery,
            Self::MagicLink => EmailKind::MagicLink,
            Self::Reauthentication => EmailKind::Reauthentication,
            Self::Invite => EmailKind::Invite,
        }
    }

    /// The `type` of the emailed link.
    pub fn link_type(self) -> &'static str {
        match self {
            Self::Confirmation => "signup",
            Self::Recovery => "recovery",
            Self::MagicLink => "magiclink",
            Self::Reauthentication => "reauthenticate",
            Self::Invite => "invite",
        }
    }

    pub fn last_sent(self, user: &UserRecord) -> Option<DateTime<Utc>> {
        match self {
            Self::Confirmation | Self::Invite => user.confirmation_sent_at,
            Self::Recovery | Self::MagicLink => user.recovery_sent_at,
            Self::Reauthentication => user.reauthentication_sent_at,
        }
    }

    /// The shortest time between two of these emails to one user (GoTrue does not limit invitations).
    pub fn interval(self, max_frequency: std::time::Duration) -> std::time::Duration {
        match self {
            Self::Invite => std::time::Duration::ZERO,
            _ => max_frequency,
        }
    }
}

/// The SMS codes, by where their hash is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneCode {
    /// Sign-up confirmation and SMS sign-in (`/otp`).
    Confirmation,
    /// A new number (`PUT /user {phone}`); the number is recorded as `phone_change`.
    PhoneChange,
    Reauthentication,
}

impl PhoneCode {
    pub fn token_kind(self) -> OneTimeTokenKind {
        match self {
            Self::Confirmation => OneTimeTokenKind::Confirmation,
            Self::PhoneChange => OneTimeTokenKind::PhoneChange,
            Self::Reauthentication => OneTimeTokenKind::Reauthentication,
        }
    }

    pub fn last_sent(self, user: &UserRecord) -> Option<DateTime<Utc>> {
        match self {
            Self::Confirmation => user.confirmation_sent_at,
            Self::PhoneChange => user.phone_change_sent_at,
            Self::Reauthentication => user.reauthentication_sent_at,
        }
    }
}

/// The link types GoTrue generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    Signup,
    Invite,
    MagicLink,
    Recovery,
    EmailChangeCurrent,
    EmailChangeNew,
}

impl LinkType {
    pub fn parse(text: &str) -> Result<Self, ServiceError> {
        Ok(match text {
            "signup" => Self::Signup,
            "invite" => Self::Invite,
            "magiclink" => Self::MagicLink,
            "recovery" => Self::Recovery,
            "email_change_current" => Self::EmailChangeCurrent,
            "email_change_new" => Self::EmailChangeNew,
            other => {
                return Err(ServiceError::bad_request(
                    ErrorCode::ValidationFailed,
                    format!("Invalid email action link type requested: {other}"),
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::Invite => "invite",
            Self::MagicLink => "magiclink",
            Self::Recovery => "recovery",
            Self::EmailChangeCurrent => "email_change_current",
            Self::EmailChangeNew => "email_change_new",
        }
    }

    /// The `type` the link carries to `/verify`.
    pub fn verify_type(self) -> &'static str {
        match self {
            Self::EmailChangeCurrent | Self::EmailChangeNew => "email_change",
            other => other.as_str(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyType {
    Signup,
    Invite,
    Recovery,
    MagicLink,
    /// An emailed code of either kind: the sign-up confirmation or the magic link.
    Email,
    EmailChange,
    Sms,
    PhoneChange,
}

impl VerifyType {
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "signup" => Self::Signup,
            "invite" => Self::Invite,
            "recovery" => Self::Recovery,
            "magiclink" => Self::MagicLink,
            "email" => Self::Email,
            "email_change" => Self::EmailChange,
            "sms" => Self::Sms,
            "phone_change" => Self::PhoneChange,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::Invite => "invite",
            Self::Recovery => "recovery",
            Self::MagicLink => "magiclink",
            Self::Email => "email",
            Self::EmailChange => "email_change",
            Self::Sms => "sms",
            Self::PhoneChange => "phone_change",
        }
    }

    /// The kinds of stored code a link of this type may name; `None` for SMS types, which have no
    /// links.
    pub fn link_token_kinds(self) -> Option<&'static [OneTimeTokenKind]> {
        Some(match self {
            Self::Email => &[OneTimeTokenKind::Confirmation, OneTimeTokenKind::Recovery],
            Self::Signup | Self::Invite => &[OneTimeTokenKind::Confirmation],
            Self::Recovery | Self::MagicLink => &[OneTimeTokenKind::Recovery],
            Self::EmailChange => &[OneTimeTokenKind::EmailChangeCurrent, OneTimeTokenKind::EmailChangeNew],
            Self::Sms | Self::PhoneChange => return None,
        })
    }

    /// GoTrue's authentication method for a PKCE flow of this type (`ParseAuthenticationMethod`).
    pub fn flow_method(self) -> &'static str {
        match self {
            Self::Signup | Self::Email => "email/signup",
            Self::Invite => "invite",
            Self::Recovery => "recovery",
            Self::MagicLink => "magiclink",
            Self::EmailChange => "email_change",
            Self::Sms | Self::PhoneChange => "otp",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFY_TYPES: [VerifyType; 8] = [
        VerifyType::Signup,
        VerifyType::Invite,
        VerifyType::Recovery,
        VerifyType::MagicLink,
        VerifyType::Email,
        VerifyType::EmailChange,
        VerifyType::Sms,
        VerifyType::PhoneChange,
    ];
    const LINK_TYPES: [LinkType; 6] = [
        LinkType::Signup,
        LinkType::Invite,
        LinkType::MagicLink,
        LinkType::Recovery,
        LinkType::EmailChangeCurrent,
        LinkType::EmailChangeNew,
    ];
    const EMAIL_CODES: [EmailCode; 5] = [
        EmailCode::Confirmation,
        EmailCode::Recovery,
        EmailCode::MagicLink,
        EmailCode::Reauthentication,
        EmailCode::Invite,
    ];

    #[test]
    fn names_round_trip() {
        for verify_type in VERIFY_TYPES {
            assert_eq!(VerifyType::parse(verify_type.as_str()), Some(verify_type));
        }
        for link_type in LINK_TYPES {
            assert_eq!(LinkType::parse(link_type.as_str()).ok(), Some(link_type));
        }
        assert!(VerifyType::parse("reauthentication").is_none());
        assert!(LinkType::parse("sms").is_err());
    }

    /// Every link the suite emails or generates is one `/verify` accepts, and it names the stored
    /// kind its code was written to: a link cannot point at a code it was not given.
    #[test]
    fn every_link_names_the_kind_its_code_is_stored_as() {
        for code in EMAIL_CODES.into_iter().filter(|c| *c != EmailCode::Reauthentication) {
            let verify_type = VerifyType::parse(code.link_type()).expect("emailed links are verifiable");
            let kinds = verify_type.link_token_kinds().expect("an emailed type has links");
            assert!(kinds.contains(&code.token_kind()), "{code:?}");
        }
        for link_type in LINK_TYPES {
            let verify_type = VerifyType::parse(link_type.verify_type()).expect("generated links are verifiable");
            assert!(verify_type.link_token_kinds().is_some(), "{link_type:?}");
        }
        for sms in [VerifyType::Sms, VerifyType::PhoneChange] {
            assert!(sms.link_token_kinds().is_none());
        }
    }
}

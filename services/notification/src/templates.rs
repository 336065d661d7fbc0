//! Email subjects and bodies: GoTrue's defaults (v2.196), or the configured subjects, with GoTrue's
//! template variables (`{{ .ConfirmationURL }}`, `{{ .Token }}`, ...) filled in.
//!
//! GoTrue renders with Go's `html/template`; the defaults and typical custom templates only print
//! variables, which is what [`fill`] does (values HTML-escaped, as `html/template` would).

use std::sync::LazyLock;

use auth_core::config::MailerSubjects;
use auth_proto::notification::v1::{EmailKind, EmailRequested};
use regex::Regex;

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
}

const CONFIRMATION: &str = "<h2>Confirm your email address</h2>\n\n<p>Follow the link below to confirm this email address and finish signing up.</p>\n<p><a href=\"{{ .ConfirmationURL }}\">Confirm email address</a></p>\n";
const INVITE: &str = "<h2>You've been invited</h2>\n\n<p>You've been invited to create an account. Follow the link below to accept.</p>\n<p><a href=\"{{ .ConfirmationURL }}\">Accept invitation</a></p>";
const RECOVERY: &str = "<h2>Reset your password</h2>\n\n<p>We received a request to reset your password. Follow the link below to choose a new one.</p>\n<p><a href=\"{{ .ConfirmationURL }}\">Reset password</a></p>\n<p>If you didn't request this, you can safely ignore this email.</p>";
const MAGIC_LINK: &str = "<h2>Your sign-in link</h2>\n\n<p>Follow the link below to sign in. This link expires shortly and can only be used once.</p>\n<p><a href=\"{{ .ConfirmationURL }}\">Sign in</a></p>";
const EMAIL_CHANGE: &str = "<h2>Confirm your new email address</h2>\n\n<p>Follow the link below to confirm {{ .NewEmail }} as your new email address.</p>\n<p><a href=\"{{ .ConfirmationURL }}\">Confirm new email address</a></p>\n<p>If you didn't request this change, you can safely ignore this email.</p>";
const REAUTHENTICATION: &str = "<h2>Your verification code</h2>\n\n<p>Use the code below to verify your identity. It expires shortly.</p>\n<p>{{ .Token }}</p>";

const PASSWORD_CHANGED_NOTIFICATION: &str = "<h2>Your password was changed</h2>\n\n<p>The password for your account was recently changed.</p>\n<p>If you didn't make this change, reset your password and contact support immediately.</p>\n";
const EMAIL_CHANGED_NOTIFICATION: &str = "<h2>Your email address was changed</h2>\n\n<p>The email address for your account was changed from {{ .OldEmail }} to {{ .Email }}.</p>\n<p>If you didn't make this change, contact support immediately.</p>\n";
const PHONE_CHANGED_NOTIFICATION: &str = "<h2>Your phone number was changed</h2>\n\n<p>The phone number for your account was changed from {{ .OldPhone }} to {{ .Phone }}.</p>\n<p>If you didn't make this change, contact support immediately.</p>\n";

const MFA_FACTOR_ENROLLED_NOTIFICATION: &str = "<h2>A new verification method was added</h2>\n\n<p>Sign-in verification method {{ .FactorType }} was added to your account.</p>\n<p>If you didn't make this change, contact support immediately.</p>\n";
const MFA_FACTOR_UNENROLLED_NOTIFICATION: &str = "<h2>A verification method was removed</h2>\n\n<p>Sign-in verification method {{ .FactorType }} was removed from your account.</p>\n<p>If you didn't make this change, contact support immediately.</p>\n";

const IDENTITY_LINKED_NOTIFICATION: &str = "<h2>A new sign-in method was linked</h2>\n\n<p>Your {{ .Provider }} account was linked as a new sign-in method for {{ .Email }}.</p>\n<p>If you didn't make this change, contact support immediately.</p>\n";
const IDENTITY_UNLINKED_NOTIFICATION: &str = "<h2>A sign-in method was removed</h2>\n\n<p>Your {{ .Provider }} account was removed as a sign-in method for {{ .Email }}.</p>\n<p>If you didn't make this change, contact support immediately.</p>\n";

/// GoTrue's default subject and body for a kind of email.
fn defaults(kind: EmailKind) -> (&'static str, &'static str) {
    match kind {
        EmailKind::Invite => ("You've been invited", INVITE),
        EmailKind::Recovery => ("Reset your password", RECOVERY),
        EmailKind::MagicLink => ("Your sign-in link", MAGIC_LINK),
        EmailKind::EmailChange => ("Confirm your new email address", EMAIL_CHANGE),
        EmailKind::Reauthentication => ("{{ .Token }} is your verification code", REAUTHENTICATION),
        EmailKind::PasswordChangedNotification => ("Your password was changed", PASSWORD_CHANGED_NOTIFICATION),
        EmailKind::EmailChangedNotification => ("Your email address was changed", EMAIL_CHANGED_NOTIFICATION),
        EmailKind::PhoneChangedNotification => ("Your phone number was changed", PHONE_CHANGED_NOTIFICATION),
        EmailKind::MfaFactorEnrolledNotification => (
            "A new verification method was added to your account",
            MFA_FACTOR_ENROLLED_NOTIFICATION,
        ),
        EmailKind::MfaFactorUnenrolledNotification => (
            "A verification method was removed from your account",
            MFA_FACTOR_UNENROLLED_NOTIFICATION,
        ),
        EmailKind::IdentityLinkedNotification => (
            "A new sign-in method was linked to your account",
            IDENTITY_LINKED_NOTIFICATION,
        ),
        EmailKind::IdentityUnlinkedNotification => (
            "A sign-in method was removed from your account",
            IDENTITY_UNLINKED_NOTIFICATION,
        ),
        EmailKind::Confirmation | EmailKind::Unspecified => ("Confirm your email address", CONFIRMATION),
    }
}

/// The kind of an email request (confirmation when unknown).
pub fn kind_of(request: &EmailRequested) -> EmailKind {
    EmailKind::try_from(request.kind).unwrap_or(EmailKind::Confirmation)
}

/// Renders with the configured subject and `body` (a fetched template), else GoTrue's defaults.
pub fn render(request: &EmailRequested, subjects: &MailerSubjects, body: Option<&str>) -> Rendered {
    let kind = kind_of(request);
    let (default_subject, default_body) = defaults(kind);
    let body = body.unwrap_or(default_body);
    let subject = subjects.get(kind).unwrap_or(default_subject);
    let variables = [
        ("SiteURL", request.site_url.as_str()),
        ("ConfirmationURL", request.confirmation_url.as_str()),
        ("Email", request.email.as_str()),
        ("NewEmail", request.new_email.as_str()),
        ("Token", request.token.as_str()),
        ("TokenHash", request.token_hash.as_str()),
        ("RedirectTo", request.redirect_to.as_str()),
        ("OldEmail", request.old_email.as_str()),
        ("OldPhone", request.old_phone.as_str()),
        ("Phone", request.phone.as_str()),
        ("FactorType", request.factor_type.as_str()),
        ("Provider", request.provider.as_str()),
    ];
    let data: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&request.data_json).unwrap_or_default();
    Rendered {
        subject: fill(subject, &variables, &data),
        html: fill(body, &variables, &data),
    }
}

/// Replaces every `{{ .Name }}` with the variable's HTML-escaped value, and `{{ .Data.key }}` with
/// the user's metadata value (unknown names print nothing).
fn fill(template: &str, variables: &[(&str, &str)], data: &serde_json::Map<String, serde_json::Value>) -> String {
    #[expect(clippy::expect_used, reason = "a constant pattern, compiled by every test run")]
    static VARIABLE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\{\{-?\s*\.(\w+)(?:\.(\w+))?\s*-?\}\}").expect("static regex"));
    VARIABLE
        .replace_all(template, |captures: &regex::Captures<'_>| {
            let name = &captures[1];
            match (name, captures.get(2)) {
                ("Data", Some(key)) => match data.get(key.as_str()) {
                    Some(serde_json::Value::String(text)) => html_escape(text),
                    Some(serde_json::Value::Null) | None => String::new(),
                    Some(other) => html_escape(&other.to_string()),
                },
                _ => {
                    let value = variables.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| v);
                    html_escape(value)
                }
            }
        })
        .into_owned()
}

fn html_escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&#34;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_the_confirmation_url_escaped() {
        let request = EmailRequested {
            kind: EmailKind::Confirmation as i32,
            confirmation_url: "http://localhost:9999/verify?token=abc&type=signup".into(),
            ..Default::default()
        };
        let rendered = render(&request, &MailerSubjects::default(), None);
        assert_eq!(rendered.subject, "Confirm your email address");
        assert!(
            rendered
                .html
                .contains("href=\"http://localhost:9999/verify?token=abc&amp;type=signup\"")
        );
    }

    #[test]
    fn configured_subjects_and_variables() {
        let request = EmailRequested {
            kind: EmailKind::Reauthentication as i32,
            token: "123456".into(),
            ..Default::default()
        };
        assert_eq!(
            render(&request, &MailerSubjects::default(), None).subject,
            "123456 is your verification code"
        );
        let subjects = MailerSubjects {
            reauthentication: Some("Code: {{.Token}}".into()),
            ..Default::default()
        };
        assert_eq!(render(&request, &subjects, None).subject, "Code: 123456");
        let custom = EmailRequested {
            kind: EmailKind::Confirmation as i32,
            token: "654321".into(),
            data_json: r#"{"name":"Ada <3"}"#.into(),
            ..Default::default()
        };
        let body = "<p>Hi {{ .Data.name }}, code {{ .Token }}{{ .Data.missing }}</p>";
        assert_eq!(
            render(&custom, &MailerSubjects::default(), Some(body)).html,
            "<p>Hi Ada &lt;3, code 654321</p>"
        );
    }
}

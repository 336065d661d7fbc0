//! Configuration from GoTrue's environment variables.
//!
//! Every process of the suite reads the same variables, with GoTrue's names, aliases and defaults
//! (`spec/gotrue-readme.txt`, `spec/GOTRUE_BEHAVIOUR.md` §11), from the process environment and an
//! optional `.env` file (the environment wins, as in GoTrue). A few suite-only variables (`AUTH_*`,
//! `NATS_URL`) wire the processes together.
//!
//! Loading collects every problem before failing, and each message names the variable, so an operator
//! fixes a bad environment in one round.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

/// Every GoTrue OAuth provider, as `(key in /settings and in provider names, env segment)`.
/// `x` and `vercel_marketplace` are configurable but GoTrue does not list them in `/settings`.
pub const OAUTH_PROVIDERS: &[(&str, &str)] = &[
    ("apple", "APPLE"),
    ("azure", "AZURE"),
    ("bitbucket", "BITBUCKET"),
    ("discord", "DISCORD"),
    ("facebook", "FACEBOOK"),
    ("snapchat", "SNAPCHAT"),
    ("figma", "FIGMA"),
    ("fly", "FLY"),
    ("github", "GITHUB"),
    ("gitlab", "GITLAB"),
    ("google", "GOOGLE"),
    ("keycloak", "KEYCLOAK"),
    ("kakao", "KAKAO"),
    ("linkedin", "LINKEDIN"),
    ("linkedin_oidc", "LINKEDIN_OIDC"),
    ("notion", "NOTION"),
    ("spotify", "SPOTIFY"),
    ("slack", "SLACK"),
    ("slack_oidc", "SLACK_OIDC"),
    ("workos", "WORKOS"),
    ("twitch", "TWITCH"),
    ("twitter", "TWITTER"),
    ("zoom", "ZOOM"),
    ("x", "X"),
    ("vercel_marketplace", "VERCEL_MARKETPLACE"),
];

/// A URL setting: parsed for its parts, but written out (links, redirects, templates) exactly as the
/// operator configured it. `url::Url` would add a trailing slash to `http://localhost:3000`, which
/// GoTrue never does. `as_str()` and `Display` give the configured text; `Deref` gives the parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredUrl {
    text: String,
    parsed: Url,
}

impl ConfiguredUrl {
    pub fn parse(text: &str) -> Result<Self, url::ParseError> {
        Ok(Self {
            text: text.to_string(),
            parsed: Url::parse(text)?,
        })
    }

    /// The URL as configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::ops::Deref for ConfiguredUrl {
    type Target = Url;
    fn deref(&self) -> &Url {
        &self.parsed
    }
}

impl std::fmt::Display for ConfiguredUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Credentials and TLS for the NATS connection. NATS carries the email requests and the rate-limit
/// buckets, so production servers should ask for credentials (docker-compose and the Kubernetes
/// manifests do).
#[derive(Debug, Clone, Default)]
pub struct NatsAuth {
    /// `NATS_CREDS`: a `.creds` file (JWT + NKey seed), as `nsc` writes them.
    pub creds_file: Option<PathBuf>,
    /// `NATS_USER` / `NATS_PASSWORD`
    pub user: Option<String>,
    pub password: Option<SecretString>,
    /// `NATS_TOKEN`
    pub token: Option<SecretString>,
    /// `NATS_TLS_CA`: the CA that signed the server's certificate (PEM).
    pub tls_ca: Option<PathBuf>,
    /// `NATS_TLS_REQUIRED` (default false): refuse a server that does not speak TLS.
    pub tls_required: bool,
}

/// The whole configuration. Built once at start and shared read-only (`Arc<Config>`).
#[derive(Debug, Clone)]
pub struct Config {
    pub api: ApiConfig,
    /// `GOTRUE_SITE_URL`: where users land after verifying; the default redirect. Its text is kept
    /// exactly as configured (GoTrue never normalises it: no trailing slash added).
    pub site_url: ConfiguredUrl,
    /// `GOTRUE_URI_ALLOW_LIST`: extra redirect targets (globs).
    pub uri_allow_list: Vec<String>,
    /// `GOTRUE_DISABLE_SIGNUP`
    pub disable_signup: bool,
    /// `GOTRUE_EXPERIMENTAL_CURSOR_PAGINATION_ENABLED`: `GET /admin/users` without `page`/`per_page`
    /// pages by cursor (`?limit=&cursor=`).
    pub experimental_cursor_pagination: bool,
    /// `GOTRUE_CORS_ALLOWED_HEADERS`: added to GoTrue's fixed list.
    pub cors_allowed_headers: Vec<String>,
    pub db: DbConfig,
    pub jwt: JwtConfig,
    pub external: ExternalConfig,
    pub mailer: MailerConfig,
    pub smtp: SmtpConfig,
    pub sms: SmsConfig,
    pub saml: SamlConfig,
    pub password: PasswordConfig,
    pub security: SecurityConfig,
    pub sessions: SessionsConfig,
    pub rate_limit: RateLimitConfig,
    pub custom_oauth: CustomOAuthConfig,
    /// `GOTRUE_PASSKEY_ENABLED`
    pub passkey_enabled: bool,
    /// `GOTRUE_PASSKEY_MAX_PASSKEYS_PER_USER` (10)
    pub passkey_max_per_user: u32,
    pub mfa: MfaConfig,
    /// `GOTRUE_WEBAUTHN_*`: the relying party of WebAuthn factors and passkeys.
    pub webauthn: WebAuthnConfig,
    pub log: LogConfig,
    pub tracing: TracingConfig,
    pub metrics: MetricsConfig,
    pub suite: SuiteConfig,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// `GOTRUE_API_HOST` (default: all interfaces)
    pub host: String,
    /// `PORT` / `GOTRUE_API_PORT` (default 8081)
    pub port: u16,
    /// `API_EXTERNAL_URL` / `GOTRUE_API_EXTERNAL_URL` (required): the public base URL of the API.
    pub external_url: Url,
    /// `REQUEST_ID_HEADER` / `GOTRUE_API_REQUEST_ID_HEADER`: inherit request ids from this header.
    pub request_id_header: Option<String>,
    /// `GOTRUE_API_MAX_REQUEST_DURATION` (default 10s): past it the gateway answers 504 `request_timeout`.
    pub max_request_duration: Duration,
    /// `AUTH_HTTP_MAX_CONNECTIONS` (default 4096): open client connections per gateway replica; past
    /// it new connections get a 503 and are closed, so a flood of idle sockets cannot exhaust the
    /// process's file descriptors.
    pub max_connections: usize,
    /// `AUTH_HTTP_HEADER_READ_TIMEOUT` (default 2s, GoTrue's ReadHeaderTimeout): a connection that has
    /// not sent a request's headers this long after connecting, or after its previous response, is
    /// closed.
    pub header_read_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct DbConfig {
    /// `DATABASE_URL` / `GOTRUE_DB_DATABASE_URL` (required)
    pub url: SecretString,
    /// `DB_NAMESPACE` / `GOTRUE_DB_NAMESPACE` (default `auth`): the schema holding every table.
    pub namespace: String,
    /// `GOTRUE_DB_MAX_POOL_SIZE` (0 = the suite's default of 10 per process)
    pub max_pool_size: u32,
    /// `GOTRUE_DB_CONN_MAX_LIFETIME`
    pub conn_max_lifetime: Option<Duration>,
    /// `GOTRUE_DB_CONN_MAX_IDLE_TIME`
    pub conn_max_idle_time: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// `GOTRUE_JWT_SECRET` (required): HS256 signing secret and verification fallback.
    pub secret: SecretString,
    /// `GOTRUE_JWT_EXP` (seconds, default 3600)
    pub exp: u64,
    /// `GOTRUE_JWT_AUD` (default `authenticated`)
    pub aud: String,
    /// `GOTRUE_JWT_ADMIN_ROLES` (default `service_role,supabase_admin`)
    pub admin_roles: Vec<String>,
    /// `GOTRUE_JWT_DEFAULT_GROUP_NAME`: `role` of new users (default `authenticated`).
    pub default_group_name: String,
    /// `GOTRUE_JWT_ADMIN_GROUP_NAME` (default `admin`): the legacy "admin user" role that may set
    /// `app_metadata` through `PUT /user`.
    pub admin_group_name: String,
    /// `GOTRUE_JWT_ISSUER`
    pub issuer: Option<String>,
    /// `GOTRUE_JWT_KEY_ID`: the `kid` of the HS256 secret.
    pub key_id: Option<String>,
    /// `GOTRUE_JWT_KEYS`: JSON array of private JWKs. Kept as JSON objects; the token service builds keys.
    pub keys: Vec<serde_json::Map<String, serde_json::Value>>,
    /// `GOTRUE_JWT_VALID_METHODS`
    pub valid_methods: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ExternalConfig {
    /// `GOTRUE_EXTERNAL_EMAIL_ENABLED` (default true)
    pub email_enabled: bool,
    /// `GOTRUE_EXTERNAL_PHONE_ENABLED` (default false)
    pub phone_enabled: bool,
    /// `GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED` (default false)
    pub anonymous_users_enabled: bool,
    /// `GOTRUE_EXTERNAL_EMAIL_MAGIC_LINK_ENABLED` (default true)
    pub magic_link_enabled: bool,
    /// `GOTRUE_EXTERNAL_FLOW_STATE_EXPIRY_DURATION` (default and floor 300s): how long a PKCE flow
    /// may take from start to code exchange.
    pub flow_state_expiry: Duration,
    /// `GOTRUE_EXTERNAL_<P>_*`, keyed by the lower-case provider name of [`OAUTH_PROVIDERS`].
    pub providers: BTreeMap<&'static str, OAuthProviderConfig>,
    /// `GOTRUE_EXTERNAL_REDIRECT_URL`: where every external sign-in ends, whatever the app asked.
    pub redirect_url: Option<String>,
    /// `GOTRUE_EXTERNAL_IOS_BUNDLE_ID`: also an acceptable audience of Apple ID tokens.
    pub ios_bundle_id: Option<String>,
    /// `GOTRUE_EXTERNAL_OIDC_PROVIDER_CACHE_TTL` (1h): how long an issuer's discovery document and
    /// keys are kept.
    pub oidc_provider_cache_ttl: Duration,
    /// `AUTH_EXTERNAL_{GOOGLE,APPLE,LINKEDIN_OIDC,AZURE,VERCEL_MARKETPLACE}_ISSUER` (the suite's), keyed by provider:
    /// an OIDC issuer standing in for the provider's own (a test double, an egress proxy). GoTrue
    /// fixes these issuers (`https://accounts.google.com`, ...).
    pub oidc_issuer_overrides: BTreeMap<&'static str, String>,
    /// `AUTH_OIDC_JWKS_REFRESH_INTERVAL` (the suite's, 60s): the least time between two refetches
    /// of an issuer's keys prompted by tokens naming a key it does not publish (a rotation, or a
    /// forged `kid`).
    pub oidc_jwks_refresh_interval: Duration,
    /// `GOTRUE_EXPERIMENTAL_PROVIDER_LINKING_DOMAINS` (`provider=domain,…`) with
    /// `GOTRUE_EXPERIMENTAL_PROVIDERS_WITH_OWN_LINKING_DOMAIN` (`provider,…`, each its own domain):
    /// providers outside the `default` domain never link by email to accounts of other domains.
    pub provider_linking_domains: BTreeMap<String, String>,
    /// `GOTRUE_EXTERNAL_WEB3_SOLANA_ENABLED`
    pub web3_solana_enabled: bool,
    /// `GOTRUE_EXTERNAL_WEB3_ETHEREUM_ENABLED`
    pub web3_ethereum_enabled: bool,
    /// `GOTRUE_EXTERNAL_ALLOWED_ID_TOKEN_ISSUERS`: issuers accepted by `grant_type=id_token` without
    /// a provider (GoTrue's default: Apple's and Google's).
    pub allowed_id_token_issuers: Vec<String>,
    /// `AUTH_EXTERNAL_CA_CERTS` (the suite's): a PEM file of certificate authorities trusted for
    /// calls to OAuth providers beside the system's (an identity provider behind a private CA).
    pub provider_ca_certs: Option<PathBuf>,
}

#[derive(Debug, Clone, Default)]
pub struct OAuthProviderConfig {
    pub enabled: bool,
    pub client_ids: Vec<String>,
    pub secret: Option<SecretString>,
    pub redirect_uri: Option<String>,
    pub url: Option<String>,
    /// `_EMAIL_OPTIONAL`: a sign-in without an email from the provider is allowed.
    pub email_optional: bool,
    /// `_SKIP_NONCE_CHECK`: `grant_type=id_token` accepts a token without the nonce check.
    pub skip_nonce_check: bool,
}

#[derive(Debug, Clone)]
pub struct MailerConfig {
    /// `GOTRUE_MAILER_AUTOCONFIRM`
    pub autoconfirm: bool,
    /// `GOTRUE_MAILER_ALLOW_UNVERIFIED_EMAIL_SIGN_INS`: an external sign-in with an unverified
    /// email gets a session (and a confirmation email) instead of 422.
    pub allow_unverified_email_sign_ins: bool,
    /// `GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED` (default true): confirm on both addresses.
    pub secure_email_change_enabled: bool,
    /// `GOTRUE_MAILER_OTP_LENGTH` (6..=10, default 6)
    pub otp_length: usize,
    /// `GOTRUE_MAILER_OTP_EXP` (seconds, default 86400)
    pub otp_exp: Duration,
    /// `GOTRUE_SMTP_MAX_FREQUENCY` (default 1m): minimum interval between emails to one user.
    pub max_frequency: Duration,
    pub subjects: MailerSubjects,
    pub url_paths: MailerUrlPaths,
    /// `GOTRUE_MAILER_TEMPLATES_*`: URLs of the body templates (relative ones are under SITE_URL).
    pub templates: MailerTemplates,
    /// `GOTRUE_MAILER_TEMPLATE_MAX_SIZE` (default 1000000 bytes)
    pub template_max_size: usize,
    /// `GOTRUE_MAILER_TEMPLATE_MAX_AGE` (default 10m): a fetched template is used this long.
    pub template_max_age: Duration,
    /// `GOTRUE_MAILER_TEMPLATE_RETRY_INTERVAL` (default 10s): after a failed refresh, the old
    /// template is used and the fetch retried no sooner than this.
    pub template_retry_interval: Duration,
    /// `GOTRUE_MAILER_NOTIFICATIONS_*_ENABLED`: tell the user when their account changed.
    pub notifications: MailerNotifications,
}

/// Account-change notification emails (GoTrue v2.196), all off by default.
#[derive(Debug, Clone, Default)]
pub struct MailerNotifications {
    /// `GOTRUE_MAILER_NOTIFICATIONS_PASSWORD_CHANGED_ENABLED`: after `PUT /user` set a password.
    pub password_changed_enabled: bool,
    /// `GOTRUE_MAILER_NOTIFICATIONS_EMAIL_CHANGED_ENABLED`: to the old address, once a change is verified.
    pub email_changed_enabled: bool,
    /// `GOTRUE_MAILER_NOTIFICATIONS_PHONE_CHANGED_ENABLED`: once a phone change is verified.
    pub phone_changed_enabled: bool,
    /// `GOTRUE_MAILER_NOTIFICATIONS_MFA_FACTOR_ENROLLED_ENABLED`: once a new factor is verified.
    pub mfa_factor_enrolled_enabled: bool,
    /// `GOTRUE_MAILER_NOTIFICATIONS_MFA_FACTOR_UNENROLLED_ENABLED`: after the user removed a factor.
    pub mfa_factor_unenrolled_enabled: bool,
    /// `GOTRUE_MAILER_NOTIFICATIONS_IDENTITY_LINKED_ENABLED`: after the user linked an identity.
    pub identity_linked_enabled: bool,
    /// `GOTRUE_MAILER_NOTIFICATIONS_IDENTITY_UNLINKED_ENABLED`: after the user unlinked one.
    pub identity_unlinked_enabled: bool,
}

/// Body template URLs by kind; `None` means GoTrue's built-in body.
pub type MailerTemplates = PerEmailKind;

/// Paths of the links in emails (`GOTRUE_MAILER_URLPATHS_*`, default `/verify`), resolved against
/// `API_EXTERNAL_URL` as a URL reference (so an absolute path replaces the external URL's path).
#[derive(Debug, Clone)]
pub struct MailerUrlPaths {
    pub invite: String,
    pub confirmation: String,
    pub recovery: String,
    pub email_change: String,
}

/// Where and as whom mail is sent (`GOTRUE_SMTP_*`). Port 465 means implicit TLS; any other port
/// upgrades with STARTTLS when the server offers it, as GoTrue's mailer does.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// `GOTRUE_SMTP_HOST`: empty means no mail can be sent.
    pub host: String,
    /// `GOTRUE_SMTP_PORT` (default 587)
    pub port: u16,
    /// `GOTRUE_SMTP_USER`
    pub user: String,
    /// `GOTRUE_SMTP_PASS`
    pub pass: SecretString,
    /// `GOTRUE_SMTP_ADMIN_EMAIL`: the From address.
    pub admin_email: String,
    /// `GOTRUE_SMTP_SENDER_NAME`: the From display name.
    pub sender_name: String,
}

/// Subjects of the emails (`GOTRUE_MAILER_SUBJECTS_*`); `None` means GoTrue's default subject.
pub type MailerSubjects = PerEmailKind;

/// One optional setting per kind of email (`GOTRUE_MAILER_<SETTING>_<KIND>`).
#[derive(Debug, Clone, Default)]
pub struct PerEmailKind {
    pub invite: Option<String>,
    pub confirmation: Option<String>,
    pub recovery: Option<String>,
    pub magic_link: Option<String>,
    pub email_change: Option<String>,
    pub reauthentication: Option<String>,
    pub password_changed_notification: Option<String>,
    pub email_changed_notification: Option<String>,
    pub phone_changed_notification: Option<String>,
    pub mfa_factor_enrolled_notification: Option<String>,
    pub mfa_factor_unenrolled_notification: Option<String>,
    pub identity_linked_notification: Option<String>,
    pub identity_unlinked_notification: Option<String>,
}

impl PerEmailKind {
    pub fn get(&self, kind: auth_proto::notification::v1::EmailKind) -> Option<&str> {
        use auth_proto::notification::v1::EmailKind;
        match kind {
            EmailKind::Invite => self.invite.as_deref(),
            EmailKind::Recovery => self.recovery.as_deref(),
            EmailKind::MagicLink => self.magic_link.as_deref(),
            EmailKind::EmailChange => self.email_change.as_deref(),
            EmailKind::Reauthentication => self.reauthentication.as_deref(),
            EmailKind::PasswordChangedNotification => self.password_changed_notification.as_deref(),
            EmailKind::EmailChangedNotification => self.email_changed_notification.as_deref(),
            EmailKind::PhoneChangedNotification => self.phone_changed_notification.as_deref(),
            EmailKind::MfaFactorEnrolledNotification => self.mfa_factor_enrolled_notification.as_deref(),
            EmailKind::MfaFactorUnenrolledNotification => self.mfa_factor_unenrolled_notification.as_deref(),
            EmailKind::IdentityLinkedNotification => self.identity_linked_notification.as_deref(),
            EmailKind::IdentityUnlinkedNotification => self.identity_unlinked_notification.as_deref(),
            EmailKind::Confirmation | EmailKind::Unspecified => self.confirmation.as_deref(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SmsConfig {
    /// `GOTRUE_SMS_AUTOCONFIRM`
    pub autoconfirm: bool,
    /// `GOTRUE_SMS_PROVIDER` (`twilio`, `messagebird`, `textlocal`, `vonage`, ...)
    pub provider: String,
    /// `GOTRUE_SMS_OTP_LENGTH` (6..=10, default 6)
    pub otp_length: usize,
    /// `GOTRUE_SMS_OTP_EXP` (seconds, default 60)
    pub otp_exp: Duration,
    /// `GOTRUE_SMS_MAX_FREQUENCY` (default 1m)
    pub max_frequency: Duration,
    /// `GOTRUE_SMS_TEST_OTP`: `phone:code,...`, fixed codes that verify without an SMS being sent.
    pub test_otp: HashMap<String, String>,
    /// `GOTRUE_SMS_TEST_OTP_VALID_UNTIL` (RFC 3339): test codes stop working after this instant.
    pub test_otp_valid_until: Option<chrono::DateTime<chrono::Utc>>,
    /// `GOTRUE_SMS_TEMPLATE` (default `Your code is {{ .Code }}`)
    pub template: String,
    /// `GOTRUE_SMS_TWILIO_*`
    pub twilio: TwilioConfig,
    /// `GOTRUE_SMS_MESSAGEBIRD_*`
    pub messagebird: MessagebirdConfig,
    /// `GOTRUE_SMS_TEXTLOCAL_*`
    pub textlocal: TextlocalConfig,
    /// `GOTRUE_SMS_VONAGE_*`
    pub vonage: VonageConfig,
    /// `AUTH_SMS_API_URL` (suite-only): replaces the provider's API base URL, e.g. to point it at a
    /// test double or an egress proxy.
    pub api_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TwilioConfig {
    pub account_sid: String,
    pub auth_token: SecretString,
    /// The sender: a messaging service SID or a phone number.
    pub message_service_sid: String,
    /// WhatsApp template with the code as variable 1 (`GOTRUE_SMS_TWILIO_CONTENT_SID`).
    pub content_sid: String,
}

#[derive(Debug, Clone)]
pub struct MessagebirdConfig {
    pub access_key: SecretString,
    pub originator: String,
}

#[derive(Debug, Clone)]
pub struct TextlocalConfig {
    pub api_key: SecretString,
    pub sender: String,
}

#[derive(Debug, Clone)]
pub struct VonageConfig {
    pub api_key: String,
    pub api_secret: SecretString,
    pub from: String,
}

impl SmsConfig {
    /// Why no SMS can be sent with this configuration (GoTrue's `GetSmsProvider` errors), if so.
    pub fn provider_problem(&self) -> Option<String> {
        use secrecy::ExposeSecret;
        let missing = |value: &str, what: &str| value.is_empty().then(|| format!("missing {what}"));
        match self.provider.as_str() {
            "twilio" => missing(&self.twilio.account_sid, "Twilio account SID")
                .or_else(|| missing(self.twilio.auth_token.expose_secret(), "Twilio auth token"))
                .or_else(|| {
                    missing(
                        &self.twilio.message_service_sid,
                        "Twilio message service SID or Twilio phone number",
                    )
                }),
            "messagebird" => missing(self.messagebird.access_key.expose_secret(), "Messagebird access key")
                .or_else(|| missing(&self.messagebird.originator, "Messagebird originator")),
            "textlocal" => missing(self.textlocal.api_key.expose_secret(), "Textlocal API key")
                .or_else(|| missing(&self.textlocal.sender, "Textlocal sender")),
            "vonage" => missing(&self.vonage.api_key, "Vonage API key")
                .or_else(|| missing(self.vonage.api_secret.expose_secret(), "Vonage API secret"))
                .or_else(|| missing(&self.vonage.from, "Vonage 'from' parameter")),
            "" => Some("no SMS provider configured (GOTRUE_SMS_PROVIDER)".into()),
            other => Some(format!("SMS provider {other:?} is not supported")),
        }
    }

    /// The test code of `phone` (E.164 digits), while test codes are valid.
    pub fn test_otp(&self, phone: &str, now: chrono::DateTime<chrono::Utc>) -> Option<&str> {
        if self.test_otp_valid_until.is_some_and(|until| now >= until) {
            return None;
        }
        self.test_otp.get(phone).map(String::as_str)
    }
}

#[derive(Debug, Clone)]
pub struct PasswordConfig {
    /// `GOTRUE_PASSWORD_MIN_LENGTH` (default and floor 6)
    pub min_length: usize,
    /// `GOTRUE_PASSWORD_REQUIRED_CHARACTERS`: character sets separated by `:` (`\:` escapes a colon);
    /// a password must contain at least one character of each set.
    pub required_characters: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SecurityConfig {
    /// `GOTRUE_SECURITY_REFRESH_TOKEN_ROTATION_ENABLED` (default true)
    pub refresh_token_rotation_enabled: bool,
    /// `GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL` in seconds (default 0)
    pub refresh_token_reuse_interval: Duration,
    /// `GOTRUE_SECURITY_REFRESH_TOKEN_ALLOW_REUSE` (default false)
    pub refresh_token_allow_reuse: bool,
    /// `GOTRUE_SECURITY_REFRESH_TOKEN_ALGORITHM_VERSION`: 0/1 = 12-character tokens stored in
    /// `refresh_tokens`; 2 = signed session tokens with a counter.
    pub refresh_token_algorithm_version: u8,
    /// `GOTRUE_SECURITY_REFRESH_TOKEN_UPGRADE_PERCENTAGE` (0..=100)
    pub refresh_token_upgrade_percentage: u8,
    /// `GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION`
    pub update_password_require_reauthentication: bool,
    /// `GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_CURRENT_PASSWORD`
    pub update_password_require_current_password: bool,
    /// `GOTRUE_SECURITY_SB_FORWARDED_FOR_ENABLED`
    pub sb_forwarded_for_enabled: bool,
    /// `GOTRUE_SECURITY_MANUAL_LINKING_ENABLED`: `/user/identities/*`
    pub manual_linking_enabled: bool,
    /// `GOTRUE_SECURITY_DB_ENCRYPTION_*`: secrets the suite keeps in Postgres (custom providers'
    /// client secrets) are encrypted as GoTrue encrypts them.
    pub db_encryption: DbEncryptionConfig,
}

/// GoTrue's `DatabaseEncryptionConfiguration`: AES-256-GCM with a key derived per row (HKDF of the
/// row's id), stored as `{"key_id","alg","data","nonce"}`. Keys are 32 bytes, base64url without
/// padding. Turning `ENCRYPT` off stops encrypting new values; old ones stay readable as long as
/// their key is among the decryption keys.
#[derive(Debug, Clone, Default)]
pub struct DbEncryptionConfig {
    /// `GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPT` (default false)
    pub encrypt: bool,
    /// `GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPTION_KEY_ID`
    pub encryption_key_id: String,
    /// `GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPTION_KEY`
    pub encryption_key: Option<SecretString>,
    /// `GOTRUE_SECURITY_DB_ENCRYPTION_DECRYPTION_KEYS`: `key_id:key,...`
    pub decryption_keys: BTreeMap<String, SecretString>,
}

/// `GOTRUE_CUSTOM_OAUTH_*`: OAuth 2.0 / OIDC providers an admin adds at run time
/// (`/admin/custom-providers`), signed in with as `custom:<identifier>`.
#[derive(Debug, Clone)]
pub struct CustomOAuthConfig {
    /// `GOTRUE_CUSTOM_OAUTH_ENABLED` (default true)
    pub enabled: bool,
    /// `GOTRUE_CUSTOM_OAUTH_MAX_PROVIDERS` (default 0: no limit)
    pub max_providers: u64,
    /// `GOTRUE_CUSTOM_OAUTH_EXTERNAL_URL`: the base of the callback URL custom providers are given
    /// (`<url>/callback`), instead of `GOTRUE_API_EXTERNAL_URL`.
    pub external_url: Option<String>,
    /// `AUTH_CUSTOM_OAUTH_ALLOW_PRIVATE_NETWORKS` (the suite's, default false): accept provider URLs
    /// on loopback and private addresses (an identity provider inside the cluster). GoTrue always
    /// refuses them, as a guard against server-side request forgery through the admin API; HTTPS
    /// stays required either way.
    pub allow_private_networks: bool,
}

/// `GOTRUE_MFA_*`: multi-factor authentication (GoTrue's `MFAConfiguration`).
#[derive(Debug, Clone)]
pub struct MfaConfig {
    /// `GOTRUE_MFA_CHALLENGE_EXPIRY_DURATION` (seconds; at least and by default 300)
    pub challenge_expiry: Duration,
    /// `GOTRUE_MFA_FACTOR_EXPIRY_DURATION` (at least and by default 300 s): unverified factors
    /// without a challenge that old are removed at the next enrolment.
    pub factor_expiry: Duration,
    /// `GOTRUE_MFA_MAX_ENROLLED_FACTORS` (10)
    pub max_enrolled_factors: u32,
    /// `GOTRUE_MFA_MAX_VERIFIED_FACTORS` (10)
    pub max_verified_factors: u32,
    /// `GOTRUE_MFA_TOTP_{ENROLL,VERIFY}_ENABLED` (both on by default)
    pub totp: FactorSwitches,
    /// `GOTRUE_MFA_PHONE_{ENROLL,VERIFY}_ENABLED` (off by default)
    pub phone: FactorSwitches,
    /// `GOTRUE_MFA_PHONE_OTP_LENGTH` (6, allowed 6 to 10)
    pub phone_otp_length: usize,
    /// `GOTRUE_MFA_PHONE_MAX_FREQUENCY` (60 s; zero means the default): the least time between two
    /// challenges of one phone factor.
    pub phone_max_frequency: Duration,
    /// `GOTRUE_MFA_PHONE_TEMPLATE` (`Your code is {{ .Code }}`)
    pub phone_template: String,
    /// `GOTRUE_MFA_WEB_AUTHN_{ENROLL,VERIFY}_ENABLED` (off by default)
    pub web_authn: FactorSwitches,
}

/// The relying party WebAuthn factors and passkeys are registered with (`GOTRUE_WEBAUTHN_*`). As in
/// GoTrue, all three must be set to use them; a missing one is reported when a ceremony starts.
#[derive(Debug, Clone, Default)]
pub struct WebAuthnConfig {
    /// `GOTRUE_WEBAUTHN_RP_ID`: the domain credentials are bound to.
    pub rp_id: String,
    /// `GOTRUE_WEBAUTHN_RP_DISPLAY_NAME`
    pub rp_display_name: String,
    /// `GOTRUE_WEBAUTHN_RP_ORIGINS`: comma-separated origins the ceremonies may come from.
    pub rp_origins: Vec<String>,
    /// `GOTRUE_WEBAUTHN_CHALLENGE_EXPIRY_DURATION` (5m): how long a passkey ceremony may take.
    pub challenge_expiry: Duration,
}

/// Whether one factor type may be enrolled and challenged/verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactorSwitches {
    pub enroll: bool,
    pub verify: bool,
}

#[derive(Debug, Clone)]
pub struct SessionsConfig {
    /// `GOTRUE_SESSIONS_TIMEBOX`: sessions end this long after they began.
    pub timebox: Option<Duration>,
    /// `GOTRUE_SESSIONS_INACTIVITY_TIMEOUT`: sessions end when not refreshed for this long.
    pub inactivity_timeout: Option<Duration>,
    /// `GOTRUE_SESSIONS_ALLOW_LOW_AAL`
    pub allow_low_aal: Option<Duration>,
    /// `GOTRUE_SESSIONS_SINGLE_PER_USER`
    pub single_per_user: bool,
    /// `GOTRUE_SESSIONS_TAGS`
    pub tags: Vec<String>,
}

/// Per-IP request limits: requests allowed per `window` with a `burst` bucket (GoTrue's tollbooth).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IpRateLimit {
    pub per_window: f64,
    pub window: Duration,
    pub burst: f64,
}

#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    /// `GOTRUE_RATE_LIMIT_HEADER`: the header carrying the client IP. Without it (and without
    /// `Sb-Forwarded-For` when enabled) GoTrue applies no per-IP limit, and neither do we.
    pub header: Option<String>,
    /// `GOTRUE_RATE_LIMIT_TOKEN_REFRESH` (150 per 5 min, burst 30): `/token`
    pub token: IpRateLimit,
    /// `GOTRUE_RATE_LIMIT_OTP` (30 per 5 min, burst 30): `/signup`, `PUT /user`, `/otp`, `/recover`, ...
    pub otp: IpRateLimit,
    /// `GOTRUE_RATE_LIMIT_ANONYMOUS_USERS` (30 per hour, burst = N): anonymous `/signup`
    pub anonymous_users: IpRateLimit,
    /// `GOTRUE_RATE_LIMIT_VERIFY` (30 per 5 min, burst 30): `/verify`
    pub verify: IpRateLimit,
    /// `GOTRUE_MFA_RATE_LIMIT_CHALLENGE_AND_VERIFY` (15 per minute, burst 30): each of
    /// `/factors/{id}/challenge` and `/factors/{id}/verify`
    pub mfa_challenge_and_verify: IpRateLimit,
    /// `GOTRUE_RATE_LIMIT_PASSKEY` (30 per 5 min, burst 30): `/passkeys/authentication/options`
    pub passkey: IpRateLimit,
    /// `GOTRUE_RATE_LIMIT_EMAIL_SENT` (30 per hour): emails the whole project may send.
    pub email_sent: SendRate,
    /// `GOTRUE_RATE_LIMIT_SMS_SENT` (30 per hour): SMS the whole project may send.
    pub sms_sent: SendRate,
}

/// A project-wide send budget in GoTrue's syntax: `N` allows N per fixed hour window; `N/duration`
/// is a bucket of N that refills one per `duration`. 0 allows nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SendRate {
    Interval { events: f64, window: Duration },
    Burst { events: u64, refill_every: Duration },
}

#[derive(Debug, Clone)]
pub struct SamlConfig {
    /// `GOTRUE_SAML_ENABLED`
    pub enabled: bool,
    /// Whether `GOTRUE_SAML_PRIVATE_KEY_NEXT` is set (reported by `/settings`).
    pub private_key_next_configured: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `GOTRUE_LOG_LEVEL` (default `info`); `RUST_LOG`, when set, takes precedence.
    pub level: String,
    /// `AUTH_LOG_FORMAT`: `text` (default) or `json`.
    pub format: LogFormat,
}

#[derive(Debug, Clone)]
pub struct TracingConfig {
    /// `GOTRUE_TRACING_ENABLED`: export spans over OTLP.
    pub enabled: bool,
    /// `GOTRUE_TRACING_SERVICE_NAME` prefix; each process appends its own name.
    pub service_name: String,
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT` (default `http://localhost:4317`).
    pub otlp_endpoint: String,
}

/// Prometheus metrics, with GoTrue's variables.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// `GOTRUE_METRICS_ENABLED` (default false) with `GOTRUE_METRICS_EXPORTER=prometheus` (the only
    /// exporter the suite offers): each process serves its metrics on a port of its own.
    pub enabled: bool,
    /// `OTEL_EXPORTER_PROMETHEUS_HOST` (default 0.0.0.0) and `OTEL_EXPORTER_PROMETHEUS_PORT` (default
    /// 9100): where `/` and `/metrics` answer. Never the API's public port.
    pub listen: std::net::SocketAddr,
}

/// Suite-only wiring: where the services listen and are reached, and the NATS server.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// `AUTH_TOKEN_URL` etc.: gRPC endpoints of the services, e.g. `http://127.0.0.1:50051`.
    pub token_url: String,
    pub user_url: String,
    pub mfa_url: String,
    pub sso_url: String,
    pub notification_url: String,
    /// `AUTH_GRPC_CONNECT_TIMEOUT` (default 1s): a service that is down is reported quickly.
    pub grpc_connect_timeout: Duration,
    /// `AUTH_GRPC_TIMEOUT` (default 10s): upper bound on any one RPC.
    pub grpc_timeout: Duration,
    /// `NATS_URL` (default `nats://127.0.0.1:4222`; `nats://user:password@host` works too)
    pub nats_url: String,
    /// How the suite proves itself to NATS (`NATS_CREDS`, `NATS_USER`/`NATS_PASSWORD`, `NATS_TOKEN`,
    /// `NATS_TLS_CA`, `NATS_TLS_REQUIRED`).
    pub nats_auth: NatsAuth,
    /// `AUTH_NATS_PREFIX` (default `auth`): prefix of every subject and stream, so that several suites
    /// (or tests) share one NATS server without seeing each other.
    pub nats_prefix: String,
    /// `AUTH_NOTIFY_MAX_ATTEMPTS` (default 8): deliveries tried per message before it is dead-lettered.
    pub notify_max_attempts: u32,
    /// `AUTH_OTP_MAX_FAILURES` (default 5, 0 = no limit): wrong one-time codes presented for one user
    /// before every code pending for them dies (GoTrue has no such limit).
    pub otp_max_failures: u32,
    /// `AUTH_MFA_MAX_FAILURES` (default 5, 0 = no limit): wrong codes for one factor, counted across
    /// replicas, before its verifications pause for `AUTH_MFA_LOCKOUT` (GoTrue has no such limit).
    pub mfa_max_failures: u32,
    /// `AUTH_MFA_LOCKOUT` (default 5m): how long a factor refuses verifications after
    /// `AUTH_MFA_MAX_FAILURES` wrong codes.
    pub mfa_lockout: Duration,
    /// `AUTH_MFA_RECOVERY_CODES_ENABLED` (default false): the suite's recovery codes (GoTrue has
    /// none): a user with a verified factor may generate one-time codes that step a session up to
    /// AAL2 in place of a factor.
    pub mfa_recovery_codes_enabled: bool,
    /// `AUTH_MFA_RECOVERY_CODES_COUNT` (default 10, 1 to 50): codes per generated set.
    pub mfa_recovery_codes_count: u32,
    /// `AUTH_NOTIFY_ACK_WAIT` (default 60s): how long a message being sent may stay unacknowledged
    /// before another replica may take it over (a replica that died mid-send).
    pub notify_ack_wait: Duration,
    /// `AUTH_USER_CACHE_TTL` (default 60s; 0 turns the cache off): how long the user service may
    /// answer GET /user from memory. Entries are dropped as soon as Postgres reports a change to the
    /// account (see the user service's `account_cache`); the TTL only bounds the age of an entry.
    pub user_cache_ttl: Duration,
    /// `AUTH_USER_CACHE_CAPACITY` (default 20000): accounts held per user-service replica (each the
    /// size of its GET /user answer, typically 1–2 KiB).
    pub user_cache_capacity: usize,
}

/// Every problem found while loading, each naming its variable.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

/// What a process requires beyond the settings every process reads. Each process is checked for
/// what it uses: the gateway reaches no database and signs or verifies no token, so it starts
/// without `DATABASE_URL` and `GOTRUE_JWT_SECRET` (it is never given them in the deploy files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// `DATABASE_URL` (or `GOTRUE_DB_DATABASE_URL`) must be set.
    pub database: bool,
    /// `GOTRUE_JWT_SECRET` must be set.
    pub jwt_secret: bool,
}

impl Needs {
    /// The gRPC services: Postgres, and the key that signs and verifies tokens.
    pub const SERVICE: Self = Self {
        database: true,
        jwt_secret: true,
    };
    /// The gateway: only what every process reads (the public URLs, limits, feature switches).
    pub const NOTHING_MORE: Self = Self {
        database: false,
        jwt_secret: false,
    };
}

impl Config {
    /// Loads a service's configuration (see [`Needs::SERVICE`]) from the process environment over an
    /// optional env file (`--env-file`, else `.env` if present).
    pub fn load(env_file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_for(env_file, Needs::SERVICE)
    }

    /// Loads from the process environment over an optional env file, requiring what `needs` says.
    pub fn load_for(env_file: Option<&Path>, needs: Needs) -> Result<Self, ConfigError> {
        let vars = EnvVars::from_process(env_file).map_err(|problem| ConfigError {
            problems: vec![problem],
        })?;
        Self::from_vars(&vars, needs)
    }

    /// Loads a service's configuration from explicit pairs only (tests, embedding).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError> {
        Self::from_pairs_for(pairs, Needs::SERVICE)
    }

    /// Loads from explicit pairs only, requiring what `needs` says.
    pub fn from_pairs_for<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
        needs: Needs,
    ) -> Result<Self, ConfigError> {
        Self::from_vars(&EnvVars::from_pairs(pairs), needs)
    }

    fn from_vars(vars: &EnvVars, needs: Needs) -> Result<Self, ConfigError> {
        let mut r = Reader {
            vars,
            problems: Vec::new(),
        };

        let db_driver = r.string(&["GOTRUE_DB_DRIVER", "DB_DRIVER"], "postgres");
        if db_driver != "postgres" {
            r.problem("GOTRUE_DB_DRIVER", "must be postgres");
        }
        let namespace = r.string(&["GOTRUE_DB_NAMESPACE", "DB_NAMESPACE"], "auth");
        if !is_identifier(&namespace) {
            r.problem(
                "DB_NAMESPACE",
                "must be a plain SQL identifier (letters, digits, underscore)",
            );
        }

        let api = ApiConfig {
            host: r.string(&["GOTRUE_API_HOST", "API_HOST"], ""),
            port: r.parse(&["GOTRUE_API_PORT", "PORT"], 8081u16),
            external_url: r.required_url(&["GOTRUE_API_EXTERNAL_URL", "API_EXTERNAL_URL"]),
            request_id_header: r.optional(&["GOTRUE_API_REQUEST_ID_HEADER", "REQUEST_ID_HEADER"]),
            max_request_duration: r.duration(&["GOTRUE_API_MAX_REQUEST_DURATION"], Duration::from_secs(10)),
            max_connections: r.parse(&["AUTH_HTTP_MAX_CONNECTIONS"], 4096usize).max(1),
            header_read_timeout: r.duration(&["AUTH_HTTP_HEADER_READ_TIMEOUT"], Duration::from_secs(2)),
        };

        let db = DbConfig {
            url: SecretString::from(r.required_if(needs.database, &["GOTRUE_DB_DATABASE_URL", "DATABASE_URL"])),
            namespace,
            max_pool_size: r.parse(&["GOTRUE_DB_MAX_POOL_SIZE"], 0u32),
            conn_max_lifetime: r.optional_duration(&["GOTRUE_DB_CONN_MAX_LIFETIME"]),
            conn_max_idle_time: r.optional_duration(&["GOTRUE_DB_CONN_MAX_IDLE_TIME"]),
        };

        let jwt = JwtConfig {
            secret: SecretString::from(r.required_if(needs.jwt_secret, &["GOTRUE_JWT_SECRET"])),
            exp: r.parse(&["GOTRUE_JWT_EXP"], 3600u64),
            aud: r.string(&["GOTRUE_JWT_AUD"], "authenticated"),
            admin_roles: r.list(&["GOTRUE_JWT_ADMIN_ROLES"], &["service_role", "supabase_admin"]),
            default_group_name: r.string(&["GOTRUE_JWT_DEFAULT_GROUP_NAME"], "authenticated"),
            admin_group_name: r.string(&["GOTRUE_JWT_ADMIN_GROUP_NAME"], "admin"),
            issuer: r.optional(&["GOTRUE_JWT_ISSUER"]),
            key_id: r.optional(&["GOTRUE_JWT_KEY_ID"]),
            keys: r.jwks(&["GOTRUE_JWT_KEYS"]),
            valid_methods: r.list(&["GOTRUE_JWT_VALID_METHODS"], &[]),
        };

        let providers = OAUTH_PROVIDERS
            .iter()
            .map(|&(key, env)| {
                let name = |field: &str| format!("GOTRUE_EXTERNAL_{env}_{field}");
                let provider = OAuthProviderConfig {
                    enabled: r.bool(&[&name("ENABLED")], false),
                    client_ids: r.list(&[&name("CLIENT_ID")], &[]),
                    secret: r.optional(&[&name("SECRET")]).map(SecretString::from),
                    redirect_uri: r.optional(&[&name("REDIRECT_URI")]),
                    url: r.optional(&[&name("URL")]),
                    email_optional: r.bool(&[&name("EMAIL_OPTIONAL")], false),
                    skip_nonce_check: r.bool(&[&name("SKIP_NONCE_CHECK")], false),
                };
                (key, provider)
            })
            .collect();

        let external = ExternalConfig {
            email_enabled: r.bool(&["GOTRUE_EXTERNAL_EMAIL_ENABLED"], true),
            phone_enabled: r.bool(&["GOTRUE_EXTERNAL_PHONE_ENABLED"], false),
            anonymous_users_enabled: r.bool(&["GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED"], false),
            magic_link_enabled: r.bool(&["GOTRUE_EXTERNAL_EMAIL_MAGIC_LINK_ENABLED"], true),
            web3_solana_enabled: r.bool(&["GOTRUE_EXTERNAL_WEB3_SOLANA_ENABLED"], false),
            web3_ethereum_enabled: r.bool(&["GOTRUE_EXTERNAL_WEB3_ETHEREUM_ENABLED"], false),
            allowed_id_token_issuers: r.list(
                &["GOTRUE_EXTERNAL_ALLOWED_ID_TOKEN_ISSUERS"],
                &["https://appleid.apple.com", "https://accounts.google.com"],
            ),
            flow_state_expiry: r
                .duration(&["GOTRUE_EXTERNAL_FLOW_STATE_EXPIRY_DURATION"], FIVE_MINUTES)
                .max(FIVE_MINUTES),
            providers,
            redirect_url: r.optional(&["GOTRUE_EXTERNAL_REDIRECT_URL"]),
            ios_bundle_id: r.optional(&["GOTRUE_EXTERNAL_IOS_BUNDLE_ID"]),
            oidc_provider_cache_ttl: r.duration(&["GOTRUE_EXTERNAL_OIDC_PROVIDER_CACHE_TTL"], ONE_HOUR),
            oidc_issuer_overrides: [
                ("google", "AUTH_EXTERNAL_GOOGLE_ISSUER"),
                ("apple", "AUTH_EXTERNAL_APPLE_ISSUER"),
                ("linkedin_oidc", "AUTH_EXTERNAL_LINKEDIN_OIDC_ISSUER"),
                ("azure", "AUTH_EXTERNAL_AZURE_ISSUER"),
                ("vercel_marketplace", "AUTH_EXTERNAL_VERCEL_MARKETPLACE_ISSUER"),
            ]
            .into_iter()
            .filter_map(|(provider, variable)| r.optional(&[variable]).map(|issuer| (provider, issuer)))
            .collect(),
            oidc_jwks_refresh_interval: r.duration(&["AUTH_OIDC_JWKS_REFRESH_INTERVAL"], ONE_MINUTE),
            provider_linking_domains: r.linking_domains(),
            provider_ca_certs: r.optional(&["AUTH_EXTERNAL_CA_CERTS"]).map(PathBuf::from),
        };

        let log_format = match r.string(&["AUTH_LOG_FORMAT"], "text").as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => {
                r.problem("AUTH_LOG_FORMAT", "must be `text` or `json`");
                LogFormat::Text
            }
        };

        let otlp_protocol = r.string(&["OTEL_EXPORTER_OTLP_PROTOCOL"], "grpc");
        if otlp_protocol != "grpc" {
            r.problem(
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "only `grpc` is supported (point it at the collector's OTLP/gRPC port, 4317)",
            );
        }

        let site_url = r.required_configured_url(&["GOTRUE_SITE_URL"]);
        let nats_prefix = r.string(&["AUTH_NATS_PREFIX"], "auth");
        if !is_identifier(&nats_prefix.replace('-', "_")) {
            r.problem("AUTH_NATS_PREFIX", "must contain only letters, digits, `_` and `-`");
        }

        let config = Config {
            api,
            site_url,
            uri_allow_list: r.list(&["GOTRUE_URI_ALLOW_LIST"], &[]),
            disable_signup: r.bool(&["GOTRUE_DISABLE_SIGNUP"], false),
            experimental_cursor_pagination: r.bool(&["GOTRUE_EXPERIMENTAL_CURSOR_PAGINATION_ENABLED"], false),
            cors_allowed_headers: r.list(&["GOTRUE_CORS_ALLOWED_HEADERS"], &[]),
            db,
            jwt,
            external,
            mailer: MailerConfig {
                autoconfirm: r.bool(&["GOTRUE_MAILER_AUTOCONFIRM"], false),
                allow_unverified_email_sign_ins: r.bool(&["GOTRUE_MAILER_ALLOW_UNVERIFIED_EMAIL_SIGN_INS"], false),
                secure_email_change_enabled: r.bool(&["GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED"], true),
                otp_length: r.otp_length(&["GOTRUE_MAILER_OTP_LENGTH"]),
                otp_exp: Duration::from_secs(r.parse(&["GOTRUE_MAILER_OTP_EXP"], 86_400u64)),
                max_frequency: r.duration(&["GOTRUE_SMTP_MAX_FREQUENCY"], Duration::from_secs(60)),
                subjects: r.per_email_kind("GOTRUE_MAILER_SUBJECTS"),
                templates: r.per_email_kind("GOTRUE_MAILER_TEMPLATES"),
                template_max_size: r.parse(&["GOTRUE_MAILER_TEMPLATE_MAX_SIZE"], 1_000_000usize),
                template_max_age: r.duration(&["GOTRUE_MAILER_TEMPLATE_MAX_AGE"], Duration::from_secs(600)),
                template_retry_interval: r
                    .duration(&["GOTRUE_MAILER_TEMPLATE_RETRY_INTERVAL"], Duration::from_secs(10)),
                url_paths: MailerUrlPaths {
                    invite: r.string(&["GOTRUE_MAILER_URLPATHS_INVITE"], "/verify"),
                    confirmation: r.string(&["GOTRUE_MAILER_URLPATHS_CONFIRMATION"], "/verify"),
                    recovery: r.string(&["GOTRUE_MAILER_URLPATHS_RECOVERY"], "/verify"),
                    email_change: r.string(&["GOTRUE_MAILER_URLPATHS_EMAIL_CHANGE"], "/verify"),
                },
                notifications: MailerNotifications {
                    password_changed_enabled: r.bool(&["GOTRUE_MAILER_NOTIFICATIONS_PASSWORD_CHANGED_ENABLED"], false),
                    email_changed_enabled: r.bool(&["GOTRUE_MAILER_NOTIFICATIONS_EMAIL_CHANGED_ENABLED"], false),
                    phone_changed_enabled: r.bool(&["GOTRUE_MAILER_NOTIFICATIONS_PHONE_CHANGED_ENABLED"], false),
                    mfa_factor_enrolled_enabled: r
                        .bool(&["GOTRUE_MAILER_NOTIFICATIONS_MFA_FACTOR_ENROLLED_ENABLED"], false),
                    mfa_factor_unenrolled_enabled: r
                        .bool(&["GOTRUE_MAILER_NOTIFICATIONS_MFA_FACTOR_UNENROLLED_ENABLED"], false),
                    identity_linked_enabled: r.bool(&["GOTRUE_MAILER_NOTIFICATIONS_IDENTITY_LINKED_ENABLED"], false),
                    identity_unlinked_enabled: r
                        .bool(&["GOTRUE_MAILER_NOTIFICATIONS_IDENTITY_UNLINKED_ENABLED"], false),
                },
            },
            smtp: SmtpConfig {
                host: r.string(&["GOTRUE_SMTP_HOST"], ""),
                port: r.parse(&["GOTRUE_SMTP_PORT"], 587u16),
                user: r.string(&["GOTRUE_SMTP_USER"], ""),
                pass: SecretString::from(r.string(&["GOTRUE_SMTP_PASS"], "")),
                admin_email: r.string(&["GOTRUE_SMTP_ADMIN_EMAIL"], ""),
                sender_name: r.string(&["GOTRUE_SMTP_SENDER_NAME"], ""),
            },
            sms: SmsConfig {
                autoconfirm: r.bool(&["GOTRUE_SMS_AUTOCONFIRM"], false),
                provider: r.string(&["GOTRUE_SMS_PROVIDER"], ""),
                otp_length: r.otp_length(&["GOTRUE_SMS_OTP_LENGTH"]),
                otp_exp: Duration::from_secs(r.parse(&["GOTRUE_SMS_OTP_EXP"], 60u64)),
                max_frequency: r.duration(&["GOTRUE_SMS_MAX_FREQUENCY"], Duration::from_secs(60)),
                test_otp: r.test_otps(&["GOTRUE_SMS_TEST_OTP"]),
                test_otp_valid_until: r.timestamp(&["GOTRUE_SMS_TEST_OTP_VALID_UNTIL"]),
                template: r.string(&["GOTRUE_SMS_TEMPLATE"], "Your code is {{ .Code }}"),
                twilio: TwilioConfig {
                    account_sid: r.string(&["GOTRUE_SMS_TWILIO_ACCOUNT_SID"], ""),
                    auth_token: SecretString::from(r.string(&["GOTRUE_SMS_TWILIO_AUTH_TOKEN"], "")),
                    message_service_sid: r.string(&["GOTRUE_SMS_TWILIO_MESSAGE_SERVICE_SID"], ""),
                    content_sid: r.string(&["GOTRUE_SMS_TWILIO_CONTENT_SID"], ""),
                },
                messagebird: MessagebirdConfig {
                    access_key: SecretString::from(r.string(&["GOTRUE_SMS_MESSAGEBIRD_ACCESS_KEY"], "")),
                    originator: r.string(&["GOTRUE_SMS_MESSAGEBIRD_ORIGINATOR"], ""),
                },
                textlocal: TextlocalConfig {
                    api_key: SecretString::from(r.string(&["GOTRUE_SMS_TEXTLOCAL_API_KEY"], "")),
                    sender: r.string(&["GOTRUE_SMS_TEXTLOCAL_SENDER"], ""),
                },
                vonage: VonageConfig {
                    api_key: r.string(&["GOTRUE_SMS_VONAGE_API_KEY"], ""),
                    api_secret: SecretString::from(r.string(&["GOTRUE_SMS_VONAGE_API_SECRET"], "")),
                    from: r.string(&["GOTRUE_SMS_VONAGE_FROM"], ""),
                },
                api_url: r.optional(&["AUTH_SMS_API_URL"]),
            },
            password: PasswordConfig {
                min_length: r.parse(&["GOTRUE_PASSWORD_MIN_LENGTH"], 6usize).max(6),
                required_characters: parse_required_characters(&r.string(&["GOTRUE_PASSWORD_REQUIRED_CHARACTERS"], "")),
            },
            security: SecurityConfig {
                refresh_token_rotation_enabled: r.bool(&["GOTRUE_SECURITY_REFRESH_TOKEN_ROTATION_ENABLED"], true),
                refresh_token_reuse_interval: Duration::from_secs(
                    r.parse(&["GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL"], 0u64),
                ),
                refresh_token_allow_reuse: r.bool(&["GOTRUE_SECURITY_REFRESH_TOKEN_ALLOW_REUSE"], false),
                refresh_token_algorithm_version: r.bounded(
                    &["GOTRUE_SECURITY_REFRESH_TOKEN_ALGORITHM_VERSION"],
                    0u8,
                    0..=2,
                ),
                refresh_token_upgrade_percentage: r.bounded(
                    &["GOTRUE_SECURITY_REFRESH_TOKEN_UPGRADE_PERCENTAGE"],
                    0u8,
                    0..=100,
                ),
                update_password_require_reauthentication: r
                    .bool(&["GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION"], false),
                update_password_require_current_password: r
                    .bool(&["GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_CURRENT_PASSWORD"], false),
                sb_forwarded_for_enabled: r.bool(&["GOTRUE_SECURITY_SB_FORWARDED_FOR_ENABLED"], false),
                manual_linking_enabled: r.bool(&["GOTRUE_SECURITY_MANUAL_LINKING_ENABLED"], false),
                db_encryption: r.db_encryption(),
            },
            sessions: SessionsConfig {
                timebox: r
                    .optional_duration(&["GOTRUE_SESSIONS_TIMEBOX"])
                    .filter(|d| !d.is_zero()),
                inactivity_timeout: r
                    .optional_duration(&["GOTRUE_SESSIONS_INACTIVITY_TIMEOUT"])
                    .filter(|d| !d.is_zero()),
                allow_low_aal: r
                    .optional_duration(&["GOTRUE_SESSIONS_ALLOW_LOW_AAL"])
                    .filter(|d| !d.is_zero()),
                single_per_user: r.bool(&["GOTRUE_SESSIONS_SINGLE_PER_USER"], false),
                tags: r.list(&["GOTRUE_SESSIONS_TAGS"], &[]),
            },
            rate_limit: RateLimitConfig {
                header: r.optional(&["GOTRUE_RATE_LIMIT_HEADER"]),
                token: r.ip_rate(&["GOTRUE_RATE_LIMIT_TOKEN_REFRESH"], 150.0, FIVE_MINUTES, Some(30.0)),
                otp: r.ip_rate(&["GOTRUE_RATE_LIMIT_OTP"], 30.0, FIVE_MINUTES, Some(30.0)),
                anonymous_users: r.ip_rate(&["GOTRUE_RATE_LIMIT_ANONYMOUS_USERS"], 30.0, ONE_HOUR, None),
                verify: r.ip_rate(&["GOTRUE_RATE_LIMIT_VERIFY"], 30.0, FIVE_MINUTES, Some(30.0)),
                mfa_challenge_and_verify: r.ip_rate(
                    &["GOTRUE_MFA_RATE_LIMIT_CHALLENGE_AND_VERIFY"],
                    15.0,
                    Duration::from_secs(60),
                    Some(30.0),
                ),
                passkey: r.ip_rate(&["GOTRUE_RATE_LIMIT_PASSKEY"], 30.0, FIVE_MINUTES, Some(30.0)),
                email_sent: r.send_rate(&["GOTRUE_RATE_LIMIT_EMAIL_SENT"]),
                sms_sent: r.send_rate(&["GOTRUE_RATE_LIMIT_SMS_SENT"]),
            },
            saml: SamlConfig {
                enabled: r.bool(&["GOTRUE_SAML_ENABLED"], false),
                private_key_next_configured: r.optional(&["GOTRUE_SAML_PRIVATE_KEY_NEXT"]).is_some(),
            },
            custom_oauth: CustomOAuthConfig {
                enabled: r.bool(&["GOTRUE_CUSTOM_OAUTH_ENABLED"], true),
                max_providers: r.parse(&["GOTRUE_CUSTOM_OAUTH_MAX_PROVIDERS"], 0u64),
                external_url: {
                    let url = r.optional(&["GOTRUE_CUSTOM_OAUTH_EXTERNAL_URL"]);
                    if url.as_deref().is_some_and(|u| Url::parse(u).is_err()) {
                        r.problem("GOTRUE_CUSTOM_OAUTH_EXTERNAL_URL", "must be an absolute URL");
                    }
                    url
                },
                allow_private_networks: r.bool(&["AUTH_CUSTOM_OAUTH_ALLOW_PRIVATE_NETWORKS"], false),
            },
            passkey_enabled: r.bool(&["GOTRUE_PASSKEY_ENABLED"], false),
            passkey_max_per_user: r.parse(&["GOTRUE_PASSKEY_MAX_PASSKEYS_PER_USER"], 10),
            webauthn: WebAuthnConfig {
                rp_id: r.string(&["GOTRUE_WEBAUTHN_RP_ID"], ""),
                rp_display_name: r.string(&["GOTRUE_WEBAUTHN_RP_DISPLAY_NAME"], ""),
                rp_origins: r.list(&["GOTRUE_WEBAUTHN_RP_ORIGINS"], &[]),
                challenge_expiry: r.duration(&["GOTRUE_WEBAUTHN_CHALLENGE_EXPIRY_DURATION"], FIVE_MINUTES),
            },
            mfa: MfaConfig {
                // GoTrue raises values below its defaults to them.
                challenge_expiry: Duration::from_secs_f64(
                    r.parse::<f64>(&["GOTRUE_MFA_CHALLENGE_EXPIRY_DURATION"], 300.0)
                        .clamp(300.0, 1e9),
                ),
                factor_expiry: r
                    .duration(&["GOTRUE_MFA_FACTOR_EXPIRY_DURATION"], Duration::from_secs(300))
                    .max(Duration::from_secs(300)),
                max_enrolled_factors: r.parse(&["GOTRUE_MFA_MAX_ENROLLED_FACTORS"], 10),
                max_verified_factors: r.parse(&["GOTRUE_MFA_MAX_VERIFIED_FACTORS"], 10),
                totp: FactorSwitches {
                    enroll: r.bool(&["GOTRUE_MFA_TOTP_ENROLL_ENABLED"], true),
                    verify: r.bool(&["GOTRUE_MFA_TOTP_VERIFY_ENABLED"], true),
                },
                phone: FactorSwitches {
                    enroll: r.bool(&["GOTRUE_MFA_PHONE_ENROLL_ENABLED"], false),
                    verify: r.bool(&["GOTRUE_MFA_PHONE_VERIFY_ENABLED"], false),
                },
                // GoTrue falls back to 6 silently here, unlike for the other code lengths.
                phone_otp_length: match r.parse(&["GOTRUE_MFA_PHONE_OTP_LENGTH"], 6usize) {
                    length @ 6..=10 => length,
                    _ => 6,
                },
                phone_max_frequency: match r.duration(&["GOTRUE_MFA_PHONE_MAX_FREQUENCY"], ONE_MINUTE) {
                    Duration::ZERO => ONE_MINUTE,
                    frequency => frequency,
                },
                phone_template: match r.string(&["GOTRUE_MFA_PHONE_TEMPLATE"], "") {
                    template if template.is_empty() => "Your code is {{ .Code }}".to_string(),
                    template => template,
                },
                web_authn: FactorSwitches {
                    enroll: r.bool(&["GOTRUE_MFA_WEB_AUTHN_ENROLL_ENABLED"], false),
                    verify: r.bool(&["GOTRUE_MFA_WEB_AUTHN_VERIFY_ENABLED"], false),
                },
            },
            log: LogConfig {
                level: r.string(&["GOTRUE_LOG_LEVEL"], "info"),
                format: log_format,
            },
            tracing: TracingConfig {
                enabled: r.bool(&["GOTRUE_TRACING_ENABLED"], false),
                service_name: r.string(&["GOTRUE_TRACING_SERVICE_NAME"], "auth"),
                otlp_endpoint: r.string(
                    &["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"],
                    "http://localhost:4317",
                ),
            },
            metrics: {
                let enabled = r.bool(&["GOTRUE_METRICS_ENABLED"], false);
                let exporter = r.string(&["GOTRUE_METRICS_EXPORTER"], "prometheus");
                if enabled && exporter != "prometheus" {
                    r.problem("GOTRUE_METRICS_EXPORTER", "only `prometheus` is supported");
                }
                let host: std::net::IpAddr = r.parse(&["OTEL_EXPORTER_PROMETHEUS_HOST"], [0, 0, 0, 0].into());
                let port: u16 = r.parse(&["OTEL_EXPORTER_PROMETHEUS_PORT"], 9100);
                MetricsConfig {
                    enabled,
                    listen: std::net::SocketAddr::new(host, port),
                }
            },
            suite: SuiteConfig {
                token_url: r.string(&["AUTH_TOKEN_URL"], "http://127.0.0.1:50051"),
                user_url: r.string(&["AUTH_USER_URL"], "http://127.0.0.1:50052"),
                mfa_url: r.string(&["AUTH_MFA_URL"], "http://127.0.0.1:50053"),
                sso_url: r.string(&["AUTH_SSO_URL"], "http://127.0.0.1:50054"),
                notification_url: r.string(&["AUTH_NOTIFICATION_URL"], "http://127.0.0.1:50055"),
                grpc_connect_timeout: r.duration(&["AUTH_GRPC_CONNECT_TIMEOUT"], Duration::from_secs(1)),
                grpc_timeout: r.duration(&["AUTH_GRPC_TIMEOUT"], Duration::from_secs(10)),
                nats_url: r.string(&["NATS_URL"], "nats://127.0.0.1:4222"),
                nats_auth: NatsAuth {
                    creds_file: r.optional(&["NATS_CREDS"]).map(PathBuf::from),
                    user: r.optional(&["NATS_USER"]),
                    password: r.optional(&["NATS_PASSWORD"]).map(SecretString::from),
                    token: r.optional(&["NATS_TOKEN"]).map(SecretString::from),
                    tls_ca: r.optional(&["NATS_TLS_CA"]).map(PathBuf::from),
                    tls_required: r.bool(&["NATS_TLS_REQUIRED"], false),
                },
                nats_prefix,
                notify_max_attempts: r.bounded(&["AUTH_NOTIFY_MAX_ATTEMPTS"], 8u32, 1..=100),
                otp_max_failures: r.parse(&["AUTH_OTP_MAX_FAILURES"], 5u32),
                mfa_max_failures: r.parse(&["AUTH_MFA_MAX_FAILURES"], 5u32),
                mfa_lockout: r.duration(&["AUTH_MFA_LOCKOUT"], Duration::from_secs(300)),
                mfa_recovery_codes_enabled: r.bool(&["AUTH_MFA_RECOVERY_CODES_ENABLED"], false),
                mfa_recovery_codes_count: r.bounded(&["AUTH_MFA_RECOVERY_CODES_COUNT"], 10u32, 1..=50),
                notify_ack_wait: r
                    .duration(&["AUTH_NOTIFY_ACK_WAIT"], Duration::from_secs(60))
                    .max(Duration::from_secs(1)),
                user_cache_ttl: r.duration(&["AUTH_USER_CACHE_TTL"], Duration::from_secs(60)),
                user_cache_capacity: r.bounded(&["AUTH_USER_CACHE_CAPACITY"], 20_000usize, 1..=100_000_000),
            },
        };

        if r.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems: r.problems })
        }
    }

    /// The OAuth providers GoTrue reports in `/settings.external` (all but `x` and `vercel_marketplace`).
    pub fn provider_enabled(&self, key: &str) -> bool {
        self.external.providers.get(key).is_some_and(|p| p.enabled)
    }
}

const FIVE_MINUTES: Duration = Duration::from_secs(300);
const ONE_HOUR: Duration = Duration::from_secs(3600);
const ONE_MINUTE: Duration = Duration::from_secs(60);

/// GoTrue's `PasswordRequiredCharacters` decoding: sets split on `:`, where a set ending in `\\` is
/// joined to the next one with a literal colon.
fn parse_required_characters(value: &str) -> Vec<String> {
    let mut sets: Vec<String> = Vec::new();
    let mut current = String::new();
    for part in value.split(':') {
        if let Some(escaped) = part.strip_suffix('\\') {
            current.push_str(escaped);
            current.push(':');
        } else {
            current.push_str(part);
            sets.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        sets.push(current);
    }
    sets.retain(|set| !set.is_empty());
    sets
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// The raw variables: an env file overlaid by the process environment.
#[derive(Debug, Default)]
struct EnvVars(HashMap<String, String>);

impl EnvVars {
    fn from_process(env_file: Option<&Path>) -> Result<Self, String> {
        let mut vars = HashMap::new();
        let file = match env_file {
            Some(path) => Some(path.to_path_buf()),
            None => Path::new(".env").exists().then(|| ".env".into()),
        };
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("env file {}: {e}", path.display()))?;
            vars = crate::env_file::parse(&text).map_err(|e| format!("env file {}: {e}", path.display()))?;
        }
        // The environment wins over the file, as in GoTrue.
        vars.extend(std::env::vars());
        resolve_file_variables(&mut vars)?;
        Ok(Self(vars))
    }

    fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

/// Whether `name` is one of the variables the suite reads (GoTrue's and its own): only these may be
/// given as `NAME_FILE`, so unrelated `*_FILE` variables of the environment (`TF_CLI_CONFIG_FILE`, ...)
/// are left alone.
fn is_suite_variable(name: &str) -> bool {
    ["GOTRUE_", "AUTH_", "NATS_", "OTEL_"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        || matches!(
            name,
            "DATABASE_URL" | "API_EXTERNAL_URL" | "DB_NAMESPACE" | "PORT" | "REQUEST_ID_HEADER"
        )
}

/// `NAME_FILE=/path` sets `NAME` to the file's contents (without the final line break) unless `NAME`
/// is set itself: how Kubernetes and Docker hand over secrets as mounted files instead of environment
/// values. `LOG_FILE`/`GOTRUE_LOG_FILE` are GoTrue settings of their own, not references.
fn resolve_file_variables(vars: &mut HashMap<String, String>) -> Result<(), String> {
    let references: Vec<(String, String)> = vars
        .iter()
        .filter(|(name, path)| !path.trim().is_empty() && !matches!(name.as_str(), "LOG_FILE" | "GOTRUE_LOG_FILE"))
        .filter_map(|(name, path)| Some((name.strip_suffix("_FILE")?.to_string(), path.trim().to_string())))
        .filter(|(target, _)| is_suite_variable(target))
        .collect();
    let mut problems = Vec::new();
    for (target, path) in references {
        if vars.get(&target).is_some_and(|value| !value.trim().is_empty()) {
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(contents) => {
                vars.insert(target, contents.trim_end_matches(['\n', '\r']).to_string());
            }
            Err(error) => problems.push(format!("{target}_FILE: cannot read {path}: {error}")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Typed reads over [`EnvVars`]. The first name of a list is the canonical one (used in messages);
/// the rest are GoTrue's aliases. An empty value counts as unset.
struct Reader<'a> {
    vars: &'a EnvVars,
    problems: Vec<String>,
}

impl Reader<'_> {
    fn lookup(&self, names: &[&str]) -> Option<(String, String)> {
        names.iter().find_map(|name| {
            self.vars
                .0
                .get(*name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| ((*name).to_string(), v.trim().to_string()))
        })
    }

    fn problem(&mut self, name: &str, what: &str) {
        self.problems.push(format!("{name}: {what}"));
    }

    fn optional(&self, names: &[&str]) -> Option<String> {
        self.lookup(names).map(|(_, v)| v)
    }

    fn string(&self, names: &[&str], default: &str) -> String {
        self.optional(names).unwrap_or_else(|| default.to_string())
    }

    /// [`Self::required`] when `needed`, else the value or `""`.
    fn required_if(&mut self, needed: bool, names: &[&str]) -> String {
        if needed {
            self.required(names)
        } else {
            self.string(names, "")
        }
    }

    fn required(&mut self, names: &[&str]) -> String {
        self.optional(names).unwrap_or_else(|| {
            self.problem(&names.join(" or "), "is required");
            String::new()
        })
    }

    #[expect(clippy::expect_used, reason = "the fallback is a constant URL")]
    fn required_url(&mut self, names: &[&str]) -> Url {
        let fallback = Url::parse("http://invalid.localhost").expect("static URL");
        match self.lookup(names) {
            None => {
                self.problem(&names.join(" or "), "is required");
                fallback
            }
            Some((name, value)) => Url::parse(&value).unwrap_or_else(|e| {
                self.problem(&name, &format!("is not a valid URL ({e})"));
                fallback
            }),
        }
    }

    #[expect(clippy::expect_used, reason = "the fallback is a constant URL")]
    fn required_configured_url(&mut self, names: &[&str]) -> ConfiguredUrl {
        let fallback = || ConfiguredUrl::parse("http://invalid.localhost").expect("static URL");
        match self.lookup(names) {
            None => {
                self.problem(&names.join(" or "), "is required");
                fallback()
            }
            Some((name, value)) => ConfiguredUrl::parse(&value).unwrap_or_else(|e| {
                self.problem(&name, &format!("is not a valid URL ({e})"));
                fallback()
            }),
        }
    }

    fn parse<T: std::str::FromStr>(&mut self, names: &[&str], default: T) -> T {
        match self.lookup(names) {
            None => default,
            Some((name, value)) => value.parse().unwrap_or_else(|_| {
                self.problem(&name, &format!("`{value}` is not a valid number"));
                default
            }),
        }
    }

    /// Go's `strconv.ParseBool`: 1, t, T, TRUE, true, True and their negatives.
    fn bool(&mut self, names: &[&str], default: bool) -> bool {
        match self.lookup(names) {
            None => default,
            Some((name, value)) => match value.as_str() {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
                "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
                _ => {
                    self.problem(&name, &format!("`{value}` is not a boolean"));
                    default
                }
            },
        }
    }

    /// Go's `time.ParseDuration` syntax (`10s`, `1h30m`, `1.5h`, `300ms`).
    fn optional_duration(&mut self, names: &[&str]) -> Option<Duration> {
        let (name, value) = self.lookup(names)?;
        match go_parse_duration::parse_duration(&value) {
            Ok(nanos) if nanos >= 0 => Some(Duration::from_nanos(nanos.unsigned_abs())),
            _ => {
                self.problem(&name, &format!("`{value}` is not a duration like 10s or 1h30m"));
                None
            }
        }
    }

    fn duration(&mut self, names: &[&str], default: Duration) -> Duration {
        self.optional_duration(names).unwrap_or(default)
    }

    /// `<prefix>_INVITE`, `<prefix>_CONFIRMATION`, ... one per kind of email.
    fn per_email_kind(&self, prefix: &str) -> PerEmailKind {
        let get = |kind: &str| self.optional(&[&format!("{prefix}_{kind}")]);
        PerEmailKind {
            invite: get("INVITE"),
            confirmation: get("CONFIRMATION"),
            recovery: get("RECOVERY"),
            magic_link: get("MAGIC_LINK"),
            email_change: get("EMAIL_CHANGE"),
            reauthentication: get("REAUTHENTICATION"),
            password_changed_notification: get("PASSWORD_CHANGED_NOTIFICATION"),
            email_changed_notification: get("EMAIL_CHANGED_NOTIFICATION"),
            phone_changed_notification: get("PHONE_CHANGED_NOTIFICATION"),
            mfa_factor_enrolled_notification: get("MFA_FACTOR_ENROLLED_NOTIFICATION"),
            mfa_factor_unenrolled_notification: get("MFA_FACTOR_UNENROLLED_NOTIFICATION"),
            identity_linked_notification: get("IDENTITY_LINKED_NOTIFICATION"),
            identity_unlinked_notification: get("IDENTITY_UNLINKED_NOTIFICATION"),
        }
    }

    /// GoTrue's `conf.Rate`: a number (per hour) or `N/duration`.
    fn send_rate(&mut self, names: &[&str]) -> SendRate {
        let default = SendRate::Interval {
            events: 30.0,
            window: ONE_HOUR,
        };
        let Some((name, value)) = self.lookup(names) else {
            return default;
        };
        if let Ok(events) = value.parse::<f64>() {
            return SendRate::Interval {
                events,
                window: ONE_HOUR,
            };
        }
        let parsed = value.split_once('/').and_then(|(events, over)| {
            let events = events.parse::<u64>().ok()?;
            let nanos = go_parse_duration::parse_duration(over).ok()?;
            let refill_every = if nanos > 0 {
                Duration::from_nanos(nanos.unsigned_abs())
            } else {
                ONE_HOUR
            };
            Some(SendRate::Burst { events, refill_every })
        });
        parsed.unwrap_or_else(|| {
            self.problem(&name, &format!("`{value}` is not a rate like 30 or 10/1m"));
            default
        })
    }

    /// `phone:code` pairs separated by commas; phones lose `+` and spaces as GoTrue stores them.
    fn test_otps(&mut self, names: &[&str]) -> HashMap<String, String> {
        let mut otps = HashMap::new();
        for pair in self.list(names, &[]) {
            match pair.split_once(':') {
                Some((phone, code)) => {
                    let phone = phone.trim().trim_start_matches('+').replace(' ', "");
                    otps.insert(phone, code.trim().to_string());
                }
                None => self.problem(names[0], &format!("`{pair}` is not phone:code")),
            }
        }
        otps
    }

    fn timestamp(&mut self, names: &[&str]) -> Option<chrono::DateTime<chrono::Utc>> {
        let (name, value) = self.lookup(names)?;
        match chrono::DateTime::parse_from_rfc3339(&value) {
            Ok(at) => Some(at.to_utc()),
            Err(_) => {
                self.problem(&name, &format!("`{value}` is not an RFC 3339 time"));
                None
            }
        }
    }

    /// Comma-separated list, items trimmed, empty items dropped.
    /// GoTrue's `ProviderLinkingDomains` decoding plus the deprecated own-domain list backfilled
    /// (explicit pairs win).
    fn linking_domains(&mut self) -> BTreeMap<String, String> {
        const PAIRS: &str = "GOTRUE_EXPERIMENTAL_PROVIDER_LINKING_DOMAINS";
        let mut domains = BTreeMap::new();
        for pair in self.list(&[PAIRS], &[]) {
            match pair.split_once('=').map(|(p, d)| (p.trim(), d.trim())) {
                Some((provider, domain)) if !provider.is_empty() && !domain.is_empty() => {
                    domains.insert(provider.to_string(), domain.to_string());
                }
                _ => self.problem(PAIRS, &format!("invalid pair {pair:?}, expected provider=domain")),
            }
        }
        for provider in self.list(&["GOTRUE_EXPERIMENTAL_PROVIDERS_WITH_OWN_LINKING_DOMAIN"], &[]) {
            domains.entry(provider.clone()).or_insert(provider);
        }
        domains
    }

    /// GoTrue's `DatabaseEncryptionConfiguration.Validate`: 256-bit keys (43 base64url characters),
    /// and the encryption key among the decryption keys.
    fn db_encryption(&mut self) -> DbEncryptionConfig {
        const PREFIX: &str = "GOTRUE_SECURITY_DB_ENCRYPTION_";
        let is_256_bit_key =
            |key: &str| key.len() == 43 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let encrypt = self.bool(&[&format!("{PREFIX}ENCRYPT")], false);
        let encryption_key_id = self.string(&[&format!("{PREFIX}ENCRYPTION_KEY_ID")], "");
        let encryption_key = self.optional(&[&format!("{PREFIX}ENCRYPTION_KEY")]);
        let mut decryption_keys = BTreeMap::new();
        for pair in self.list(&[&format!("{PREFIX}DECRYPTION_KEYS")], &[]) {
            match pair.split_once(':') {
                Some((id, key)) if is_256_bit_key(key) => {
                    decryption_keys.insert(id.to_string(), SecretString::from(key.to_string()));
                }
                _ => self.problem(
                    &format!("{PREFIX}DECRYPTION_KEYS"),
                    &format!(
                        "each entry must be `key_id:key` with a 256-bit base64url key (entry `{}`)",
                        pair.split(':').next().unwrap_or_default()
                    ),
                ),
            }
        }
        if encrypt {
            if encryption_key_id.is_empty() {
                self.problem(&format!("{PREFIX}ENCRYPTION_KEY_ID"), "must be set when encrypting");
            }
            if !encryption_key.as_deref().is_some_and(is_256_bit_key) {
                self.problem(
                    &format!("{PREFIX}ENCRYPTION_KEY"),
                    "must be a 256-bit key, base64url without padding",
                );
            }
            if !decryption_keys.contains_key(&encryption_key_id) {
                self.problem(
                    &format!("{PREFIX}DECRYPTION_KEYS"),
                    "must hold the encryption key under its key id",
                );
            }
        }
        DbEncryptionConfig {
            encrypt,
            encryption_key_id,
            encryption_key: encryption_key.map(SecretString::from),
            decryption_keys,
        }
    }

    fn list(&self, names: &[&str], default: &[&str]) -> Vec<String> {
        match self.optional(names) {
            None => default.iter().map(|s| s.to_string()).collect(),
            Some(value) => value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    fn bounded<T>(&mut self, names: &[&str], default: T, range: std::ops::RangeInclusive<T>) -> T
    where
        T: std::str::FromStr + PartialOrd + Copy + fmt::Display,
    {
        let value = self.parse(names, default);
        if range.contains(&value) {
            value
        } else {
            self.problem(
                names[0],
                &format!("must be between {} and {}", range.start(), range.end()),
            );
            default
        }
    }

    fn otp_length(&mut self, names: &[&str]) -> usize {
        self.bounded(names, 6usize, 6..=10)
    }

    /// A per-IP limit: a number of requests per `window`; burst defaults to the number itself.
    fn ip_rate(&mut self, names: &[&str], default: f64, window: Duration, burst: Option<f64>) -> IpRateLimit {
        let per_window: f64 = self.parse(names, default);
        if per_window.is_nan() || per_window < 0.0 {
            self.problem(names[0], "must be a non-negative number");
        }
        IpRateLimit {
            per_window,
            window,
            burst: burst.unwrap_or(per_window),
        }
    }

    fn jwks(&mut self, names: &[&str]) -> Vec<serde_json::Map<String, serde_json::Value>> {
        let Some((name, value)) = self.lookup(names) else {
            return Vec::new();
        };
        match serde_json::from_str::<Vec<serde_json::Map<String, serde_json::Value>>>(&value) {
            Ok(keys) => {
                let signing = keys
                    .iter()
                    .filter(|k| {
                        k.get("key_ops")
                            .and_then(|ops| ops.as_array())
                            .is_some_and(|ops| ops.iter().any(|op| op == "sign"))
                    })
                    .count();
                if !keys.is_empty() && signing != 1 {
                    self.problem(&name, "exactly one key must have \"sign\" in its key_ops");
                }
                keys
            }
            Err(e) => {
                self.problem(&name, &format!("is not a JSON array of JWKs ({e})"));
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_variables_read_secrets_from_mounted_files() {
        let dir = std::env::temp_dir().join(format!("file-vars-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let secret = dir.join("jwt");
        std::fs::write(&secret, "from-a-file-0123456789-0123456789\n").expect("write");
        let mut vars: HashMap<String, String> = [
            ("GOTRUE_JWT_SECRET_FILE", secret.to_string_lossy().to_string()),
            ("DATABASE_URL", "postgres://set-directly".to_string()),
            ("DATABASE_URL_FILE", "/nonexistent/ignored-because-set".to_string()),
            ("GOTRUE_LOG_FILE", "/var/log/gotrue.log".to_string()),
            ("TF_CLI_CONFIG_FILE", "/nonexistent/not-ours".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        resolve_file_variables(&mut vars).expect("resolves");
        assert_eq!(vars["GOTRUE_JWT_SECRET"], "from-a-file-0123456789-0123456789");
        assert_eq!(vars["DATABASE_URL"], "postgres://set-directly");
        assert!(
            !vars.contains_key("GOTRUE_LOG"),
            "LOG_FILE is a setting, not a reference"
        );
        let mut missing: HashMap<String, String> =
            [("NATS_PASSWORD_FILE".to_string(), "/nonexistent/secret".to_string())]
                .into_iter()
                .collect();
        let error = resolve_file_variables(&mut missing).expect_err("unreadable");
        assert!(error.contains("NATS_PASSWORD_FILE"), "{error}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    use super::*;

    fn minimal() -> Vec<(&'static str, &'static str)> {
        vec![
            ("GOTRUE_SITE_URL", "http://localhost:3000"),
            ("API_EXTERNAL_URL", "http://localhost:9999"),
            ("DATABASE_URL", "postgres://postgres@127.0.0.1/postgres"),
            ("GOTRUE_JWT_SECRET", "secret-secret-secret-secret-secret"),
        ]
    }

    #[test]
    fn defaults_follow_gotrue() {
        let config = Config::from_pairs(minimal()).expect("valid");
        assert_eq!(config.api.port, 8081);
        assert_eq!(config.db.namespace, "auth");
        assert_eq!(config.jwt.exp, 3600);
        assert_eq!(config.jwt.admin_roles, ["service_role", "supabase_admin"]);
        assert!(config.external.email_enabled);
        assert!(!config.external.phone_enabled);
        assert!(!config.disable_signup);
        assert_eq!(config.api.max_request_duration, Duration::from_secs(10));
        assert_eq!(config.suite.nats_prefix, "auth");
        assert_eq!(config.password.min_length, 6);
        assert!(config.security.refresh_token_rotation_enabled);
        assert_eq!(config.security.refresh_token_algorithm_version, 0);
        assert_eq!(config.rate_limit.token.per_window, 150.0);
        assert_eq!(config.rate_limit.token.burst, 30.0);
        assert_eq!(config.rate_limit.anonymous_users.burst, 30.0);
        let mfa = &config.mfa;
        assert_eq!(mfa.challenge_expiry, Duration::from_secs(300));
        assert_eq!(mfa.factor_expiry, Duration::from_secs(300));
        assert_eq!((mfa.max_enrolled_factors, mfa.max_verified_factors), (10, 10));
        assert_eq!((mfa.totp.enroll, mfa.totp.verify), (true, true));
        assert_eq!((mfa.phone.enroll, mfa.web_authn.verify), (false, false));
        assert_eq!(mfa.phone_otp_length, 6);
        assert_eq!(mfa.phone_max_frequency, Duration::from_secs(60));
        assert_eq!(mfa.phone_template, "Your code is {{ .Code }}");
        assert_eq!(config.rate_limit.mfa_challenge_and_verify.per_window, 15.0);
        assert_eq!(config.rate_limit.mfa_challenge_and_verify.burst, 30.0);
        assert!(!config.mailer.notifications.mfa_factor_enrolled_enabled);
    }

    #[test]
    fn mfa_phone_settings_fall_back_as_gotrue_does() {
        let mut pairs = minimal();
        pairs.extend([
            ("GOTRUE_MFA_PHONE_MAX_FREQUENCY", "0s"),
            ("GOTRUE_MFA_PHONE_OTP_LENGTH", "12"),
            ("GOTRUE_MFA_PHONE_TEMPLATE", ""),
        ]);
        let mfa = Config::from_pairs(pairs).expect("valid").mfa;
        assert_eq!(mfa.phone_max_frequency, Duration::from_secs(60));
        assert_eq!(mfa.phone_otp_length, 6);
        assert_eq!(mfa.phone_template, "Your code is {{ .Code }}");
    }

    #[test]
    fn mfa_expiries_are_raised_to_gotrues_minimum() {
        let mut pairs = minimal();
        pairs.push(("GOTRUE_MFA_CHALLENGE_EXPIRY_DURATION", "10"));
        pairs.push(("GOTRUE_MFA_FACTOR_EXPIRY_DURATION", "1m"));
        let config = Config::from_pairs(pairs).expect("valid");
        assert_eq!(config.mfa.challenge_expiry, Duration::from_secs(300));
        assert_eq!(config.mfa.factor_expiry, Duration::from_secs(300));
    }

    #[test]
    fn required_character_sets_split_on_unescaped_colons() {
        assert_eq!(parse_required_characters("abc:ABC:0123"), ["abc", "ABC", "0123"]);
        assert_eq!(parse_required_characters("ab\\:c:d"), ["ab:c", "d"]);
        assert!(parse_required_characters("").is_empty());
    }

    #[test]
    fn aliases_and_prefixed_names_both_work() {
        let mut pairs = minimal();
        pairs.push(("PORT", "9999"));
        pairs.push(("GOTRUE_DB_NAMESPACE", "tenant_a"));
        pairs.push(("GOTRUE_API_MAX_REQUEST_DURATION", "1m30s"));
        pairs.push(("GOTRUE_EXTERNAL_GITHUB_ENABLED", "T"));
        let config = Config::from_pairs(pairs).expect("valid");
        assert_eq!(config.api.port, 9999);
        assert_eq!(config.db.namespace, "tenant_a");
        assert_eq!(config.api.max_request_duration, Duration::from_secs(90));
        assert!(config.provider_enabled("github"));
        assert!(!config.provider_enabled("google"));
    }

    #[test]
    fn every_problem_is_reported_by_variable_name() {
        let err = Config::from_pairs([
            ("GOTRUE_SITE_URL", "not a url"),
            ("PORT", "eighty"),
            ("GOTRUE_DISABLE_SIGNUP", "maybe"),
            ("GOTRUE_API_MAX_REQUEST_DURATION", "10 parsecs"),
            ("DB_NAMESPACE", "auth; drop table users"),
        ])
        .expect_err("invalid");
        let text = err.to_string();
        for name in [
            "GOTRUE_SITE_URL",
            "PORT",
            "GOTRUE_DISABLE_SIGNUP",
            "GOTRUE_API_MAX_REQUEST_DURATION",
            "DB_NAMESPACE",
            "GOTRUE_JWT_SECRET",
            "DATABASE_URL",
            "API_EXTERNAL_URL",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }

    #[test]
    fn jwt_keys_need_exactly_one_signing_key() {
        let mut pairs = minimal();
        pairs.push((
            "GOTRUE_JWT_KEYS",
            r#"[{"kty":"oct","k":"c2VjcmV0","key_ops":["verify"]}]"#,
        ));
        let err = Config::from_pairs(pairs).expect_err("no signing key");
        assert!(err.to_string().contains("GOTRUE_JWT_KEYS"));
    }
}

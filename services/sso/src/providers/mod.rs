//! The external OAuth 2.0 providers, each with GoTrue v2.196's endpoints, default scopes and
//! mapping of the provider's user into identity data (`internal/api/provider/*.go`).
//!
//! A provider is built per request from its `GOTRUE_EXTERNAL_<P>_*` settings (cheap: no I/O), so
//! a misconfiguration is reported where GoTrue reports it: at `/authorize` and `/callback`.

mod apple;
mod azure;
mod bitbucket;
pub mod claims;
pub mod custom;
mod discord;
mod facebook;
mod figma;
mod fly;
mod github;
mod gitlab;
mod google;
mod kakao;
mod keycloak;
mod linkedin;
mod linkedin_oidc;
mod notion;
mod slack;
mod slack_oidc;
mod snapchat;
mod spotify;
mod twitch;
pub mod twitter;
mod vercel_marketplace;
mod workos;
mod x;
mod zoom;

use auth_core::config::OAuthProviderConfig;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, RedirectUrl, Scope,
    TokenResponse, TokenUrl,
};
use secrecy::ExposeSecret;

use crate::http::{ApiError, ProviderHttp};
pub use claims::UserData;

/// The providers built so far, by their GoTrue name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Apple,
    Azure,
    Bitbucket,
    Discord,
    Facebook,
    Figma,
    Fly,
    Github,
    Gitlab,
    Google,
    Kakao,
    Keycloak,
    Linkedin,
    LinkedinOidc,
    Notion,
    Slack,
    SlackOidc,
    Snapchat,
    Spotify,
    Twitch,
    VercelMarketplace,
    Workos,
    X,
    Zoom,
    /// An admin's provider (`custom:<identifier>`), described by [`custom::CustomSettings`].
    Custom,
}

/// How GoTrue sets a provider up: its endpoints (from `_URL` or the provider's hosts), its
/// default scopes, and whether the app's `scopes` are added (some providers ignore them).
pub struct Spec {
    pub endpoints: fn(Option<&str>) -> Result<Endpoints, String>,
    pub scopes: &'static [&'static str],
    pub extra_scopes: bool,
    /// The client's credentials go in the token request's body (Go's `AuthStyleInParams`)
    /// instead of HTTP Basic.
    pub credentials_in_body: bool,
}

/// What some providers add to the authorization URL, and to the code exchange.
fn authorize_params(kind: Kind) -> &'static [(&'static str, &'static str)] {
    match kind {
        // Apple posts the callback (with the user's name, the first time) as a form.
        Kind::Apple => &[("response_mode", "form_post")],
        _ => &[],
    }
}

impl Kind {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "apple" => Kind::Apple,
            "azure" => Kind::Azure,
            "bitbucket" => Kind::Bitbucket,
            "discord" => Kind::Discord,
            "facebook" => Kind::Facebook,
            "figma" => Kind::Figma,
            "fly" => Kind::Fly,
            "github" => Kind::Github,
            "gitlab" => Kind::Gitlab,
            "google" => Kind::Google,
            "kakao" => Kind::Kakao,
            "keycloak" => Kind::Keycloak,
            "linkedin" => Kind::Linkedin,
            "linkedin_oidc" => Kind::LinkedinOidc,
            "notion" => Kind::Notion,
            "slack" => Kind::Slack,
            "slack_oidc" => Kind::SlackOidc,
            "snapchat" => Kind::Snapchat,
            "spotify" => Kind::Spotify,
            "twitch" => Kind::Twitch,
            "vercel_marketplace" => Kind::VercelMarketplace,
            "workos" => Kind::Workos,
            "x" => Kind::X,
            "zoom" => Kind::Zoom,
            _ => return None,
        })
    }

    fn spec(self) -> &'static Spec {
        match self {
            Kind::Apple => &apple::SPEC,
            Kind::Azure => &azure::SPEC,
            Kind::Bitbucket => &bitbucket::SPEC,
            Kind::Discord => &discord::SPEC,
            Kind::Facebook => &facebook::SPEC,
            Kind::Figma => &figma::SPEC,
            Kind::Fly => &fly::SPEC,
            Kind::Github => &github::SPEC,
            Kind::Gitlab => &gitlab::SPEC,
            Kind::Google => &google::SPEC,
            Kind::Kakao => &kakao::SPEC,
            Kind::Keycloak => &keycloak::SPEC,
            Kind::Linkedin => &linkedin::SPEC,
            Kind::LinkedinOidc => &linkedin_oidc::SPEC,
            Kind::Notion => &notion::SPEC,
            Kind::Slack => &slack::SPEC,
            Kind::SlackOidc => &slack_oidc::SPEC,
            Kind::Snapchat => &snapchat::SPEC,
            Kind::Spotify => &spotify::SPEC,
            Kind::Twitch => &twitch::SPEC,
            Kind::VercelMarketplace => &vercel_marketplace::SPEC,
            Kind::Workos => &workos::SPEC,
            Kind::X => &x::SPEC,
            Kind::Zoom => &zoom::SPEC,
            Kind::Custom => &CUSTOM_SPEC,
        }
    }
}

/// Custom providers are built from their row ([`Provider::build_custom`]), never from a spec.
static CUSTOM_SPEC: Spec = Spec {
    endpoints: |_| Err("custom providers are configured through the admin API".into()),
    scopes: &[],
    extra_scopes: false,
    credentials_in_body: false,
};

/// What a provider's user API is called with.
pub struct UserApi<'a> {
    pub http: &'a ProviderHttp,
    /// The base the provider's API paths are appended to.
    pub base: &'a str,
    pub access_token: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    /// The token response's fields beyond the standard ones (WorkOS sends the profile there, OIDC
    /// providers the `id_token`).
    pub token_extra: &'a serde_json::Map<String, serde_json::Value>,
    /// Verifies ID tokens of OIDC providers.
    pub oidc: &'a crate::oidc::OidcCache,
    /// The OIDC issuer of the provider, when it is one.
    pub oidc_issuer: &'a str,
}

/// Where a provider's OAuth endpoints and user API are.
pub struct Endpoints {
    pub authorize: String,
    pub token: String,
    /// The base the user API paths are appended to.
    pub api: String,
}

/// Whatever a token response carries beyond RFC 6749's fields (an OIDC `id_token`, WorkOS's
/// `profile`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ExtraTokenFields {
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl oauth2::ExtraTokenFields for ExtraTokenFields {}

type ProviderTokenResponse = oauth2::StandardTokenResponse<ExtraTokenFields, oauth2::basic::BasicTokenType>;

/// The oauth2 client before its endpoints are set.
type NewClient = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    ProviderTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
>;

/// With the authorization and token endpoints set.
type Client = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    ProviderTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

pub struct Provider {
    kind: Kind,
    client: Client,
    scopes: Vec<String>,
    api: String,
    client_id: String,
    client_secret: String,
    /// The flow may sign in without an email (`GOTRUE_EXTERNAL_<P>_EMAIL_OPTIONAL`, or the custom
    /// provider's `email_optional`).
    pub email_optional: bool,
    custom: Option<custom::CustomSettings>,
}

impl UserApi<'_> {
    /// A GET of the provider's user API with the user's access token.
    pub async fn get<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, ApiError> {
        self.http.get_json(url, self.access_token, &[]).await
    }
}

/// The user of an OIDC provider's code exchange, from its ID token: issued by `call.oidc_issuer`
/// (checked against `expected_issuer` when given), for the client id. No ID token: no user data, as
/// in GoTrue (the sign-in then fails for want of an email).
pub async fn oidc_user_data(
    call: &UserApi<'_>,
    provider: &str,
    expected_issuer: Option<&str>,
) -> Result<UserData, ApiError> {
    match call.token_extra.get("id_token").and_then(|v| v.as_str()) {
        Some(id_token) if !call.access_token.is_empty() => {
            verified_id_token_user(call, id_token, call.oidc_issuer, expected_issuer, provider).await
        }
        _ => Ok(UserData::default()),
    }
}

/// Verifies an ID token of `issuer` for the client and reads its user as `provider`'s.
pub async fn verified_id_token_user(
    call: &UserApi<'_>,
    id_token: &str,
    issuer: &str,
    expected_issuer: Option<&str>,
    provider: &str,
) -> Result<UserData, ApiError> {
    let token = call
        .oidc
        .verify(issuer, true, id_token, expected_issuer, Some(call.access_token))
        .await
        .map_err(|e| ApiError(format!("{provider}'s ID token: {e}")))?;
    if !token.audience.iter().any(|aud| aud == call.client_id) {
        return Err(ApiError(format!("{provider}'s ID token is for another client")));
    }
    crate::oidc::claims::user_data(&token, provider).map_err(ApiError)
}

/// What the code exchange yields.
pub struct ProviderTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// GoTrue's `chooseHost`: the configured URL without a trailing slash, else the provider's host.
fn choose_host(configured: Option<&str>, default_host: &str) -> String {
    match configured {
        Some(url) if !url.is_empty() => url.strip_suffix('/').unwrap_or(url).to_string(),
        _ => format!("https://{default_host}"),
    }
}

impl Provider {
    /// GoTrue's `Provider(name, scopes)`: the error text is what GoTrue puts after
    /// "Unsupported provider: ".
    ///
    /// `discovered`: the endpoints of an OIDC provider's discovery document (Google's), which
    /// replace the spec's.
    pub fn build(
        name: &str,
        config: Option<&OAuthProviderConfig>,
        extra_scopes: &str,
        discovered: Option<Endpoints>,
    ) -> Result<Self, String> {
        let (kind, config) = Self::check_settings(name, config)?;
        let client_id = config.client_ids.first().ok_or("missing OAuth client ID")?;
        let secret = config.secret.as_ref().ok_or("missing OAuth secret")?;
        let redirect_uri = config.redirect_uri.as_deref().ok_or("missing redirect URI")?;

        let spec = kind.spec();
        let endpoints = match discovered {
            Some(endpoints) => endpoints,
            None => (spec.endpoints)(config.url.as_deref())?,
        };
        let mut scopes: Vec<String> = spec.scopes.iter().map(|s| s.to_string()).collect();
        if spec.extra_scopes {
            // GoTrue splits the extra scopes on commas (not spaces) and appends them.
            scopes.extend(extra_scopes.split(',').filter(|s| !s.is_empty()).map(str::to_string));
        }

        let invalid = |what: &str, e: url::ParseError| format!("invalid {what} URL: {e}");
        let client = NewClient::new(ClientId::new(client_id.clone()))
            .set_client_secret(ClientSecret::new(secret.expose_secret().to_string()))
            .set_auth_type(if spec.credentials_in_body {
                oauth2::AuthType::RequestBody
            } else {
                oauth2::AuthType::BasicAuth
            })
            .set_auth_uri(AuthUrl::new(endpoints.authorize).map_err(|e| invalid("authorization", e))?)
            .set_token_uri(TokenUrl::new(endpoints.token).map_err(|e| invalid("token", e))?)
            .set_redirect_uri(RedirectUrl::new(redirect_uri.to_string()).map_err(|e| invalid("redirect", e))?);
        Ok(Self {
            kind,
            client,
            scopes,
            api: endpoints.api,
            client_id: client_id.clone(),
            client_secret: secret.expose_secret().to_string(),
            email_optional: config.email_optional,
            custom: None,
        })
    }

    /// A custom provider (GoTrue's `loadCustomProvider`), from its row's settings and endpoints.
    pub fn build_custom(
        credentials: (String, String),
        redirect_uri: &str,
        scopes: Vec<String>,
        endpoints: &Endpoints,
        email_optional: bool,
        settings: custom::CustomSettings,
    ) -> Result<Self, String> {
        let (client_id, client_secret) = credentials;
        let invalid = |what: &str, e: url::ParseError| format!("invalid {what} URL: {e}");
        let client = NewClient::new(ClientId::new(client_id.clone()))
            .set_client_secret(ClientSecret::new(client_secret.clone()))
            .set_auth_type(oauth2::AuthType::BasicAuth)
            .set_auth_uri(AuthUrl::new(endpoints.authorize.clone()).map_err(|e| invalid("authorization", e))?)
            .set_token_uri(TokenUrl::new(endpoints.token.clone()).map_err(|e| invalid("token", e))?)
            .set_redirect_uri(RedirectUrl::new(redirect_uri.to_string()).map_err(|e| invalid("redirect", e))?);
        Ok(Self {
            kind: Kind::Custom,
            client,
            scopes,
            api: String::new(),
            client_id,
            client_secret,
            email_optional,
            custom: Some(settings),
        })
    }

    /// GoTrue's checks before it builds a provider: known, and `ValidateOAuth`.
    pub fn check_settings<'c>(
        name: &str,
        config: Option<&'c OAuthProviderConfig>,
    ) -> Result<(Kind, &'c OAuthProviderConfig), String> {
        let kind = Kind::from_name(name).ok_or_else(|| format!("Provider {name} could not be found"))?;
        Ok((kind, Self::check_config(name, config)?))
    }

    /// GoTrue's `ValidateOAuth` of a provider's settings (any protocol).
    pub fn check_config<'c>(
        name: &str,
        config: Option<&'c OAuthProviderConfig>,
    ) -> Result<&'c OAuthProviderConfig, String> {
        let config = config.ok_or_else(|| format!("Provider {name} could not be found"))?;
        if !config.enabled {
            return Err("provider is not enabled".into());
        }
        if config.client_ids.is_empty() {
            return Err("missing OAuth client ID".into());
        }
        if config.secret.is_none() {
            return Err("missing OAuth secret".into());
        }
        if config.redirect_uri.is_none() {
            return Err("missing redirect URI".into());
        }
        Ok(config)
    }

    /// Whether the provider requires PKCE from its clients (GoTrue's `RequiresPKCE`).
    pub fn requires_pkce(&self) -> bool {
        self.kind == Kind::X || self.custom.as_ref().is_some_and(|c| c.pkce_enabled)
    }

    /// The provider's authorization URL for a flow (`state` is the flow's id), with the app's
    /// extra query parameters passed on, and the challenge of `pkce_verifier` when the provider
    /// requires PKCE.
    pub fn authorize_url(&self, state: &str, extra: &[(String, String)], pkce_verifier: Option<&str>) -> String {
        let mut request = self
            .client
            .authorize_url(|| CsrfToken::new(state.to_string()))
            .add_scopes(self.scopes.iter().cloned().map(Scope::new));
        for (key, value) in authorize_params(self.kind) {
            request = request.add_extra_param(*key, *value);
        }
        for (key, value) in self.custom.iter().flat_map(|c| c.authorization_params.iter()) {
            request = request.add_extra_param(key.clone(), value.clone());
        }
        if let Some(verifier) = pkce_verifier {
            let verifier = oauth2::PkceCodeVerifier::new(verifier.to_string());
            request = request.set_pkce_challenge(oauth2::PkceCodeChallenge::from_code_verifier_sha256(&verifier));
        }
        for (key, value) in extra {
            request = request.add_extra_param(key.clone(), value.clone());
        }
        // Go's AuthCodeURL appends its parameters, sorted by key, to the query the configured
        // authorization URL already has; so do we, for identical URLs.
        let configured = self.client.auth_uri().url().query_pairs().count();
        let mut url = request.url().0;
        let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        if let Some(added) = pairs.get_mut(configured..) {
            added.sort_by(|a, b| a.0.cmp(&b.0));
        }
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url.to_string()
    }

    /// Trades the callback's code for the provider's tokens.
    pub async fn exchange(
        &self,
        http: &ProviderHttp,
        code: &str,
        pkce_verifier: Option<&str>,
    ) -> Result<ProviderTokens, String> {
        // An owned future per request: the oauth2 crate's client trait is higher-ranked over its borrow.
        let send = |request: oauth2::HttpRequest| {
            let http = http.clone();
            async move { http.send(request).await }
        };
        let mut exchange = self.client.exchange_code(AuthorizationCode::new(code.to_string()));
        if let Some(verifier) = pkce_verifier {
            exchange = exchange.set_pkce_verifier(oauth2::PkceCodeVerifier::new(verifier.to_string()));
        }
        if self.kind == Kind::Apple {
            // GoTrue's Apple exchange repeats the client's credentials as `client_id` and `secret`.
            exchange = exchange
                .add_extra_param("client_id", self.client_id.clone())
                .add_extra_param("secret", self.client_secret.clone());
        }
        let token = match exchange.request_async(&send).await {
            Ok(token) => token,
            // Go's oauth2 auto-detects a custom provider's client authentication: HTTP Basic
            // first, then the credentials in the form when the provider refused.
            Err(oauth2::RequestTokenError::ServerResponse(_)) if self.kind == Kind::Custom => {
                let in_body = self.client.clone().set_auth_type(oauth2::AuthType::RequestBody);
                let mut retry = in_body.exchange_code(AuthorizationCode::new(code.to_string()));
                if let Some(verifier) = pkce_verifier {
                    retry = retry.set_pkce_verifier(oauth2::PkceCodeVerifier::new(verifier.to_string()));
                }
                retry.request_async(&send).await.map_err(|e| describe_token_error(&e))?
            }
            Err(e) => return Err(describe_token_error(&e)),
        };
        Ok(ProviderTokens {
            access_token: token.access_token().secret().clone(),
            refresh_token: token.refresh_token().map(|t| t.secret().clone()).unwrap_or_default(),
            extra: token.extra_fields().fields.clone(),
        })
    }

    pub async fn user_data(
        &self,
        http: &ProviderHttp,
        tokens: &ProviderTokens,
        oidc: &crate::oidc::OidcCache,
        oidc_issuer: &str,
    ) -> Result<UserData, ApiError> {
        let api = UserApi {
            oidc,
            oidc_issuer,
            http,
            base: &self.api,
            access_token: &tokens.access_token,
            token_extra: &tokens.extra,
            client_id: &self.client_id,
            client_secret: &self.client_secret,
        };
        match self.kind {
            Kind::Apple => apple::user_data(&api).await,
            Kind::Azure => azure::user_data(&api).await,
            Kind::Bitbucket => bitbucket::user_data(&api).await,
            Kind::Discord => discord::user_data(&api).await,
            Kind::Facebook => facebook::user_data(&api).await,
            Kind::Figma => figma::user_data(&api).await,
            Kind::Fly => fly::user_data(&api).await,
            Kind::Github => github::user_data(&api).await,
            Kind::Gitlab => gitlab::user_data(&api).await,
            Kind::Google => google::user_data(&api).await,
            Kind::Kakao => kakao::user_data(&api).await,
            Kind::Keycloak => keycloak::user_data(&api).await,
            Kind::Linkedin => linkedin::user_data(&api).await,
            Kind::LinkedinOidc => linkedin_oidc::user_data(&api).await,
            Kind::Notion => notion::user_data(&api).await,
            Kind::Slack => slack::user_data(&api).await,
            Kind::SlackOidc => slack_oidc::user_data(&api).await,
            Kind::Snapchat => snapchat::user_data(&api).await,
            Kind::Spotify => spotify::user_data(&api).await,
            Kind::Twitch => twitch::user_data(&api).await,
            Kind::VercelMarketplace => vercel_marketplace::user_data(&api).await,
            Kind::Workos => workos::user_data(&api).await,
            Kind::X => x::user_data(&api).await,
            Kind::Zoom => zoom::user_data(&api).await,
            Kind::Custom => match &self.custom {
                Some(settings) => custom::user_data(&api, settings).await,
                None => Err(ApiError("a custom provider without its settings".into())),
            },
        }
    }
}

/// The token endpoint's failure, for logs (never the code or a secret).
fn describe_token_error<E: std::error::Error>(
    error: &oauth2::RequestTokenError<E, oauth2::basic::BasicErrorResponse>,
) -> String {
    match error {
        oauth2::RequestTokenError::ServerResponse(response) => format!("token endpoint refused: {response}"),
        oauth2::RequestTokenError::Request(e) => format!("token endpoint unreachable: {e}"),
        oauth2::RequestTokenError::Parse(e, _) => format!("token endpoint answered unreadable JSON: {e}"),
        oauth2::RequestTokenError::Other(e) => format!("token exchange failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled(url: Option<&str>) -> OAuthProviderConfig {
        OAuthProviderConfig {
            enabled: true,
            client_ids: vec!["client".into()],
            secret: Some("secret".to_string().into()),
            redirect_uri: Some("https://auth.example.com/callback".into()),
            url: url.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn misconfigurations_are_named_as_gotrue_names_them() {
        let err = |name, config: Option<&OAuthProviderConfig>| {
            Provider::build(name, config, "", None).err().unwrap_or_default()
        };
        assert_eq!(err("nope", None), "Provider nope could not be found");
        assert_eq!(
            err("github", Some(&OAuthProviderConfig::default())),
            "provider is not enabled"
        );
        let mut config = enabled(None);
        config.secret = None;
        assert_eq!(err("github", Some(&config)), "missing OAuth secret");
        assert_eq!(
            err("keycloak", Some(&enabled(None))),
            "unable to find URL for the Keycloak provider"
        );
    }

    #[test]
    fn the_authorization_url_carries_state_scopes_and_extra_parameters() {
        let provider = Provider::build("github", Some(&enabled(None)), "repo,gist", None).expect("built");
        let url = url::Url::parse(&provider.authorize_url("the-state", &[("login".into(), "octo".into())], None))
            .expect("url");
        assert_eq!(url.path(), "/login/oauth/authorize");
        assert_eq!(url.host_str(), Some("github.com"));
        let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(query["state"], "the-state");
        assert_eq!(query["scope"], "user:email repo gist");
        assert_eq!(query["client_id"], "client");
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["redirect_uri"], "https://auth.example.com/callback");
        assert_eq!(query["login"], "octo");
        let keys: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "sorted as Go's AuthCodeURL writes them");
    }
}

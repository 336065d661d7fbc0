//! A fake OAuth 2.0 provider: one HTTP server answering the token endpoints and user APIs of the
//! providers the suite supports, at the paths each provider uses under its `_URL` setting
//! (GitHub Enterprise's `/login/oauth/*` and `/api/v3/*`, GitLab's `/oauth/*` and `/api/v4/*`,
//! a Keycloak realm's `/protocol/openid-connect/*`, and those of Bitbucket, Discord, Facebook,
//! Figma, Fly, Kakao, Notion, Slack (OIDC), Snapchat, Twitch, WorkOS and Zoom; Spotify's under
//! `/spotify`, since its API and accounts hosts share one `_URL`).
//!
//! A test plays the browser: it asks the gateway's `/authorize`, reads the `state` off the
//! redirect, has the provider [`FakeOAuthProvider::grant`] a code for a user, and calls the
//! gateway's `/callback` with both. The token endpoint checks the client's credentials and the
//! code (once), so a wrong secret or a replayed code fails as a real provider's would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use tokio::net::TcpListener;

mod tls;
mod twitter;

use tls::{serve_tls, test_certificates};
use twitter::{twitter_access_token, twitter_request_token, twitter_user};

/// Who signs in at the provider.
#[derive(Debug, Clone, Default)]
pub struct FakeUser {
    /// The provider's numeric id (GitHub, GitLab) or `sub` (Keycloak: the id as text).
    pub id: i64,
    pub login: String,
    pub name: String,
    pub avatar_url: String,
    /// `(address, verified, primary)`, as GitHub lists them. GitLab and Keycloak report the primary
    /// one as the account's email (GitLab: confirmed when verified).
    pub emails: Vec<(String, bool, bool)>,
    /// Extra claims Keycloak's userinfo adds.
    pub extra_claims: serde_json::Map<String, Value>,
}

impl FakeUser {
    pub fn new(id: i64, email: &str, verified: bool) -> Self {
        Self {
            id,
            login: format!("user{id}"),
            name: format!("User {id}"),
            avatar_url: format!("https://avatars.example/{id}.png"),
            emails: vec![(email.to_string(), verified, true)],
            extra_claims: serde_json::Map::new(),
        }
    }

    fn primary(&self) -> Option<&(String, bool, bool)> {
        self.emails.iter().find(|e| e.2)
    }
}

#[derive(Default)]
struct Shared {
    /// The provider's own URL (its OIDC issuer).
    base_url: String,
    /// The test JWK (`test_jwk` kind) ID tokens are signed with now; every key signed with so far
    /// stays published, as issuers do around a rotation.
    signing_kind: String,
    published_kinds: Vec<String>,
    client_id: String,
    client_secret: String,
    /// Granted codes and the user each signs in.
    codes: HashMap<String, FakeUser>,
    /// The PKCE challenge a code was granted under (RFC 7636, S256), for providers requiring PKCE.
    challenges: HashMap<String, String>,
    /// Issued access tokens.
    tokens: HashMap<String, FakeUser>,
    counter: u64,
    token_requests: u64,
    /// Twitter's OAuth 1.0a request tokens.
    request_tokens: HashMap<String, RequestToken>,
    /// Twitter's access tokens: token → (secret, user).
    access_tokens: HashMap<String, (String, FakeUser)>,
}

/// A Twitter request token: its secret, the consumer's callback, and the user once authorized
/// with the verifier they were given.
type RequestToken = (String, String, Option<(FakeUser, String)>);

#[derive(Clone)]
pub struct FakeOAuthProvider {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    /// `https` when started with [`FakeOAuthProvider::start_tls`].
    scheme: &'static str,
    /// The PEM of the authority that signed the HTTPS certificate.
    ca_pem: Option<String>,
}

impl FakeOAuthProvider {
    /// A provider that knows one client.
    pub async fn start(client_id: &str, client_secret: &str) -> anyhow::Result<Self> {
        Self::start_on(0, client_id, client_secret).await
    }

    /// [`Self::start`] on a given port of 127.0.0.1 (0: any), for servers configured before it starts.
    pub async fn start_on(port: u16, client_id: &str, client_secret: &str) -> anyhow::Result<Self> {
        Self::start_with(port, client_id, client_secret, None).await
    }

    /// [`Self::start`] over HTTPS at `https://localhost:<port>`, with a certificate signed by an
    /// authority of its own ([`Self::ca_pem`], for the suite's `AUTH_EXTERNAL_CA_CERTS`).
    pub async fn start_tls(client_id: &str, client_secret: &str) -> anyhow::Result<Self> {
        let (ca_pem, config) = test_certificates()?;
        let mut provider = Self::start_with(0, client_id, client_secret, Some(config)).await?;
        provider.ca_pem = Some(ca_pem);
        Ok(provider)
    }

    /// The authority that signed the HTTPS certificate (PEM), when serving HTTPS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    async fn start_with(
        port: u16,
        client_id: &str,
        client_secret: &str,
        tls: Option<rustls::ServerConfig>,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let host = if tls.is_some() {
            format!("localhost:{}", addr.port())
        } else {
            addr.to_string()
        };
        let shared = Arc::new(Mutex::new(Shared {
            base_url: format!("{scheme}://{host}"),
            signing_kind: "ec".into(),
            published_kinds: vec!["ec".into()],
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            ..Default::default()
        }));
        let app = Router::new()
            .route("/login/oauth/access_token", post(token))
            .route("/oauth/token", post(token))
            .route("/realms/{realm}/protocol/openid-connect/token", post(token))
            .route("/api/v3/user", get(github_user))
            .route("/api/v3/user/emails", get(github_emails))
            .route("/api/v4/user", get(gitlab_user))
            .route("/api/v4/user/emails", get(gitlab_emails))
            .route(
                "/realms/{realm}/protocol/openid-connect/userinfo",
                get(keycloak_userinfo),
            )
            .route("/site/oauth2/access_token", post(token))
            .route("/2.0/user", get(bitbucket_user))
            .route("/2.0/user/emails", get(bitbucket_emails))
            .route("/api/oauth2/token", post(token))
            .route("/api/users/@me", get(discord_user))
            .route("/oauth/access_token", post(token))
            .route("/me", get(facebook_user))
            .route("/oauth/token/info", get(fly_user))
            .route("/oauth2/token", post(token))
            .route("/helix/users", get(twitch_users))
            .route("/v2/users/me", get(zoom_user))
            .route("/v2/user/me", get(kakao_user))
            .route("/v1/oauth/token", post(token))
            .route("/v1/users/me", get(notion_user))
            .route("/api/openid.connect.token", post(token))
            .route("/api/openid.connect.userInfo", get(slack_user))
            .route("/accounts/oauth2/token", post(token))
            .route("/v1/me", get(figma_or_snapchat_user))
            .route("/spotify/api/token", post(token))
            .route("/spotify/me", get(spotify_user))
            .route("/sso/token", post(token))
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/realms/{realm}/.well-known/openid-configuration", get(realm_discovery))
            .route("/jwks", get(jwks))
            .route("/oidc/token", post(token))
            .route("/oauth/v2/accessToken", post(token))
            .route("/oauth2/v2.0/token", post(token))
            .route("/2/oauth2/token", post(token))
            .route("/api/oauth.access", post(token))
            .route("/v2/me", get(linkedin_profile))
            .route("/v2/emailAddress", get(linkedin_email))
            .route("/2/users/me", get(x_user))
            .route("/oidc/userinfo", get(oidc_userinfo))
            .route(
                "/twitter/oauth/request_token",
                get(twitter_request_token).post(twitter_request_token),
            )
            .route(
                "/twitter/oauth/access_token",
                get(twitter_access_token).post(twitter_access_token),
            )
            .route("/twitter/1.1/account/verify_credentials.json", get(twitter_user))
            .route("/custom/userinfo", get(custom_userinfo))
            .with_state(shared.clone());
        match tls {
            Some(config) => serve_tls(listener, app, config),
            None => {
                tokio::spawn(async move {
                    let _ = axum::serve(listener, app).await;
                });
            }
        }
        Ok(Self {
            addr,
            shared,
            scheme,
            ca_pem: None,
        })
    }

    pub fn base_url(&self) -> String {
        match self.scheme {
            "https" => format!("https://localhost:{}", self.addr.port()),
            _ => format!("http://{}", self.addr),
        }
    }

    /// A one-time authorization code that signs `user` in.
    pub fn grant(&self, user: &FakeUser) -> String {
        let mut shared = self.shared.lock().expect("fake provider state");
        shared.counter += 1;
        let code = format!("code-{}", shared.counter);
        shared.codes.insert(code.clone(), user.clone());
        code
    }

    /// A code granted under a PKCE challenge: the exchange must bring its verifier.
    pub fn grant_pkce(&self, user: &FakeUser, code_challenge: &str) -> String {
        let code = self.grant(user);
        let mut shared = self.shared.lock().expect("fake provider state");
        shared.challenges.insert(code.clone(), code_challenge.to_string());
        code
    }

    /// An ID token with `claims`, signed by the provider's current key (ES256 at first). The
    /// provider is an OIDC issuer at [`Self::base_url`] (and, for Keycloak, at its realms).
    pub fn id_token(&self, claims: &Value) -> String {
        let kind = self.shared.lock().expect("fake provider state").signing_kind.clone();
        sign_with(&kind, claims)
    }

    /// Rotates the signing key (to RS256): the new key is published beside the old one.
    pub fn rotate_keys(&self) {
        let mut shared = self.shared.lock().expect("fake provider state");
        shared.signing_kind = "rsa".into();
        shared.published_kinds.push("rsa".into());
    }

    /// Twitter (OAuth 1.0a, under `/twitter`): `user` authorizes the request token the suite got
    /// at `/authorize` (the `oauth_token` of its redirect); the callback URL the browser is then
    /// sent to (the suite's, with its `state`, plus `oauth_token` and `oauth_verifier`).
    pub fn twitter_authorize(&self, request_token: &str, user: &FakeUser) -> Option<String> {
        let mut shared = self.shared.lock().expect("fake provider state");
        shared.counter += 1;
        let verifier = format!("verifier-{}", shared.counter);
        let (_, callback, authorized) = shared.request_tokens.get_mut(request_token)?;
        *authorized = Some((user.clone(), verifier.clone()));
        let separator = if callback.contains('?') { '&' } else { '?' };
        Some(format!(
            "{callback}{separator}oauth_token={request_token}&oauth_verifier={verifier}"
        ))
    }

    /// How many code exchanges were attempted.
    pub fn token_requests(&self) -> u64 {
        self.shared.lock().expect("fake provider state").token_requests
    }
}

fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// RFC 6749 §2.3.1: HTTP Basic (what the suite sends) or the client's fields in the form.
fn client_credentials(headers: &HeaderMap, form: &HashMap<String, String>) -> (String, String) {
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    if let Some((id, secret)) = basic.as_deref().and_then(|b| b.split_once(':')) {
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        return (decode(id), decode(secret));
    }
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    (field("client_id"), field("client_secret"))
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, axum::Json(json!({"error": error}))).into_response()
}

async fn token(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = form(&body);
    let (client_id, client_secret) = client_credentials(&headers, &form);
    let mut shared = shared.lock().expect("fake provider state");
    shared.token_requests += 1;
    if client_id != shared.client_id || client_secret != shared.client_secret {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let code = form.get("code").cloned().unwrap_or_default();
    if let Some(challenge) = shared.challenges.remove(&code) {
        use base64::Engine;
        use sha2::Digest;
        let verifier = form.get("code_verifier").cloned().unwrap_or_default();
        let computed =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
        if computed != challenge {
            shared.codes.remove(&code);
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
        }
    }
    let Some(user) = shared.codes.remove(&code) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    shared.counter += 1;
    let access_token = format!("access-{}", shared.counter);
    let (user_id, primary) = (user.id, primary_email(&user));
    let (first, last) = split_name(&user.name);
    // OIDC providers (Google) answer with an ID token bound to the access token by `at_hash`.
    let at_hash = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&sha2::Sha256::digest(access_token.as_bytes())[..16])
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut id_claims = json!({
        "iss": shared.base_url, "sub": format!("g-{user_id}"), "aud": shared.client_id, "exp": now + 600,
        "iat": now, "email": primary, "email_verified": user.primary().is_some_and(|e| e.1),
        "name": user.name, "picture": user.avatar_url, "at_hash": at_hash,
        // Vercel Marketplace's own claims.
        "user_email": primary, "user_name": user.name, "global_user_id": format!("vg-{user_id}"),
    });
    // The user's extra claims ride along, under the standard ones.
    if let Some(map) = id_claims.as_object_mut() {
        for (key, value) in &user.extra_claims {
            map.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    let id_token = sign_with(&shared.signing_kind, &id_claims);
    shared.tokens.insert(access_token.clone(), user);
    axum::Json(json!({
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": 3600,
        "refresh_token": format!("refresh-{}", shared.counter),
        "scope": "user:email",
        "id_token": id_token,
        // WorkOS hands the profile out with the token; other providers ignore the field.
        "profile": {
            "id": format!("prof_{}", user_id), "connection_id": "conn_1", "organization_id": "org_1",
            "email": primary, "first_name": first, "last_name": last,
        },
    }))
    .into_response()
}

fn bearer_user(shared: &Arc<Mutex<Shared>>, headers: &HeaderMap) -> Option<FakeUser> {
    let token = headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ")?;
    shared.lock().expect("fake provider state").tokens.get(token).cloned()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"message": "Bad credentials"})),
    )
        .into_response()
}

async fn github_user(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    axum::Json(json!({
        "id": user.id, "login": user.login, "name": user.name, "avatar_url": user.avatar_url,
        "email": user.primary().map(|e| e.0.clone()),
    }))
    .into_response()
}

async fn github_emails(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    let emails: Vec<Value> = user
        .emails
        .iter()
        .map(|(email, verified, primary)| json!({"email": email, "verified": verified, "primary": primary, "visibility": null}))
        .collect();
    axum::Json(json!(emails)).into_response()
}

async fn gitlab_user(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    let primary = user.primary();
    axum::Json(json!({
        "id": user.id, "username": user.login, "name": user.name, "avatar_url": user.avatar_url,
        "email": primary.map(|e| e.0.clone()),
        "confirmed_at": primary.filter(|e| e.1).map(|_| "2024-01-01T00:00:00Z"),
    }))
    .into_response()
}

async fn gitlab_emails(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    let emails: Vec<Value> = user
        .emails
        .iter()
        .filter(|e| !e.2)
        .enumerate()
        .map(|(i, (email, _, _))| json!({"id": i, "email": email}))
        .collect();
    axum::Json(json!(emails)).into_response()
}

async fn keycloak_userinfo(
    State(shared): State<Arc<Mutex<Shared>>>,
    Path(_realm): Path<String>,
    headers: HeaderMap,
) -> Response {
    oidc_userinfo(State(shared), headers).await
}

/// A plain OAuth 2.0 provider's own user API: an `id` instead of `sub`, the login, the extra claims.
async fn custom_userinfo(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    let mut claims = user.extra_claims.clone();
    claims.insert("id".into(), json!(user.id));
    claims.insert("login".into(), json!(user.login));
    claims.insert("name".into(), json!(user.name));
    if let Some((email, verified, _)) = user.primary() {
        claims.insert("email".into(), json!(email));
        claims.insert("email_verified".into(), json!(verified));
    }
    axum::Json(Value::Object(claims)).into_response()
}

/// The OIDC userinfo endpoint (also a Keycloak realm's).
async fn oidc_userinfo(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    let mut claims = user.extra_claims.clone();
    claims.insert("sub".into(), json!(user.id.to_string()));
    claims.insert("name".into(), json!(user.name));
    if let Some((email, verified, _)) = user.primary() {
        claims.insert("email".into(), json!(email));
        claims.insert("email_verified".into(), json!(verified));
    }
    axum::Json(Value::Object(claims)).into_response()
}

fn sign_with(kind: &str, claims: &Value) -> String {
    let jwk = crate::test_jwk(kind);
    let (key, header) =
        auth_account::jwt::signer_from_private_jwk(jwk.as_object().expect("a JWK object")).expect("the test JWKs sign");
    jsonwebtoken::encode(&header, claims, &key).expect("signing an ID token")
}

fn discovery_document(issuer: &str, base: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/oidc/authorize"),
        "token_endpoint": format!("{base}/oidc/token"),
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code", "id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
    })
}

async fn discovery(State(shared): State<Arc<Mutex<Shared>>>) -> Response {
    let base = shared.lock().expect("fake provider state").base_url.clone();
    axum::Json(discovery_document(&base, &base)).into_response()
}

async fn realm_discovery(State(shared): State<Arc<Mutex<Shared>>>, Path(realm): Path<String>) -> Response {
    let base = shared.lock().expect("fake provider state").base_url.clone();
    axum::Json(discovery_document(&format!("{base}/realms/{realm}"), &base)).into_response()
}

/// The public halves of every key published so far.
async fn jwks(State(shared): State<Arc<Mutex<Shared>>>) -> Response {
    let kinds = shared.lock().expect("fake provider state").published_kinds.clone();
    let keys: Vec<Value> = kinds
        .iter()
        .map(|kind| {
            let mut jwk = crate::test_jwk(kind);
            if let Some(map) = jwk.as_object_mut() {
                for private in ["d", "p", "q", "dp", "dq", "qi", "key_ops"] {
                    map.remove(private);
                }
            }
            jwk
        })
        .collect();
    axum::Json(json!({ "keys": keys })).into_response()
}

async fn linkedin_profile(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    let (first, last) = split_name(&user.name);
    axum::Json(json!({
        "id": format!("li-{}", user.id),
        "firstName": {"localized": {"en_US": first}, "preferredLocale": {"country": "US", "language": "en"}},
        "lastName": {"localized": {"en_US": last}, "preferredLocale": {"country": "US", "language": "en"}},
        "profilePicture": {"displayImage~": {"elements": [{"identifiers": [{"identifier": user.avatar_url}]}]}},
    }))
    .into_response()
}

async fn linkedin_email(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    axum::Json(
        json!({"elements": [{"handle": "urn:li:emailAddress:1", "handle~": {"emailAddress": primary_email(&user)}}]}),
    )
    .into_response()
}

async fn x_user(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    axum::Json(json!({"data": {
        "id": format!("x-{}", user.id), "name": user.name, "username": user.login,
        "confirmed_email": primary_email(&user), "profile_image_url": user.avatar_url,
        "url": "https://example.com", "created_at": "2020-01-01T00:00:00.000Z",
    }}))
    .into_response()
}

fn primary_email(user: &FakeUser) -> String {
    user.primary().map(|e| e.0.clone()).unwrap_or_default()
}

fn split_name(name: &str) -> (String, String) {
    let (first, last) = name.split_once(' ').unwrap_or((name, ""));
    (first.to_string(), last.to_string())
}

async fn kakao_user(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    let verified = user.primary().is_some_and(|e| e.1);
    axum::Json(json!({"id": user.id, "kakao_account": {
        "profile": {"nickname": user.login, "profile_image_url": user.avatar_url},
        "email": primary_email(&user), "is_email_valid": true, "is_email_verified": verified,
    }}))
    .into_response()
}

/// Refuses a call without the `Notion-Version` header, as Notion does.
async fn notion_user(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    if headers.get("notion-version").is_none() {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"code": "missing_version"}))).into_response();
    }
    axum::Json(json!({"object": "user", "bot": {"owner": {"type": "user", "user": {
        "id": format!("notion-{}", user.id), "name": user.name, "avatar_url": user.avatar_url,
        "person": {"email": primary_email(&user)},
    }}}}))
    .into_response()
}

async fn slack_user(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    axum::Json(json!({
        "ok": true, "sub": format!("U{}", user.id), "https://slack.com/user_id": format!("U{}", user.id),
        "https://slack.com/team_id": "T0001", "email": primary_email(&user),
        "email_verified": user.primary().is_some_and(|e| e.1), "name": user.name, "picture": user.avatar_url,
    }))
    .into_response()
}

/// `/v1/me` is Figma's user and Snapchat's GraphQL endpoint (which sends `query`).
async fn figma_or_snapchat_user(
    State(shared): State<Arc<Mutex<Shared>>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    if form(query.unwrap_or_default().as_bytes()).contains_key("query") {
        return axum::Json(json!({"data": {"me": {
            "externalId": format!("snap-{}", user.id), "displayName": user.name,
            "bitmoji": {"avatar": user.avatar_url, "id": "b1"}, "email": primary_email(&user),
        }}}))
        .into_response();
    }
    axum::Json(json!({
        "id": user.id.to_string(), "email": primary_email(&user), "handle": user.name, "img_url": user.avatar_url,
    }))
    .into_response()
}

async fn spotify_user(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    axum::Json(json!({
        "id": format!("spotify-{}", user.id), "display_name": user.name, "email": primary_email(&user),
        "images": [
            {"url": "https://i.example/small.png", "height": 64, "width": 64},
            {"url": user.avatar_url, "height": 640, "width": 640},
            {"url": "https://i.example/none.png", "height": null, "width": null},
        ],
    }))
    .into_response()
}

async fn bitbucket_user(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    axum::Json(json!({
        "uuid": format!("{{{}}}", user.id), "display_name": user.name, "avatar": {"href": user.avatar_url},
    }))
    .into_response()
}

async fn bitbucket_emails(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    let values: Vec<Value> = user
        .emails
        .iter()
        .map(|(email, verified, primary)| json!({"email": email, "is_confirmed": verified, "is_primary": primary}))
        .collect();
    axum::Json(json!({"values": values})).into_response()
}

async fn discord_user(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    axum::Json(json!({
        "id": user.id.to_string(), "username": user.login, "discriminator": "0007", "global_name": user.name,
        "avatar": null, "email": primary_email(&user), "verified": user.primary().is_some_and(|e| e.1),
    }))
    .into_response()
}

/// The Graph API: refuses a call without the right `appsecret_proof`, as Facebook does when the
/// app requires it.
async fn facebook_user(
    State(shared): State<Arc<Mutex<Shared>>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
) -> Response {
    use hmac::{Hmac, KeyInit, Mac};
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    let query = form(query.unwrap_or_default().as_bytes());
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    let secret = shared.lock().expect("fake provider state").client_secret.clone();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(token.as_bytes());
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    if query.get("appsecret_proof") != Some(&expected) {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"message": "Invalid appsecret_proof"}})),
        )
            .into_response();
    }
    let (first, last) = user.name.split_once(' ').unwrap_or((user.name.as_str(), ""));
    axum::Json(json!({
        "id": user.id.to_string(), "email": primary_email(&user), "first_name": first, "last_name": last,
        "name": user.login, "picture": {"data": {"url": user.avatar_url}},
    }))
    .into_response()
}

async fn fly_user(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    axum::Json(json!({
        "resource_owner_id": format!("owner-{}", user.id), "user_id": user.id.to_string(), "user_name": user.name,
        "email": primary_email(&user), "organizations": [{"id": "org-1", "role": "admin"}],
        "scope": ["read"], "application": {"uid": "app"}, "expires_in": 7200, "created_at": 1_700_000_000,
    }))
    .into_response()
}

/// Helix: refuses a call without the app's `Client-Id`.
async fn twitch_users(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    let client_id = shared.lock().expect("fake provider state").client_id.clone();
    if headers.get("client-id").and_then(|v| v.to_str().ok()) != Some(client_id.as_str()) {
        return unauthorized();
    }
    axum::Json(json!({"data": [{
        "id": user.id.to_string(), "login": user.login, "display_name": user.name, "type": "",
        "broadcaster_type": "partner", "description": "streams", "profile_image_url": user.avatar_url,
        "offline_image_url": "", "view_count": 12, "email": primary_email(&user),
        "created_at": "2020-01-01T00:00:00Z",
    }]}))
    .into_response()
}

async fn zoom_user(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&shared, &headers) else {
        return unauthorized();
    };
    let (first, last) = user.name.split_once(' ').unwrap_or((user.name.as_str(), ""));
    axum::Json(json!({
        "id": format!("zoom-{}", user.id), "first_name": first, "last_name": last, "email": primary_email(&user),
        "verified": i32::from(user.primary().is_some_and(|e| e.1)), "login_type": "100", "pic_url": user.avatar_url,
    }))
    .into_response()
}

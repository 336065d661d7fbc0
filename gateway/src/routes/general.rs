//! `GET /health` and `GET /settings`.

use auth_core::Config;
use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use http::header;
use serde::Serialize;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/settings", get(settings))
}

#[derive(Serialize)]
struct Health {
    version: &'static str,
    name: &'static str,
    description: &'static str,
}

/// GoTrue's health document. `name` and `description` are GoTrue's, so monitors written for it work.
async fn health() -> axum::Json<Health> {
    axum::Json(Health {
        version: env!("CARGO_PKG_VERSION"),
        name: "GoTrue",
        description: "GoTrue is a user registration and authentication API",
    })
}

async fn settings(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.settings_json.to_string(),
    )
}

/// `/settings` exactly as GoTrue v2.196 serialises it: these keys, in this order.
#[derive(Serialize)]
struct Settings {
    external: ExternalSettings,
    disable_signup: bool,
    mailer_autoconfirm: bool,
    phone_autoconfirm: bool,
    sms_provider: String,
    saml_enabled: bool,
    saml_private_key_next_configured: bool,
    passkeys_enabled: bool,
}

#[derive(Serialize)]
struct ExternalSettings {
    anonymous_users: bool,
    apple: bool,
    azure: bool,
    bitbucket: bool,
    discord: bool,
    facebook: bool,
    snapchat: bool,
    figma: bool,
    fly: bool,
    github: bool,
    gitlab: bool,
    google: bool,
    keycloak: bool,
    kakao: bool,
    linkedin: bool,
    linkedin_oidc: bool,
    notion: bool,
    spotify: bool,
    slack: bool,
    slack_oidc: bool,
    workos: bool,
    twitch: bool,
    twitter: bool,
    email: bool,
    phone: bool,
    zoom: bool,
}

pub fn render_settings(config: &Config) -> anyhow::Result<String> {
    let p = |key| config.provider_enabled(key);
    let settings = Settings {
        external: ExternalSettings {
            anonymous_users: config.external.anonymous_users_enabled,
            apple: p("apple"),
            azure: p("azure"),
            bitbucket: p("bitbucket"),
            discord: p("discord"),
            facebook: p("facebook"),
            snapchat: p("snapchat"),
            figma: p("figma"),
            fly: p("fly"),
            github: p("github"),
            gitlab: p("gitlab"),
            google: p("google"),
            keycloak: p("keycloak"),
            kakao: p("kakao"),
            linkedin: p("linkedin"),
            linkedin_oidc: p("linkedin_oidc"),
            notion: p("notion"),
            spotify: p("spotify"),
            slack: p("slack"),
            slack_oidc: p("slack_oidc"),
            workos: p("workos"),
            twitch: p("twitch"),
            twitter: p("twitter"),
            email: config.external.email_enabled,
            phone: config.external.phone_enabled,
            zoom: p("zoom"),
        },
        disable_signup: config.disable_signup,
        mailer_autoconfirm: config.mailer.autoconfirm,
        phone_autoconfirm: config.sms.autoconfirm,
        sms_provider: config.sms.provider.clone(),
        saml_enabled: config.saml.enabled,
        saml_private_key_next_configured: config.saml.private_key_next_configured,
        passkeys_enabled: config.passkey_enabled,
    };
    Ok(serde_json::to_string(&settings)?)
}

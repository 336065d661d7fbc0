//! A user's own MFA factors (GoTrue's `/factors` routes), served by the MFA service: enrol,
//! challenge, verify (which answers new session tokens at AAL2) and unenrol.

use auth_proto::mfa::v1::{
    ChallengeFactorRequest, EnrollFactorRequest, UnenrollFactorRequest, VerifyFactorRequest, WebAuthnCeremony,
};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use http::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{rate_limit, request_context, with_authorization};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::AppJson;
use crate::middleware::RequestId;
use crate::rate_limit::Limiter;
use crate::render;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/factors", post(enroll))
        .route("/factors/{factor_id}", delete(unenroll))
        .route("/factors/{factor_id}/challenge", post(challenge))
        .route("/factors/{factor_id}/verify", post(verify))
}

/// GoTrue's `EnrollFactorParams` (`null` reads as empty, as in Go; supabase-py sends `null`s).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EnrollBody {
    factor_type: Option<String>,
    friendly_name: Option<String>,
    issuer: Option<String>,
    phone: Option<String>,
}

async fn enroll(
    State(state): State<AppState>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<AppJson<EnrollBody>, ApiError>,
) -> Result<Response, ApiError> {
    let AppJson(body) = body?;
    let request = EnrollFactorRequest {
        factor_type: body.factor_type.unwrap_or_default(),
        friendly_name: body.friendly_name.unwrap_or_default(),
        issuer: body.issuer.unwrap_or_default(),
        phone: body.phone.unwrap_or_default(),
        context: Some(request_context(&headers, request_id.as_deref())),
    };
    let enrolled = state
        .clients
        .mfa
        .clone()
        .enroll(with_authorization(&headers, request))
        .await?
        .into_inner();
    // GoTrue's `EnrollFactorResponse`: `totp` and `phone` only when they apply.
    let mut map = Map::new();
    map.insert("id".into(), json!(enrolled.id));
    map.insert("type".into(), json!(enrolled.r#type));
    map.insert("friendly_name".into(), json!(enrolled.friendly_name));
    if let Some(totp) = &enrolled.totp {
        map.insert(
            "totp".into(),
            json!({"qr_code": totp.qr_code, "secret": totp.secret, "uri": totp.uri}),
        );
    }
    if !enrolled.phone.is_empty() {
        map.insert("phone".into(), json!(enrolled.phone));
    }
    Ok(axum::Json(Value::Object(map)).into_response())
}

/// GoTrue's `ChallengeFactorParams` (its `webauthn` part is not read by GoTrue v2.196 either: the
/// relying party is `GOTRUE_WEBAUTHN_*`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ChallengeBody {
    channel: Option<String>,
}

async fn challenge(
    State(state): State<AppState>,
    Path(factor_id): Path<String>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    rate_limit(&state, &headers, Limiter::FactorChallenge).await?;
    // GoTrue reads no body for a TOTP challenge; the channel only matters to phone factors.
    let body: ChallengeBody = serde_json::from_slice(&body).unwrap_or_default();
    let request = ChallengeFactorRequest {
        factor_id,
        channel: body.channel.unwrap_or_default(),
        context: Some(request_context(&headers, request_id.as_deref())),
    };
    let challenge = state
        .clients
        .mfa
        .clone()
        .challenge(with_authorization(&headers, request))
        .await?
        .into_inner();
    let mut body = json!({
        "id": challenge.id,
        "type": challenge.r#type,
        "expires_at": challenge.expires_at,
    });
    // GoTrue's `WebAuthnChallengeData`: the options for navigator.credentials.create() / .get().
    if let Some(ceremony) = challenge.webauthn {
        let options: Value = serde_json::from_str(&ceremony.json).unwrap_or(Value::Null);
        body["webauthn"] = json!({"type": ceremony.r#type, "credential_options": options});
    }
    Ok(axum::Json(body).into_response())
}

/// GoTrue's `VerifyFactorParams`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct VerifyBody {
    challenge_id: Option<String>,
    code: Option<String>,
    webauthn: Option<WebAuthnBody>,
}

/// GoTrue's `WebAuthnParams`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WebAuthnBody {
    r#type: Option<String>,
    credential_response: Option<Value>,
}

async fn verify(
    State(state): State<AppState>,
    Path(factor_id): Path<String>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<AppJson<VerifyBody>, ApiError>,
) -> Result<Response, ApiError> {
    rate_limit(&state, &headers, Limiter::FactorVerify).await?;
    let AppJson(body) = body?;
    let request = VerifyFactorRequest {
        factor_id,
        challenge_id: body.challenge_id.unwrap_or_default(),
        code: body.code.unwrap_or_default(),
        context: Some(request_context(&headers, request_id.as_deref())),
        webauthn: body.webauthn.map(|answer| WebAuthnCeremony {
            r#type: answer.r#type.unwrap_or_default(),
            json: answer.credential_response.map(|v| v.to_string()).unwrap_or_default(),
        }),
    };
    let tokens = state
        .clients
        .mfa
        .clone()
        .verify(with_authorization(&headers, request))
        .await?
        .into_inner();
    Ok(render::token_response(&tokens))
}

async fn unenroll(
    State(state): State<AppState>,
    Path(factor_id): Path<String>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = UnenrollFactorRequest {
        factor_id,
        context: Some(request_context(&headers, request_id.as_deref())),
    };
    let removed = state
        .clients
        .mfa
        .clone()
        .unenroll(with_authorization(&headers, request))
        .await?
        .into_inner();
    Ok(axum::Json(json!({"id": removed.id})).into_response())
}

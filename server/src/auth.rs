//! Bearer-token authentication for `/v1` and the console.
//!
//! Clients send `Authorization: Bearer TOKEN`. Browsers' EventSource cannot set headers, so
//! `POST /v1/session` with the token (in the header or as `{"token": …}`) sets an HttpOnly,
//! SameSite=Strict cookie that is accepted in its place; the token never travels in a URL,
//! so it stays out of logs and browser history. Health endpoints stay open.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

pub const COOKIE: &str = "freshet_session";

/// Compares without leaking where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn presented(headers: &HeaderMap) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        // The scheme name is case-insensitive (RFC 7235).
        if let Some((scheme, t)) = v.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") {
                out.push(t.trim().to_string());
            }
        }
    }
    for cookie in headers.get_all(header::COOKIE) {
        if let Ok(s) = cookie.to_str() {
            for part in s.split(';') {
                if let Some(v) = part.trim().strip_prefix(&format!("{COOKIE}=")) {
                    out.push(v.to_string());
                }
            }
        }
    }
    out
}

pub fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    match &state.auth_token {
        None => true,
        Some(token) => presented(headers)
            .iter()
            .any(|t| same(t.as_bytes(), token.as_bytes())),
    }
}

pub async fn require(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if authorized(&state, req.headers()) {
        next.run(req).await
    } else {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong token: send Authorization: Bearer TOKEN",
        )
        .into_response()
    }
}

/// `POST /v1/session`: exchanges the token for a session cookie (for EventSource).
pub async fn session(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let from_body = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("token").and_then(|t| t.as_str()).map(str::to_string));
    let ok = match (&state.auth_token, from_body) {
        (None, _) => true,
        (Some(t), Some(given)) => same(given.as_bytes(), t.as_bytes()),
        (Some(_), None) => authorized(&state, &headers),
    };
    if !ok {
        return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "wrong token")
            .into_response();
    }
    let value = match &state.auth_token {
        Some(t) => format!("{COOKIE}={t}; HttpOnly; SameSite=Strict; Path=/"),
        None => format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/"),
    };
    ([(header::SET_COOKIE, value)], Json(json!({"ok": true}))).into_response()
}

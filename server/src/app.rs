//! The router: every route, its middleware (auth, metrics, body limit) and shared state.

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;

use crate::routes;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/sql", post(routes::sql::post))
        .route("/tables/{name}/rows", post(routes::ingest::post))
        .route("/views/{name}", get(routes::read::get))
        .route("/subscribe", get(routes::subscribe::get))
        .route("/ws", get(routes::ws::get))
        .route("/catalog", get(routes::catalog::get))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require,
        ))
        .route("/session", post(crate::auth::session))
        .route("/openapi.json", get(openapi))
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .nest("/v1", v1)
        .route("/", get(routes::console::index))
        .route("/console/{file}", get(routes::console::file))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::health::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .with_state(state)
}

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}

async fn method_not_allowed() -> crate::error::ApiError {
    crate::error::ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
}

async fn not_found() -> crate::error::ApiError {
    crate::error::ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint",
    )
}

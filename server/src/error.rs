//! One error type for every route: an HTTP status plus `{"error": {"code", "message", …}}`.
//! Engine errors keep their stable codes; internal details go to the log, not the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use freshet_dataflows::Error as EngineError;
use serde_json::{json, Map, Value};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Extra fields beside code and message (position, line, statement_index, …).
    pub details: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            details: Map::new(),
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_string(), value.into());
        self
    }
}

/// The HTTP status for an engine error.
pub fn status_for(e: &EngineError) -> StatusCode {
    match e {
        EngineError::Syntax { .. }
        | EngineError::Unsupported(_)
        | EngineError::Plan(_)
        | EngineError::InvalidData(_)
        | EngineError::Eval(_)
        | EngineError::Future { .. } => StatusCode::BAD_REQUEST,
        EngineError::UnknownItem { .. } => StatusCode::NOT_FOUND,
        EngineError::AlreadyExists { .. }
        | EngineError::DependentObjects(_)
        | EngineError::UniqueViolation(_) => StatusCode::CONFLICT,
        EngineError::Compacted { .. } => StatusCode::GONE,
        EngineError::Shutdown | EngineError::Cluster(_) => StatusCode::SERVICE_UNAVAILABLE,
        EngineError::Storage(_) => StatusCode::INSUFFICIENT_STORAGE,
        EngineError::Recovering(_) => StatusCode::SERVICE_UNAVAILABLE,
        EngineError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let status = status_for(&e);
        let message = match &e {
            EngineError::Internal(detail) => {
                tracing::error!(detail, "internal error");
                "internal error; see the server log".to_string()
            }
            other => other.to_string(),
        };
        let mut err = ApiError::new(status, e.code(), message);
        match &e {
            EngineError::Syntax {
                position: Some(p), ..
            } => {
                err = err.with("position", json!({"line": p.line, "column": p.column}));
            }
            EngineError::Compacted { since, .. } => err = err.with("earliest", *since),
            EngineError::Future { latest, .. } => err = err.with("latest", *latest),
            _ => {}
        }
        err
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("code".into(), Value::String(self.code));
        body.insert("message".into(), Value::String(self.message));
        body.extend(self.details);
        (self.status, Json(json!({ "error": body }))).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

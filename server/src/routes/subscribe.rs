//! `GET /v1/subscribe?view=…|sql=…`: a snapshot, then every change, as SSE or NDJSON.
//!
//! The engine feeds each subscription through a bounded channel; this module only turns its
//! events into messages. When the engine cut a consumer off for lagging, the stream ends with
//! an `error` message carrying `resume_from`. SSE events carry `id:` = the progress time, so a
//! browser's EventSource resumes with `Last-Event-ID` after a dropped connection.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use freshet_dataflows::engine::{SubscribeOptions, SubscribeTarget, Subscription};
use freshet_dataflows::subscribe::SubscribeEvent;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::blocking;
use crate::error::{ApiError, ApiResult};
use crate::json::columns;
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct SubscribeParams {
    pub view: Option<String>,
    pub sql: Option<String>,
    pub as_of: Option<u64>,
    pub snapshot: Option<bool>,
    pub progress: Option<bool>,
    pub resume_from: Option<u64>,
}

/// One outgoing message: its type, the JSON, and the SSE id (progress time).
pub struct Message {
    pub kind: &'static str,
    pub data: Value,
    pub id: Option<u64>,
}

/// Opens a subscription described by `params` (and `Last-Event-ID`).
pub async fn open(
    state: &AppState,
    params: SubscribeParams,
    last_event_id: Option<u64>,
) -> ApiResult<Subscription> {
    let target = match (params.view, params.sql) {
        (Some(v), None) => SubscribeTarget::Name(v),
        (None, Some(s)) => SubscribeTarget::Sql(s),
        _ => {
            return Err(ApiError::bad_request(
                "bad_request",
                "give exactly one of ?view=NAME or ?sql=SELECT…",
            ))
        }
    };
    let options = SubscribeOptions {
        as_of: params.as_of,
        snapshot: params.snapshot.unwrap_or(true),
        resume_from: params.resume_from.or(last_event_id),
    };
    let engine = state.engine.clone();
    Ok(blocking(move || engine.subscribe(target, options)).await??)
}

/// The messages of a subscription, ending after an error or at shutdown.
pub fn messages(
    sub: Subscription,
    progress: bool,
    cancel: CancellationToken,
) -> impl Stream<Item = Message> {
    let first = Message {
        kind: "columns",
        data: json!({"type": "columns", "columns": columns(&sub.columns), "as_of": sub.as_of}),
        id: None,
    };
    let rest = futures::stream::unfold(Some(sub), move |sub| {
        let cancel = cancel.clone();
        async move {
            let sub = sub?;
            loop {
                let event = tokio::select! {
                    _ = cancel.cancelled() => {
                        let msg = error_message("shutting_down", "the server is shutting down", Some(sub.state.resume_from()));
                        return Some((msg, None));
                    }
                    e = sub.events.recv() => e,
                };
                match event {
                    Ok(SubscribeEvent::Update { time, updates }) => {
                        let updates: Vec<Value> = updates
                            .iter()
                            .map(|(r, d)| json!({"row": r.to_json(), "diff": d}))
                            .collect();
                        let msg = Message {
                            kind: "update",
                            data: json!({"type": "update", "time": time, "updates": updates}),
                            id: None,
                        };
                        return Some((msg, Some(sub)));
                    }
                    Ok(SubscribeEvent::Progress { upper }) => {
                        if progress {
                            let msg = Message {
                                kind: "progress",
                                data: json!({"type": "progress", "time": upper}),
                                id: Some(upper),
                            };
                            return Some((msg, Some(sub)));
                        }
                    }
                    Ok(SubscribeEvent::Error {
                        code,
                        message,
                        resume_from,
                    }) => {
                        return Some((error_message(code, &message, resume_from), None));
                    }
                    Err(_) => {
                        if sub.state.lagged.load(Ordering::Acquire) {
                            // Before the first progress there is nothing to resume from:
                            // the client subscribes again (with a snapshot).
                            let resume = Some(sub.state.resume_from()).filter(|r| *r > 0);
                            let msg = error_message(
                                "lagged",
                                "the subscriber fell too far behind; resume from resume_from",
                                resume,
                            );
                            return Some((msg, None));
                        }
                        return None;
                    }
                }
            }
        }
    });
    futures::stream::once(async move { first }).chain(rest)
}

fn error_message(code: &str, message: &str, resume_from: Option<u64>) -> Message {
    let mut data = json!({"type": "error", "code": code, "message": message});
    if let Some(r) = resume_from {
        data["resume_from"] = json!(r);
    }
    Message {
        kind: "error",
        data,
        id: None,
    }
}

pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<SubscribeParams>, QueryRejection>,
) -> ApiResult<Response> {
    let last_event_id = match headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
            ApiError::bad_request("bad_request", "Last-Event-ID must be a timestamp")
        })?),
        None => None,
    };
    let ndjson = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/x-ndjson") && !a.contains("text/event-stream"));
    let Query(params) = params.map_err(super::bad_query)?;
    let progress = params.progress.unwrap_or(true);
    let sub = open(&state, params, last_event_id).await?;
    state.metrics.subscribers.inc();
    let guard = SubscriberGauge(state.metrics.clone());
    let stream = messages(sub, progress, state.shutdown.clone());
    if ndjson {
        let body = stream.map(move |m| {
            let _keep = &guard;
            let mut line = m.data.to_string();
            line.push('\n');
            Ok::<_, Infallible>(line)
        });
        Ok((
            [
                (header::CONTENT_TYPE, "application/x-ndjson"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            Body::from_stream(body),
        )
            .into_response())
    } else {
        let events = stream.map(move |m| {
            let _keep = &guard;
            let mut e = Event::default().event(m.kind).data(m.data.to_string());
            if let Some(id) = m.id {
                e = e.id(id.to_string());
            }
            Ok::<_, Infallible>(e)
        });
        Ok(Sse::new(events)
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response())
    }
}

/// Counts a subscriber while its stream lives.
struct SubscriberGauge(std::sync::Arc<crate::metrics::HttpMetrics>);

impl Drop for SubscriberGauge {
    fn drop(&mut self) {
        self.0.subscribers.dec();
    }
}

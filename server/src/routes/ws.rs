//! `GET /v1/ws`: several subscriptions over one WebSocket, with the same messages as SSE.
//!
//! The client sends `{"op": "subscribe", "id": "a", "view": "v"}` (or `"sql": "SELECT …"`, plus
//! the SSE options `as_of`, `snapshot`, `progress`, `resume_from`) and
//! `{"op": "unsubscribe", "id": "a"}`. Every server message is a subscription message with the
//! client's `"id"` added; request errors come back as `{"type": "error", "id", "code", …}`.
//! Each subscription keeps its bounded buffer in the engine, so a slow socket makes its
//! subscriptions lag (and end with `lagged`), never the server grow.

use std::collections::HashMap;

use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::subscribe::{messages, open, SubscribeParams};
use crate::state::AppState;

#[derive(Deserialize)]
struct Request {
    op: String,
    id: String,
    #[serde(flatten)]
    params: SubscribeParamsJson,
}

#[derive(Deserialize, Default)]
struct SubscribeParamsJson {
    view: Option<String>,
    sql: Option<String>,
    as_of: Option<u64>,
    snapshot: Option<bool>,
    progress: Option<bool>,
    resume_from: Option<u64>,
}

pub async fn get(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| session(state, socket))
}

async fn session(state: AppState, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Value>(256);
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if sink
                .send(WsMessage::Text(msg.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let mut running: HashMap<String, CancellationToken> = HashMap::new();
    let error = |id: &str, code: &str, message: String| json!({"type": "error", "id": id, "code": code, "message": message});
    loop {
        let incoming = tokio::select! {
            _ = state.shutdown.cancelled() => break,
            m = stream.next() => m,
        };
        let text = match incoming {
            Some(Ok(WsMessage::Text(t))) => t.to_string(),
            Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(_)) => continue,
        };
        let req: Request = match serde_json::from_str(&text) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx
                    .send(error(
                        "",
                        "invalid_json",
                        format!("expected {{\"op\", \"id\", …}}: {e}"),
                    ))
                    .await;
                continue;
            }
        };
        match req.op.as_str() {
            "subscribe" => {
                if running.contains_key(&req.id) {
                    let _ = tx
                        .send(error(
                            &req.id,
                            "already_exists",
                            format!("subscription \"{}\" is already running", req.id),
                        ))
                        .await;
                    continue;
                }
                let p = req.params;
                let progress = p.progress.unwrap_or(true);
                let params = SubscribeParams {
                    view: p.view,
                    sql: p.sql,
                    as_of: p.as_of,
                    snapshot: p.snapshot,
                    progress: p.progress,
                    resume_from: p.resume_from,
                };
                match open(&state, params, None).await {
                    Ok(sub) => {
                        let cancel = state.shutdown.child_token();
                        running.insert(req.id.clone(), cancel.clone());
                        let tx = tx.clone();
                        let id = req.id.clone();
                        let server = state.shutdown.clone();
                        tokio::spawn(async move {
                            let mut msgs = std::pin::pin!(messages(sub, progress, cancel.clone()));
                            while let Some(m) = msgs.next().await {
                                // An unsubscribe ends the stream quietly.
                                if cancel.is_cancelled() && !server.is_cancelled() {
                                    break;
                                }
                                let mut data = m.data;
                                data["id"] = json!(id);
                                if tx.send(data).await.is_err() {
                                    break;
                                }
                            }
                        });
                    }
                    Err(e) => {
                        let _ = tx.send(error(&req.id, &e.code, e.message)).await;
                    }
                }
            }
            "unsubscribe" => {
                if let Some(c) = running.remove(&req.id) {
                    c.cancel();
                }
            }
            other => {
                let _ = tx
                    .send(error(
                        &req.id,
                        "bad_request",
                        format!("unknown op \"{other}\" (use subscribe or unsubscribe)"),
                    ))
                    .await;
            }
        }
    }
    for (_, c) in running {
        c.cancel();
    }
    drop(tx);
    let _ = writer.await;
}

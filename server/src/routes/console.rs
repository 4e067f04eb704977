//! `GET /` and `GET /console/{file}`: the web console and the JavaScript client it is built on.
//!
//! The assets are plain ES modules, a stylesheet and one HTML page, embedded in the binary with
//! `include_str!`, so the console needs no build step, no second server and no network: the
//! binary that answers the API also serves the page that uses it. They hold no data, so they are
//! served without authentication even under `--auth-token` (the page needs to load to show its
//! login field); every request the page then makes goes to `/v1`, which checks the session
//! cookie. A strict Content-Security-Policy keeps the page to its own origin: no inline script,
//! no third-party anything.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// One embedded file: its name under `/console/`, its media type and its text.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../console/index.html"),
    },
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../console/console.css"),
    },
    Asset {
        name: "console.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../console/console.js"),
    },
    Asset {
        name: "live.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../console/live.js"),
    },
    Asset {
        name: "freshet.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../console/freshet.js"),
    },
];

/// Same-origin only: scripts and styles from `/console/`, requests to the API, images inline
/// (the chart is SVG built in the DOM). `form-action 'none'`: the login form is handled by
/// script and must never be submitted as a navigation that could put the token in a URL.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

fn serve(asset: &Asset) -> Response {
    let mut response = ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response();
    let headers = response.headers_mut();
    // Revalidate every time: the assets change with the binary, and they are small.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `GET /`: the console page.
pub async fn index() -> Response {
    file(Path("index.html".to_string())).await
}

/// `GET /console/{file}`: one embedded asset.
pub async fn file(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => serve(asset),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no console asset named {name:?}"),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page refers to its assets by name; each must be one we embed.
    #[test]
    fn every_asset_the_page_names_is_embedded() {
        let page = ASSETS[0].body;
        for part in page.split("/console/").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                .collect();
            assert!(
                ASSETS.iter().any(|a| a.name == name),
                "index.html refers to /console/{name}, which is not embedded"
            );
        }
    }
}

//! The web dashboard at `/`: static files compiled into the binary (`dashboard/` at the top of
//! the repository; plain ES modules, no build step), plus `/dashboard/config.json`, the tile
//! server it draws under the map. The page reads only the public APIs (`/v1/live/*`,
//! `/v1/history/*`) with the token the user types; the files themselves need no token.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde::{Deserialize, Serialize};

/// `[dashboard]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    /// A raster tile URL template (`https://tile.example/{z}/{x}/{y}.png`) drawn under the
    /// map; empty: no tiles, the map is a projected canvas with a graticule and a scale (works
    /// offline).
    pub tiles: String,
    /// Attribution the tile server requires, drawn in the map's corner.
    pub attribution: String,
}

const JS: &str = "text/javascript; charset=utf-8";

/// The page's files: (path, body, content type).
const FILES: [(&str, &str, &str); 5] = [
    (
        "/",
        include_str!("../../../dashboard/index.html"),
        "text/html; charset=utf-8",
    ),
    (
        "/dashboard/app.js",
        include_str!("../../../dashboard/app.js"),
        JS,
    ),
    (
        "/dashboard/map.js",
        include_str!("../../../dashboard/map.js"),
        JS,
    ),
    (
        "/dashboard/pixel_layer.js",
        include_str!("../../../dashboard/pixel_layer.js"),
        JS,
    ),
    (
        "/dashboard/style.css",
        include_str!("../../../dashboard/style.css"),
        "text/css; charset=utf-8",
    ),
];

/// What the page may load: its own scripts, styles and API, and images from itself and the
/// configured tile server. Nothing inline but style attributes (the status dots), no frames, no
/// plugins: a value that slipped through escaping could not run or send data elsewhere.
fn content_security_policy(tiles: &str) -> String {
    // The tile server's origin: `https://host[:port]` of the URL template.
    let origin = tiles
        .split_once("://")
        .map(|(scheme, rest)| format!("{scheme}://{}", rest.split('/').next().unwrap_or("")))
        .filter(|origin| !origin.contains(['{', ' ', ';', '\'', ',']))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob: {origin}; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// [`FILES`], plus `/dashboard/config.json`.
pub fn dashboard_routes(config: DashboardConfig) -> Router {
    // Built from the config's tile URL, whose origin is checked to be one token.
    let policy = HeaderValue::from_str(&content_security_policy(&config.tiles))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
    let file = move |body: &'static str, kind: &'static str| {
        let policy = policy.clone();
        move || async move {
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
                    // Served from the binary: a new build must reach open pages on reload.
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                    (header::CONTENT_SECURITY_POLICY, policy),
                    (
                        header::X_CONTENT_TYPE_OPTIONS,
                        HeaderValue::from_static("nosniff"),
                    ),
                    (
                        header::REFERRER_POLICY,
                        HeaderValue::from_static("no-referrer"),
                    ),
                ],
                body,
            )
                .into_response()
        }
    };
    FILES.into_iter().fold(
        Router::new().route(
            "/dashboard/config.json",
            get(move || async move { Json(config).into_response() }),
        ),
        |router, (path, body, kind)| router.route(path, get(file(body, kind))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::response::Response;
    use tower::ServiceExt;

    async fn get(path: &str) -> (StatusCode, String, String) {
        let config = DashboardConfig {
            tiles: "https://tiles.test/{z}/{x}/{y}.png".into(),
            attribution: "© test".into(),
        };
        let res: Response = dashboard_routes(config)
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let kind = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, kind, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn the_page_its_modules_and_its_config_are_served() {
        let (status, kind, body) = get("/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(kind.starts_with("text/html"));
        // Issue 35: the page says what it may load.
        let policy = content_security_policy("https://tiles.test/{z}/{x}/{y}.png");
        assert!(policy.contains("script-src 'self';"), "{policy}");
        assert!(
            policy.contains("img-src 'self' data: blob: https://tiles.test;"),
            "{policy}"
        );
        assert!(!content_security_policy("https://a;b/{z}").contains("a;b"));
        assert!(body.contains("/dashboard/app.js"));
        let (status, kind, body) = get("/dashboard/app.js").await;
        assert_eq!(status, StatusCode::OK);
        assert!(kind.starts_with("text/javascript"));
        assert!(body.contains("./map.js"));
        let (status, _, body) = get("/dashboard/map.js").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("./pixel_layer.js"));
        let (status, _, _) = get("/dashboard/pixel_layer.js").await;
        assert_eq!(status, StatusCode::OK);
        let (_, kind, _) = get("/dashboard/style.css").await;
        assert!(kind.starts_with("text/css"));
        let (status, _, body) = get("/dashboard/config.json").await;
        assert_eq!(status, StatusCode::OK);
        let config: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(config["tiles"], "https://tiles.test/{z}/{x}/{y}.png");
        assert_eq!(get("/dashboard/nope.js").await.0, StatusCode::NOT_FOUND);
    }
}

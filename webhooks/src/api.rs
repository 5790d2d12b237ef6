//! `/v1/webhooks`: a company manages its own subscriptions with its token; the admin token
//! manages any company's (naming it).
//!
//! - `POST /v1/webhooks` `{"url", "events": [...], "format": "json" | "slack", "secret"?,
//!   "company"? (admin only)}`: 201 with the subscription and its secret (generated when not
//!   given; shown only here);
//! - `GET /v1/webhooks[?company=c]`: the caller's subscriptions (the admin's: every company's,
//!   or `c`'s), without secrets;
//! - `DELETE /v1/webhooks/{id}`: 204; 404 when there is no such subscription of the caller's.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use fleetflow_model::{Principal, Tenants};
use serde_json::json;

use fleetflow_tables::commit_log::now_ms;

use crate::WebhookError;
use crate::subscription::{NewSubscription, Subscriptions};

/// The state of the webhook routes.
#[derive(Debug, Clone)]
pub struct WebhookApi {
    pub subscriptions: Arc<Subscriptions>,
    pub tenants: Arc<Tenants>,
}

/// The `/v1/webhooks` routes.
pub fn webhook_routes(api: WebhookApi) -> Router {
    Router::new()
        .route("/v1/webhooks", get(list).post(create))
        .route("/v1/webhooks/{id}", delete(remove))
        .with_state(api)
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::error!(error = %self, "webhooks API");
        }
        (
            self.status(),
            Json(json!({ "error": self.public_message() })),
        )
            .into_response()
    }
}

fn principal(api: &WebhookApi, headers: &HeaderMap) -> Result<Principal, WebhookError> {
    api.tenants
        .principal(headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()))
        .cloned()
        .ok_or(WebhookError::Unauthorized)
}

async fn create(
    State(api): State<WebhookApi>,
    headers: HeaderMap,
    body: Result<Json<NewSubscription>, JsonRejection>,
) -> Result<Response, WebhookError> {
    let who = principal(&api, &headers)?;
    let Json(request) = body.map_err(|e| WebhookError::Invalid(e.body_text()))?;
    let company = api
        .tenants
        .owner(&who, request.company.as_deref())
        .map_err(WebhookError::Invalid)?
        .to_string();
    let subscriptions = api.subscriptions.clone();
    let sub =
        tokio::task::spawn_blocking(move || subscriptions.create(&company, &request, now_ms()))
            .await
            .map_err(|e| WebhookError::Internal(format!("webhooks API task: {e}")))??;
    let mut body = sub.public();
    body["secret"] = json!(sub.secret);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn list(
    State(api): State<WebhookApi>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, WebhookError> {
    let who = principal(&api, &headers)?;
    if let Some(unknown) = params.keys().find(|k| k.as_str() != "company") {
        return Err(WebhookError::Invalid(format!(
            "{unknown}: unknown parameter (only company)"
        )));
    }
    let only = params.get("company");
    let subs = api.subscriptions.reload_if_changed()?;
    let shown: Vec<serde_json::Value> = subs
        .iter()
        .filter(|s| who.may_access(&s.company) && only.is_none_or(|c| *c == s.company))
        .map(|s| s.public())
        .collect();
    Ok(Json(json!({ "webhooks": shown })).into_response())
}

async fn remove(
    State(api): State<WebhookApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebhookError> {
    let who = principal(&api, &headers)?;
    let subscriptions = api.subscriptions.clone();
    tokio::task::spawn_blocking(move || subscriptions.delete(&id, |c| who.may_access(c)))
        .await
        .map_err(|e| WebhookError::Internal(format!("webhooks API task: {e}")))??;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use fleetflow_model::CompanyConfig;
    use serde_json::Value;
    use tower::ServiceExt;

    fn api(name: &str) -> WebhookApi {
        let dir =
            std::env::temp_dir().join(format!("ff-webhook-api-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let company = |id: &str| CompanyConfig {
            id: id.into(),
            name: String::new(),
            tokens: vec![format!("{id}-token")],
            trips: None,
        };
        WebhookApi {
            subscriptions: Arc::new(Subscriptions::open(&dir).unwrap()),
            tenants: Arc::new(
                Tenants::new(&[company("acme"), company("globex")], Some("admin")).unwrap(),
            ),
        }
    }

    async fn call(
        api: &WebhookApi,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = if body.is_null() {
            Body::empty()
        } else {
            Body::from(body.to_string())
        };
        let response = webhook_routes(api.clone())
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn hook(url: &str) -> Value {
        json!({"url": url, "events": ["trip_end"], "format": "slack"})
    }

    #[tokio::test]
    async fn companies_manage_only_their_own_webhooks() {
        let api = api("own");
        let (status, _) = call(&api, "GET", "/v1/webhooks", None, Value::Null).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, created) = call(
            &api,
            "POST",
            "/v1/webhooks",
            Some("acme-token"),
            hook("https://hooks.example/acme"),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["company"], "acme");
        assert_eq!(created["format"], "slack");
        assert_eq!(created["secret"].as_str().unwrap().len(), 32);
        let id = created["id"].as_str().unwrap().to_owned();

        let (_, listed) = call(&api, "GET", "/v1/webhooks", Some("acme-token"), Value::Null).await;
        assert_eq!(listed["webhooks"].as_array().unwrap().len(), 1);
        assert!(listed["webhooks"][0].get("secret").is_none(), "{listed}");
        let (_, listed) = call(
            &api,
            "GET",
            "/v1/webhooks",
            Some("globex-token"),
            Value::Null,
        )
        .await;
        assert_eq!(listed["webhooks"], json!([]), "globex sees none of acme's");
        let path = format!("/v1/webhooks/{id}");
        let (status, _) = call(&api, "DELETE", &path, Some("globex-token"), Value::Null).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "globex cannot delete acme's");

        // The admin names the company; a company cannot name another.
        let mut body = hook("http://10.0.0.1:9000/x");
        let (status, err) = call(&api, "POST", "/v1/webhooks", Some("admin"), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            err["error"].as_str().unwrap().starts_with("company:"),
            "{err}"
        );
        body["company"] = json!("globex");
        let (status, _) = call(&api, "POST", "/v1/webhooks", Some("admin"), body.clone()).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, err) = call(&api, "POST", "/v1/webhooks", Some("acme-token"), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        let (_, listed) = call(&api, "GET", "/v1/webhooks", Some("admin"), Value::Null).await;
        assert_eq!(listed["webhooks"].as_array().unwrap().len(), 2);
        let (_, listed) = call(
            &api,
            "GET",
            "/v1/webhooks?company=globex",
            Some("admin"),
            Value::Null,
        )
        .await;
        assert_eq!(listed["webhooks"].as_array().unwrap().len(), 1);

        let (status, _) = call(&api, "DELETE", &path, Some("acme-token"), Value::Null).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, listed) = call(&api, "GET", "/v1/webhooks", Some("acme-token"), Value::Null).await;
        assert_eq!(listed["webhooks"], json!([]));
    }

    #[tokio::test]
    async fn a_bad_request_names_its_field() {
        let api = api("bad");
        for (body, field) in [
            (json!({"url": "ftp://x", "events": ["trip_end"]}), "url:"),
            (json!({"url": "http://x", "events": ["nope"]}), "events:"),
            (json!({"url": "http://x"}), "events"),
            (
                json!({"url": "http://x", "events": ["trip_end"], "format": "xml"}),
                "format",
            ),
            (
                json!({"url": "http://x", "events": ["trip_end"], "extra": 1}),
                "extra",
            ),
        ] {
            let (status, err) = call(&api, "POST", "/v1/webhooks", Some("acme-token"), body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
            let message = err["error"].as_str().unwrap();
            assert!(message.contains(field), "{field}: {message}");
        }
        let (status, err) = call(
            &api,
            "GET",
            "/v1/webhooks?comapny=x",
            Some("admin"),
            Value::Null,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    }
}

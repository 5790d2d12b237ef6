//! `/v1/geofences`: a company manages its own geofences with its token; the admin token manages
//! any company's (naming it when creating).
//!
//! - `POST /v1/geofences` `{"name", "geometry": <GeoJSON Polygon or MultiPolygon>}` or
//!   `{"name", "center": {"lat", "lon"}, "radius_m"}` (and `"company"`, admin only): 201 with
//!   the geofence; an array of such objects creates them all or none (201 with
//!   `{"geofences": [...]}`);
//! - `GET /v1/geofences[?company=c]`: the caller's geofences (the admin's: every company's, or
//!   `c`'s);
//! - `GET`, `PUT` (same body; a new version from now on) and `DELETE` (204)
//!   `/v1/geofences/{id}`: 404 when there is no such geofence of the caller's.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use fleetflow_model::{Principal, Tenants};
use fleetflow_tables::commit_log::now_ms;
use serde_json::{Value, json};

use crate::GeofenceError;
use crate::geofence::NewGeofence;
use crate::store::Geofences;

/// Largest request body, bytes (a batch of polygons).
pub const MAX_BODY_BYTES: usize = 32 << 20;

/// The state of the geofence routes.
#[derive(Debug, Clone)]
pub struct GeofenceApi {
    pub geofences: Arc<Geofences>,
    pub tenants: Arc<Tenants>,
}

/// The `/v1/geofences` routes.
pub fn geofence_routes(api: GeofenceApi) -> Router {
    Router::new()
        .route("/v1/geofences", get(list).post(create))
        .route("/v1/geofences/{id}", get(show).put(replace).delete(remove))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(api)
}

impl IntoResponse for GeofenceError {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::error!(error = %self, "geofences API");
        }
        (
            self.status(),
            Json(json!({ "error": self.public_message() })),
        )
            .into_response()
    }
}

fn principal(api: &GeofenceApi, headers: &HeaderMap) -> Result<Principal, GeofenceError> {
    api.tenants
        .principal(headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()))
        .cloned()
        .ok_or(GeofenceError::Unauthorized)
}

/// Parses one request object, or an array of them; the error names the element and field.
fn requests(body: &[u8]) -> Result<(Vec<NewGeofence>, bool), GeofenceError> {
    let invalid = |e: String| GeofenceError::Invalid(e);
    let value: Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("body: not JSON ({e})")))?;
    match value {
        Value::Array(items) => {
            let parsed = items
                .into_iter()
                .enumerate()
                .map(|(i, v)| serde_json::from_value(v).map_err(|e| invalid(format!("[{i}]: {e}"))))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((parsed, true))
        }
        value => Ok((
            vec![serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?],
            false,
        )),
    }
}

/// Runs a file operation off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, GeofenceError> + Send + 'static,
) -> Result<T, GeofenceError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| GeofenceError::Internal(format!("geofences API task: {e}")))?
}

async fn create(
    State(api): State<GeofenceApi>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, GeofenceError> {
    let who = principal(&api, &headers)?;
    let (requests, batch) = requests(&body)?;
    // One company per request: the admin names it on every element, or on none (an error).
    let mut owner: Option<Arc<str>> = None;
    for (i, request) in requests.iter().enumerate() {
        let company = api
            .tenants
            .owner(&who, request.company.as_deref())
            .map_err(|e| GeofenceError::Invalid(if batch { format!("[{i}].{e}") } else { e }))?;
        if owner.as_ref().is_some_and(|o| *o != company) {
            return Err(GeofenceError::Invalid(format!(
                "[{i}].company: one request creates geofences of one company"
            )));
        }
        owner = Some(company);
    }
    let Some(company) = owner else {
        return Err(GeofenceError::Invalid("body: an empty array".to_owned()));
    };
    let geofences = api.geofences.clone();
    let created = blocking(move || geofences.create(&company, &requests, now_ms())).await?;
    let body = if batch {
        json!({ "geofences": created.iter().map(|g| g.public()).collect::<Vec<_>>() })
    } else {
        created[0].public()
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn list(
    State(api): State<GeofenceApi>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, GeofenceError> {
    let who = principal(&api, &headers)?;
    if let Some(unknown) = params.keys().find(|k| k.as_str() != "company") {
        return Err(GeofenceError::Invalid(format!(
            "{unknown}: unknown parameter (only company)"
        )));
    }
    let only = params.get("company");
    let all = api.geofences.reload_if_changed()?;
    let shown: Vec<Value> = all
        .iter()
        .filter(|g| {
            g.deleted_ms.is_none()
                && who.may_access(&g.company)
                && only.is_none_or(|c| *c == g.company)
        })
        .map(|g| g.public())
        .collect();
    Ok(Json(json!({ "geofences": shown })).into_response())
}

async fn show(
    State(api): State<GeofenceApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, GeofenceError> {
    let who = principal(&api, &headers)?;
    let geofence = api.geofences.get(&id, |c| who.may_access(c))?;
    Ok(Json(geofence.public()).into_response())
}

async fn replace(
    State(api): State<GeofenceApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, GeofenceError> {
    let who = principal(&api, &headers)?;
    let (mut requests, batch) = requests(&body)?;
    if batch {
        return Err(GeofenceError::Invalid(
            "body: PUT takes one geofence, not an array".to_owned(),
        ));
    }
    let request = requests.remove(0);
    let geofences = api.geofences.clone();
    let updated =
        blocking(move || geofences.replace(&id, &request, |c| who.may_access(c), now_ms())).await?;
    Ok(Json(updated.public()).into_response())
}

async fn remove(
    State(api): State<GeofenceApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, GeofenceError> {
    let who = principal(&api, &headers)?;
    let geofences = api.geofences.clone();
    blocking(move || geofences.delete(&id, |c| who.may_access(c), now_ms())).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use fleetflow_model::CompanyConfig;
    use tower::ServiceExt;

    fn api(name: &str) -> GeofenceApi {
        let dir =
            std::env::temp_dir().join(format!("ff-geofence-api-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let company = |id: &str| CompanyConfig {
            id: id.into(),
            name: String::new(),
            tokens: vec![format!("{id}-token")],
            trips: None,
        };
        GeofenceApi {
            geofences: Arc::new(Geofences::open(&dir).unwrap()),
            tenants: Arc::new(
                Tenants::new(&[company("acme"), company("globex")], Some("admin")).unwrap(),
            ),
        }
    }

    async fn call(
        api: &GeofenceApi,
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
        let response = geofence_routes(api.clone())
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

    fn depot() -> Value {
        json!({"name": "depot", "geometry": {"type": "Polygon", "coordinates": [[
            [127.0, 37.5], [127.01, 37.5], [127.01, 37.51], [127.0, 37.51], [127.0, 37.5]
        ]]}})
    }

    #[tokio::test]
    async fn companies_see_and_change_only_their_own_geofences() {
        let api = api("own");
        let (status, _) = call(&api, "GET", "/v1/geofences", None, Value::Null).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, created) =
            call(&api, "POST", "/v1/geofences", Some("acme-token"), depot()).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["company"], "acme");
        assert_eq!(created["geometry"]["type"], "Polygon");
        let id = created["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/geofences/{id}");

        let (_, listed) = call(
            &api,
            "GET",
            "/v1/geofences",
            Some("globex-token"),
            Value::Null,
        )
        .await;
        assert_eq!(listed["geofences"], json!([]), "globex sees none of acme's");
        for method in ["GET", "DELETE"] {
            let (status, _) = call(&api, method, &path, Some("globex-token"), Value::Null).await;
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "globex cannot {method} acme's"
            );
        }
        let (status, _) = call(&api, "PUT", &path, Some("globex-token"), depot()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "globex cannot edit acme's");

        let circle =
            json!({"name": "yard", "center": {"lat": 37.5, "lon": 127.0}, "radius_m": 300});
        let (status, edited) = call(&api, "PUT", &path, Some("acme-token"), circle).await;
        assert_eq!(status, StatusCode::OK, "{edited}");
        assert_eq!(edited["name"], "yard");
        assert_eq!(edited["radius_m"], json!(300.0));
        let (_, shown) = call(&api, "GET", &path, Some("admin"), Value::Null).await;
        assert_eq!(shown, edited);

        // A batch, by the admin for globex: all or nothing.
        let mut bad = depot();
        bad["geometry"]["coordinates"][0][4] = json!([127.0, 37.505]);
        let batch = json!([
            {"name": "a", "center": {"lat": 37.5, "lon": 127.0}, "radius_m": 50, "company": "globex"},
            {"name": "b", "geometry": bad["geometry"], "company": "globex"},
        ]);
        let (status, err) = call(&api, "POST", "/v1/geofences", Some("admin"), batch.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            err["error"],
            "[1].geometry: ring 0 is not closed: its last position must repeat its first"
        );
        let mut batch = batch;
        batch[1]["geometry"] = depot()["geometry"].clone();
        let (status, created) = call(&api, "POST", "/v1/geofences", Some("admin"), batch).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["geofences"].as_array().unwrap().len(), 2);
        let (_, listed) = call(
            &api,
            "GET",
            "/v1/geofences?company=globex",
            Some("admin"),
            Value::Null,
        )
        .await;
        assert_eq!(listed["geofences"].as_array().unwrap().len(), 2);
        let (_, listed) = call(&api, "GET", "/v1/geofences", Some("admin"), Value::Null).await;
        assert_eq!(listed["geofences"].as_array().unwrap().len(), 3);

        let (status, _) = call(&api, "DELETE", &path, Some("acme-token"), Value::Null).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = call(&api, "GET", &path, Some("acme-token"), Value::Null).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_bad_request_names_its_field() {
        let api = api("bad");
        let polygon = |coordinates: Value| json!({"name": "x", "geometry": {"type": "Polygon", "coordinates": coordinates}});
        for (body, want) in [
            (json!({"name": "x"}), "geometry:"),
            (
                json!({"name": "x", "center": {"lat": 1, "lon": 2}}),
                "radius_m:",
            ),
            (
                json!({"name": "x", "center": {"lat": 1, "lon": 2}, "radius_m": 5, "shape": 1}),
                "unknown field `shape`",
            ),
            (
                polygon(json!([[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]])),
                "geometry: ",
            ),
            (
                polygon(json!([[[0, 0], [1, 0], [1, 100], [0, 0]]])),
                "latitude 100 is out of range",
            ),
            (
                json!({"name": "x", "center": {"lat": 1, "lon": 2}, "radius_m": 5, "company": "globex"}),
                "company:",
            ),
            (json!([]), "body: an empty array"),
        ] {
            let (status, err) = call(&api, "POST", "/v1/geofences", Some("acme-token"), body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
            let message = err["error"].as_str().unwrap();
            assert!(message.contains(want), "{want}: {message}");
        }
        let (_, listed) = call(
            &api,
            "GET",
            "/v1/geofences",
            Some("acme-token"),
            Value::Null,
        )
        .await;
        assert_eq!(listed["geofences"], json!([]), "nothing refused was stored");
        let (status, _) = call(
            &api,
            "GET",
            "/v1/geofences?comapny=x",
            Some("admin"),
            Value::Null,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}

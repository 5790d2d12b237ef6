//! `fleetflow webhook-test`: a tiny webhook receiver that prints each delivery as one JSON line
//! (path, id, kind, attempt, whether the signature checks out, the answer, the body), for users trying webhooks
//! out and for the tests. `--fail-first N` answers 503 to the first N tries of each event.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use clap::Args;
use serde_json::{Value, json};

use crate::error::AppError;

#[derive(Debug, Clone, Args)]
pub struct WebhookTestArgs {
    /// Where to listen (`127.0.0.1:9999`); the webhook URL is `http://ADDR/` (any path).
    #[arg(long)]
    pub listen: SocketAddr,
    /// The subscription's secret: each delivery's `X-Fleetflow-Signature` is checked with it.
    #[arg(long)]
    pub secret: Option<String>,
    /// Answer 503 to the first N tries of each event (to watch retries).
    #[arg(long, default_value_t = 0)]
    pub fail_first: u32,
}

#[derive(Debug)]
struct Receiver {
    args: WebhookTestArgs,
    tries: Mutex<HashMap<String, u32>>,
}

/// Serves until interrupted.
pub async fn webhook_test(args: WebhookTestArgs) -> Result<(), AppError> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(AppError::io(format!("listen on {}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(AppError::io("listener address"))?;
    eprintln!("fleetflow webhook-test: POST http://{addr}/ (any path); one JSON line per delivery");
    let state = Arc::new(Receiver {
        args,
        tries: Mutex::new(HashMap::new()),
    });
    let app = Router::new()
        .route("/", post(receive))
        .route("/{*path}", post(receive))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(crate::http::server::shutdown_signal())
        .await
        .map_err(AppError::io("webhook-test server"))
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let id = header("x-fleetflow-event-id");
    let tries = {
        let mut tries = receiver.tries.lock().unwrap_or_else(|e| e.into_inner());
        let n = tries.entry(id.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let failed = tries <= receiver.args.fail_first;
    let signature = match &receiver.args.secret {
        Some(secret) => {
            if fleetflow_webhooks::event::signature(secret, &body)
                == header("x-fleetflow-signature")
            {
                "ok"
            } else {
                "bad"
            }
        }
        None => "unchecked",
    };
    let line = json!({
        "path": uri.path(),
        "id": id,
        "kind": header("x-fleetflow-event"),
        "attempt": header("x-fleetflow-attempt").parse::<u32>().ok(),
        "signature": signature,
        "answered": if failed { 503 } else { 200 },
        "body": serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
    });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    if failed {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

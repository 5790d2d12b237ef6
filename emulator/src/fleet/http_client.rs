//! The HTTP side of a terminal: one pooled keep-alive HTTP/1 client shared by every vehicle, posting
//! a [`DeviceEvent`] with Monicar's headers and classifying the answer.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::device::device_event::{DeviceEvent, Endpoint};
use crate::device::monicar_body::write_compact_time;
use crate::error::EmulatorError;

/// Longest Retry-After honoured, so a confused server cannot park the fleet.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

static KEY_VERSION: HeaderName = HeaderName::from_static("key-version");
static TIMESTAMP: HeaderName = HeaderName::from_static("timestamp");
static TUID: HeaderName = HeaderName::from_static("tuid");

/// What became of one POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostOutcome {
    /// 2xx and not `"isSuccess":false`.
    Success { latency: Duration },
    /// 2xx whose body says `"isSuccess":false` (how Monicar itself reports failures).
    Rejected { latency: Duration, body: Bytes },
    /// Any other status.
    Status {
        status: u16,
        retry_after: Option<Duration>,
        body: Bytes,
        latency: Duration,
    },
    /// Could not connect, or the connection failed mid-exchange.
    Connection(String),
    /// No complete answer within the request timeout.
    Timeout,
}

/// A pooled client for one fleetflow (or Monicar) event hub.
#[derive(Debug, Clone)]
pub struct MonicarClient {
    client: Client<HttpConnector, Full<Bytes>>,
    uris: [Uri; 3],
    authorization: Option<HeaderValue>,
    timeout: Duration,
}

impl MonicarClient {
    /// A client for `target` (`http://host:port[/prefix]`), optionally sending
    /// `Authorization: Bearer <token>`, giving up on a request after `timeout`, keeping at most
    /// `max_idle` idle keep-alive connections.
    pub fn new(
        target: &str,
        token: Option<&str>,
        timeout: Duration,
        max_idle: usize,
    ) -> Result<MonicarClient, EmulatorError> {
        let base = target.trim().trim_end_matches('/');
        let bad = |reason: &str| EmulatorError::BadTarget {
            url: target.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed: Uri = base
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
        match parsed.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(bad("https is not supported; use http://")),
            _ => return Err(bad("expected http://host:port")),
        }
        if parsed.authority().is_none() || parsed.query().is_some() {
            return Err(bad("expected http://host:port with no query"));
        }
        let uri = |endpoint: Endpoint| -> Result<Uri, EmulatorError> {
            format!("{base}{}", endpoint.path())
                .parse()
                .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))
        };
        let uris = [
            uri(Endpoint::KeyOn)?,
            uri(Endpoint::KeyOff)?,
            uri(Endpoint::CycleInfo)?,
        ];
        let authorization = token
            .map(|t| {
                HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| EmulatorError::BadToken)
            })
            .transpose()?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(max_idle)
            .build(connector);
        Ok(MonicarClient {
            client,
            uris,
            authorization,
            timeout,
        })
    }

    /// The full URL an endpoint is posted to.
    pub fn uri(&self, endpoint: Endpoint) -> &Uri {
        match endpoint {
            Endpoint::KeyOn => &self.uris[0],
            Endpoint::KeyOff => &self.uris[1],
            Endpoint::CycleInfo => &self.uris[2],
        }
    }

    /// Posts one event and reads the whole answer (so the connection can be reused).
    pub async fn post(&self, event: &DeviceEvent) -> PostOutcome {
        let request = self.request(event);
        let started = Instant::now();
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|secs| Duration::from_secs(secs).min(MAX_RETRY_AFTER));
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, retry_after, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => PostOutcome::Timeout,
            Ok(Err(error)) => PostOutcome::Connection(error),
            Ok(Ok((status, retry_after, body))) => {
                let latency = started.elapsed();
                if !(200..300).contains(&status) {
                    PostOutcome::Status {
                        status,
                        retry_after,
                        body,
                        latency,
                    }
                } else if says_failure(&body) {
                    PostOutcome::Rejected { latency, body }
                } else {
                    PostOutcome::Success { latency }
                }
            }
        }
    }

    fn request(&self, event: &DeviceEvent) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(event.body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri(event.endpoint).clone();
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(KEY_VERSION.clone(), HeaderValue::from_static("1.0"));
        let mut stamp = Vec::with_capacity(14);
        write_compact_time(&mut stamp, event.at_ms);
        if let Ok(value) = HeaderValue::from_bytes(&stamp) {
            headers.insert(TIMESTAMP.clone(), value);
        }
        if let Ok(value) = HeaderValue::from_str(&event.tuid) {
            headers.insert(TUID.clone(), value);
        }
        if let Some(auth) = &self.authorization {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        request
    }
}

/// Whether a JSON answer carries `"isSuccess": false`.
fn says_failure(body: &[u8]) -> bool {
    let key = b"\"isSuccess\"";
    let Some(at) = body.windows(key.len()).position(|w| w == key) else {
        return false;
    };
    let rest = &body[at + key.len()..];
    let value: Vec<u8> = rest
        .iter()
        .copied()
        .skip_while(|b| b.is_ascii_whitespace() || *b == b':')
        .take(5)
        .collect();
    value == b"false"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Duration::from_secs(1);
        let client = MonicarClient::new("http://127.0.0.1:8080/", Some("abc"), t, 8).unwrap();
        assert_eq!(
            client.uri(Endpoint::CycleInfo).to_string(),
            "http://127.0.0.1:8080/api/v1/event-hub/cycle-info"
        );
        let prefixed = MonicarClient::new("http://h:1/monicar", None, t, 8).unwrap();
        assert_eq!(
            prefixed.uri(Endpoint::KeyOn).to_string(),
            "http://h:1/monicar/api/v1/event-hub/key-on"
        );
        assert!(MonicarClient::new("https://h", None, t, 8).is_err());
        assert!(MonicarClient::new("127.0.0.1:8080", None, t, 8).is_err());
        assert!(MonicarClient::new("not a url", None, t, 8).is_err());
        assert!(MonicarClient::new("http://h:1", Some("bad\ntoken"), t, 8).is_err());
    }

    #[test]
    fn failure_bodies() {
        assert!(says_failure(br#"{"isSuccess":false,"errorCode":101}"#));
        assert!(says_failure(br#"{"isSuccess" : false}"#));
        assert!(!says_failure(br#"{"isSuccess":true,"message":"ok"}"#));
        assert!(!says_failure(b""));
    }
}

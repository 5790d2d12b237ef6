//! Subscriptions: which company wants which event kinds POSTed to which URL, in which body
//! format, signed with which secret. Kept in `<data-dir>/webhooks/subscriptions.json`, rewritten
//! whole under a temporary name and renamed, so the file is always one complete version; the
//! delivery side re-reads it when it changes (it may run in another process).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use fleetflow_live_store::AlertKind;
use fleetflow_model::EventKind;
use fleetflow_tables::list_file::ListFile;
use serde::{Deserialize, Serialize};

use crate::WebhookError;

/// Most subscriptions one company may hold.
pub const MAX_PER_COMPANY: usize = 100;
/// Longest URL accepted, bytes.
pub const MAX_URL_LEN: usize = 2048;
/// Longest secret accepted, bytes.
pub const MAX_SECRET_LEN: usize = 256;

/// The live store's alerts that webhooks deliver. Its device alerts (overspeed, maintenance
/// due, geofences) are `events` rows and come from there; so does `online` (written when the
/// vehicle is heard again, from the records' receipt times, so a crash cannot lose it) and
/// `offline` too, once the vehicle is back. The store's `offline` comes as soon as the silence
/// runs out, under the same id (its time is the same), so receivers get it at once and
/// de-duplicate the event log's copy.
pub const LIVE_ALERT_KINDS: [AlertKind; 2] = [AlertKind::Offline, AlertKind::Milestone];

/// Every kind a subscription may name: the `events` table's, then the live alerts' not among
/// them.
pub fn known_kinds() -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    for k in LIVE_ALERT_KINDS {
        if !kinds.contains(&k.as_str()) {
            kinds.push(k.as_str());
        }
    }
    kinds
}

/// The body a subscription is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The event as a JSON object (README "Webhooks").
    #[default]
    Json,
    /// `{"text": ...}`: what Slack's incoming webhooks accept.
    Slack,
}

/// One subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    pub id: String,
    pub company: String,
    pub url: String,
    /// Event kinds (`events.kind` values), sorted, no repeats.
    pub events: Vec<String>,
    pub format: Format,
    /// The HMAC-SHA256 key of `X-Fleetflow-Signature`.
    pub secret: String,
    pub created_at_ms: i64,
}

impl Subscription {
    /// Whether this subscription is sent an event of `kind` about `company`'s vehicle.
    pub fn wants(&self, company: &str, kind: &str) -> bool {
        self.company == company && self.events.iter().any(|k| k == kind)
    }

    /// What `GET /v1/webhooks` shows: everything but the secret.
    pub fn public(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "company": self.company,
            "url": self.url,
            "events": self.events,
            "format": self.format,
            "created_at_ms": self.created_at_ms,
        })
    }
}

/// The body of `POST /v1/webhooks`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    pub url: String,
    pub events: Vec<String>,
    #[serde(default)]
    pub format: Format,
    /// Generated (and returned once) when absent.
    #[serde(default)]
    pub secret: Option<String>,
    /// Whose: only the admin names it; a company's token always means that company.
    #[serde(default)]
    pub company: Option<String>,
}

impl NewSubscription {
    /// Checks every field, naming the first that is wrong.
    pub fn validate(&self) -> Result<(String, Vec<String>), WebhookError> {
        let invalid = |m: String| Err(WebhookError::Invalid(m));
        if self.url.len() > MAX_URL_LEN {
            return invalid(format!("url: longer than {MAX_URL_LEN} bytes"));
        }
        let url = match url::Url::parse(&self.url) {
            Ok(url) => url,
            Err(e) => return invalid(format!("url: {e}")),
        };
        if !matches!(url.scheme(), "http" | "https") {
            return invalid(format!(
                "url: scheme {:?} is not http or https",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return invalid("url: has no host".to_owned());
        }
        let known = known_kinds();
        if self.events.is_empty() {
            return invalid(format!("events: empty; name one or more of {known:?}"));
        }
        let mut kinds = BTreeSet::new();
        for kind in &self.events {
            if !known.contains(&kind.as_str()) {
                return invalid(format!(
                    "events: {kind:?} is not an event kind; known: {known:?}"
                ));
            }
            kinds.insert(kind.clone());
        }
        if let Some(secret) = &self.secret
            && (secret.is_empty() || secret.len() > MAX_SECRET_LEN)
        {
            return invalid(format!("secret: must be 1-{MAX_SECRET_LEN} bytes"));
        }
        Ok((url.to_string(), kinds.into_iter().collect()))
    }
}

/// The subscriptions file (`fleetflow_tables::list_file`), and the version of it last read.
#[derive(Debug)]
pub struct Subscriptions {
    file: ListFile<Subscription>,
}

impl Subscriptions {
    /// Opens (or starts) `<data_dir>/webhooks/subscriptions.json`.
    pub fn open(data_dir: &Path) -> Result<Subscriptions, WebhookError> {
        Ok(Subscriptions {
            file: ListFile::open(data_dir.join("webhooks").join("subscriptions.json"))?,
        })
    }

    /// The current subscriptions.
    pub fn all(&self) -> Arc<Vec<Subscription>> {
        self.file.all()
    }

    /// Re-reads the file if another process changed it since; returns the current list.
    pub fn reload_if_changed(&self) -> Result<Arc<Vec<Subscription>>, WebhookError> {
        Ok(self.file.reload_if_changed()?)
    }

    /// Adds a subscription for `company`.
    pub fn create(
        &self,
        company: &str,
        request: &NewSubscription,
        now_ms: i64,
    ) -> Result<Subscription, WebhookError> {
        let (url, events) = request.validate()?;
        self.file.update(|list| {
            if list.iter().filter(|s| s.company == company).count() >= MAX_PER_COMPANY {
                return Err(WebhookError::Invalid(format!(
                    "company {company} already has {MAX_PER_COMPANY} webhooks: delete one first"
                )));
            }
            let sub = Subscription {
                id: uuid::Uuid::new_v4().simple().to_string(),
                company: company.to_owned(),
                url,
                events,
                format: request.format,
                secret: request
                    .secret
                    .clone()
                    .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
                created_at_ms: now_ms,
            };
            list.push(sub.clone());
            Ok(sub)
        })
    }

    /// Removes subscription `id` if `may_access` allows its company; `NotFound` otherwise (a
    /// company cannot tell another's ids from unknown ones).
    pub fn delete(
        &self,
        id: &str,
        may_access: impl Fn(&str) -> bool,
    ) -> Result<Subscription, WebhookError> {
        self.file.update(|list| {
            let Some(at) = list
                .iter()
                .position(|s| s.id == id && may_access(&s.company))
            else {
                return Err(WebhookError::NotFound(id.to_owned()));
            };
            Ok(list.remove(at))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, events: &[&str]) -> NewSubscription {
        NewSubscription {
            url: url.to_owned(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            format: Format::Json,
            secret: None,
            company: None,
        }
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ff-subs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_bad_field_is_named() {
        let err = |r: NewSubscription| r.validate().unwrap_err().to_string();
        assert!(err(request("ftp://x", &["trip_end"])).starts_with("url: scheme"));
        assert!(err(request("not a url", &["trip_end"])).starts_with("url:"));
        assert!(err(request("http://x", &[])).starts_with("events: empty"));
        assert!(err(request("http://x", &["teleport"])).contains("\"teleport\""));
        let mut r = request("http://x", &["trip_end"]);
        r.secret = Some(String::new());
        assert!(err(r).starts_with("secret:"));
        let (_, kinds) = request("http://x/h", &["trip_end", "offline", "trip_end"])
            .validate()
            .unwrap();
        assert_eq!(kinds, ["offline", "trip_end"]);
    }

    #[test]
    fn subscriptions_survive_reopening_and_stay_with_their_company() {
        let dir = temp_dir("reopen");
        let subs = Subscriptions::open(&dir).unwrap();
        let a = subs
            .create("acme", &request("http://a/h", &["trip_end"]), 1)
            .unwrap();
        let b = subs
            .create("globex", &request("http://b/h", &["overspeed"]), 2)
            .unwrap();
        assert_eq!(a.secret.len(), 32, "a generated secret");
        assert!(matches!(
            subs.delete(&a.id, |c| c == "globex"),
            Err(WebhookError::NotFound(_))
        ));
        let reopened = Subscriptions::open(&dir).unwrap();
        assert_eq!(*reopened.all(), vec![a.clone(), b.clone()]);
        reopened.delete(&a.id, |c| c == "acme").unwrap();
        // The first handle sees the other's change.
        assert_eq!(*subs.reload_if_changed().unwrap(), vec![b]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

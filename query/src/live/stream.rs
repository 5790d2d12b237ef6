//! `GET /v1/live/stream`: the live views as Server-Sent Events.
//!
//! The first event is a `snapshot` (the full vehicle list, as `/v1/live/vehicles`) unless the
//! client resumes with `?since=<cursor>` or the `Last-Event-ID` header its `EventSource` sends
//! on reconnect; then one `changes` event (as `/v1/live/changes`) each time the store applies
//! dataflow time with a change the caller may see, and `alerts` events for new alerts. Each
//! event's `id` is the cursor to resume from. A cursor the change log no longer covers gets a
//! fresh `snapshot`. Updates are batched per applied timestamp (`pipeline.tick_ms`), so a
//! dashboard of 15,000 vehicles gets a few events per second, not one per vehicle.
//!
//! Browsers' `EventSource` cannot send headers, so this endpoint also takes `?token=`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use fleetflow_live_store::store::{LiveSnapshot, LiveStore};
use futures::stream::{self, Stream, StreamExt};
use serde_json::json;

use crate::error::QueryError;
use crate::live::api::{LiveApi, VehicleFilter, Viewer, changes_answer, vehicles_answer};
use crate::live::json::AlertView;

struct Subscriber {
    store: Arc<LiveStore>,
    viewer: Viewer,
    rx: tokio::sync::watch::Receiver<u64>,
    /// `None`: send a snapshot next.
    cursor: Option<u64>,
    alert_cursor: u64,
    first: bool,
}

impl Subscriber {
    /// The events due now, advancing the cursors.
    fn due(&mut self, s: &LiveSnapshot) -> Vec<Event> {
        let mut out = Vec::new();
        let changes = self
            .cursor
            .and_then(|cursor| changes_answer(s, &self.viewer, cursor).ok());
        match changes {
            Some(answer) => {
                if answer["changes"].as_array().is_some_and(|c| !c.is_empty()) {
                    out.push(event("changes", s.seq, &answer));
                }
            }
            None => {
                let filter = VehicleFilter {
                    limit: usize::MAX,
                    ..VehicleFilter::default()
                };
                out.push(event(
                    "snapshot",
                    s.seq,
                    &vehicles_answer(s, &self.viewer, &filter),
                ));
            }
        }
        self.cursor = Some(s.seq);
        let alerts: Vec<AlertView> = s
            .alerts_since(self.alert_cursor)
            .filter(|a| self.viewer.sees(&a.company))
            .map(AlertView::from)
            .collect();
        if !alerts.is_empty() {
            let body = json!({ "upto_ms": s.upto, "cursor": s.alert_seq, "alerts": alerts });
            out.push(event("alerts", s.seq, &body));
        }
        self.alert_cursor = s.alert_seq;
        out
    }
}

fn event(name: &str, id: u64, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name)
        .id(id.to_string())
        .data(serde_json::to_string(data).unwrap_or_default())
}

/// `GET /v1/live/stream[?since=cursor][&alerts_since=seq][&company=][&token=]`
pub async fn stream(
    State(api): State<LiveApi>,
    headers: HeaderMap,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, QueryError> {
    let (store, viewer, p) = api.open(&headers, raw, &["since", "alerts_since", "token"])?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let cursor = p.number("since", 0..=u64::MAX)?.or(resume);
    let alert_cursor = match p.number("alerts_since", 0..=u64::MAX)? {
        Some(seq) => seq,
        None => store.read(|s| s.alert_seq),
    };
    let subscriber = Subscriber {
        rx: store.subscribe(),
        store,
        viewer,
        cursor,
        alert_cursor,
        first: true,
    };
    let events = stream::unfold(subscriber, |mut sub| async move {
        loop {
            if !sub.first && sub.rx.changed().await.is_err() {
                return None;
            }
            sub.first = false;
            if sub.store.is_closed() {
                return None;
            }
            let store = sub.store.clone();
            let due = store.read(|s| sub.due(s));
            if !due.is_empty() {
                return Some((due, sub));
            }
        }
    })
    .flat_map(|due| stream::iter(due.into_iter().map(Ok)));
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

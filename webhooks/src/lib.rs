//! Alerts delivered: each company subscribes its own HTTP endpoints to the event kinds it wants,
//! and fleetflow POSTs every such event of its vehicles there, at least once, across crashes.
//!
//! The path of an event (design note `delivery.md` beside this file):
//!
//! - the pipeline commits it into the `events` table (`fleetflow_tables::commit_log`);
//! - the [`dispatch`]er reads each new commit's events files, in commit order, and appends every
//!   event to the [`outbox`] of each [`subscription`] that wants it, then records the commit as
//!   dispatched; a read hold keeps compaction and the commit log's trimming off the commits it
//!   has not read yet;
//! - a [`deliver`]y task per subscription POSTs its outbox's events ([`event`]: the JSON and
//!   Slack bodies, the signature), retries with backoff, and marks each delivered or
//!   dead-lettered;
//! - [`api`]: `/v1/webhooks` for companies to manage their subscriptions; [`stats`] for
//!   `/metrics` and `/status`; [`service`] starts and stops it all, as [`config`]ured; [`synthetic`] commits events
//!   for tests and benchmarks.

pub mod api;
pub mod config;
pub mod deliver;
pub mod dispatch;
pub mod event;
pub mod outbox;
pub mod service;
pub mod stats;
pub mod subscription;
pub mod synthetic;

pub use api::{WebhookApi, webhook_routes};
pub use config::WebhookConfig;
pub use service::Webhooks;
pub use stats::WebhookStats;
pub use subscription::{Format, Subscription, Subscriptions};

use std::path::PathBuf;

/// Everything that goes wrong in webhooks, classified for HTTP by [`WebhookError::status`].
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A request's field is wrong: the message names it.
    #[error("{0}")]
    Invalid(String),
    #[error("missing or unknown bearer token")]
    Unauthorized,
    #[error("no webhook {0}")]
    NotFound(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("reading committed events: {0}")]
    Events(String),
    #[error("{0}")]
    Internal(String),
}

impl From<fleetflow_tables::list_file::ListFileError> for WebhookError {
    fn from(error: fleetflow_tables::list_file::ListFileError) -> Self {
        use fleetflow_tables::list_file::ListFileError;
        match error {
            ListFileError::Io { path, source } => WebhookError::Io { path, source },
            ListFileError::Corrupt { path, source } => WebhookError::Corrupt { path, source },
        }
    }
}

impl WebhookError {
    /// The HTTP status a client is answered with. Internal errors never show their details.
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            WebhookError::Invalid(_) => StatusCode::BAD_REQUEST,
            WebhookError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebhookError::NotFound(_) => StatusCode::NOT_FOUND,
            WebhookError::Io { .. }
            | WebhookError::Corrupt { .. }
            | WebhookError::Events(_)
            | WebhookError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told.
    pub fn public_message(&self) -> String {
        match self {
            WebhookError::Invalid(_) | WebhookError::Unauthorized | WebhookError::NotFound(_) => {
                self.to_string()
            }
            WebhookError::Io { .. }
            | WebhookError::Corrupt { .. }
            | WebhookError::Events(_)
            | WebhookError::Internal(_) => "internal error".to_owned(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> WebhookError {
        let path = path.into();
        move |source| WebhookError::Io { path, source }
    }
}

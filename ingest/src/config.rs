//! Ingest settings: the `[ingest]` section of fleetflow's config.

use serde::{Deserialize, Serialize};

/// Whether devices must present a company token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// `Authorization: Bearer <token>` (or `?token=` for OsmAnd clients) naming a company.
    Token,
    /// No device authentication, as Monicar's own event hub: the registry alone decides a
    /// vehicle's company.
    Off,
}

/// What happens to a vehicle the registry does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownVehiclePolicy {
    /// Reject the request with Monicar code 1012.
    Reject,
    /// Register it: into the token's company, or `default_company` when authentication is off.
    Register,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    pub auth: AuthMode,
    pub unknown_vehicle: UnknownVehiclePolicy,
    /// The company unknown vehicles join when authentication is off.
    pub default_company: String,
    /// Largest request body, after gzip decompression, in bytes.
    pub max_body_bytes: usize,
    /// Most items (points and events) in one request.
    pub max_batch_items: usize,
    /// A fix more than this far ahead of the server clock is refused (seconds).
    pub max_future_secs: u64,
    /// A fix before this day (UTC, `YYYY-MM-DD`) is refused: a device with an unset clock
    /// sends 1970 or year 1, and each such day would be its own `date=` partition.
    pub min_fix_date: String,
    /// `Retry-After` sent with 503 answers (seconds).
    pub retry_after_secs: u32,
    /// A request body not complete this long after its head was read is refused (408), so a
    /// client trickling its body cannot hold a connection and a buffer open (seconds).
    pub body_timeout_secs: u64,
    /// A dedicated OsmAnd listener (Traccar's port is 5055) taking the protocol on any path, for
    /// devices configured with a host and port only. Off when unset.
    pub osmand_listen: Option<std::net::SocketAddr>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            auth: AuthMode::Off,
            unknown_vehicle: UnknownVehiclePolicy::Register,
            default_company: "default".to_owned(),
            max_body_bytes: 8 << 20,
            max_batch_items: 10_000,
            max_future_secs: 24 * 3600,
            min_fix_date: "2000-01-01".to_owned(),
            retry_after_secs: 1,
            body_timeout_secs: 30,
            osmand_listen: None,
        }
    }
}

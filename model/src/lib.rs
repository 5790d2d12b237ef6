//! The contracts fleetflow's crates share, each defined once: the telemetry items ingest
//! produces, their Kafka record encoding, Monicar's compact time format, the table schemas,
//! tenancy, trip rules, and distances on the earth ([`geo`]).

pub mod compact_time;
pub mod geo;
pub mod record;
pub mod telemetry;

pub use compact_time::{CompactTimeError, format_compact_time, parse_compact_time};
pub use record::{DecodeError, RECORD_VERSION, decode, encode, encode_to_vec};
pub use telemetry::{E7, Fix, GpsStatus, Item, ItemAttributes, ItemKind, Source, TelemetryRecord};
pub mod tenancy;
pub use tenancy::{CompanyConfig, Principal, TenancyError, Tenants};
pub mod trip_rules;
pub use trip_rules::TripRules;
pub mod tables;
pub use tables::{EventKind, PARTITION_COLUMN, ROLLUP_SUMS, Rollup, Table, partition_dir};

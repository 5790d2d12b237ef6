//! Kafka in: the source operator (one rdkafka consumer per worker over its share of the
//! partitions, paused by flow control while too much is read but not committed), the raw
//! records it emits, the hash that routes them to workers, and the start-up check that the
//! broker is the one the commit log's offsets refer to. Uses rdkafka and timely, and in this
//! crate only the dataflow's time ([`crate::Epoch`]) and [`fleetflow_tables::commit_log`].

pub mod broker_check;
pub mod kafka_source;
pub mod raw_record;
pub mod stable_hash;

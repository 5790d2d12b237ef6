//! Kafka as fleetflow uses it: the clients and every librdkafka setting with its reason, topic
//! creation and the in-memory mock broker ([`clients`]), and the durable embedded broker
//! (Tansu, its log in SQLite: [`durable_broker`]).

pub mod clients;
pub mod durable_broker;

//! Physical-plan rules and operators fleetflow adds to DataFusion: the latest version per key
//! ([`latest_version`]), aggregates by the partition key ([`partition_key_aggregate`]), and
//! joins that let a cancelled query stop ([`yielding_joins`]).

pub mod latest_version;
pub mod partition_key_aggregate;
pub mod yielding_joins;

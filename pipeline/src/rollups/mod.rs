//! Rollups: per vehicle and per company, per UTC hour and day, the trips and fixes of each
//! period, kept by the sink as change rows every flush window ([`rollup_changes`]).

pub mod rollup_changes;

//! `fleetflow tail`: reads the telemetry topic from the beginning and prints each record decoded,
//! one JSON line per record: a debugging window onto what ingest wrote.

use std::io::Write;
use std::time::{Duration, Instant};

use fleetflow_model::{Item, decode};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;

use crate::error::AppError;
use crate::kafka::clients::reader_config;

#[derive(Debug, Clone)]
pub struct TailOptions {
    pub brokers: String,
    pub topic: String,
    /// Stop after this many records.
    pub count: Option<u64>,
    /// Stop when nothing arrives for this long.
    pub idle_exit: Option<Duration>,
    /// Print every item, not just a summary.
    pub items: bool,
}

/// Runs until `count` records, `idle_exit` without records, or forever. Returns records read.
pub fn tail(options: &TailOptions, out: &mut impl Write) -> Result<u64, AppError> {
    let group = format!("fleetflow-tail-{}", std::process::id());
    let consumer: BaseConsumer = reader_config(&options.brokers, &group)
        .create()
        .map_err(|e| AppError::Kafka(e.to_string()))?;
    consumer
        .subscribe(&[&options.topic])
        .map_err(|e| AppError::Kafka(e.to_string()))?;
    let mut read = 0u64;
    let mut last = Instant::now();
    loop {
        if options.count.is_some_and(|count| read >= count) {
            return Ok(read);
        }
        if options.idle_exit.is_some_and(|idle| last.elapsed() >= idle) {
            return Ok(read);
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.map_err(|e| AppError::Kafka(e.to_string()))?;
        last = Instant::now();
        read += 1;
        let line = match decode(message.payload().unwrap_or_default()) {
            Ok(record) => {
                let mut line = json!({
                    "partition": message.partition(),
                    "offset": message.offset(),
                    "vehicle": record.vehicle,
                    "company": record.company,
                    "source": record.source.as_str(),
                    "received_ms": record.received_ms,
                    "items": record.items.len(),
                    "fixes": record.fix_count(),
                });
                if options.items {
                    line["detail"] = record.items.iter().map(item_json).collect();
                }
                line
            }
            Err(error) => json!({
                "partition": message.partition(),
                "offset": message.offset(),
                "error": error.to_string(),
            }),
        };
        writeln!(out, "{line}").map_err(AppError::io("stdout"))?;
    }
}

fn item_json(item: &Item) -> serde_json::Value {
    let fix = item.fix();
    let mut value = json!({
        "kind": format!("{:?}", item.kind()),
        "time_ms": fix.time_ms,
        "lat": fix.lat(),
        "lon": fix.lon(),
        "speed_kmh": f64::from(fix.speed_dkmh) / 10.0,
        "heading": f64::from(fix.heading_ddeg) / 10.0,
        "gps": char::from(fix.gps.code()).to_string(),
    });
    match item {
        Item::IgnitionOn { odometer_m, .. } => value["odometer_m"] = json!(odometer_m),
        Item::IgnitionOff {
            trip_distance_m, ..
        } => value["trip_distance_m"] = json!(trip_distance_m),
        Item::Fix(_) => {}
    }
    value
}

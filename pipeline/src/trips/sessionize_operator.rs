//! The sessionize operator: raw Kafka records in, routed by vehicle; when the frontier passes a
//! timestamp, that timestamp's records are decoded, admitted and settled, and what changed
//! leaves on eight outputs. Trips, geofence visits, vehicles and last-heard times leave as
//! differential collections (retractions and insertions), the other tables as plain streams of
//! rows.
//!
//! Records are held until their timestamp is complete and processed in timestamp order, so
//! every row a record causes carries that record's timestamp: the Parquet sink can then commit
//! a window's rows together with the Kafka offsets that window covers.

use std::collections::BTreeMap;
use std::sync::Arc;

use differential_dataflow::AsCollection;
use differential_dataflow::collection::vec::Collection;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::{Stream, StreamVec};

use crate::rows::{ErrorReason, ErrorRow, EventRow, PositionRow, TripRecord, VisitRecord};
use crate::source::raw_record::RawRecord;
use crate::trips::sessionize::{Outputs, Provenance, Sessionizer};
use fleetflow_live_store::{LastHeard, VehicleLive};

/// `positions` rows after which the operator stops taking completed epochs and lets the
/// operators after it (the sink) run first; it is scheduled again at once. One epoch is always
/// taken whole. After a pause (a blocked Parquet write, a commit) a catch-up had dozens of
/// completed epochs stashed, and taking them all at once queued ~200 MB of rows for the sink.
const ROWS_PER_ACTIVATION: usize = 1 << 17;

/// The dataflow's timestamp (see `kafka_source.rs`), defined with the live store that is kept
/// in it.
pub use fleetflow_live_store::Epoch;

/// (worker, partition, smallest offset held).
pub type Retained = (usize, i32, i64);

/// The streams [`Sessionize::sessionize`] produces.
pub struct SessionStreams<'scope> {
    pub trips: Collection<'scope, Epoch, TripRecord>,
    /// Geofence visits (retracted and re-inserted when a correction changes them).
    pub visits: Collection<'scope, Epoch, VisitRecord>,
    /// Each vehicle's live state after its newest item (retracted and re-inserted on change).
    pub vehicles: Collection<'scope, Epoch, VehicleLive>,
    /// When each vehicle was last heard from (when ingest received its newest record).
    pub heard: Collection<'scope, Epoch, LastHeard>,
    pub positions: StreamVec<'scope, Epoch, PositionRow>,
    pub events: StreamVec<'scope, Epoch, EventRow>,
    pub errors: StreamVec<'scope, Epoch, ErrorRow>,
    /// (worker, partition, smallest Kafka offset whose items the worker still holds), the
    /// worker's whole report after each timestamp it processed: where a restart must replay
    /// from.
    pub retained: StreamVec<'scope, Epoch, Retained>,
}

impl std::fmt::Debug for SessionStreams<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStreams").finish_non_exhaustive()
    }
}

/// Extension trait: sessionize a stream of raw Kafka records.
pub trait Sessionize<'scope> {
    /// `make` builds each worker's [`Sessionizer`].
    fn sessionize(self, make: impl FnOnce() -> Sessionizer + 'static) -> SessionStreams<'scope>;
}

impl<'scope> Sessionize<'scope> for Stream<'scope, Epoch, Vec<RawRecord>> {
    fn sessionize(self, make: impl FnOnce() -> Sessionizer + 'static) -> SessionStreams<'scope> {
        let scope = self.scope();
        let worker = scope.index();
        let mut builder = OperatorBuilder::new("Sessionize".to_owned(), scope);
        let mut input = builder.new_input(self, Exchange::new(RawRecord::route));
        let (trips_out, trips) = builder.new_output::<Vec<(TripRecord, Epoch, isize)>>();
        let (positions_out, positions) = builder.new_output::<Vec<PositionRow>>();
        let (events_out, events) = builder.new_output::<Vec<EventRow>>();
        let (errors_out, errors) = builder.new_output::<Vec<ErrorRow>>();
        let (retained_out, retained) = builder.new_output::<Vec<Retained>>();
        let (vehicles_out, vehicles) = builder.new_output::<Vec<(VehicleLive, Epoch, isize)>>();
        let mut trips_out = OutputBuilder::from(trips_out);
        let mut positions_out = OutputBuilder::from(positions_out);
        let mut events_out = OutputBuilder::from(events_out);
        let mut errors_out = OutputBuilder::from(errors_out);
        let mut retained_out = OutputBuilder::from(retained_out);
        let (heard_out, heard) = builder.new_output::<Vec<(LastHeard, Epoch, isize)>>();
        let mut vehicles_out = OutputBuilder::from(vehicles_out);
        let mut heard_out = OutputBuilder::from(heard_out);
        let (visits_out, visits) = builder.new_output::<Vec<(VisitRecord, Epoch, isize)>>();
        let mut visits_out = OutputBuilder::from(visits_out);
        let activator = scope.activator_for(builder.operator_info().address);

        builder.build(move |initial: Vec<Capability<Epoch>>| {
            drop(initial);
            let mut sessionizer = make();
            // Records waiting for their timestamp to complete, with one capability per output.
            let mut stash: BTreeMap<Epoch, (Vec<Capability<Epoch>>, Vec<RawRecord>)> =
                BTreeMap::new();
            let mut out = Outputs::default();
            move |frontiers| {
                input.for_each(|cap, data| {
                    let slot = stash.entry(*cap.time()).or_insert_with(|| {
                        ((0..8).map(|port| cap.retain(port)).collect(), Vec::new())
                    });
                    slot.1.append(data);
                });
                let mut trips_h = trips_out.activate();
                let mut positions_h = positions_out.activate();
                let mut events_h = events_out.activate();
                let mut errors_h = errors_out.activate();
                let mut retained_h = retained_out.activate();
                let mut vehicles_h = vehicles_out.activate();
                let mut heard_h = heard_out.activate();
                let mut visits_h = visits_out.activate();
                let mut rows = 0;
                while let Some(entry) = stash.first_entry() {
                    let time = *entry.key();
                    if frontiers[0].less_equal(&time) {
                        break;
                    }
                    if rows >= ROWS_PER_ACTIVATION {
                        activator.activate();
                        break;
                    }
                    let (caps, records) = entry.remove();
                    sessionizer.begin_epoch(time);
                    for raw in &records {
                        admit(&mut sessionizer, raw, &mut out);
                    }
                    sessionizer.settle(&mut out);
                    sessionizer.record_heard(time, &mut out);
                    trips_h
                        .session(&caps[0])
                        .give_iterator(out.trips.drain(..).map(|(t, diff)| (t, time, diff)));
                    rows += out.positions.len();
                    positions_h
                        .session(&caps[1])
                        .give_iterator(out.positions.drain(..));
                    events_h
                        .session(&caps[2])
                        .give_iterator(out.events.drain(..));
                    errors_h
                        .session(&caps[3])
                        .give_iterator(out.errors.drain(..));
                    vehicles_h
                        .session(&caps[5])
                        .give_iterator(out.vehicles.drain(..).map(|(v, diff)| (v, time, diff)));
                    heard_h
                        .session(&caps[6])
                        .give_iterator(out.heard.drain(..).map(|(h, diff)| (h, time, diff)));
                    visits_h
                        .session(&caps[7])
                        .give_iterator(out.visits.drain(..).map(|(v, diff)| (v, time, diff)));
                    retained_h.session(&caps[4]).give_iterator(
                        sessionizer
                            .retained_offsets()
                            .into_iter()
                            .map(|(p, o)| (worker, p, o)),
                    );
                }
            }
        });

        SessionStreams {
            trips: trips.as_collection(),
            visits: visits.as_collection(),
            vehicles: vehicles.as_collection(),
            heard: heard.as_collection(),
            positions,
            events,
            errors,
            retained,
        }
    }
}

/// Decodes one raw record and admits it; undecodable bytes become an `errors` row.
fn admit(sessionizer: &mut Sessionizer, raw: &RawRecord, out: &mut Outputs) {
    let from = Provenance {
        partition: raw.partition,
        offset: raw.offset,
    };
    let key = raw.key.as_deref().map(String::from_utf8_lossy);
    let error = |reason, detail: String| ErrorRow {
        company: None,
        vehicle: key.as_deref().map(Arc::from),
        time_ms: None,
        reason,
        detail,
        received_ms: None,
        partition: raw.partition,
        offset: raw.offset,
    };
    match fleetflow_model::decode(&raw.payload) {
        Ok(record) => {
            if key.as_deref().is_some_and(|k| k != record.vehicle) {
                out.errors.push(error(
                    ErrorReason::KeyMismatch,
                    format!("payload names vehicle {:?}", record.vehicle),
                ));
                return;
            }
            sessionizer.admit(&record, from, out);
        }
        Err(e) => out
            .errors
            .push(error(ErrorReason::Undecodable, e.to_string())),
    }
}

//! The `PublishLive` operator: sends every view row and device alert to worker 0, buffers them
//! per timestamp and applies a timestamp to the [`LiveStore`] only once the frontier has passed
//! it: a reader never sees half a timestamp, nor one view ahead of another.

use std::collections::BTreeMap;
use std::sync::Arc;

use differential_dataflow::collection::vec::Collection;
use fleetflow_live_store::{Alert, Epoch, LiveRow, LiveStore};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;

/// Extension trait: keep a [`LiveStore`] equal to the live views.
pub trait PublishLive<'scope> {
    /// Publishes every view row and the device alerts (`alerts`) to `store`.
    fn publish_live(self, alerts: StreamVec<'scope, Epoch, Alert>, store: Arc<LiveStore>);
}

type Pending = BTreeMap<Epoch, (Vec<(LiveRow, isize)>, Vec<Alert>)>;

impl<'scope> PublishLive<'scope> for Collection<'scope, Epoch, LiveRow> {
    fn publish_live(self, alerts: StreamVec<'scope, Epoch, Alert>, store: Arc<LiveStore>) {
        let mut pending: Pending = BTreeMap::new();
        self.inner
            .binary_frontier::<_, CapacityContainerBuilder<Vec<()>>, _, _, _, _>(
                alerts,
                Exchange::new(|_: &(LiveRow, Epoch, isize)| 0),
                Exchange::new(|_: &Alert| 0),
                "PublishLive",
                move |_initial, _info| {
                    move |(rows, rows_frontier), (alerts, alerts_frontier), _output| {
                        rows.for_each(|_cap, data| {
                            for (row, t, d) in data.drain(..) {
                                pending.entry(t).or_default().0.push((row, d));
                            }
                        });
                        alerts.for_each(|cap, data| {
                            pending.entry(*cap.time()).or_default().1.append(data);
                        });
                        // Everything before both frontiers is complete.
                        let upto = rows_frontier
                            .frontier()
                            .iter()
                            .chain(alerts_frontier.frontier().iter())
                            .min()
                            .copied()
                            .unwrap_or(Epoch::MAX);
                        let mut ready = Vec::new();
                        while let Some(entry) = pending.first_entry() {
                            if *entry.key() >= upto {
                                break;
                            }
                            let epoch = *entry.key();
                            let (rows, alerts) = entry.remove();
                            ready.push((epoch, rows, alerts));
                        }
                        if !ready.is_empty() || store.read(|s| s.upto) < upto {
                            store.apply(ready, upto);
                        }
                    }
                },
            );
    }
}

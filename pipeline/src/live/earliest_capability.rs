//! One capability for an operator that holds updates back until the frontier passes their
//! times (a temporal filter, the period totals): kept at the earliest held time, so the
//! operator holds nothing per time and the dataflow's frontier waits only for what is due.

use timely::dataflow::operators::{Capability, InputCapability};
use timely::progress::Timestamp;

/// A capability at the earliest time an operator holds an update for, or none when it holds
/// nothing.
#[derive(Debug)]
pub struct EarliestCapability<T: Timestamp>(Option<Capability<T>>);

impl<T: Timestamp> Default for EarliestCapability<T> {
    fn default() -> Self {
        EarliestCapability(None)
    }
}

impl<T: Timestamp> EarliestCapability<T> {
    /// Notes an update held for `time`, which arrived with `input` (at or before `time`).
    pub fn hold(&mut self, input: &InputCapability<T>, time: &T) {
        if self.0.as_ref().is_none_or(|cap| time.less_than(cap.time())) {
            self.0 = Some(input.delayed(time, 0));
        }
    }

    /// A capability to send the updates due at `time`, a time held since the last
    /// [`settle`](Self::settle).
    pub fn at(&self, time: &T) -> Capability<T> {
        self.0
            .as_ref()
            .expect("an operator sends only at times it holds")
            .delayed(time)
    }

    /// After sending what was due: keeps the capability at the earliest time still held, or
    /// drops it when nothing is held.
    pub fn settle(&mut self, earliest: Option<&T>) {
        match (earliest, self.0.as_mut()) {
            (Some(earliest), Some(cap)) => cap.downgrade(earliest),
            _ => self.0 = None,
        }
    }
}

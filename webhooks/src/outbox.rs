//! One subscription's outbox: the events it is still owed, on disk.
//!
//! `<data-dir>/webhooks/outbox/<subscription>/` holds two append-only files of JSON lines:
//! `events.jsonl`, every event the dispatcher handed this subscription (fsync'd before the
//! dispatcher records the commit as dispatched), and `done.jsonl`, the ids that were delivered
//! or dead-lettered. What is owed is the first minus the second, so a crash at any point
//! re-sends at most the events whose outcome was not yet written, and never skips one. A line
//! torn by a crash (the last one, without its newline) is ignored: for `events.jsonl` it was
//! never acknowledged to the dispatcher, for `done.jsonl` its event is simply sent again.
//!
//! Once everything in it is done and it has grown past [`ROTATE_BYTES`], both files are
//! emptied (each replaced by an empty file, renamed over it).

use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::WebhookError;
use crate::event::WebhookEvent;

/// Size of `events.jsonl` past which a fully delivered outbox is emptied.
pub const ROTATE_BYTES: u64 = 1 << 20;

/// The events owed to one subscription.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    events: File,
    done: File,
    events_bytes: u64,
    /// Ids in `events.jsonl`: the dispatcher re-appending a commit after a crash adds nothing.
    ids: HashSet<String>,
    /// Owed and not yet handed to a delivery attempt, oldest first.
    queue: VecDeque<WebhookEvent>,
    /// Handed out, outcome not yet known.
    in_flight: usize,
}

fn lines(path: &Path) -> Result<Vec<String>, WebhookError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(WebhookError::io(path)(e)),
    };
    let mut out = Vec::new();
    let mut reader = BufReader::new(file);
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .map_err(WebhookError::io(path))?;
        if n == 0 || !line.ends_with('\n') {
            // The end, or a line torn by a crash.
            return Ok(out);
        }
        line.pop();
        out.push(line);
    }
}

fn append_file(path: &Path) -> Result<File, WebhookError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(WebhookError::io(path))
}

impl Outbox {
    /// Opens `dir` (creating it), with what is still owed queued.
    pub fn open(dir: &Path) -> Result<Outbox, WebhookError> {
        std::fs::create_dir_all(dir).map_err(WebhookError::io(dir))?;
        let events_path = dir.join("events.jsonl");
        let done_path = dir.join("done.jsonl");
        // A torn last line is cut off, so that appends start on a line of their own.
        for path in [&events_path, &done_path] {
            truncate_torn_tail(path)?;
        }
        let done: HashSet<String> = lines(&done_path)?.into_iter().collect();
        let mut ids = HashSet::new();
        let mut queue = VecDeque::new();
        for line in lines(&events_path)? {
            let event: WebhookEvent =
                serde_json::from_str(&line).map_err(|source| WebhookError::Corrupt {
                    path: events_path.clone(),
                    source,
                })?;
            if ids.insert(event.id.clone()) && !done.contains(&event.id) {
                queue.push_back(event);
            }
        }
        let events_bytes = std::fs::metadata(&events_path).map_or(0, |m| m.len());
        Ok(Outbox {
            dir: dir.to_owned(),
            events: append_file(&events_path)?,
            done: append_file(&done_path)?,
            events_bytes,
            ids,
            queue,
            in_flight: 0,
        })
    }

    /// Appends the events not already in the outbox, durably (fsync) before returning.
    pub fn append(&mut self, events: &[WebhookEvent]) -> Result<usize, WebhookError> {
        let mut buf = Vec::new();
        let mut added = Vec::new();
        for event in events {
            if self.ids.insert(event.id.clone()) {
                serde_json::to_writer(&mut buf, event).expect("events serialize");
                buf.push(b'\n');
                added.push(event.clone());
            }
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let path = self.dir.join("events.jsonl");
        self.events
            .write_all(&buf)
            .and_then(|()| self.events.sync_data())
            .map_err(WebhookError::io(&path))?;
        self.events_bytes += buf.len() as u64;
        let n = added.len();
        self.queue.extend(added);
        Ok(n)
    }

    /// Hands out up to `max` owed events for delivery.
    pub fn take(&mut self, max: usize) -> Vec<WebhookEvent> {
        let n = max.min(self.queue.len());
        self.in_flight += n;
        self.queue.drain(..n).collect()
    }

    /// Records that event `id` (handed out by [`Outbox::take`]) was delivered or dead-lettered.
    /// Not fsync'd: a `kill -9` keeps what was written; only a power loss can lose the line,
    /// and then the event is sent again.
    pub fn complete(&mut self, id: &str) -> Result<(), WebhookError> {
        self.in_flight = self.in_flight.saturating_sub(1);
        let path = self.dir.join("done.jsonl");
        self.done
            .write_all(format!("{id}\n").as_bytes())
            .map_err(WebhookError::io(&path))?;
        if self.queue.is_empty() && self.in_flight == 0 && self.events_bytes > ROTATE_BYTES {
            self.rotate()?;
        }
        Ok(())
    }

    /// Owed events not yet handed out.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Owed events, handed out or not.
    pub fn owed(&self) -> usize {
        self.queue.len() + self.in_flight
    }

    /// Empties both files once nothing is owed.
    fn rotate(&mut self) -> Result<(), WebhookError> {
        for name in ["done.jsonl", "events.jsonl"] {
            let path = self.dir.join(name);
            let tmp = self.dir.join(format!("{name}.tmp"));
            File::create(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(WebhookError::io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(WebhookError::io(&path))?;
        }
        self.events = append_file(&self.dir.join("events.jsonl"))?;
        self.done = append_file(&self.dir.join("done.jsonl"))?;
        self.events_bytes = 0;
        self.ids.clear();
        Ok(())
    }

    /// Removes the outbox of a deleted subscription.
    pub fn remove(dir: &Path) -> Result<(), WebhookError> {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(WebhookError::io(dir)(e)),
            _ => Ok(()),
        }
    }
}

/// Cuts a last line that has no newline (torn by a crash).
fn truncate_torn_tail(path: &Path) -> Result<(), WebhookError> {
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(());
    };
    if bytes.last().is_some_and(|b| *b != b'\n') {
        let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(WebhookError::io(path))?;
        file.set_len(keep as u64).map_err(WebhookError::io(path))?;
        file.sync_all().map_err(WebhookError::io(path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: i64) -> WebhookEvent {
        WebhookEvent {
            id: WebhookEvent::id_of("acme", "v", "trip_end", n, None, None),
            kind: "trip_end".into(),
            company: "acme".into(),
            vehicle: "v".into(),
            time_ms: n,
            lat: None,
            lon: None,
            trip_id: None,
            value: None,
            detected_at_ms: n,
            geofence_id: None,
            retraction: false,
        }
    }

    #[test]
    fn what_is_owed_survives_reopening_and_torn_lines() {
        let dir = std::env::temp_dir().join(format!("ff-outbox-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut outbox = Outbox::open(&dir).unwrap();
        assert_eq!(outbox.append(&[event(1), event(2), event(3)]).unwrap(), 3);
        assert_eq!(
            outbox.append(&[event(2), event(4)]).unwrap(),
            1,
            "2 is there"
        );
        let handed = outbox.take(2);
        assert_eq!(handed.len(), 2);
        outbox.complete(&handed[0].id).unwrap();
        drop(outbox);
        // A crash tore the next lines.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join("done.jsonl"))
            .unwrap();
        f.write_all(handed[1].id.as_bytes()).unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join("events.jsonl"))
            .unwrap();
        f.write_all(b"{\"id\":").unwrap();
        let mut outbox = Outbox::open(&dir).unwrap();
        let owed: Vec<i64> = outbox.take(10).iter().map(|e| e.time_ms).collect();
        assert_eq!(owed, [2, 3, 4], "1 was done; 2's torn line does not count");
        assert_eq!(outbox.append(&[event(5)]).unwrap(), 1);
        drop(outbox);
        let mut outbox = Outbox::open(&dir).unwrap();
        assert_eq!(outbox.owed(), 4);
        for e in outbox.take(10) {
            outbox.complete(&e.id).unwrap();
        }
        assert_eq!(outbox.owed(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

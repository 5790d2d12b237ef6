//! The thread that encodes and fsyncs a worker's closed flush windows, so a Parquet flush never
//! stalls the worker (which also runs the sessionizer and publishes the live views).
//!
//! The sink's ParquetWrite operator hands each window whose end the frontier passed to
//! [`WindowWriter::submit`] and keeps the window's capability; when the file names come back
//! ([`WindowWriter::finished`]), in submission order, it reports them at that capability. So the
//! commit still waits for every file of a window, exactly as if the operator had written them
//! itself. The queue holds at most [`QUEUED_WINDOWS`]: a writer that falls behind blocks the
//! worker, which is the backpressure a synchronous write gave.
//!
//! A job comes back with its files, emptied, its `positions` buffer keeping its capacity: the
//! operator fills a later window into it. A window holds seconds of rows (hundreds of megabytes
//! at a million points a second); growing a fresh buffer for each one made the worker fault in,
//! and the kernel zero, that much new memory per window: about a fifth of the workers' time in
//! a profile (`benches/RESULTS.md`, session 20).

use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, channel, sync_channel};
use std::thread::JoinHandle;

use timely::scheduling::SyncActivator;

use crate::trips::sessionize_operator::Epoch;
use fleetflow_tables::commit_log::{CommitLog, DataFile};

/// Closed windows waiting for the writer beyond the one it is writing.
pub const QUEUED_WINDOWS: usize = 2;

/// What one window's files are written from; `write` turns it into files under staging and
/// leaves the job empty (the sink reuses its `positions` buffer).
pub trait WindowJob: Send + 'static {
    fn write(&mut self, log: &CommitLog) -> Result<Vec<DataFile>, String>;
}

/// What the writer thread sends back: the window's end, its files, and the emptied job.
type Written<J> = (Epoch, Result<Vec<DataFile>, String>, J);

/// One worker's writer thread.
#[derive(Debug)]
pub struct WindowWriter<J: WindowJob> {
    jobs: Option<SyncSender<(Epoch, J)>>,
    done: Receiver<Written<J>>,
    thread: Option<JoinHandle<()>>,
}

impl<J: WindowJob> WindowWriter<J> {
    /// Starts the thread; it activates the operator through `activator` after each window.
    pub fn spawn(log: CommitLog, worker: usize, activator: SyncActivator) -> Self {
        let (jobs, queue) = sync_channel::<(Epoch, J)>(QUEUED_WINDOWS);
        let (finished, done): (Sender<Written<J>>, _) = channel();
        let thread = std::thread::Builder::new()
            .name(format!("parquet-writer-{worker}"))
            .spawn(move || {
                for (end, mut job) in queue {
                    let result = job.write(&log);
                    if finished.send((end, result, job)).is_err() {
                        return; // the operator is gone
                    }
                    // Err only if the worker has shut down, when nothing waits for the report.
                    let _ = activator.activate();
                }
            })
            .expect("spawn the Parquet writer thread");
        WindowWriter {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
        }
    }

    /// Queues the window ending at `end`; blocks while [`QUEUED_WINDOWS`] are already waiting.
    pub fn submit(&self, end: Epoch, job: J) {
        let jobs = self.jobs.as_ref().expect("the writer runs until dropped");
        if jobs.send((end, job)).is_err() {
            // The thread only stops early by panicking: surface that here.
            panic!("the Parquet writer thread stopped");
        }
    }

    /// The next window written, in submission order, if it is done, with its emptied job. An
    /// I/O error stops the pipeline, as a synchronous write would (restart is the recovery
    /// path; nothing is lost).
    pub fn finished(&self) -> Option<(Epoch, Vec<DataFile>, J)> {
        match self.done.try_recv() {
            Ok((end, Ok(files), job)) => Some((end, files, job)),
            Ok((end, Err(error), _)) => {
                panic!("Parquet sink cannot write window ending {end}: {error}")
            }
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => panic!("the Parquet writer thread stopped"),
        }
    }
}

impl<J: WindowJob> Drop for WindowWriter<J> {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
            && !std::thread::panicking()
        {
            panic!("the Parquet writer thread panicked");
        }
    }
}

//! The job table's own thread. Every call the engine makes to the table runs
//! there, one after another. Through `spawn_blocking`, each call took a
//! blocking thread that then waited for the table's lock: when the pool's
//! tasks all finished a page at once, dozens of threads were started just to
//! queue. One thread serves the calls in the order they come, back to back.
//!
//! When the engine is dropped the thread is told to stop and joined: it
//! serves the calls already sent, then closes the table (its WAL folded into
//! the file), so a finished command leaves no `-wal` behind and no write is
//! cut off by the process exiting.

use crate::jobs::{JobError, JobTable};
use crate::owner_thread::OwnerThread;

/// The table's thread; dropping it ends the thread and waits for the table
/// to be closed.
pub(crate) struct TableThread(OwnerThread<JobTable, Result<(), JobError>>);

impl TableThread {
    /// Starts the thread, which owns `table` from then on and closes it when
    /// the `TableThread` is dropped.
    pub(crate) fn start(table: JobTable) -> std::io::Result<Self> {
        // A call that panics (a bug) gets no answer; an open transaction is
        // rolled back as it unwinds, and the thread serves the others, which
        // can still release their jobs.
        let thread = OwnerThread::start_with(
            "finpipe-jobs",
            move || Ok::<_, std::convert::Infallible>(table),
            JobTable::close,
            Ok(()),
        )?;
        match thread {
            Ok(thread) => Ok(Self(thread)),
            Err(never) => match never {},
        }
    }

    /// Runs `call` on the table's thread and waits for its answer; `None`
    /// when the call panicked.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        call: impl FnOnce(&mut JobTable) -> T + Send + 'static,
    ) -> Option<T> {
        self.0.run(call).await
    }
}

impl Drop for TableThread {
    fn drop(&mut self) {
        match self.0.stop() {
            Some(Ok(())) => {}
            Some(Err(e)) => tracing::warn!("could not close the job table cleanly: {e}"),
            None => tracing::warn!("the job table's thread panicked while closing the table"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_run_in_order_on_one_thread_and_survive_a_panic() {
        let thread = TableThread::start(JobTable::open_in_memory().unwrap()).unwrap();
        let mut seen = Vec::new();
        for k in 0..3 {
            let answer = thread
                .run(move |t| (k, t.counts().unwrap().pending, std::thread::current().id()))
                .await
                .unwrap();
            seen.push(answer);
        }
        let here = std::thread::current().id();
        assert!(
            seen.iter()
                .all(|(_, _, id)| *id != here && *id == seen[0].2)
        );
        assert_eq!(
            seen.iter()
                .map(|(k, pending, _)| (*k, *pending))
                .collect::<Vec<_>>(),
            [(0, 0), (1, 0), (2, 0)]
        );
        // A call that panics gets no answer instead of waiting for ever, and
        // the thread goes on serving the next calls.
        assert_eq!(thread.run(|_| -> u8 { panic!("a bug") }).await, None);
        assert_eq!(thread.run(|t| t.counts().unwrap().pending).await, Some(0));
    }

    #[tokio::test]
    async fn dropping_the_thread_closes_the_table_and_leaves_no_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("finpipe.db");
        let wal = dir.path().join("finpipe.db-wal");
        let thread = TableThread::start(JobTable::open(&path).unwrap()).unwrap();
        let job = crate::jobs::NewJob {
            kind: crate::jobs::JobKind::Rest,
            ticker: crate::model::Ticker::new("AAPL").unwrap(),
            timeframe: crate::model::Timeframe::MINUTE,
            derived: Vec::new(),
            basis: crate::model::Basis::Unadjusted,
            range: crate::ranges::DateRange::day(
                chrono::NaiveDate::from_ymd_opt(2024, 1, 2).unwrap(),
            ),
        };
        let added = thread.run(move |t| t.insert(&[job], 0).unwrap()).await;
        assert_eq!(added, Some(1));
        assert!(wal.exists());
        drop(thread);
        // Joined: the table is closed by the time `drop` returns.
        assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
        let copy = dir.path().join("copy.db");
        std::fs::copy(&path, &copy).unwrap();
        assert_eq!(JobTable::open(&copy).unwrap().counts().unwrap().pending, 1);
    }
}

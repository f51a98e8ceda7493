//! The job table's own thread. Every call the engine makes to the table runs
//! there, one after another. Through `spawn_blocking`, each call took a
//! blocking thread that then waited for the table's lock: when the pool's
//! tasks all finished a page at once, dozens of threads were started just to
//! queue. One thread serves the calls in the order they come, back to back.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;

use crate::jobs::JobTable;

/// A call to run on the table's thread.
type Call = Box<dyn FnOnce(&mut JobTable) + Send>;

/// The sending side; the thread ends when every clone is dropped.
pub(crate) struct TableThread {
    calls: mpsc::Sender<Call>,
}

impl TableThread {
    /// Starts the thread, which owns `table` from then on.
    pub fn start(mut table: JobTable) -> std::io::Result<Self> {
        let (calls, queue) = mpsc::channel::<Call>();
        std::thread::Builder::new()
            .name("finpipe-jobs".into())
            .spawn(move || {
                for call in queue {
                    // A call that panics (a bug) drops its answer, so its
                    // caller gets `None`; the thread goes on serving the
                    // others, which can still release their jobs. An open
                    // transaction is rolled back as it unwinds.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        call(&mut table);
                    }));
                }
            })?;
        Ok(Self { calls })
    }

    /// Runs `call` on the table's thread and waits for its answer; `None`
    /// when the call panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        call: impl FnOnce(&mut JobTable) -> T + Send + 'static,
    ) -> Option<T> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let sent = self.calls.send(Box::new(move |table: &mut JobTable| {
            // The caller may have stopped waiting: nothing to do then.
            let _ = answer.send(call(table));
        }));
        sent.ok()?;
        answered.await.ok()
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
}

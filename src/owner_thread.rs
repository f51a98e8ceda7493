//! A value that lives on an OS thread of its own, and the calls sent to it.
//!
//! Two things need one: the engine's job table (so the pool's tasks queue
//! their calls on one thread instead of each taking a blocking thread), and
//! a PostgreSQL connection (the synchronous client blocks on a runtime of
//! its own and panics when used, created or dropped on a thread inside a
//! tokio runtime, which every async command is). The value is built, used
//! and dropped on its thread; callers send closures and wait for answers,
//! from async code ([`OwnerThread::run`]) or from a plain thread
//! ([`OwnerThread::run_blocking`]).
//!
//! When the handle is dropped (or [`OwnerThread::stop`]ped) the thread
//! serves the calls already sent, hands the value to its `finish` function
//! and ends; the handle waits for that.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// A call to run on the thread, with the value.
type Call<T> = Box<dyn FnOnce(&mut T) + Send>;

/// The handle on a thread that owns a `T`; `R` is what its `finish` returns.
pub(crate) struct OwnerThread<T, R = ()> {
    /// `None` once stopping: taken so the thread's queue ends.
    calls: Option<mpsc::Sender<Call<T>>>,
    thread: Option<JoinHandle<R>>,
}

impl<T: 'static, R: Send + 'static> OwnerThread<T, R> {
    /// Starts the thread `name`, which builds its value with `init` first.
    /// When `init` fails the thread ends and its error is returned (inside
    /// the `Ok`: the outer error is the thread's own failure to start).
    /// `finish` gets the value when the handle stops.
    pub(crate) fn start_with<E: Send + 'static>(
        name: &str,
        init: impl FnOnce() -> Result<T, E> + Send + 'static,
        finish: impl FnOnce(T) -> R + Send + 'static,
        failed: R,
    ) -> std::io::Result<Result<Self, E>> {
        let (calls, queue) = mpsc::channel::<Call<T>>();
        let (ready, started) = mpsc::sync_channel::<Result<(), E>>(1);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let mut value = match init() {
                    Ok(value) => value,
                    Err(error) => {
                        let _ = ready.send(Err(error));
                        return failed;
                    }
                };
                let _ = ready.send(Ok(()));
                for call in queue {
                    // A call that panics (a bug) drops its answer, so its
                    // caller gets `None`; the thread goes on serving the
                    // others.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| call(&mut value)));
                }
                finish(value)
            })?;
        let mut handle = Self {
            calls: Some(calls),
            thread: Some(thread),
        };
        match started.recv() {
            Ok(Ok(())) => Ok(Ok(handle)),
            Ok(Err(error)) => {
                handle.stop();
                Ok(Err(error))
            }
            // `init` panicked: the thread is gone.
            Err(_) => {
                handle.stop();
                Err(std::io::Error::other(format!(
                    "the thread {name} stopped while starting"
                )))
            }
        }
    }

    /// Runs `call` on the thread and waits for its answer without blocking
    /// the async runtime; `None` when the call panicked or the thread ended.
    pub(crate) async fn run<U: Send + 'static>(
        &self,
        call: impl FnOnce(&mut T) -> U + Send + 'static,
    ) -> Option<U> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.send(move |value| {
            // The caller may have stopped waiting: nothing to do then.
            let _ = answer.send(call(value));
        })?;
        answered.await.ok()
    }

    /// Runs `call` on the thread and blocks this thread until it answers;
    /// `None` when the call panicked or the thread ended.
    pub(crate) fn run_blocking<U: Send + 'static>(
        &self,
        call: impl FnOnce(&mut T) -> U + Send + 'static,
    ) -> Option<U> {
        let (answer, answered) = mpsc::sync_channel(1);
        self.send(move |value| {
            let _ = answer.send(call(value));
        })?;
        answered.recv().ok()
    }

    fn send(&self, call: impl FnOnce(&mut T) + Send + 'static) -> Option<()> {
        self.calls.as_ref()?.send(Box::new(call)).ok()
    }

    /// Ends the thread once the calls sent are served and returns what
    /// `finish` returned: `None` if it panicked, or was stopped before.
    pub(crate) fn stop(&mut self) -> Option<R> {
        drop(self.calls.take());
        self.thread.take()?.join().ok()
    }
}

impl<T, R> Drop for OwnerThread<T, R> {
    fn drop(&mut self) {
        drop(self.calls.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_lives_on_its_thread_and_finish_gets_it() {
        let mut owner = OwnerThread::start_with(
            "test-owner",
            || Ok::<_, String>(Vec::<u32>::new()),
            |v| v.len(),
            0,
        )
        .unwrap()
        .unwrap();
        let here = std::thread::current().id();
        for k in 0..3 {
            let there = owner
                .run_blocking(move |v| {
                    v.push(k);
                    std::thread::current().id()
                })
                .unwrap();
            assert_ne!(there, here);
        }
        assert_eq!(owner.run_blocking(|_| -> u8 { panic!("a bug") }), None);
        assert_eq!(owner.run_blocking(|v| v.clone()), Some(vec![0, 1, 2]));
        assert_eq!(owner.stop(), Some(3));
        assert_eq!(owner.run_blocking(|v| v.len()), None, "stopped");
    }

    #[test]
    fn a_failed_init_is_returned() {
        let started = OwnerThread::<u8>::start_with("test-owner", || Err("no"), |_| (), ());
        assert!(matches!(started, Ok(Err("no"))));
    }
}

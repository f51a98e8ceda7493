//! The run lock on PostgreSQL: a session-level advisory lock, exclusive
//! (`pg_try_advisory_lock`) or shared (`pg_try_advisory_lock_shared`), held
//! on a connection of its own for as long as the runner lives. The server
//! releases it when that connection closes, so a runner that dies (even by
//! SIGKILL, or with its machine) gives it back once the server notices.
//!
//! The key is finpipe's ("fprl") and the hash of the schema the URL's
//! session uses, so two job tables in one database (two schemas) have two
//! locks.

use super::session::{Session, pg};
use crate::jobs::{JobError, PgUrl, Result};
use crate::owner_thread::OwnerThread;

/// The first half of the lock's key: "fprl".
const RUN_LOCK: i32 = 0x6670_726c;

/// A held advisory run lock; released when dropped (the connection closes).
pub struct AdvisoryLock {
    _session: OwnerThread<Session>,
}

impl std::fmt::Debug for AdvisoryLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdvisoryLock")
    }
}

/// Takes the run lock of the job table at `url`, `shared` or exclusive.
/// With `wait`, blocks until it is free; without, `None` when a conflicting
/// holder has it.
pub fn acquire(url: &PgUrl, shared: bool, wait: bool) -> Result<Option<AdvisoryLock>> {
    let connect = url.clone();
    let session = OwnerThread::start_with(
        "finpipe-run-lock",
        move || Session::connect(&connect, ""),
        |session| {
            // Closing releases the lock; nothing useful can be done on error.
            let _ = session.close();
        },
        (),
    )
    .map_err(|e| thread_failed(url, e))??;
    let function = match (shared, wait) {
        (false, false) => "pg_try_advisory_lock",
        (true, false) => "pg_try_advisory_lock_shared",
        (false, true) => "pg_advisory_lock",
        (true, true) => "pg_advisory_lock_shared",
    };
    let sql = format!("SELECT {function}($1, hashtext(current_schema()))::TEXT");
    let taken = session
        .run_blocking(move |s| {
            let row = s
                .client
                .query_one(sql.as_str(), &[&RUN_LOCK])
                .map_err(pg("taking the run lock"))?;
            // `pg_try_…` answers true or false; `pg_advisory_lock…` waits
            // and answers nothing (void, as the empty text).
            let answer: String = row.try_get(0).map_err(pg("taking the run lock"))?;
            Ok::<_, JobError>(answer != "false")
        })
        .ok_or_else(|| thread_failed(url, std::io::Error::other("its thread stopped")))??;
    Ok(taken.then_some(AdvisoryLock { _session: session }))
}

fn thread_failed(url: &PgUrl, error: std::io::Error) -> JobError {
    JobError::Open {
        location: url.redacted().to_owned(),
        class: crate::jobs::ErrorClass::Internal,
        source: Box::new(error),
    }
}

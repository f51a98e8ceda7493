//! One rate limit for every runner of a PostgreSQL job table: the
//! [`SharedRate`] the limiters of all runners consult, kept in the same
//! database.
//!
//! Two tables, created at open when missing (they belong to the limiter,
//! not to the job table's versioned schema, so a database used with an
//! older finpipe keeps working):
//! - `finpipe_rate_grants`: one row per request let through, with the
//!   server's time. A grant older than the window is deleted by the next
//!   taker, so a runner that dies holding places gives them back within
//!   one window, with nothing to clean up.
//! - `finpipe_rate_pause`: one row, the end of the pause the last 429 set.
//!
//! Every decision is one transaction under a transaction-level advisory
//! lock, so two runners never both take the last place in a window. Times
//! come from the database server's clock (`clock_timestamp()`), so the
//! runners' clocks need not agree.

use std::time::Duration;

use super::session::{Session, pg};
use crate::jobs::{ErrorClass, JobError, PgUrl, Result};
use crate::owner_thread::OwnerThread;
use crate::polygon::{SharedRate, SharedRateError};

/// The advisory lock key (with the schema's hash) that serialises the
/// decisions: "fprt".
const RATE_LOCK: i32 = 0x6670_7274;

/// The tables, created if missing (under [`RATE_LOCK`]: concurrent
/// `CREATE … IF NOT EXISTS` can collide).
const TABLES: &str = "CREATE TABLE IF NOT EXISTS finpipe_rate_grants (at_ms BIGINT NOT NULL);
    CREATE INDEX IF NOT EXISTS finpipe_rate_grants_at ON finpipe_rate_grants (at_ms);
    CREATE TABLE IF NOT EXISTS finpipe_rate_pause (
        only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
        until_ms BIGINT NOT NULL
    );";

const LOCK: &str = super::session::XACT_LOCK;

/// Whether both tables exist.
const PRESENT: &str = "SELECT to_regclass('finpipe_rate_grants') IS NOT NULL
    AND to_regclass('finpipe_rate_pause') IS NOT NULL";

/// A runner that stalls (or freezes with its machine) inside a decision
/// holds the rate lock every other runner waits for: the server ends its
/// transaction after 5 s idle, so the others wait that long at most; a
/// runner waiting more than 10 s for the lock gets an error and asks again.
const RATE_SETTINGS: &str =
    "SET lock_timeout = '10s'; SET idle_in_transaction_session_timeout = '5s'";
const NOW: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT";

/// The shared budget of the runners of one PostgreSQL job table, on a
/// connection of its own (so the limiter never waits behind the job
/// table's calls).
pub struct PgRate {
    thread: OwnerThread<Session, ()>,
    location: String,
}

impl std::fmt::Debug for PgRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRate")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl PgRate {
    /// Connects to the database of the job table at `url` and creates the
    /// limiter's tables if they are missing.
    pub fn open(url: &PgUrl) -> Result<Self> {
        let location = url.redacted().to_owned();
        let connect = url.clone();
        let thread = OwnerThread::start_with(
            "finpipe-rate",
            move || {
                let mut session = Session::connect(&connect, RATE_SETTINGS)?;
                // Created only when missing: PostgreSQL checks CREATE on the
                // schema even for `CREATE … IF NOT EXISTS`.
                let present: bool = session
                    .client
                    .query_one(PRESENT, &[])
                    .and_then(|row| row.try_get(0))
                    .map_err(pg("looking for the rate limit's tables"))?;
                if present {
                    return Ok(session);
                }
                let mut tx = session
                    .client
                    .transaction()
                    .map_err(pg("creating the rate limit's tables"))?;
                tx.execute(LOCK, &[&RATE_LOCK])
                    .map_err(pg("creating the rate limit's tables"))?;
                tx.batch_execute(TABLES)
                    .map_err(pg("creating the rate limit's tables"))?;
                tx.commit()
                    .map_err(pg("creating the rate limit's tables"))?;
                Ok::<_, JobError>(session)
            },
            |session| {
                // Nothing depends on a clean close: the grants stay valid.
                let _ = session.close();
            },
            (),
        )
        .map_err(|source| JobError::Open {
            location: location.clone(),
            class: ErrorClass::Internal,
            source: Box::new(source),
        })??;
        Ok(Self { thread, location })
    }

    /// Runs `op` on the connection's thread, in a transaction under the
    /// rate lock when `locked` (else on its own: one statement needs no
    /// lock); `op` gets the server's time (Unix ms).
    fn decide<T: Send + 'static>(
        &self,
        action: &'static str,
        locked: bool,
        op: impl FnOnce(&mut postgres::Transaction<'_>, i64) -> std::result::Result<T, postgres::Error>
        + Send
        + 'static,
    ) -> std::result::Result<T, SharedRateError> {
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| SharedRateError {
            location: self.location.clone(),
            action,
            source,
        };
        self.thread
            .run_blocking(move |session| {
                session.reconnect_if_closed()?;
                let run = |session: &mut Session| {
                    let mut tx = session.client.transaction()?;
                    if locked {
                        tx.execute(LOCK, &[&RATE_LOCK])?;
                    }
                    let now: i64 = tx.query_one(NOW, &[])?.try_get(0)?;
                    let answer = op(&mut tx, now)?;
                    tx.commit()?;
                    Ok(answer)
                };
                run(session).map_err(pg("deciding on the shared rate limit"))
            })
            .ok_or_else(|| failed("the connection's thread stopped (a bug)".into()))?
            .map_err(|e| failed(Box::new(e)))
    }
}

impl SharedRate for PgRate {
    fn take(
        &self,
        window: Option<(u32, Duration)>,
    ) -> std::result::Result<Option<Duration>, SharedRateError> {
        // Unlimited: only the pause can hold a request back, and reading it
        // takes no lock, so runners never queue for each other.
        self.decide("read", window.is_some(), move |tx, now| {
            let paused: Option<i64> = tx
                .query_opt("SELECT until_ms FROM finpipe_rate_pause", &[])?
                .map(|row| row.try_get(0))
                .transpose()?;
            if let Some(until) = paused.filter(|until| *until > now) {
                return Ok(Some(millis(until - now)));
            }
            let Some((requests, span)) = window else {
                return Ok(None);
            };
            let span = i64::try_from(span.as_millis()).unwrap_or(i64::MAX);
            tx.execute(
                "DELETE FROM finpipe_rate_grants WHERE at_ms <= $1",
                &[&now.saturating_sub(span)],
            )?;
            let live: Vec<i64> = tx
                .query("SELECT at_ms FROM finpipe_rate_grants ORDER BY at_ms", &[])?
                .iter()
                .map(|row| row.try_get(0))
                .collect::<std::result::Result<_, _>>()?;
            let requests = usize::try_from(requests).unwrap_or(usize::MAX).max(1);
            if live.len() < requests {
                tx.execute(
                    "INSERT INTO finpipe_rate_grants (at_ms) VALUES ($1)",
                    &[&now],
                )?;
                return Ok(None);
            }
            // The grant whose expiry makes room.
            let frees = live[live.len() - requests] + span;
            Ok(Some(millis(frees - now)))
        })
    }

    fn pause(&self, pause: Duration) -> std::result::Result<(), SharedRateError> {
        let pause = i64::try_from(pause.as_millis()).unwrap_or(i64::MAX);
        self.decide("updated", true, move |tx, now| {
            tx.execute(
                "INSERT INTO finpipe_rate_pause (until_ms) VALUES ($1)
                 ON CONFLICT (only_row)
                 DO UPDATE SET until_ms = GREATEST(finpipe_rate_pause.until_ms, EXCLUDED.until_ms)",
                &[&now.saturating_add(pause)],
            )?;
            Ok(())
        })
    }
}

/// A wait of `ms` milliseconds (at least one: the place is not free yet).
fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms.max(1).unsigned_abs())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;
    use crate::jobs::postgres::testdb::{TempSchema, base_url};
    use crate::polygon::{Limiter, RateLimit};

    fn shared(schema: &TempSchema) -> Arc<dyn SharedRate> {
        Arc::new(PgRate::open(&PgUrl::parse(&schema.url).unwrap()).unwrap())
    }

    /// Grants counted in every window of `window` that starts at a grant.
    fn max_in_any_window(times: &[Instant], window: Duration) -> usize {
        times
            .iter()
            .map(|start| {
                times
                    .iter()
                    .filter(|t| **t >= *start && **t < *start + window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_runners_on_one_table_share_one_window() {
        let Some(base) = base_url() else { return };
        let schema = TempSchema::new(&base);
        // Two processes' limiters, each allowing 5 a second by itself.
        let limiters: Vec<Arc<Limiter>> = (0..2)
            .map(|_| {
                Arc::new(Limiter::sharing(
                    RateLimit::per_second(5),
                    Some(shared(&schema)),
                ))
            })
            .collect();
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..4 {
            let limiter = Arc::clone(&limiters[i % 2]);
            tasks.push(tokio::spawn(async move {
                let mut times = Vec::new();
                for _ in 0..3 {
                    limiter.acquire().await.unwrap();
                    times.push(Instant::now());
                }
                times
            }));
        }
        let mut times = Vec::new();
        for task in tasks {
            times.extend(task.await.unwrap());
        }
        times.sort();
        assert_eq!(times.len(), 12);
        // Alone, each would have let its 6 through at once: together they
        // kept to one budget of 5 a second (windows of 1 s plus the margin).
        assert!(
            max_in_any_window(&times, Duration::from_secs(1)) <= 5,
            "{:?}",
            times.iter().map(|t| *t - start).collect::<Vec<_>>()
        );
        assert!(
            times[11] - start >= Duration::from_secs(2),
            "12 grants need 3 windows"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_429_seen_by_one_runner_pauses_the_other() {
        let Some(base) = base_url() else { return };
        let schema = TempSchema::new(&base);
        let one = Limiter::sharing(RateLimit::Unlimited, Some(shared(&schema)));
        let other = Limiter::sharing(RateLimit::Unlimited, Some(shared(&schema)));
        let sent = one.acquire().await.unwrap();
        other.acquire().await.unwrap(); // no pause yet: at once
        let paused_at = Instant::now();
        one.rate_limited(sent, Some(Duration::from_secs(2)), |_| Duration::ZERO);
        // The pause reaches the database on a blocking thread of its own.
        tokio::time::sleep(Duration::from_millis(200)).await;
        other.acquire().await.unwrap();
        let waited = paused_at.elapsed();
        assert!(waited >= Duration::from_millis(1_800), "{waited:?}");
        assert!(waited < Duration::from_secs(4), "{waited:?}");
    }

    #[test]
    fn the_places_of_a_runner_that_died_come_back_within_one_window() {
        let Some(base) = base_url() else { return };
        let schema = TempSchema::new(&base);
        let window = Some((3, Duration::from_millis(800)));
        let dead = shared(&schema);
        for _ in 0..3 {
            assert_eq!(dead.take(window).unwrap(), None);
        }
        drop(dead); // its connection closes; its grants stay in the table
        let next = shared(&schema);
        let wait = next.take(window).unwrap().expect("the window is full");
        assert!(wait <= Duration::from_millis(800), "{wait:?}");
        std::thread::sleep(wait);
        assert_eq!(next.take(window).unwrap(), None, "a place came back");
    }

    #[test]
    fn errors_name_the_database_without_its_password() {
        // A server that is not there: the limiter's error says where.
        let url =
            PgUrl::parse("postgres://finpipe:s3cret-pw@127.0.0.1:1/finpipe?connect_timeout=2")
                .unwrap();
        let error = PgRate::open(&url).unwrap_err().to_string();
        assert!(error.contains("127.0.0.1:1"), "{error}");
        assert!(!error.contains("s3cret-pw"), "{error}");
    }
}

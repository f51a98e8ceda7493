//! The job table's connection settings and schema: the pragmas every
//! connection sets first, and the versioned migrations keyed on
//! `PRAGMA user_version`.

use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, TransactionBehavior};

use super::sql;
use crate::jobs::{JobError, Result};

/// How long a statement waits for another connection's write lock before it
/// fails with SQLITE_BUSY.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause between attempts to switch a new file to WAL (see `set_wal`).
const WAL_RETRY_STEP: Duration = Duration::from_millis(10);

/// The schema, one migration per version: `MIGRATIONS[i]` takes the database
/// from `user_version = i` to `i + 1`. Append only; never edit a released
/// entry. (A later migration adds the `flatfile` kind: `kind` has no CHECK
/// constraint, so that needs no table rebuild.)
pub const MIGRATIONS: &[&str] = &[
    // 1: jobs and coverage.
    "CREATE TABLE jobs (
        id           INTEGER PRIMARY KEY,
        kind         TEXT    NOT NULL,
        ticker       TEXT    NOT NULL,
        timeframe    TEXT    NOT NULL,
        derived      TEXT    NOT NULL DEFAULT '',
        adjusted     INTEGER NOT NULL CHECK (adjusted IN (0, 1)),
        start_date   TEXT    NOT NULL,
        end_date     TEXT    NOT NULL,
        state        TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'running', 'done', 'failed')),
        attempts     INTEGER NOT NULL DEFAULT 0,
        last_error   TEXT,
        available_at INTEGER NOT NULL,
        owner        TEXT,
        progress_ts  INTEGER,
        rows         INTEGER NOT NULL DEFAULT 0,
        requests     INTEGER NOT NULL DEFAULT 0,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        finished_at  INTEGER,
        UNIQUE (kind, ticker, timeframe, adjusted, start_date, end_date)
    );
    CREATE INDEX jobs_ready ON jobs (available_at) WHERE state IN ('pending', 'running');
    CREATE INDEX jobs_series ON jobs (ticker, adjusted);
    CREATE TABLE coverage (
        ticker     TEXT    NOT NULL,
        timeframe  TEXT    NOT NULL,
        adjusted   INTEGER NOT NULL CHECK (adjusted IN (0, 1)),
        start_date TEXT    NOT NULL,
        end_date   TEXT    NOT NULL,
        PRIMARY KEY (ticker, timeframe, adjusted, start_date)
    ) WITHOUT ROWID;",
    // 2: flat-file jobs. A `flatfile` job's `ticker` is the dataset's name
    // and its range a run of days with files; the tickers its day files are
    // fanned out to are its targets. `flat_ingested` remembers the ETag of
    // every day file ingested, so a republished file is ingested again.
    "CREATE TABLE job_targets (
        job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        ticker TEXT    NOT NULL,
        PRIMARY KEY (job_id, ticker)
    ) WITHOUT ROWID;
    CREATE INDEX job_targets_ticker ON job_targets (ticker);
    CREATE TABLE flat_ingested (
        dataset TEXT NOT NULL,
        kind    TEXT NOT NULL,
        day     TEXT NOT NULL,
        etag    TEXT NOT NULL,
        PRIMARY KEY (dataset, kind, day)
    ) WITHOUT ROWID;",
    // 3: the monitoring page. `fail_reason` says why a job failed
    // (`FailReason::as_str`), kept and cleared with `last_error`; `runs` is
    // the history of commands that ran the queue, one row each.
    "ALTER TABLE jobs ADD COLUMN fail_reason TEXT;
    CREATE TABLE runs (
        id          INTEGER PRIMARY KEY,
        command     TEXT    NOT NULL,
        owner       TEXT    NOT NULL,
        started_at  INTEGER NOT NULL,
        ended_at    INTEGER,
        jobs_done   INTEGER NOT NULL DEFAULT 0,
        jobs_failed INTEGER NOT NULL DEFAULT 0,
        bars        INTEGER NOT NULL DEFAULT 0,
        requests    INTEGER NOT NULL DEFAULT 0,
        exit_code   INTEGER,
        rate_limit  TEXT
    );
    CREATE INDEX runs_started ON runs (started_at);",
    // 4: the answers of 429 (rate limited) each run got, for the monitoring
    // page's `/metrics`.
    "ALTER TABLE runs ADD COLUMN rate_limited INTEGER NOT NULL DEFAULT 0;",
    // 5: reference answers cached by name (the trade conditions of
    // `/v3/reference/conditions`), with when they were fetched, so that
    // runs ask again only once an answer is stale. `trades` jobs need no
    // schema change: `kind` has no CHECK constraint.
    "CREATE TABLE cache (
        name       TEXT    PRIMARY KEY,
        body       TEXT    NOT NULL,
        fetched_at INTEGER NOT NULL
    ) WITHOUT ROWID;",
];

/// The schema version this build writes and understands.
pub fn known_version() -> i64 {
    // The list is a short literal: its length always fits.
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Sets the pragmas every connection needs, before anything can contend:
/// a busy timeout, WAL (for files), `synchronous=NORMAL`, foreign keys.
pub(crate) fn configure(conn: &Connection, path: &Path, in_memory: bool) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sql("setting busy_timeout"))?;
    let mode = set_wal(conn).map_err(sql("setting journal_mode=WAL"))?;
    if !in_memory && !mode.eq_ignore_ascii_case("wal") {
        return Err(JobError::NotWal {
            path: path.to_owned(),
            mode,
        });
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sql("setting synchronous=NORMAL"))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(sql("setting foreign_keys=ON"))?;
    // One plan per statement whatever its bound values: otherwise SQLite
    // (built with STAT4) recompiles the cached per-ticker queries on every
    // new ticker bound, which was most of planning's time for 11 000 tickers.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(sql("enabling the query planner stability guarantee"))?;
    Ok(())
}

/// Switches to WAL and returns the journal mode now in force. WAL is
/// persistent, so a file already in WAL is left alone. Switching takes an
/// exclusive lock and SQLite answers SQLITE_BUSY at once, without the busy
/// handler, when another connection is opening the same new file: retry for
/// up to [`BUSY_TIMEOUT`] in steps of [`WAL_RETRY_STEP`].
fn set_wal(conn: &Connection) -> rusqlite::Result<String> {
    let current: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
    if current.eq_ignore_ascii_case("wal") {
        return Ok(current);
    }
    let steps = BUSY_TIMEOUT.as_millis() / WAL_RETRY_STEP.as_millis();
    let mut attempt = 0;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)) {
            Err(err)
                if attempt < steps
                    && err.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) =>
            {
                attempt += 1;
                std::thread::sleep(WAL_RETRY_STEP);
            }
            result => return result,
        }
    }
}

/// The stored schema version (`PRAGMA user_version`).
pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Brings the schema up to [`known_version`], one transaction per migration.
/// Safe against another process migrating at the same time: each step takes
/// the write lock first and re-reads the version under it.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let known = known_version();
    let newer = |found| JobError::NewerSchema {
        location: path.display().to_string(),
        found,
        known,
    };
    let found = user_version(conn).map_err(sql("reading the schema version"))?;
    if found > known {
        return Err(newer(found));
    }
    // A negative version was never written by finpipe: migrate from scratch,
    // which fails loudly if the tables already exist.
    let applied = usize::try_from(found).unwrap_or(0);
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let target = i64::try_from(index + 1).unwrap_or(i64::MAX);
        let step = |source: rusqlite::Error| JobError::Migration {
            version: target,
            class: super::class_of(&source),
            source: Box::new(source),
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(step)?;
        let current = user_version(&tx).map_err(step)?;
        if current > known {
            return Err(newer(current));
        }
        if current >= target {
            continue; // already applied (possibly by another process just now)
        }
        tx.execute_batch(sql).map_err(step)?;
        tx.pragma_update(None, "user_version", target)
            .map_err(step)?;
        tx.commit().map_err(step)?;
    }
    Ok(())
}

//! The PostgreSQL the tests use, shared by the library's tests and the
//! integration tests (which include this file with `#[path]`): where it is
//! ([`base_url`], from `FINPIPE_TEST_POSTGRES`) and a fresh schema or
//! database for each test, dropped at its end, so tests run in parallel.
//!
//! Without `FINPIPE_TEST_POSTGRES` a test says how to start PostgreSQL and
//! returns; under `CI=true` it fails instead, never skips.
//!
//! The admin connections run on a thread of their own: the synchronous
//! client must not run inside a tokio runtime, which async tests are.
#![allow(unreachable_pub, dead_code, clippy::print_stderr)]

/// The variable that names the tests' PostgreSQL.
pub const URL_VAR: &str = "FINPIPE_TEST_POSTGRES";

/// The base URL of the tests' PostgreSQL, or `None` (the test returns)
/// when it is not set outside CI. Under `CI=true` a missing URL fails.
pub fn base_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let how = format!(
                "{URL_VAR} is not set, so the PostgreSQL tests cannot run. Start PostgreSQL as \
                 .ci/run does (as root: pg_ctlcluster 15 main start; create role finpipe login \
                 password 'pw' superuser; createdb -O finpipe finpipe_test), then \
                 export {URL_VAR}=postgres://finpipe:pw@127.0.0.1:5432/finpipe_test"
            );
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{how}");
            eprintln!("skipped: {how}");
            None
        }
    }
}

/// Runs `sql` on `url` on a thread of its own.
pub fn admin(url: &str, sql: String) {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to the tests' PostgreSQL: {e}"));
        client
            .batch_execute(&sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    })
    .join()
    .expect("the admin connection's thread");
}

/// A unique lower-case name starting with `prefix`.
fn unique(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "{prefix}_{}_{n}_{:08x}",
        std::process::id(),
        fastrand::u32(..)
    )
}

/// `base` with `key=value` added to its query (`value` percent-encoded:
/// the client reads `%20`, not `+`, as a space).
pub fn with_param(base: &str, key: &str, value: &str) -> String {
    let value: String = value
        .chars()
        .map(|c| match c {
            ' ' => "%20".to_owned(),
            '=' => "%3D".to_owned(),
            '&' => "%26".to_owned(),
            c => c.to_string(),
        })
        .collect();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}{key}={value}")
}

/// A schema of its own in the base database, dropped (with everything in
/// it) when dropped.
pub struct TempSchema {
    base: String,
    pub name: String,
    /// The base URL with `search_path` set to the schema.
    pub url: String,
}

impl TempSchema {
    pub fn new(base: &str) -> Self {
        let name = unique("t");
        admin(base, format!("CREATE SCHEMA {name}"));
        let url = with_param(base, "options", &format!("-c search_path={name}"));
        Self {
            base: base.to_owned(),
            name,
            url,
        }
    }
}

impl Drop for TempSchema {
    fn drop(&mut self) {
        admin(
            &self.base,
            format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
        );
    }
}

/// A database of its own on the base URL's server, dropped when dropped.
pub struct TempDatabase {
    base: String,
    pub name: String,
    /// The base URL with the database replaced.
    pub url: String,
}

impl TempDatabase {
    pub fn new(base: &str) -> Self {
        let name = unique("finpipe_it");
        admin(base, format!("CREATE DATABASE {name}"));
        let mut url = url::Url::parse(base).expect("a PostgreSQL URL");
        url.set_path(&format!("/{name}"));
        Self {
            base: base.to_owned(),
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        admin(
            &self.base,
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

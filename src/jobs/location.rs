//! Where the job table lives: a SQLite file or a PostgreSQL server
//! ([`DbLocation`]), parsed from `--db` / `FINPIPE_DB`. A `postgres://` or
//! `postgresql://` URL selects PostgreSQL; anything else is a file path.
//!
//! A PostgreSQL URL may carry a password. [`PgUrl`] keeps it, and shows
//! itself everywhere (`Display`, `Debug`, messages, `finpipe config`) through
//! [`redact_postgres_url`], the one function that renders such a URL with
//! its password as `****`, the way [`Secret`] masks the API key.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::secret::Secret;

/// The mask a password is shown as.
const MASK: &str = "****";

/// The URL schemes that select PostgreSQL.
const SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

/// Where the job table lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbLocation {
    /// A SQLite file (in WAL mode), created if missing.
    Sqlite(PathBuf),
    /// A PostgreSQL database, shared by runners on several machines.
    Postgres(PgUrl),
}

/// Why a `--db` value names no job table.
#[derive(Debug, thiserror::Error)]
#[error("{shown} is not a PostgreSQL URL this build can use: {reason}")]
pub struct InvalidLocation {
    /// The value, its password masked.
    shown: String,
    reason: String,
}

impl DbLocation {
    /// The location `value` names: a PostgreSQL URL (checked here, so a
    /// typo is a usage error before anything runs) or a file path.
    pub fn parse(value: &Path) -> Result<Self, InvalidLocation> {
        match value.to_str() {
            Some(text) if is_postgres_url(text) => PgUrl::parse(text).map(Self::Postgres),
            _ => Ok(Self::Sqlite(value.to_owned())),
        }
    }

    /// The SQLite file, if the table is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Self::Sqlite(path) => Some(path),
            Self::Postgres(_) => None,
        }
    }

    /// Whether the table is on a PostgreSQL server.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// Whether the table may exist already: a SQLite file that is there, or
    /// any server (only a connection can tell).
    pub fn may_exist(&self) -> bool {
        match self {
            Self::Sqlite(path) => path.is_file(),
            Self::Postgres(_) => true,
        }
    }

    /// The value to pass as `--db` to reach this table again, with the
    /// password masked: a command shown to the user, never one run.
    pub fn shown(&self) -> String {
        self.to_string()
    }

    /// The secret parts of the location (a URL's password), for redaction.
    pub fn secrets(&self) -> Vec<Secret> {
        match self {
            Self::Sqlite(_) => Vec::new(),
            Self::Postgres(url) => url.password().into_iter().collect(),
        }
    }
}

impl fmt::Display for DbLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => fmt::Display::fmt(url, f),
        }
    }
}

/// The job table of the library at `data_dir`: the `configured` one
/// (`--db`, `FINPIPE_DB`), else `<data-dir>/.finpipe/finpipe.db`, so a
/// library and its coverage travel together.
pub fn library_db(data_dir: &Path, configured: Option<&DbLocation>) -> DbLocation {
    configured
        .cloned()
        .unwrap_or_else(|| DbLocation::Sqlite(crate::store::default_db_path(data_dir)))
}

/// Whether `text` is a PostgreSQL URL (`postgres://` or `postgresql://`,
/// in lower case as libpq spells them).
pub fn is_postgres_url(text: &str) -> bool {
    SCHEMES.iter().any(|scheme| text.starts_with(scheme))
}

/// A PostgreSQL connection URL. It shows itself with the password masked;
/// only the connection code reads the whole of it.
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl {
    url: String,
    redacted: String,
}

impl PgUrl {
    /// Checks `text` as the client will read it.
    pub fn parse(text: &str) -> Result<Self, InvalidLocation> {
        let redacted = redact_postgres_url(text);
        postgres::Config::from_str(text).map_err(|e| InvalidLocation {
            shown: redacted.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            url: text.to_owned(),
            redacted,
        })
    }

    /// The URL with its password masked: for every message.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The password, if the URL carries one.
    pub fn password(&self) -> Option<Secret> {
        let config = postgres::Config::from_str(&self.url).ok()?;
        let password = config.get_password()?;
        Some(Secret::new(String::from_utf8_lossy(password)))
    }

    /// The client's settings from the whole URL. Parsed again here because
    /// `postgres::Config` shows the password in its `Debug`: it is never
    /// kept where a `{:?}` could reach it.
    pub(crate) fn config(&self) -> Result<postgres::Config, postgres::Error> {
        postgres::Config::from_str(&self.url)
    }
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({})", self.redacted)
    }
}

/// `text` (a PostgreSQL URL) with its password masked as `****`, both the
/// `user:password@` form and a `password=` query parameter. A URL that does
/// not parse loses everything between `://` and the last `@`, so nothing
/// that could be a password survives.
pub fn redact_postgres_url(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        return scrub_userinfo(text);
    };
    if url.password().is_some() && url.set_password(Some(MASK)).is_err() {
        return scrub_userinfo(text);
    }
    if url
        .query_pairs()
        .any(|(k, _)| k.eq_ignore_ascii_case("password"))
    {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("password") {
                    MASK.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// `scheme://****@rest` for a URL that does not parse (no query kept:
/// it could hold a password too).
fn scrub_userinfo(text: &str) -> String {
    let (scheme, rest) = text.split_once("://").unwrap_or(("postgres", text));
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = host.split(['?', '#']).next().unwrap_or_default();
    format!("{scheme}://{MASK}@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_selects_postgres_and_anything_else_is_a_file() {
        for url in [
            "postgres://finpipe:pw@127.0.0.1:5432/finpipe_test",
            "postgresql://u@db.example.com/finpipe?sslmode=require",
        ] {
            let location = DbLocation::parse(Path::new(url)).unwrap();
            assert!(location.is_postgres(), "{url}");
            assert_eq!(location.sqlite_path(), None);
            assert!(location.may_exist());
        }
        for path in [
            "data/.finpipe/finpipe.db",
            "jobs.db",
            "postgres.db",
            "./postgres:/x",
        ] {
            let location = DbLocation::parse(Path::new(path)).unwrap();
            assert_eq!(location, DbLocation::Sqlite(PathBuf::from(path)));
            assert_eq!(location.to_string(), path);
        }
    }

    #[test]
    fn a_bad_postgres_url_is_refused_without_its_password() {
        let err = DbLocation::parse(Path::new(
            "postgres://finpipe:s3cret@127.0.0.1:5432/db?sslmode=sometimes",
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("sslmode"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        assert!(err.contains("finpipe:****@127.0.0.1:5432/db"), "{err}");
    }

    #[test]
    fn passwords_are_masked_everywhere_they_can_be() {
        let cases = [
            (
                "postgres://finpipe:pw@127.0.0.1:5432/finpipe_test",
                "postgres://finpipe:****@127.0.0.1:5432/finpipe_test",
            ),
            (
                "postgresql://u:p%40ss@h/db?sslmode=require&password=again",
                "postgresql://u:****@h/db?sslmode=require&password=****",
            ),
            ("postgres://u@h:5433/db", "postgres://u@h:5433/db"),
            ("postgres://h/db", "postgres://h/db"),
            ("postgres://u:pw@[::1", "postgres://****@[::1"),
        ];
        for (given, shown) in cases {
            assert_eq!(redact_postgres_url(given), shown, "{given}");
        }
        let url = PgUrl::parse("postgres://finpipe:topsecret@127.0.0.1:5432/db").unwrap();
        for shown in [
            url.to_string(),
            format!("{url:?}"),
            format!("{:?}", DbLocation::Postgres(url.clone())),
            DbLocation::Postgres(url.clone()).shown(),
        ] {
            assert!(!shown.contains("topsecret"), "{shown}");
            assert!(shown.contains("finpipe:****@127.0.0.1:5432/db"), "{shown}");
        }
        assert_eq!(url.password().unwrap().expose(), "topsecret");
        assert_eq!(DbLocation::Postgres(url).secrets()[0].expose(), "topsecret");
    }
}

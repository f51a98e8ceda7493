//! Effective settings and where each came from.
//!
//! Precedence, the same for every setting: command-line flag > environment
//! variable > `.env` file in the working directory > default. Where a
//! `MASSIVE_*` and a `POLYGON_*` name are both set, `MASSIVE_*` wins. The
//! process environment is read, never modified.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::jobs::{DbLocation, InvalidLocation};
use crate::polygon::{RateLimit, without_credentials};
pub use crate::secret::Secret;

/// Default REST base URL.
pub const DEFAULT_API_URL: &str = "https://api.massive.com";
/// Default flat-file (S3) endpoint.
pub const DEFAULT_FLATFILES_URL: &str = "https://files.massive.com";
/// Environment names of the API key, in order of preference.
pub const API_KEY_VARS: &[&str] = &["MASSIVE_API_KEY", "POLYGON_API_KEY"];

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Flag(&'static str),
    Env(String),
    DotEnv(String),
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(flag) => write!(f, "flag {flag}"),
            Self::Env(name) => write!(f, "environment {name}"),
            Self::DotEnv(name) => write!(f, ".env {name}"),
            Self::Default => f.write_str("default"),
        }
    }
}

/// A resolved value and its origin.
#[derive(Clone, Debug)]
pub struct Setting<T> {
    pub value: T,
    pub origin: Origin,
}

/// Values given on the command line (all optional).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub api_key: Option<String>,
    pub api_url: Option<String>,
    pub rate_limit: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<String>,
    pub retry_base: Option<String>,
    pub s3_access_key: Option<String>,
    pub s3_secret_key: Option<String>,
    pub flatfiles_url: Option<String>,
    pub concurrency: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub db: Option<PathBuf>,
}

/// The environment as seen by finpipe: process variables, then `.env` pairs.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    process: HashMap<String, String>,
    dotenv: HashMap<String, String>,
}

/// A setting could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {reason}; fix or remove the file")]
    DotEnv { path: PathBuf, reason: String },
    #[error("invalid {what} {value:?} (from {origin}): {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        origin: Origin,
        reason: String,
    },
    #[error("invalid job table --db (from {origin}): {source}")]
    Db {
        origin: Origin,
        source: InvalidLocation,
    },
}

impl Environment {
    /// Reads the process environment and, if present, `.env` in `dir`.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let process = std::env::vars().collect();
        let path = dir.join(".env");
        let dotenv = match dotenvy::from_path_iter(&path) {
            Ok(iter) => {
                iter.collect::<Result<HashMap<_, _>, _>>()
                    .map_err(|e| ConfigError::DotEnv {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?
            }
            Err(e) if e.not_found() => HashMap::new(),
            Err(e) => {
                return Err(ConfigError::DotEnv {
                    path,
                    reason: e.to_string(),
                });
            }
        };
        Ok(Self { process, dotenv })
    }

    /// An environment from explicit maps (tests).
    pub fn from_maps(process: HashMap<String, String>, dotenv: HashMap<String, String>) -> Self {
        Self { process, dotenv }
    }

    /// The first non-empty value among `names`, process environment first.
    fn lookup(&self, names: &[&str]) -> Option<(String, Origin)> {
        let pick = |map: &HashMap<String, String>, wrap: fn(String) -> Origin| {
            names.iter().find_map(|name| {
                map.get(*name)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (v.trim().to_owned(), wrap((*name).to_owned())))
            })
        };
        pick(&self.process, Origin::Env).or_else(|| pick(&self.dotenv, Origin::DotEnv))
    }

    /// A raw variable (process first, then `.env`), for settings outside [`Config`].
    pub fn var(&self, name: &str) -> Option<String> {
        self.lookup(&[name]).map(|(v, _)| v)
    }
}

/// Every effective setting.
#[derive(Clone, Debug)]
pub struct Config {
    pub api_key: Setting<Option<Secret>>,
    pub api_url: Setting<String>,
    pub rate_limit: Setting<RateLimit>,
    pub timeout: Setting<Duration>,
    pub retries: Setting<u32>,
    pub retry_base: Setting<Duration>,
    pub s3_access_key: Setting<Option<Secret>>,
    pub s3_secret_key: Setting<Option<Secret>>,
    pub flatfiles_url: Setting<String>,
    pub concurrency: Setting<usize>,
    pub data_dir: Setting<PathBuf>,
    /// The job table: a SQLite file, or a PostgreSQL URL (shown with its
    /// password masked).
    pub db: Setting<DbLocation>,
    /// URLs whose `user:password@` was dropped ("the API URL (from flag
    /// --api-url)"), for a warning: finpipe never sends or prints them.
    pub credentials_dropped: Vec<String>,
}

/// Default number of jobs run at once.
pub const DEFAULT_CONCURRENCY: usize = 8;

impl Config {
    /// Resolves every setting from flags, environment and `.env`.
    pub fn resolve(flags: &Overrides, env: &Environment) -> Result<Self, ConfigError> {
        let text = |flag: &Option<String>, name: &'static str, vars: &[&str]| {
            flag.clone()
                .map(|v| (v, Origin::Flag(name)))
                .or_else(|| env.lookup(vars))
        };
        let secret = |flag, name, vars| {
            Setting::from_opt(text(flag, name, vars)).map(|v| v.map(Secret::new))
        };
        let api_url = text(
            &flags.api_url,
            "--api-url",
            &["MASSIVE_API_BASE_URL", "POLYGON_API_BASE_URL"],
        );
        let flatfiles_url = text(
            &flags.flatfiles_url,
            "--flatfiles-url",
            &["MASSIVE_S3_ENDPOINT", "POLYGON_S3_ENDPOINT"],
        );
        let data_dir = flags
            .data_dir
            .clone()
            .map(|p| (p, Origin::Flag("--data-dir")))
            .or_else(|| {
                env.lookup(&["FINPIPE_DATA_DIR"])
                    .map(|(v, o)| (PathBuf::from(v), o))
            });
        let data_dir = Setting::or_default(data_dir, PathBuf::from("data"));
        let db = flags
            .db
            .clone()
            .map(|p| (p, Origin::Flag("--db")))
            .or_else(|| {
                env.lookup(&["FINPIPE_DB"])
                    .map(|(v, o)| (PathBuf::from(v), o))
            });
        let db = match db {
            Some((value, origin)) => match DbLocation::parse(&value) {
                Ok(location) => Some((location, origin)),
                Err(source) => return Err(ConfigError::Db { origin, source }),
            },
            None => None,
        };
        // finpipe's own state lives in the library's hidden state folder.
        let db = Setting::or_default(
            db,
            DbLocation::Sqlite(crate::store::default_db_path(&data_dir.value)),
        );

        // A `user:password@` in a URL is never sent (the API key and the S3
        // keys authenticate), so it is dropped here, before anything could
        // print it; the CLI says so (`credentials_dropped`).
        let mut credentials_dropped = Vec::new();
        let mut drop_credentials = |found: Option<(String, Origin)>, what: &'static str| {
            found.map(|(url, origin)| match without_credentials(&url) {
                Some(clean) => {
                    credentials_dropped.push(format!("the {what} (from {origin})"));
                    (clean, origin)
                }
                None => (url, origin),
            })
        };
        let api_url = drop_credentials(api_url, "API URL");
        let flatfiles_url = drop_credentials(flatfiles_url, "flat-files URL");

        Ok(Self {
            credentials_dropped,
            api_key: secret(&flags.api_key, "--api-key", API_KEY_VARS),
            api_url: Setting::or_default(api_url, DEFAULT_API_URL.to_owned())
                .map(|url| url.trim_end_matches('/').to_owned()),
            rate_limit: parse_setting(
                text(
                    &flags.rate_limit,
                    "--rate-limit",
                    &["POLYGON_RATE_LIMIT", "MASSIVE_RATE_LIMIT"],
                ),
                "rate limit",
                RateLimit::per_minute(5),
                |s| s.parse(),
            )?,
            timeout: parse_setting(
                text(&flags.timeout, "--timeout", &["FINPIPE_TIMEOUT"]),
                "timeout",
                Duration::from_secs(60),
                |text| match parse_duration(text)? {
                    zero if zero.is_zero() => Err("a request must be given some time: every \
                         request would fail at once (use e.g. 30s, or 500ms at the least)"
                        .to_owned()),
                    timeout => Ok(timeout),
                },
            )?,
            retries: parse_setting(
                text(&flags.retries, "--retries", &["FINPIPE_RETRIES"]),
                "retry count",
                5,
                |s| s.parse::<u32>().map_err(|e| e.to_string()),
            )?,
            retry_base: parse_setting(
                text(&flags.retry_base, "--retry-base", &["FINPIPE_RETRY_BASE"]),
                "retry base delay",
                Duration::from_secs(1),
                parse_duration,
            )?,
            s3_access_key: secret(
                &flags.s3_access_key,
                "--s3-access-key",
                &["MASSIVE_S3_ACCESS_KEY", "POLYGON_S3_ACCESS_KEY"],
            ),
            s3_secret_key: secret(
                &flags.s3_secret_key,
                "--s3-secret-key",
                &["MASSIVE_S3_SECRET_KEY", "POLYGON_S3_SECRET_KEY"],
            ),
            flatfiles_url: Setting::or_default(flatfiles_url, DEFAULT_FLATFILES_URL.to_owned()),
            concurrency: parse_setting(
                text(
                    &flags.concurrency,
                    "--concurrency",
                    &["FINPIPE_CONCURRENCY", "WORKER_CONCURRENCY"],
                ),
                "concurrency",
                DEFAULT_CONCURRENCY,
                |s| match s.parse::<usize>() {
                    Ok(n) if (1..=1024).contains(&n) => Ok(n),
                    _ => Err("expected a whole number from 1 to 1024".to_owned()),
                },
            )?,
            data_dir,
            db,
        })
    }
}

impl<T> Setting<T> {
    fn or_default(found: Option<(T, Origin)>, default: T) -> Self {
        match found {
            Some((value, origin)) => Self { value, origin },
            None => Self {
                value: default,
                origin: Origin::Default,
            },
        }
    }

    fn map<U>(self, f: impl FnOnce(T) -> U) -> Setting<U> {
        Setting {
            value: f(self.value),
            origin: self.origin,
        }
    }
}

impl Setting<Option<String>> {
    fn from_opt(found: Option<(String, Origin)>) -> Self {
        match found {
            Some((value, origin)) => Self {
                value: Some(value),
                origin,
            },
            None => Self {
                value: None,
                origin: Origin::Default,
            },
        }
    }
}

fn parse_setting<T>(
    found: Option<(String, Origin)>,
    what: &'static str,
    default: T,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Setting<T>, ConfigError> {
    let Some((raw, origin)) = found else {
        return Ok(Setting {
            value: default,
            origin: Origin::Default,
        });
    };
    match parse(&raw) {
        Ok(value) => Ok(Setting { value, origin }),
        Err(reason) => Err(ConfigError::Invalid {
            what,
            value: raw,
            origin,
            reason,
        }),
    }
}

/// Parses `30s`, `500ms`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: f64 = number
        .parse()
        .map_err(|_| "expected a duration such as 30s, 500ms or 2m".to_owned())?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" => number,
        "ms" => number / 1000.0,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        other => return Err(format!("unknown unit {other:?}: use ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(process: &[(&str, &str)], dotenv: &[(&str, &str)]) -> Environment {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        Environment::from_maps(map(process), map(dotenv))
    }

    #[test]
    fn flag_beats_environment_beats_dotenv_beats_default() {
        let e = env(
            &[("POLYGON_API_KEY", "from-env")],
            &[("POLYGON_API_KEY", "from-dotenv")],
        );
        let flags = Overrides {
            api_key: Some("from-flag".into()),
            ..Overrides::default()
        };
        let c = Config::resolve(&flags, &e).unwrap();
        assert_eq!(c.api_key.value.unwrap().expose(), "from-flag");
        assert_eq!(c.api_key.origin, Origin::Flag("--api-key"));

        let c = Config::resolve(&Overrides::default(), &e).unwrap();
        assert_eq!(c.api_key.value.unwrap().expose(), "from-env");

        let c = Config::resolve(
            &Overrides::default(),
            &env(&[], &[("POLYGON_API_KEY", "d")]),
        )
        .unwrap();
        assert_eq!(c.api_key.value.unwrap().expose(), "d");
        assert_eq!(c.api_key.origin, Origin::DotEnv("POLYGON_API_KEY".into()));

        let c = Config::resolve(&Overrides::default(), &env(&[], &[])).unwrap();
        assert!(c.api_key.value.is_none());
        assert_eq!(c.api_url.value, DEFAULT_API_URL);
        assert_eq!(c.rate_limit.value, RateLimit::per_minute(5));
        assert_eq!(
            c.db.value,
            DbLocation::Sqlite("data/.finpipe/finpipe.db".into())
        );
    }

    #[test]
    fn the_job_table_defaults_into_the_libraries_state_folder() {
        let flags = Overrides {
            data_dir: Some("lib".into()),
            ..Overrides::default()
        };
        let c = Config::resolve(&flags, &env(&[], &[])).unwrap();
        assert_eq!(
            c.db.value,
            DbLocation::Sqlite("lib/.finpipe/finpipe.db".into())
        );
        assert_eq!(c.db.origin, Origin::Default);

        let e = env(&[("FINPIPE_DB", "jobs.db")], &[]);
        let c = Config::resolve(&flags, &e).unwrap();
        assert_eq!(c.db.value, DbLocation::Sqlite("jobs.db".into()));
        assert_eq!(c.db.origin, Origin::Env("FINPIPE_DB".into()));
        let flags = Overrides {
            db: Some("flag.db".into()),
            ..flags
        };
        let c = Config::resolve(&flags, &e).unwrap();
        assert_eq!(c.db.value, DbLocation::Sqlite("flag.db".into()));
        assert_eq!(c.db.origin, Origin::Flag("--db"));
    }

    #[test]
    fn a_postgres_url_selects_postgres_and_its_password_never_shows() {
        let e = env(
            &[(
                "FINPIPE_DB",
                "postgres://finpipe:hunter2@db.example:5432/jobs",
            )],
            &[],
        );
        let c = Config::resolve(&Overrides::default(), &e).unwrap();
        assert!(c.db.value.is_postgres());
        assert_eq!(
            c.db.value.to_string(),
            "postgres://finpipe:****@db.example:5432/jobs"
        );
        assert!(!format!("{c:?}").contains("hunter2"));
        let e = env(
            &[("FINPIPE_DB", "postgres://u:hunter2@h/db?sslmode=maybe")],
            &[],
        );
        let err = Config::resolve(&Overrides::default(), &e)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("FINPIPE_DB") && err.contains("sslmode"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn massive_names_win_over_polygon_names() {
        let e = env(
            &[("POLYGON_API_KEY", "old"), ("MASSIVE_API_KEY", "new")],
            &[],
        );
        let c = Config::resolve(&Overrides::default(), &e).unwrap();
        assert_eq!(c.api_key.value.unwrap().expose(), "new");
        assert_eq!(c.api_key.origin, Origin::Env("MASSIVE_API_KEY".into()));
    }

    #[test]
    fn seed_dotenv_names_work_unchanged() {
        let e = env(
            &[],
            &[("WORKER_CONCURRENCY", "4"), ("POLYGON_RATE_LIMIT", "100/s")],
        );
        let c = Config::resolve(&Overrides::default(), &e).unwrap();
        assert_eq!(c.concurrency.value, 4);
        assert_eq!(c.rate_limit.value, "100/s".parse().unwrap());
    }

    #[test]
    fn bad_values_name_the_setting_and_its_origin() {
        let e = env(&[("POLYGON_RATE_LIMIT", "fast")], &[]);
        let err = Config::resolve(&Overrides::default(), &e)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rate limit") && err.contains("POLYGON_RATE_LIMIT"),
            "{err}"
        );
    }

    #[test]
    fn a_zero_timeout_is_refused_and_url_credentials_are_dropped() {
        let flags = Overrides {
            timeout: Some("0s".into()),
            ..Overrides::default()
        };
        let err = Config::resolve(&flags, &env(&[], &[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("timeout") && err.contains("--timeout"),
            "{err}"
        );
        let flags = Overrides {
            api_url: Some("http://user:pw@127.0.0.1:9/base/".into()),
            ..Overrides::default()
        };
        let e = env(
            &[("MASSIVE_S3_ENDPOINT", "https://key@files.example.com")],
            &[],
        );
        let c = Config::resolve(&flags, &e).unwrap();
        assert_eq!(c.api_url.value, "http://127.0.0.1:9/base");
        assert_eq!(c.flatfiles_url.value, "https://files.example.com");
        assert_eq!(
            c.credentials_dropped.len(),
            2,
            "{:?}",
            c.credentials_dropped
        );
        assert!(c.credentials_dropped[0].contains("--api-url"));
        let c = Config::resolve(&Overrides::default(), &env(&[], &[])).unwrap();
        assert!(c.credentials_dropped.is_empty());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("soon").is_err());
    }
}

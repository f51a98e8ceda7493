//! `finpipe config`: the effective settings and where each came from.

use finpipe::config::{Secret, Setting};

use super::{Context, Exit, Failure};

pub(super) fn run(context: &Context) -> Result<Exit, Failure> {
    let c = &context.config;
    let secret = |s: &Setting<Option<Secret>>| {
        (
            s.value
                .as_ref()
                .map_or_else(|| "(not set)".to_owned(), Secret::masked),
            s.origin.to_string(),
        )
    };
    let plain = |value: String, origin: &finpipe::config::Origin| (value, origin.to_string());
    let rows = [
        ("api key", secret(&c.api_key)),
        ("api url", plain(c.api_url.value.clone(), &c.api_url.origin)),
        (
            "rate limit",
            plain(c.rate_limit.value.to_string(), &c.rate_limit.origin),
        ),
        (
            "timeout",
            plain(format!("{:?}", c.timeout.value), &c.timeout.origin),
        ),
        (
            "retries",
            plain(c.retries.value.to_string(), &c.retries.origin),
        ),
        (
            "retry base",
            plain(format!("{:?}", c.retry_base.value), &c.retry_base.origin),
        ),
        ("s3 access key", secret(&c.s3_access_key)),
        ("s3 secret key", secret(&c.s3_secret_key)),
        (
            "flat-files url",
            plain(c.flatfiles_url.value.clone(), &c.flatfiles_url.origin),
        ),
        (
            "concurrency",
            plain(c.concurrency.value.to_string(), &c.concurrency.origin),
        ),
        (
            "data dir",
            plain(c.data_dir.value.display().to_string(), &c.data_dir.origin),
        ),
        (
            "job table",
            // A PostgreSQL URL's password is masked, like the keys.
            plain(c.db.value.to_string(), &c.db.origin),
        ),
    ];
    let width = rows
        .iter()
        .map(|(_, (v, _))| v.chars().count())
        .max()
        .unwrap_or(0);
    outln!("{:<15} {:<width$}  source", "setting", "value");
    for (name, (value, origin)) in rows {
        outln!("{name:<15} {value:<width$}  {origin}");
    }
    Ok(Exit::Ok)
}

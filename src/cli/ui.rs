//! `finpipe ui`: serves the monitoring page (`finpipe::ui`) until Ctrl-C.
//! Reads only: no lock, no write, and a job table that does not exist is
//! not created (the page says so until one appears).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use finpipe::config::Origin;
use finpipe::jobs::library_db;
use finpipe::model::Basis;
use finpipe::ui::{BIND_VAR, DEFAULT_BIND, UiSource};

use super::{Context, Exit, Failure, output};

const EXAMPLES: &str = "\
Examples:
  finpipe ui                                  # http://127.0.0.1:8080/
  finpipe ui --open                           # and open it in the default browser
  finpipe --data-dir /srv/bars ui --bind 127.0.0.1:9000
  curl -s http://127.0.0.1:8080/metrics       # Prometheus text format

The page reads the job table and the files' footers; it never writes, never takes the
run lock, and runs beside any backfill, run or update.";

#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub(super) struct UiArgs {
    /// Address to serve on, IP:PORT (port 0 picks a free one); anything but loopback
    /// lets anyone who can reach it see the page, which has no login
    /// [env: FINPIPE_UI_BIND; default 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
    /// Open the page in the default browser (best effort)
    #[arg(long)]
    open: bool,
    /// The split-adjusted library
    #[arg(long)]
    adjusted: bool,
}

/// `IP:PORT`, or `localhost:PORT` for loopback.
fn parse_bind(text: &str) -> Result<SocketAddr, Failure> {
    let text = text.trim();
    let loopback = text
        .strip_prefix("localhost:")
        .map(|port| format!("127.0.0.1:{port}"));
    loopback
        .as_deref()
        .unwrap_or(text)
        .parse::<SocketAddr>()
        .map_err(|_| {
            Failure::usage(format!(
                "--bind {text:?} is not an address: give IP:PORT, e.g. 127.0.0.1:8080 \
                 (or 0.0.0.0:8080 to serve every interface)"
            ))
        })
}

pub(super) async fn run(context: &Context, args: UiArgs) -> Result<Exit, Failure> {
    let bind_text = args
        .bind
        .or_else(|| context.env.var(BIND_VAR))
        .unwrap_or_else(|| DEFAULT_BIND.to_owned());
    let addr = parse_bind(&bind_text)?;
    let config = &context.config;
    // The library as `status` finds it, but never moved or migrated.
    let data_dir = if args.adjusted && config.data_dir.origin == Origin::Default {
        PathBuf::from("data-adjusted")
    } else {
        config.data_dir.value.clone()
    };
    let default_db = config.db.origin == Origin::Default;
    let remote = finpipe::store::blobs::is_remote_root(&data_dir);
    if remote && default_db {
        return Err(Failure::usage(format!(
            "the library {} is on object storage, which keeps no job table: pass --db \
             (or FINPIPE_DB) with the job table its runners use",
            data_dir.display()
        )));
    }
    let db = library_db(&data_dir, Some(&config.db.value).filter(|_| !default_db));
    let db = finpipe::ui::job_table_path(&data_dir, db, default_db);
    let mut command_flags = Vec::new();
    if config.data_dir.origin != Origin::Default {
        command_flags.push("--data-dir".to_owned());
        command_flags.push(data_dir.display().to_string());
    }
    if !default_db {
        command_flags.push("--db".to_owned());
        // A URL's password stays out of the commands the page shows.
        command_flags.push(config.db.value.shown());
    }
    let secrets = [
        &config.api_key.value,
        &config.s3_access_key.value,
        &config.s3_secret_key.value,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .chain(config.db.value.secrets())
    .collect();
    if !remote && !data_dir.is_dir() {
        output::warn(&format!(
            "there is no library at {} yet: the page shows it once a backfill creates it \
             (check --data-dir or FINPIPE_DATA_DIR)",
            data_dir.display()
        ));
    }
    let listener = finpipe::ui::bind(addr)
        .await
        .map_err(|e| Failure::usage(e.to_string()))?;
    let local = listener.local_addr().unwrap_or(addr);
    if finpipe::ui::exposed(&local) {
        output::warn(&format!(
            "serving on {local}, not only on this machine: the page has no login, so anyone \
             who can reach this address sees the job table and the library's coverage \
             (--bind 127.0.0.1:{} keeps it local)",
            local.port()
        ));
    }
    let shown = if local.ip().is_unspecified() {
        SocketAddr::new([127, 0, 0, 1].into(), local.port())
    } else {
        local
    };
    let url = format!("http://{shown}/");
    outln!("finpipe ui: serving {url}");
    outln!(
        "library {} ({}), job table {}; read-only. Ctrl-C stops it.",
        data_dir.display(),
        Basis::from_adjusted(args.adjusted).name(),
        db
    );
    if args.open
        && let Err(e) = finpipe::ui::open_browser(&url)
    {
        output::note(&format!(
            "could not open a browser ({e}); open {url} yourself"
        ));
    }
    let source = UiSource {
        data_dir,
        db,
        basis: Basis::from_adjusted(args.adjusted),
        command_flags,
        secrets,
        clock: context.clock,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        s3: Some(finpipe::store::blobs::S3Config::from_lookup(|name| {
            context.env.var(name)
        })),
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    finpipe::ui::serve(listener, source, shutdown)
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_addresses_parse_and_bad_ones_are_usage_errors() {
        assert_eq!(parse_bind("127.0.0.1:8080").unwrap().port(), 8080);
        assert!(parse_bind("localhost:9000").unwrap().ip().is_loopback());
        assert!(parse_bind("[::1]:0").unwrap().ip().is_loopback());
        let bad = parse_bind("8080").unwrap_err();
        assert_eq!(bad.exit, Exit::Usage);
        assert!(bad.message.contains("IP:PORT"));
    }
}

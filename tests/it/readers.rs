//! The README's and the demo's reading examples, run as they are written
//! with DuckDB, polars, pandas and pyarrow from PyPI against the demo's
//! library, and their answers checked against finpipe's own files.
//!
//! The interpreter is `$FINPIPE_TEST_PYTHON`: a throwaway virtual environment
//! with `duckdb polars pyarrow pandas` that `bash .ci/run` creates once in
//! `target/pyenv`. Without the variable the test says why and passes, except
//! under `CI=true`, where it fails.
//!
//! The README's examples are the fenced blocks right after a
//! `<!-- reading example: NAME -->` line; the demo's are the `duckdb -c` and
//! `python3 -c` lines it prints under "3. read it" (their SQL goes through
//! DuckDB's Python module, which runs the same engine as its CLI).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, NaiveDate, Weekday};
use serde_json::{Value, json};

use crate::common::Workspace;

const PYTHON_VAR: &str = "FINPIPE_TEST_PYTHON";

/// Runs each example in its folder and writes what it answered as JSON: an
/// SQL example's result (DuckDB), a Python example's printed values.
const HARNESS: &str = r#"
import builtins, contextlib, io, json, os, sys, traceback

LIMIT = 5000  # rows kept of a table; a larger one keeps its height only


def describe(value):
    kind, name = type(value).__module__.split(".")[0], type(value).__name__
    if kind == "polars" and name == "LazyFrame":
        value, name = value.collect(), "DataFrame"
    if kind == "polars" and name == "DataFrame":
        rows = value.rows() if value.height <= LIMIT else None
        return {"columns": value.columns, "height": value.height, "rows": rows}
    if kind == "pandas" and name == "DataFrame":
        rows = value.astype(object).values.tolist() if len(value) <= LIMIT else None
        return {"columns": [str(c) for c in value.columns], "height": len(value), "rows": rows}
    if kind == "pyarrow" and name == "Table":
        rows = [list(r.values()) for r in value.to_pylist()] if value.num_rows <= LIMIT else None
        return {"columns": value.column_names, "height": value.num_rows, "rows": rows}
    if kind == "duckdb":
        rows = value.fetchall()
        return {"columns": list(value.columns), "height": len(rows), "rows": rows}
    if isinstance(value, (bool, int, float, str)) or value is None:
        return {"value": value}
    return {"value": str(value)}


def run(example):
    os.chdir(example["cwd"])
    out = {"name": example["name"], "printed": [], "ok": False}
    text = io.StringIO()
    try:
        if example["kind"] == "sql":
            import duckdb
            out["result"] = describe(duckdb.connect().sql(example["code"]))
        else:
            def record(*args, **kwargs):
                out["printed"].append([describe(a) for a in args])
                builtins.print(*args, **{**kwargs, "file": text})
            namespace = {"__name__": "__main__", "print": record}
            with contextlib.redirect_stdout(text):
                exec(compile(example["code"], example["name"], "exec"), namespace)
        out["ok"] = True
    except Exception:
        out["error"] = traceback.format_exc()
    out["text"] = text.getvalue()
    return out


with open(sys.argv[1]) as f:
    examples = json.load(f)
versions = {m: __import__(m).__version__ for m in ["duckdb", "polars", "pandas", "pyarrow"]}
answers = [run(e) for e in examples]
with open(sys.argv[2], "w") as f:
    json.dump({"versions": versions, "answers": answers}, f, default=str)
"#;

/// The old README example, grouping by the UTC day: run in a UTC session it
/// must show the Saturday row the fixed examples must not (so the check of
/// the fixed ones can fail).
const UTC_DAYS: &str = "SELECT ticker, date_trunc('day', timestamp) AS day, max(high) \
                        FROM read_parquet('data/*/1m/*.parquet') GROUP BY ALL";

/// Every file's `ticker` statistics, as a third-party reader sees them.
const TICKER_STATISTICS: &str = r#"
import glob
import pyarrow.parquet as pq
for path in sorted(glob.glob("data/*/*/*.parquet")):
    stats = pq.ParquetFile(path).metadata.row_group(0).column(0).statistics
    print(path, stats is not None and stats.has_min_max and stats.min, stats is not None and stats.has_min_max and stats.max)
"#;

/// The interpreter of the test's virtual environment, or `None` (with the
/// reason printed) when there is none outside CI.
pub(crate) fn python() -> Option<PathBuf> {
    match std::env::var_os(PYTHON_VAR) {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => {
            let why = format!(
                "{PYTHON_VAR} is not set, so the README's and the demo's reading examples were \
                 not run: `bash .ci/run` creates a virtual environment with duckdb, polars, \
                 pyarrow and pandas in target/pyenv and sets it"
            );
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{why}; under CI=true this test must run"
            );
            eprintln!("skipped: {why}");
            None
        }
    }
}

#[derive(Debug)]
struct Example {
    name: String,
    kind: &'static str,
    code: String,
    cwd: PathBuf,
}

/// The fenced blocks that follow a `<!-- reading example: NAME -->` line.
fn readme_examples(readme: &str, cwd: &Path) -> Vec<Example> {
    let mut out = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- reading example:")
            .and_then(|rest| rest.strip_suffix("-->"))
        else {
            continue;
        };
        let name = name.trim().to_owned();
        let kind = match lines.next().map(str::trim) {
            Some("```sql") => "sql",
            Some("```python") => "python",
            other => panic!(
                "reading example {name}: expected a ```sql or ```python block, got {other:?}"
            ),
        };
        let mut code = String::new();
        for line in lines.by_ref() {
            if line.trim() == "```" {
                break;
            }
            code.push_str(line);
            code.push('\n');
        }
        out.push(Example {
            name,
            kind,
            code,
            cwd: cwd.to_owned(),
        });
    }
    out
}

/// The `duckdb -c "…"` and `python3 -c "…"` lines the demo prints.
fn demo_examples(stdout: &str, cwd: &Path) -> Vec<(String, Example)> {
    let mut out = Vec::new();
    let section = stdout
        .split_once("\n3. read it")
        .map(|(_, rest)| rest)
        .expect("the demo prints how to read the library");
    for line in section.lines() {
        let (kind, rest) = if let Some(rest) = line.strip_prefix("  duckdb -c \"") {
            ("sql", rest)
        } else if let Some(rest) = line.strip_prefix("  python3 -c \"") {
            ("python", rest)
        } else {
            continue;
        };
        let code = rest.strip_suffix('"').expect("the command ends its quote");
        assert!(
            !code.contains('"') && !code.contains('$') && !code.contains('`'),
            "a shell would change: {line}"
        );
        out.push((
            line.to_owned(),
            Example {
                name: format!("demo {kind} {}", out.len() + 1),
                kind,
                code: code.to_owned(),
                cwd: cwd.to_owned(),
            },
        ));
    }
    out
}

/// The market's day of a daily bar (00:00 New York).
fn ny_date(timestamp_ms: i64) -> String {
    DateTime::from_timestamp_millis(timestamp_ms)
        .unwrap()
        .with_timezone(&chrono_tz::America::New_York)
        .date_naive()
        .to_string()
}

fn weekday(day: &Value) -> Weekday {
    let text = day.as_str().expect("a day");
    NaiveDate::parse_from_str(&text[..10], "%Y-%m-%d")
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .weekday()
}

fn is_weekend(day: &Value) -> bool {
    matches!(weekday(day), Weekday::Sat | Weekday::Sun)
}

/// A table's rows as objects keyed by column name.
fn records(table: &Value) -> Vec<BTreeMap<String, Value>> {
    let columns: Vec<String> = table["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    table["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            columns
                .iter()
                .cloned()
                .zip(row.as_array().unwrap().iter().cloned())
                .collect()
        })
        .collect()
}

fn int(value: &Value) -> u64 {
    value.as_u64().unwrap_or_else(|| panic!("a count: {value}"))
}

fn float(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("a number: {value}"))
}

/// finpipe's own count of files and rows per (ticker, timeframe), from
/// `status --json` (footers).
type Counts = BTreeMap<(String, String), (u64, u64)>;

const STOCKS: [&str; 8] = ["AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "JPM", "SPY", "QQQ"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_and_the_demos_reading_examples_answer_what_finpipe_stored() {
    let Some(python) = python() else {
        return;
    };
    let ws = Workspace::new();
    let demo = ws.run(&["demo", "--dir", "finpipe-demo"]).await;
    assert_eq!(demo.code, 0, "{demo:?}");
    let library = ws.join("finpipe-demo");
    let data = "finpipe-demo/data";

    // finpipe's own counts.
    let status = ws.run(&["status", "--data-dir", data, "--json"]).await;
    assert_eq!(status.code, 0, "{status:?}");
    let status: Value = serde_json::from_str(&status.stdout).expect("status --json");
    let counts: Counts = status["series"]
        .as_array()
        .expect("series")
        .iter()
        .map(|s| {
            let key = (
                s["ticker"].as_str().unwrap().to_owned(),
                s["timeframe"].as_str().unwrap().to_owned(),
            );
            (key, (int(&s["files"]), int(&s["rows"])))
        })
        .collect();
    let rows = |ticker: &str, tf: &str| counts[&(ticker.to_owned(), tf.to_owned())].1;
    let total_rows: u64 = counts.values().map(|c| c.1).sum();
    let total_files: u64 = counts.values().map(|c| c.0).sum();
    let daily_rows: u64 = counts
        .iter()
        .filter(|((_, tf), _)| tf == "1d")
        .map(|(_, c)| c.1)
        .sum();
    assert_eq!(counts.len(), 12 * 4, "{counts:?}");
    let bars = ws.library(data);
    let aapl_days: Vec<_> = bars[&("AAPL".to_owned(), "1d".to_owned())]
        .iter()
        .map(|b| (ny_date(b.timestamp), *b))
        .collect();
    assert!(aapl_days.len() >= 10, "{aapl_days:?}");

    // The examples: the README's, the demo's, two of the test's own.
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let readme_examples = readme_examples(&readme, &library);
    let names: Vec<&str> = readme_examples.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "duckdb-days",
            "duckdb-ticker",
            "polars-days",
            "whole-library"
        ],
        "the README's marked reading examples"
    );
    let demo_examples = demo_examples(&demo.stdout, ws.path());
    assert_eq!(demo_examples.len(), 3, "{}", demo.stdout);
    for (line, _) in &demo_examples {
        assert!(
            readme.contains(line.as_str()),
            "the README's demo transcript shows the demo's example as it prints it:\n{line}"
        );
    }
    let mut examples = readme_examples;
    examples.extend(demo_examples.into_iter().map(|(_, e)| e));
    for (name, kind, code) in [
        ("utc-days", "sql", UTC_DAYS),
        ("ticker-statistics", "python", TICKER_STATISTICS),
    ] {
        examples.push(Example {
            name: name.to_owned(),
            kind,
            code: code.to_owned(),
            cwd: library.clone(),
        });
    }

    // Run them all in one interpreter (a UTC session, as on a server).
    let spec: Vec<Value> = examples
        .iter()
        .map(|e| json!({"name": e.name, "kind": e.kind, "code": e.code, "cwd": e.cwd}))
        .collect();
    let spec_path = ws.join("examples.json");
    let answers_path = ws.join("answers.json");
    let harness_path = ws.join("harness.py");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    std::fs::write(&harness_path, HARNESS).unwrap();
    let output = tokio::process::Command::new(&python)
        .arg(&harness_path)
        .arg(&spec_path)
        .arg(&answers_path)
        .env("TZ", "UTC")
        .output()
        .await
        .unwrap_or_else(|e| panic!("{PYTHON_VAR}={}: {e}", python.display()));
    assert!(
        output.status.success(),
        "the harness failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answers: Value =
        serde_json::from_slice(&std::fs::read(&answers_path).unwrap()).expect("answers");
    eprintln!("readers: {}", answers["versions"]);
    let answer: BTreeMap<String, Value> = answers["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap().to_owned(), a.clone()))
        .collect();
    for (name, a) in &answer {
        assert_eq!(
            a["ok"],
            true,
            "{name} failed:\n{}",
            a["error"].as_str().unwrap_or("")
        );
    }
    let printed = |name: &str| answer[name]["printed"].as_array().unwrap().clone();

    // Checks a per-market-day table of AAPL against its daily bars: the
    // same days, no weekend, and the same prices (the simulator's daily bar
    // is its minutes' aggregate, whatever the source of either file).
    let same_as_daily = |name: &str, days: &[BTreeMap<String, Value>], fields: &[&str]| {
        let got: Vec<&str> = days.iter().map(|d| d["day"].as_str().unwrap()).collect();
        let want: Vec<&str> = aapl_days.iter().map(|(day, _)| day.as_str()).collect();
        assert_eq!(got, want, "{name}: AAPL's market days");
        for (row, (day, bar)) in days.iter().zip(&aapl_days) {
            assert!(!is_weekend(&row["day"]), "{name}: {day} is a weekend");
            for field in fields {
                let expected = match *field {
                    "open" => bar.open,
                    "high" => bar.high,
                    "low" => bar.low,
                    "close" => bar.close,
                    "volume" => bar.volume.unwrap(),
                    other => panic!("{other}"),
                };
                assert_eq!(float(&row[*field]), expected, "{name}: {day} {field}");
            }
        }
    };

    // README: per ticker and market day from the 1m bars.
    let days = records(&answer["duckdb-days"]["result"]);
    for ticker in counts.keys().map(|(t, _)| t).collect::<BTreeSet<_>>() {
        let of: Vec<_> = days
            .iter()
            .filter(|d| d["ticker"] == *ticker)
            .cloned()
            .collect();
        let sum: u64 = of.iter().map(|d| int(&d["bars"])).sum();
        assert_eq!(sum, rows(ticker, "1m"), "duckdb-days: {ticker}'s bars");
        if STOCKS.contains(&ticker.as_str()) {
            assert!(
                !of.iter().any(|d| is_weekend(&d["day"])),
                "duckdb-days: a weekend row for {ticker}: {of:?}"
            );
        }
        if ticker == "AAPL" {
            same_as_daily("duckdb-days", &of, &["high", "low", "volume"]);
        }
    }
    // README: AAPL's daily bars from its 5m bars, out of every ticker's files.
    let rebuilt = records(&answer["duckdb-ticker"]["result"]);
    same_as_daily(
        "duckdb-ticker",
        &rebuilt,
        &["open", "high", "low", "close", "volume"],
    );
    // README: the same with polars from the 1m bars.
    let shown = printed("polars-days");
    assert_eq!(shown.len(), 1, "polars-days prints one table");
    let rebuilt = records(&shown[0][0]);
    same_as_daily(
        "polars-days",
        &rebuilt,
        &["open", "high", "low", "close", "volume"],
    );
    let sum: u64 = rebuilt.iter().map(|d| int(&d["bars"])).sum();
    assert_eq!(sum, rows("AAPL", "1m"), "polars-days: AAPL's bars");
    // README: the whole library with pandas, pyarrow, polars and DuckDB.
    let shown = printed("whole-library");
    let values: Vec<u64> = shown[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| int(&v["value"]))
        .collect();
    assert_eq!(
        values,
        [total_rows, daily_rows, total_rows, total_files],
        "whole-library: pandas' rows, pyarrow's daily rows, polars' rows, DuckDB's files"
    );

    // The demo: days per ticker from the daily files.
    let per_ticker = records(&answer["demo sql 1"]["result"]);
    assert_eq!(per_ticker.len(), 12, "{per_ticker:?}");
    for row in &per_ticker {
        let ticker = row["ticker"].as_str().unwrap();
        assert_eq!(
            int(&row["days"]),
            rows(ticker, "1d"),
            "demo: {ticker}'s days"
        );
    }
    // The demo: AAPL per market day from the 1m bars of every ticker's files.
    let days = records(&answer["demo sql 2"]["result"]);
    same_as_daily("demo sql 2", &days, &[]);
    let sum: u64 = days.iter().map(|d| int(&d["bars"])).sum();
    assert_eq!(sum, rows("AAPL", "1m"), "demo sql 2: AAPL's bars");
    // The demo: AAPL per market day from its 5m bars, with polars.
    let shown = printed("demo python 3");
    assert_eq!(shown.len(), 1, "the demo's polars example prints one table");
    let days = records(&shown[0][0]);
    same_as_daily("demo python 3", &days, &["high"]);
    let sum: u64 = days.iter().map(|d| int(&d["bars"])).sum();
    assert_eq!(sum, rows("AAPL", "5m"), "demo python 3: AAPL's bars");

    // The old example's UTC day does show a Saturday for AAPL.
    let utc = records(&answer["utc-days"]["result"]);
    assert!(
        utc.iter()
            .any(|d| d["ticker"] == "AAPL" && weekday(&d["day"]) == Weekday::Sat),
        "grouping by the UTC day should show the after-hours Saturday row: {utc:?}"
    );

    // Every file carries its ticker's min and max, for readers to skip it.
    let shown = printed("ticker-statistics");
    assert_eq!(shown.len() as u64, total_files);
    for line in &shown {
        let path = line[0]["value"].as_str().unwrap();
        let dir = path.split('/').nth(1).unwrap();
        let ticker = finpipe::store::ticker_from_dir(dir).unwrap().to_string();
        assert_eq!(line[1]["value"], ticker.as_str(), "{path}: min");
        assert_eq!(line[2]["value"], ticker.as_str(), "{path}: max");
    }

    // The README points at examples/read_library.py: it runs too.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/read_library.py");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .args(["--data", data, "--ticker", "AAPL"])
        .current_dir(ws.path())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "read_library.py: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for section in ["== DuckDB", "== polars"] {
        assert!(stdout.contains(section), "read_library.py: {stdout}");
    }
    assert!(!stdout.contains("not installed"), "{stdout}");
    assert!(!stdout.contains("skipped"), "{stdout}");
}

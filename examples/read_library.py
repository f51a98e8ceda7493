#!/usr/bin/env python3
"""Read a finpipe library with DuckDB and with polars (each optional).

    pip install duckdb polars
    python3 examples/read_library.py --data data --ticker AAPL

Layout: <data>/<TICKER_DIR>/<timeframe>/<period>.parquet (period YYYY-MM for
intraday, YYYY for 1d); finpipe's own files are in the hidden <data>/.finpipe/.
Every file has a `ticker` column with the real symbol (and its min/max
statistics, so a glob over all tickers filtered on `ticker` skips the other
tickers' files). Timestamps are UTC window starts (ms). A market's day is a
calendar day in New York (forex: in UTC), so every query that groups by day
converts first: timezone('America/New_York', timestamp) in DuckDB,
.dt.convert_time_zone("America/New_York") in polars. Grouped by the UTC day,
a Friday's after-hours bars would land on a Saturday.
"""

import argparse
import glob
import os
import sys

NY = "America/New_York"


def day_zone(ticker: str) -> str:
    """The zone of a ticker's market day: UTC for forex (C:EURUSD), else New York."""
    return "UTC" if ticker.startswith("C:") else NY


# DuckDB: a bar's market day (New York; UTC for forex), as finpipe files it.
MARKET_DAY = (
    "timezone(CASE WHEN ticker LIKE 'C:%' THEN 'UTC' ELSE 'America/New_York' END, \"timestamp\")::DATE"
)


def ticker_dir(ticker: str) -> str:
    """The directory finpipe writes `ticker` to (X:BTCUSD -> X~BTCUSD, KIMpL -> KIM_pL)."""
    out = []
    for i, b in enumerate(ticker.encode()):
        c = chr(b)
        if c == "." and i == 0:
            out.append(f"_{b:02X}")
        elif "A" <= c <= "Z" or "0" <= c <= "9" or c in ".-":
            out.append(c)
        elif c == ":":
            out.append("~")
        elif "a" <= c <= "z":
            out.append("_" + c)
        else:
            out.append(f"_{b:02X}")
    return "".join(out)


def pattern(data: str, timeframe: str, ticker: str | None = None) -> str | None:
    """A glob for one timeframe (narrowed to the ticker's directory when it
    exists), or None with a message when no file matches."""
    glob_all = os.path.join(data, "*", timeframe, "*.parquet")
    if ticker:
        own = os.path.join(data, ticker_dir(ticker), timeframe, "*.parquet")
        if glob.glob(own):
            return own
    if glob.glob(glob_all):
        return glob_all
    print(f"  (no {timeframe} files under {data}/: skipped)")
    return None


def sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def with_duckdb(data: str, ticker: str) -> None:
    try:
        import duckdb
    except ImportError:
        print("duckdb is not installed: pip install duckdb polars")
        return
    con = duckdb.connect()
    print("== DuckDB: daily bars per ticker")
    if (p := pattern(data, "1d")) is not None:
        con.sql(
            f"""
            SELECT ticker,
                   count(*)                                  AS days,
                   min({MARKET_DAY})                         AS first_day,
                   max({MARKET_DAY})                         AS last_day,
                   arg_max(close, "timestamp")               AS last_close
            FROM read_parquet({sql_str(p)}, hive_partitioning = false)
            GROUP BY ticker ORDER BY ticker
            """
        ).show()

    print(f"== DuckDB: {ticker} per market day, from its 1m bars")
    if (p := pattern(data, "1m", ticker)) is not None:
        con.sql(
            f"""
            SELECT {MARKET_DAY}                 AS day,
                   count(*)                     AS bars,
                   arg_min(open, "timestamp")   AS open,
                   max(high)                    AS high,
                   min(low)                     AS low,
                   arg_max(close, "timestamp")  AS close,
                   sum(volume)                  AS volume
            FROM read_parquet({sql_str(p)}, hive_partitioning = false)
            WHERE ticker = ?
            GROUP BY day ORDER BY day
            """,
            params=[ticker],
        ).show()

    print(f"== DuckDB: {ticker} 1m bars of its last day, New York time")
    if (p := pattern(data, "1m", ticker)) is not None:
        con.sql(
            f"""
            WITH bars AS (
                SELECT timezone('{NY}', "timestamp") AS ny, open, high, low, close, volume
                FROM read_parquet({sql_str(p)}, hive_partitioning = false)
                WHERE ticker = ?
            )
            SELECT * FROM bars
            WHERE ny::DATE = (SELECT max(ny)::DATE FROM bars)
            ORDER BY ny
            """,
            params=[ticker],
        ).show()


def with_polars(data: str, ticker: str) -> None:
    try:
        import polars as pl
    except ImportError:
        print("polars is not installed: pip install duckdb polars")
        return
    # The ticker column may come back as Categorical: compare it as a string.
    is_ticker = pl.col("ticker").cast(pl.String) == ticker

    print(f"== polars: {ticker} daily returns")
    if (p := pattern(data, "1d")) is not None:
        daily = (
            pl.scan_parquet(p, hive_partitioning=False)
            .filter(is_ticker)
            .sort("timestamp")
            .select(
                pl.col("timestamp").dt.convert_time_zone(day_zone(ticker)).dt.date().alias("day"),
                "close",
                pl.col("close").pct_change().alias("return"),
            )
            .collect()
        )
        print(daily.tail(10) if daily.height else f"  (no daily bars for {ticker})")

    print(f"== polars: {ticker} 1m bars resampled to 30m, New York time")
    if (p := pattern(data, "1m", ticker)) is not None:
        bars = (
            pl.scan_parquet(p, hive_partitioning=False)
            .filter(is_ticker)
            .with_columns(pl.col("timestamp").dt.convert_time_zone(NY))
            .sort("timestamp")
            .collect()
        )
        if bars.height == 0:
            print(f"  (no 1m bars for {ticker})")
            return
        bars30 = bars.group_by_dynamic("timestamp", every="30m", closed="left", label="left").agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
        )
        print(bars30.tail(16))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data", metavar="DIR", help="the library (default: data)")
    parser.add_argument("--ticker", default="AAPL", help="the real symbol, e.g. X:BTCUSD (default: AAPL)")
    args = parser.parse_args()
    if not os.path.isdir(args.data):
        print(f"no library at {args.data}: run `finpipe backfill` first, or pass --data DIR")
        return 1
    with_duckdb(args.data, args.ticker)
    with_polars(args.data, args.ticker)
    return 0


if __name__ == "__main__":
    sys.exit(main())

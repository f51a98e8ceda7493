"""The trades benchmark's peer: the same aggregation as `finpipe backfill
--from-trades --timeframes 1s,1m`, done by polars on the same gzip trades
file. Usage: trades_polars.py TRADES.csv.gz RULES.json

Rules (as finpipe applies them, `src/trades`): trades whose `correction` is
not 0 or 1 are dropped; a trade updates high/low, open/close and volume only
if every one of its condition codes allows it (RULES.json: finpipe's
built-in table with the extended-hours overrides; an unknown code restricts
nothing); a trade updating none of them is ignored. Bars are stamped at the
window start of `sip_timestamp`. Prints what it built, on one line.
"""

import json
import sys

import polars as pl


def main() -> None:
    path, rules_path = sys.argv[1], sys.argv[2]
    rules = json.load(open(rules_path))
    no_hl = [r["code"] for r in rules if not r["high_low"]]
    no_oc = [r["code"] for r in rules if not r["open_close"]]
    no_vol = [r["code"] for r in rules if not r["volume"]]
    trades = pl.read_csv(
        path,
        columns=["ticker", "conditions", "correction", "price", "sip_timestamp", "size"],
        schema_overrides={"conditions": pl.Utf8, "ticker": pl.Utf8},
    ).filter(pl.col("correction").is_in([0, 1]))
    codes = pl.col("conditions").fill_null("").str.split(",").list.eval(
        pl.element().filter(pl.element() != "").cast(pl.Int32)
    )
    trades = trades.with_columns(
        hl=~codes.list.eval(pl.element().is_in(no_hl)).list.any(),
        oc=~codes.list.eval(pl.element().is_in(no_oc)).list.any(),
        vol=~codes.list.eval(pl.element().is_in(no_vol)).list.any(),
    ).filter(pl.col("hl") | pl.col("oc") | pl.col("vol"))
    built = []
    for name, width in (("1s", 1_000_000_000), ("1m", 60_000_000_000)):
        window = (pl.col("sip_timestamp") // width * width // 1_000_000).alias("timestamp")
        price = pl.col("price")
        bars = (
            trades.group_by(["ticker", window], maintain_order=True)
            .agg(
                open=price.filter(pl.col("oc")).first(),
                high=price.filter(pl.col("hl")).max(),
                low=price.filter(pl.col("hl")).min(),
                close=price.filter(pl.col("oc")).last(),
                volume=pl.col("size").filter(pl.col("vol")).sum(),
                dollars=(price * pl.col("size")).filter(pl.col("vol")).sum(),
                transactions=pl.len(),
            )
            .filter(pl.col("open").is_not_null())
            .with_columns(vwap=(pl.col("dollars") / pl.col("volume")).round(4))
            .drop("dollars")
        )
        built.append(f"{name}: {bars.height} bars")
    print(f"{trades.height} trades kept; " + ", ".join(built))


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Refresh the universe files of the categories a team tracks, e.g. monthly
# from cron. Each run writes universe/<category>_<YYYYMMDD>.json atomically.
#
#   MASSIVE_API_KEY=... examples/discover-universes.sh
#
# On the free plan (5 requests a minute) this costs one request per 1000
# tickers; finpipe spaces them out itself.
set -euo pipefail

finpipe discover us_equities --limit 3000
finpipe discover etf --limit 500
finpipe discover crypto
finpipe discover fx
finpipe discover indices --limit 200
finpipe discover options --underlying SPY,QQQ,AAPL --type call

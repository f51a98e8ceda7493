//! Jobs that fan out to target tickers (flat-file and grouped-daily jobs) in
//! the table, and the ETags of the day files already ingested (so a
//! republished file is ingested again).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rusqlite::{OptionalExtension, params};

use super::row::{basis_to_sql, date_to_sql, timeframe_list_to_sql};
use super::{INSERT_SQL, JobTable, NewJob, Result, sql};
use crate::model::Ticker;

impl JobTable {
    /// Plans a fan-out (flat-file or grouped-daily) job for `targets`. A new job is inserted pending. The
    /// same job already pending or running gains the targets it lacks; done
    /// or failed, it is planned again for exactly `targets` (the earlier
    /// targets are covered, or were failed and are asked for again here).
    /// Returns whether anything changed.
    pub fn insert_fanout(&mut self, job: &NewJob, targets: &[Ticker], now_ms: i64) -> Result<bool> {
        debug_assert!(job.kind.has_targets());
        let tx = self.immediate("starting to plan a flat-file job")?;
        let key = params![
            job.kind.as_str(),
            job.ticker.as_str(),
            job.timeframe.to_string(),
            basis_to_sql(job.basis),
            date_to_sql(job.range.start),
            date_to_sql(job.range.end),
        ];
        let existing: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, state FROM jobs WHERE kind = ?1 AND ticker = ?2 AND timeframe = ?3
                   AND adjusted = ?4 AND start_date = ?5 AND end_date = ?6",
                key,
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(sql("looking up a flat-file job"))?;
        let mut changed = false;
        let id = match existing {
            Some((id, state)) => {
                if state == "done" || state == "failed" {
                    tx.execute(
                        "UPDATE jobs SET state = 'pending', attempts = 0, owner = NULL,
                             progress_ts = NULL, derived = ?2, available_at = ?3,
                             updated_at = ?3, finished_at = NULL
                         WHERE id = ?1",
                        params![id, timeframe_list_to_sql(&job.derived), now_ms],
                    )
                    .map_err(sql("planning a flat-file job again"))?;
                    tx.execute("DELETE FROM job_targets WHERE job_id = ?1", [id])
                        .map_err(sql("replacing flat-file targets"))?;
                    changed = true;
                }
                id
            }
            None => {
                tx.execute(
                    INSERT_SQL,
                    params![
                        job.kind.as_str(),
                        job.ticker.as_str(),
                        job.timeframe.to_string(),
                        timeframe_list_to_sql(&job.derived),
                        basis_to_sql(job.basis),
                        date_to_sql(job.range.start),
                        date_to_sql(job.range.end),
                        now_ms,
                    ],
                )
                .map_err(sql("inserting a flat-file job"))?;
                changed = true;
                tx.last_insert_rowid()
            }
        };
        {
            let mut add = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO job_targets (job_id, ticker) VALUES (?1, ?2)",
                )
                .map_err(sql("preparing the target insert"))?;
            for ticker in targets {
                changed |= add
                    .execute(params![id, ticker.as_str()])
                    .map_err(sql("adding a flat-file target"))?
                    > 0;
            }
        }
        tx.commit().map_err(sql("committing a flat-file job"))?;
        Ok(changed)
    }

    /// The tickers a flat-file job fans out to, sorted.
    pub fn targets(&self, job_id: i64) -> Result<Vec<Ticker>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT ticker FROM job_targets WHERE job_id = ?1 ORDER BY ticker")
            .map_err(sql("preparing the targets query"))?;
        let rows = stmt
            .query_map([job_id], |row| row.get::<_, String>(0))
            .map_err(sql("reading targets"))?;
        let mut targets = Vec::new();
        for row in rows {
            let name = row.map_err(sql("reading targets"))?;
            match Ticker::new(&name) {
                Ok(ticker) => targets.push(ticker),
                Err(e) => {
                    return Err(super::JobError::Corrupt {
                        id: job_id,
                        detail: format!("target {name:?}: {e}"),
                    });
                }
            }
        }
        Ok(targets)
    }

    /// Records that the day file of `dataset`/`kind` on `day` was ingested
    /// with this ETag.
    pub fn record_ingested(
        &mut self,
        dataset: &str,
        kind: &str,
        day: NaiveDate,
        etag: &str,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO flat_ingested (dataset, kind, day, etag) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (dataset, kind, day) DO UPDATE SET etag = excluded.etag",
            )
            .and_then(|mut upsert| upsert.execute(params![dataset, kind, date_to_sql(day), etag]))
            .map_err(sql("recording an ingested flat file"))?;
        Ok(())
    }

    /// The ETags of the ingested day files of `dataset`/`kind` from `from`
    /// through `to`.
    pub fn ingested(
        &self,
        dataset: &str,
        kind: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<BTreeMap<NaiveDate, String>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT day, etag FROM flat_ingested
                 WHERE dataset = ?1 AND kind = ?2 AND day BETWEEN ?3 AND ?4",
            )
            .map_err(sql("preparing the ingested query"))?;
        let rows = stmt
            .query_map(
                params![dataset, kind, date_to_sql(from), date_to_sql(to)],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
            )
            .map_err(sql("reading ingested flat files"))?;
        let mut found = BTreeMap::new();
        for row in rows {
            let (day, etag) = row.map_err(sql("reading ingested flat files"))?;
            if let Ok(day) = day.parse::<NaiveDate>() {
                found.insert(day, etag);
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::super::JobKind;
    use super::super::tests::{jan, temp_table, ticker};
    use super::*;
    use crate::model::{Basis, Timeframe};

    fn flat_job() -> NewJob {
        NewJob {
            kind: JobKind::Flat,
            ticker: ticker("us_stocks_sip"),
            timeframe: Timeframe::MINUTE,
            derived: vec![],
            basis: Basis::Unadjusted,
            range: jan(),
        }
    }

    #[test]
    fn flat_jobs_gather_targets_and_count_as_planned_for_them() {
        let (_dir, _path, mut table) = temp_table();
        let job = flat_job();
        assert!(
            table
                .insert_fanout(&job, &[ticker("AAPL"), ticker("MSFT")], 0)
                .unwrap()
        );
        assert!(
            !table.insert_fanout(&job, &[ticker("AAPL")], 0).unwrap(),
            "idempotent"
        );
        assert!(table.insert_fanout(&job, &[ticker("NVDA")], 0).unwrap());
        let claimed = table.claim("w", 1, 1_000).unwrap().unwrap();
        assert_eq!(claimed.kind, JobKind::Flat);
        let names: Vec<String> = table
            .targets(claimed.id)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["AAPL", "MSFT", "NVDA"]);
        let open = table
            .open_ranges(&ticker("MSFT"), Timeframe::MINUTE, Basis::Unadjusted)
            .unwrap();
        assert_eq!(open, vec![jan()]);
        assert!(
            table
                .open_ranges(&ticker("TSLA"), Timeframe::MINUTE, Basis::Unadjusted)
                .unwrap()
                .is_empty()
        );
        // Done, then planned for a new ticker: pending again, for it alone.
        assert!(table.complete(claimed.id, "w", 0, 2).unwrap());
        assert!(table.insert_fanout(&job, &[ticker("TSLA")], 3).unwrap());
        let again = table.claim("w", 4, 1_000).unwrap().unwrap();
        assert_eq!(again.id, claimed.id);
        assert_eq!(table.targets(again.id).unwrap(), [ticker("TSLA")]);
    }

    #[test]
    fn ingested_etags_are_remembered_and_replaced() {
        let (_dir, _path, mut table) = temp_table();
        let day = |d: u32| NaiveDate::from_ymd_opt(2024, 1, d).unwrap();
        table
            .record_ingested("us_stocks_sip", "minute_aggs_v1", day(2), "a")
            .unwrap();
        table
            .record_ingested("us_stocks_sip", "minute_aggs_v1", day(3), "b")
            .unwrap();
        table
            .record_ingested("us_stocks_sip", "minute_aggs_v1", day(2), "c")
            .unwrap();
        table
            .record_ingested("us_stocks_sip", "day_aggs_v1", day(2), "d")
            .unwrap();
        let found = table
            .ingested("us_stocks_sip", "minute_aggs_v1", day(1), day(31))
            .unwrap();
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            [(day(2), "c".to_owned()), (day(3), "b".to_owned())]
        );
    }
}

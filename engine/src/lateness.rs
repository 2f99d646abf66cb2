//! Event time, the watermark, and what "late" means.
//!
//! A replay reads its input in shares (one Parquet row group each, see
//! [`crate::share`]); the live engine's ingest is one share. Each share keeps
//! the largest event time seen so far in it; its **watermark** is that minus
//! the allowed lateness (`--lateness`, 60 s by default). A row whose `ts_ms` is
//! below its share's watermark when it is read is **late**. It is not
//! dropped: it enters the dataflow at that watermark (the earliest time the
//! engine still processes for that share), with `late` set on the event, and
//! is counted in the summary.
//!
//! Across shares nothing is late: the progress of the whole input is timely's
//! frontier, the least watermark over all shares (a share not opened yet
//! counts at the lower bound of its times, from the Parquet statistics), so a
//! row is never judged against another share's clock and rows out of order
//! between row groups or files are processed exactly at their own time.
//!
//! So input need not be sorted: rows out of order within a row group by up to
//! the lateness are processed exactly at their own event time; later ones are
//! still processed, and visible as late. The decision depends only on the
//! input files (their rows and row groups), never on the number of workers or
//! processes, so replay stays deterministic.

/// Tracks the watermark of one share of the input.
#[derive(Debug, Clone)]
pub struct Watermark {
    lateness_ms: u64,
    max_seen: Option<u64>,
}

impl Watermark {
    /// A fresh watermark with the allowed lateness.
    pub fn new(lateness_ms: u64) -> Self {
        Watermark { lateness_ms, max_seen: None }
    }

    /// The current watermark (0 before any event).
    pub fn current(&self) -> u64 {
        self.max_seen.map_or(0, |m| m.saturating_sub(self.lateness_ms))
    }

    /// The largest event time seen (what a restored watermark starts from).
    pub fn max_seen(&self) -> Option<u64> {
        self.max_seen
    }

    /// Records that event time has reached `now_ms` without an event (a clock tick).
    pub fn observe(&mut self, now_ms: u64) {
        self.max_seen = Some(self.max_seen.map_or(now_ms, |m| m.max(now_ms)));
    }

    /// Admits an event: returns the dataflow time it travels at and whether it is late.
    pub fn admit(&mut self, ts_ms: u64) -> (u64, bool) {
        let wm = self.current();
        let out = if ts_ms < wm { (wm, true) } else { (ts_ms, false) };
        self.max_seen = Some(self.max_seen.map_or(ts_ms, |m| m.max(ts_ms)));
        out
    }
}

/// Parses a duration such as `60s`, `5m`, `2h`, `1d`, `250ms` or a plain number of seconds.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let n: u64 = num.parse().ok()?;
    let mult = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Event time as a UTC date-time (`None` beyond chrono's range, some
/// 262,000 years either side of 1970: never a validated event time).
fn utc(ts_ms: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_millis(ts_ms)
}

/// Formats event time as RFC 3339 UTC with seconds (`2026-03-02T08:00:00+00:00`), as CAP wants.
pub fn utc_rfc3339(ts_ms: i64) -> String {
    utc(ts_ms).map_or_else(|| format!("{ts_ms} ms"), |t| t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string())
}

/// Formats event time compactly for people (`2026-03-02 08:00:00Z`).
pub fn utc_short(ts_ms: i64) -> String {
    utc(ts_ms).map_or_else(|| format!("{ts_ms} ms"), |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
}

/// The UTC date of an event time (`2026-03-02`).
pub fn utc_date(ts_ms: i64) -> String {
    utc(ts_ms).map_or_else(|| format!("{ts_ms} ms"), |t| t.format("%Y-%m-%d").to_string())
}

/// Parses `YYYY-MM-DD` to ms since the epoch (midnight UTC); `None` for a
/// date that does not exist (`2026-02-31`).
pub fn parse_date_ms(text: &str) -> Option<i64> {
    let day = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()?;
    Some(day.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_events_travel_at_the_watermark() {
        let mut w = Watermark::new(1_000);
        assert_eq!(w.admit(10_000), (10_000, false));
        assert_eq!(w.admit(9_500), (9_500, false), "within lateness: own time");
        assert_eq!(w.admit(8_000), (9_000, true), "beyond lateness: at the watermark, late");
        assert_eq!(w.current(), 9_000);
    }

    #[test]
    fn dates_that_do_not_exist_are_refused() {
        assert_eq!(parse_date_ms("2026-03-02"), Some(1_772_409_600_000));
        assert_eq!(parse_date_ms("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_date_ms("2024-02-29"), Some(1_709_164_800_000));
        for bad in ["2026-02-31", "2026-02-29", "1900-02-29", "2026-04-31", "2026-13-01", "2026-00-10", "2026-1"] {
            assert_eq!(parse_date_ms(bad), None, "{bad}");
        }
        assert!(parse_date_ms("2000-02-29").is_some(), "2000 is a leap year");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("60s"), Some(60_000));
        assert_eq!(parse_duration_ms("3m"), Some(180_000));
        assert_eq!(parse_duration_ms("250ms"), Some(250));
        assert_eq!(parse_duration_ms("15"), Some(15_000));
        assert_eq!(parse_duration_ms("x"), None);
    }

    #[test]
    fn dates() {
        assert_eq!(utc_rfc3339(0), "1970-01-01T00:00:00+00:00");
        let ms = parse_date_ms("2026-03-02").unwrap();
        assert_eq!(utc_rfc3339(ms + 3_723_000), "2026-03-02T01:02:03+00:00");
        assert_eq!(utc_rfc3339(parse_date_ms("2024-02-29").unwrap()), "2024-02-29T00:00:00+00:00");
        assert_eq!(utc_short(ms + 3_723_000), "2026-03-02 01:02:03Z");
        assert_eq!(utc_date(ms + 86_399_999), "2026-03-02");
        assert_eq!(utc_rfc3339(-1_000), "1969-12-31T23:59:59+00:00");
    }
}

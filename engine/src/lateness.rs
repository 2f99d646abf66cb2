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

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats event time as RFC 3339 UTC with seconds (`2026-03-02T08:00:00+00:00`), as CAP wants.
pub fn utc_rfc3339(ts_ms: i64) -> String {
    let secs = ts_ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Formats event time compactly for people (`2026-03-02 08:00:00Z`).
pub fn utc_short(ts_ms: i64) -> String {
    let s = utc_rfc3339(ts_ms);
    format!("{} {}Z", &s[..10], &s[11..19])
}

/// Parses `YYYY-MM-DD` to ms since the epoch (midnight UTC).
pub fn parse_date_ms(text: &str) -> Option<i64> {
    let mut it = text.trim().splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    ((1..=12).contains(&m) && (1..=days_in_month).contains(&d)).then(|| days_from_civil(y, m, d) * 86_400_000)
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
        assert_eq!(parse_date_ms("2026-03-02"), Some(days_from_civil(2026, 3, 2) * 86_400_000));
        assert_eq!(parse_date_ms("2024-02-29"), Some(days_from_civil(2024, 2, 29) * 86_400_000));
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
    }
}

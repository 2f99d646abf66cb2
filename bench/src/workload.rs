//! The peer workloads' inputs and exact answers, written here: a seeded
//! generator for each workload and a plain single-threaded reference that
//! computes the expected output with ordinary maps and sets.
//!
//! The references share nothing with the dataflow scenarios they check (no
//! operator, no reader, no watermark code of `replay.rs`): they read the CSV
//! line by line, apply the workload's rules as written below, and sort the way
//! the output format says. A scenario is correct when its output equals the
//! reference's byte for byte.
//!
//! **window-count** (`ts_ms,phone,cell,kind`): timestamps rise by 0-7 ms a row
//! (~58 min for 1,000,000 rows); 5% of rows are moved 0-2,000 ms earlier;
//! phones `1` + 10 digits from 100,000 numbers, cells `c000`-`c199`, kinds
//! `call`, `sms`, `alarm`, `patrol`. Answer: events per (cell, 60 s tumbling
//! window aligned to the epoch), `cell,window_start_ms,count`, sorted by cell
//! (as text) then window. Nothing is late under the 5 s bound.
//!
//! **fanout** (`ts_ms,caller,callee,duration_s`): rows spread evenly over 6
//! hours from `T0`; 5% moved 1-2,000 ms earlier. 200,000 subscribers (11-digit
//! numbers from 20,000,000,000) each call mostly (90%) their 8-12 contacts,
//! talk time exponential with mean 150 s; 50 spammers (11-digit numbers from
//! 90,000,000,000) each calling 100-600 numbers an hour (~5% of rows): 70%
//! subscribers, 10% redials of one of their last five callees, the rest any
//! number; 85% of their calls are 1-29 s, the rest 30-120 s. Answer: for each
//! (caller, 10-minute window aligned to the epoch) with at least 20 distinct
//! callees, `caller,window_start_ms,distinct_callees,calls,short_calls`
//! (`short`: < 30 s), sorted by caller as text, then window. Watermark: the
//! largest `ts_ms` seen so far minus 5 s; a row whose window ended at or before
//! the watermark is late: counted and dropped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{fanout, window_count};

/// First timestamp of both workloads: 2023-11-14T22:13:20Z, not aligned to a
/// window on purpose.
pub const T0: i64 = 1_700_000_000_000;
/// Rows of the full-size window-count input.
pub const WINDOW_COUNT_ROWS: usize = 1_000_000;
/// Rows of the full-size fanout input.
pub const FANOUT_ROWS: usize = 2_000_000;
/// The seed `citywatch-bench gen` uses unless told otherwise.
pub const DEFAULT_SEED: u64 = 20_261_126;

const FANOUT_SPAN_MS: i64 = 6 * 3_600 * 1_000;
const SUBSCRIBERS: usize = 200_000;
const SPAMMERS: usize = 50;

/// Writes `rows` window-count rows to `out`.
pub fn generate_window_count(out: &Path, rows: usize, seed: u64) -> io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut w = BufWriter::with_capacity(1 << 20, File::create(out)?);
    writeln!(w, "{}", window_count::HEADER)?;
    const KINDS: [&str; 4] = ["call", "sms", "alarm", "patrol"];
    let mut ts = T0;
    for _ in 0..rows {
        ts += rng.random_range(0..=7);
        let jitter = if rng.random_bool(0.05) { rng.random_range(-2_000..=0) } else { 0 };
        let phone = rng.random_range(0..100_000u32);
        let cell = rng.random_range(0..200u32);
        let kind = KINDS[rng.random_range(0..KINDS.len())];
        writeln!(w, "{},1{phone:010},c{cell:03},{kind}", ts + jitter)?;
    }
    w.flush()
}

/// Writes `rows` fanout rows to `out`. Returns the share of spammer rows the
/// generator aimed at.
pub fn generate_fanout(out: &Path, rows: usize, seed: u64) -> io::Result<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let subscribers = distinct_numbers(&mut rng, SUBSCRIBERS, 20_000_000_000..90_000_000_000);
    let spammers = distinct_numbers(&mut rng, SPAMMERS, 90_000_000_000..100_000_000_000);
    let contacts: Vec<Vec<u64>> = (0..SUBSCRIBERS)
        .map(|_| {
            let n = rng.random_range(8..=12);
            (0..n).map(|_| subscribers[rng.random_range(0..SUBSCRIBERS)]).collect()
        })
        .collect();
    // Spammers are picked in proportion to their hourly rates.
    let mut cumulative = Vec::with_capacity(SPAMMERS);
    let mut total = 0u64;
    for _ in 0..SPAMMERS {
        total += rng.random_range(100..=600u64);
        cumulative.push(total);
    }
    let spam_share = (total * 6) as f64 / rows.max(1) as f64;
    let mut recent: Vec<Vec<u64>> = (0..SPAMMERS).map(|_| Vec::with_capacity(5)).collect();

    let mut w = BufWriter::with_capacity(1 << 20, File::create(out)?);
    writeln!(w, "{}", fanout::HEADER)?;
    for i in 0..rows {
        let mut ts = T0 + (i as i64 * FANOUT_SPAN_MS) / rows as i64;
        if rng.random_bool(0.05) {
            ts -= rng.random_range(1..=2_000);
        }
        let (caller, callee, duration_s) = if rng.random::<f64>() < spam_share {
            let k = cumulative.partition_point(|&c| c <= rng.random_range(0..total));
            let redials = &mut recent[k];
            let callee = if !redials.is_empty() && rng.random_bool(0.10) {
                redials[rng.random_range(0..redials.len())]
            } else if rng.random_bool(0.7) {
                subscribers[rng.random_range(0..SUBSCRIBERS)]
            } else {
                rng.random_range(20_000_000_000..100_000_000_000)
            };
            if redials.len() == 5 {
                redials.remove(0);
            }
            redials.push(callee);
            let duration = if rng.random_bool(0.85) { rng.random_range(1..30) } else { rng.random_range(30..=120) };
            (spammers[k], callee, duration)
        } else {
            let j = rng.random_range(0..SUBSCRIBERS);
            let callee = if rng.random_bool(0.9) {
                contacts[j][rng.random_range(0..contacts[j].len())]
            } else {
                subscribers[rng.random_range(0..SUBSCRIBERS)]
            };
            // Exponential talk time, mean 150 s, by inversion.
            let u: f64 = rng.random();
            let duration = (-(1.0 - u).ln() * 150.0) as u32 + 1;
            (subscribers[j], callee, duration)
        };
        writeln!(w, "{ts},{caller},{callee},{duration_s}")?;
    }
    w.flush()?;
    Ok(spam_share)
}

/// `n` distinct numbers from `range`, in the order drawn.
fn distinct_numbers(rng: &mut ChaCha8Rng, n: usize, range: std::ops::Range<u64>) -> Vec<u64> {
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let x = rng.random_range(range.clone());
        if seen.insert(x) {
            out.push(x);
        }
    }
    out
}

/// What a reference run read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReferenceStats {
    /// Data rows read.
    pub rows: u64,
    /// Rows dropped as late.
    pub late: u64,
    /// Rows written (without the header).
    pub output_rows: u64,
}

/// Splits a CSV line into exactly `N` fields, or says which line is wrong.
fn fields<'a, const N: usize>(line: &'a str, number: usize, path: &Path) -> io::Result<[&'a str; N]> {
    let mut parts = line.split(',');
    let mut out = [""; N];
    for slot in &mut out {
        *slot = parts.next().unwrap_or_default();
    }
    if parts.next().is_some() || out.iter().any(|f| f.is_empty()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} line {number}: expected {N} comma-separated fields, got `{line}`", path.display()),
        ));
    }
    Ok(out)
}

fn int(field: &str, number: usize, path: &Path) -> io::Result<i64> {
    field.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} line {number}: `{field}` is not an integer", path.display()),
        )
    })
}

/// The data lines of a CSV (the header skipped), numbered from 2.
fn data_lines(input: &Path) -> io::Result<impl Iterator<Item = (usize, io::Result<String>)>> {
    let reader = BufReader::with_capacity(1 << 20, File::open(input)?);
    Ok(reader.lines().enumerate().skip(1).map(|(i, line)| (i + 1, line)))
}

/// The exact window-count answer for `input`, written to `out`.
pub fn reference_window_count(input: &Path, out: &Path) -> io::Result<ReferenceStats> {
    let mut counts: BTreeMap<(String, i64), u64> = BTreeMap::new();
    let mut rows = 0;
    for (number, line) in data_lines(input)? {
        let line = line?;
        let [ts, _phone, cell, _kind] = fields::<4>(&line, number, input)?;
        let ts = int(ts, number, input)?;
        *counts.entry((cell.to_owned(), ts - ts.rem_euclid(window_count::WINDOW_MS as i64))).or_default() += 1;
        rows += 1;
    }
    let mut w = BufWriter::new(File::create(out)?);
    writeln!(w, "cell,window_start_ms,count")?;
    for ((cell, start), n) in &counts {
        writeln!(w, "{cell},{start},{n}")?;
    }
    w.flush()?;
    Ok(ReferenceStats { rows, late: 0, output_rows: counts.len() as u64 })
}

/// The exact fanout answer for `input`, written to `out`.
pub fn reference_fanout(input: &Path, out: &Path) -> io::Result<ReferenceStats> {
    #[derive(Default)]
    struct Window {
        callees: HashSet<String>,
        calls: u64,
        short: u64,
    }
    let width = fanout::WINDOW_MS as i64;
    let mut windows: HashMap<(String, i64), Window> = HashMap::new();
    let (mut rows, mut late, mut max_ts) = (0, 0, i64::MIN);
    for (number, line) in data_lines(input)? {
        let line = line?;
        let [ts, caller, callee, duration] = fields::<4>(&line, number, input)?;
        let ts = int(ts, number, input)?;
        let duration = int(duration, number, input)?;
        rows += 1;
        let start = ts - ts.rem_euclid(width);
        if max_ts != i64::MIN && start + width <= max_ts - fanout::BOUND_MS as i64 {
            late += 1;
            continue;
        }
        max_ts = max_ts.max(ts);
        let window = windows.entry((caller.to_owned(), start)).or_default();
        window.callees.insert(callee.to_owned());
        window.calls += 1;
        window.short += u64::from(duration < i64::from(fanout::SHORT_S));
    }
    let mut kept: Vec<(&(String, i64), &Window)> =
        windows.iter().filter(|(_, w)| w.callees.len() >= fanout::MIN_DISTINCT as usize).collect();
    kept.sort_by(|a, b| a.0.cmp(b.0));
    let mut w = BufWriter::new(File::create(out)?);
    writeln!(w, "caller,window_start_ms,distinct_callees,calls,short_calls")?;
    for ((caller, start), win) in &kept {
        writeln!(w, "{caller},{start},{},{},{}", win.callees.len(), win.calls, win.short)?;
    }
    w.flush()?;
    Ok(ReferenceStats { rows, late, output_rows: kept.len() as u64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference applies the watermark rule: a row is late when its window
    /// ended at or before the largest timestamp seen minus 5 s.
    #[test]
    fn fanout_reference_drops_rows_behind_the_watermark_and_sorts_callers_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        let mut text = format!("{}\n", fanout::HEADER);
        // Caller 9 (sorts after 10 as text) and 10, each 20 distinct callees in
        // window [0, 600000).
        for i in 0..20 {
            text += &format!("{},9,{},5\n", 1_000 + i, 100 + i);
            text += &format!("{},10,{},45\n", 1_000 + i, 100 + i);
        }
        // Watermark to 605000 + 1 - 5000: window 0 is now final ...
        text += "605001,10,7,5\n";
        // ... so this row of window 0 is late.
        text += "599999,9,999,5\n";
        std::fs::write(&input, text).unwrap();
        let out = dir.path().join("out.csv");
        let stats = reference_fanout(&input, &out).unwrap();
        assert_eq!(stats, ReferenceStats { rows: 42, late: 1, output_rows: 2 });
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "caller,window_start_ms,distinct_callees,calls,short_calls\n10,0,20,20,0\n9,0,20,20,20\n"
        );
    }

    #[test]
    fn generators_are_seeded_and_follow_their_format() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
        generate_fanout(&a, 5_000, 1).unwrap();
        generate_fanout(&b, 5_000, 1).unwrap();
        generate_fanout(&c, 5_000, 2).unwrap();
        let text = std::fs::read_to_string(&a).unwrap();
        assert_eq!(text, std::fs::read_to_string(&b).unwrap(), "same seed, same file");
        assert_ne!(text, std::fs::read_to_string(&c).unwrap(), "another seed, another file");
        assert_eq!(text.lines().count(), 5_001);
        // Spammers make 100-600 calls an hour each over 6 hours, whatever the
        // row count: ~0.26 of 400,000 rows (~0.05 of the full 2,000,000).
        let rows = 400_000;
        let share = generate_fanout(&a, rows, 1).unwrap();
        assert!((0.15..0.4).contains(&share), "{share}");
        let text = std::fs::read_to_string(&a).unwrap();
        let spam = text.lines().skip(1).filter(|l| l.split(',').nth(1).unwrap() >= "90000000000").count();
        let want = share * rows as f64;
        assert!((spam as f64 - want).abs() < 4.0 * want.sqrt(), "{spam} spam rows, aimed at {want}");
        // Out of order by at most 2 s.
        let mut max = 0i64;
        for line in text.lines().skip(1) {
            let ts: i64 = line.split(',').next().unwrap().parse().unwrap();
            assert!(ts >= max - 2_000, "{line} is more than 2 s behind {max}");
            max = max.max(ts);
        }
        assert!(max - T0 > FANOUT_SPAN_MS - 1_000 && max < T0 + FANOUT_SPAN_MS, "rows span 6 hours");
        generate_window_count(&a, 3_000, 7).unwrap();
        let text = std::fs::read_to_string(&a).unwrap();
        assert!(text.starts_with("ts_ms,phone,cell,kind\n"));
        let stats = reference_window_count(&a, &b).unwrap();
        assert_eq!((stats.rows, stats.late), (3_000, 0));
        let counted: u64 = std::fs::read_to_string(&b)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.rsplit(',').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(counted, 3_000);
    }
}

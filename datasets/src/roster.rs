//! Reference data that changes during the generated days (issue 19; see
//! "Reference data that changes" in `docs/input-contract.md`), behind two
//! switches of [`crate::GenOptions`] that leave the default output as it was:
//!
//! - **Intraday registrations** ([`intraday_activations`]): every fresh local
//!   fraud SIM (not an aged one) is activated minutes before its first call,
//!   and its subscribers row is dated from then (`valid_from_ms`): before it,
//!   the number is unknown to the subscribers table.
//! - **Shifts** ([`shifts_batch`]): every community and station post is held
//!   by three officers in 3 x 8 h shifts (night 00-08, day 08-16, evening
//!   16-24 UTC), each shift an `on_duty` row at its start and an `off_duty`
//!   row at its end, so hand-overs happen at 00:00, 08:00 and 16:00. The day
//!   officer keeps the post's id of an undated table (`C<community>`); the
//!   night and evening officers add `-N` and `-E`. District commands and
//!   analysts stay on duty for all time.

use std::collections::HashMap;

use arrow_array::builder::{Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use citywatch_engine::contract::{DutyStatus, Role, Table};

use crate::city::OfficerRow;
use crate::fraud::FraudPlan;
use crate::rng::{key, unit};
use crate::{Error, Result};

const MINUTE_MS: i64 = 60_000;
/// A shift: 8 hours.
pub const SHIFT_MS: i64 = 8 * 3_600_000;
/// Shifts of a day, from midnight UTC: (id suffix, name).
pub const SHIFTS: [(&str, &str); 3] = [("-N", "night"), ("", "day"), ("-E", "evening")];
/// Tag of the activation draws.
const TAG_ACTIVATION: u64 = 0x19_AC71;

/// The new activation time of each fresh local fraud number, by index into
/// [`FraudPlan::numbers`]: 2 to 30 minutes before its first call. Aged SIMs
/// (activated years ago) and numbers that never call keep theirs.
pub fn intraday_activations(fraud: &FraudPlan, seed: u64, start_ms: i64) -> HashMap<usize, i64> {
    let mut first: HashMap<usize, i64> = HashMap::new();
    for c in &fraud.calls {
        let e = first.entry(c.number as usize).or_insert(c.ts_ms);
        *e = (*e).min(c.ts_ms);
    }
    let fresh = |i: usize| {
        let n = &fraud.numbers[i];
        n.registration.is_some_and(|r| !n.aged && r.activated_ms > start_ms - 61 * 86_400_000)
    };
    first
        .into_iter()
        .filter(|&(i, _)| fresh(i))
        .map(|(i, ts)| {
            let minutes = 2.0 + 28.0 * unit(key(&[seed, TAG_ACTIVATION, i as u64]));
            (i, ts - (minutes * MINUTE_MS as f64) as i64)
        })
        .collect()
}

/// The officers table with 3 x 8 h shifts on the community and station
/// posts of `officers` (the undated table's rows), for `days` days from
/// `start_ms` (a UTC midnight), with the `valid_from_ms` and `status` columns.
pub fn shifts_batch(officers: &[OfficerRow], start_ms: i64, days: u32) -> Result<RecordBatch> {
    let mut cols: Vec<StringBuilder> = (0..5).map(|_| StringBuilder::new()).collect();
    let mut from = Int64Builder::new();
    let mut row = |id: &str, name: &str, o: &OfficerRow, at: Option<i64>, status: Option<DutyStatus>| {
        cols[0].append_value(id);
        cols[1].append_value(name);
        cols[2].append_value(o.role.as_str());
        cols[3].append_value(&o.scope);
        from.append_option(at);
        cols[4].append_option(status.map(DutyStatus::as_str));
    };
    for o in officers {
        if !matches!(o.role, Role::Community | Role::Station) {
            row(&o.officer_id, &o.name, o, None, None);
            continue;
        }
        for (k, (suffix, shift)) in SHIFTS.iter().enumerate() {
            let (id, name) = (format!("{}{suffix}", o.officer_id), format!("{} ({shift})", o.name));
            for d in 0..i64::from(days) {
                let on = start_ms + d * 86_400_000 + k as i64 * SHIFT_MS;
                row(&id, &name, o, Some(on), Some(DutyStatus::OnDuty));
                row(&id, &name, o, Some(on + SHIFT_MS), Some(DutyStatus::OffDuty));
            }
        }
    }
    let [id, name, role, scope, status] = std::array::from_fn(|i| std::sync::Arc::new(cols[i].finish()) as ArrayRef);
    let columns = vec![id, name, role, scope, std::sync::Arc::new(from.finish()) as ArrayRef, status];
    RecordBatch::try_new(Table::Officers.schema_with_optional(), columns).map_err(Error::from)
}

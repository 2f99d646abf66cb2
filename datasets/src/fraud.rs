//! Telecom fraud campaigns, their calls, losses and reports, with ground truth.
//!
//! Each [`Campaign`] has its own targeting (age weights), number choice
//! (international, spoofed service numbers, virtual-operator numbers, and
//! ordinary local numbers that look clean and are even in the subscribers
//! table), calling hours, calls per number per day, number lifetime, hook rate
//! and call lengths. A campaign reaches *targets*: a target gets one call, or
//! for grooming campaigns (investment/romance) a sequence of follow-up calls
//! over days. A hooked target loses money some minutes into the last call of
//! its sequence (`loss_ts_ms`); a share of those report it later with a
//! `fraud_report` alarm naming the number, some never do, and a few people who
//! were not hooked report a suspicious call too.
//!
//! **Hook rate** is per target: hooked targets / targets. Every call from a
//! fraud number is a fraud call and appears in `labels/fraud_calls`.
//!
//! The plan is computed up front for the whole period (it is small: ~1,500
//! calls per day per million subscribers by default) so reports and
//! dispatches can be scheduled before the calls are streamed.

use std::collections::HashMap;

use crate::people::{Kind, Party, Population, push_digits};
use crate::rng::{Rng, key, mix};

/// The kinds of campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum CampaignKind {
    /// Impersonating police or prosecutors ("your account is linked to a crime"). Favours the elderly.
    Impersonation,
    /// Fake customer service offering a refund for an online purchase. Favours the young.
    Refund,
    /// Investment or romance grooming: repeated calls over days, long talks.
    Investment,
    /// Fake loans asking for an upfront "fee". Favours young adults.
    Loan,
    /// A SIM farm (family `sim-farms`): one script from a pool of 10-30 local
    /// numbers, each capped at 20-40 calls a day, rotated every few days.
    SimFarm,
}

/// The shapes of numbers a campaign calls from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum NumberKind {
    /// A foreign number (`+855...`, `0063...`).
    International,
    /// A domestic service shape arriving with an international prefix (`+95588`, `+864008...`).
    SpoofedService,
    /// A virtual-operator mobile number (170/171/162/165/167).
    Virtual,
    /// An ordinary local mobile number registered in the subscribers table (looks clean).
    Local,
}

/// One campaign's parameters.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Campaign {
    /// Which kind.
    pub kind: CampaignKind,
    /// Share of all fraud calls.
    pub share: f64,
    /// Targeting weight by age group: under 18, 18-39, 40-59, 60+.
    pub age_weight: [f64; 4],
    /// Mix of number kinds: international, spoofed service, virtual, local.
    pub number_mix: [f64; 4],
    /// Local calling hours `[from, to)`.
    pub hours: (u32, u32),
    /// Calls one number makes per day (sets fan-out).
    pub calls_per_number: f64,
    /// Days a number is used before it is dropped.
    pub number_life_days: u32,
    /// Share of targets who lose money.
    pub hook_rate: f64,
    /// Share of targets drawn into a conversation over several calls (grooming campaigns).
    pub engage_rate: f64,
    /// Mean follow-up calls to an engaged target.
    pub followups: f64,
    /// Median length of a call that does not end in a loss, seconds.
    pub short_median_s: f64,
    /// Median length of the call in which money is lost, seconds.
    pub loss_median_s: f64,
}

impl Campaign {
    /// Expected calls per target.
    pub fn calls_per_target(&self) -> f64 {
        1.0 + self.engage_rate * self.followups
    }

    /// The default campaigns.
    pub fn defaults() -> Vec<Campaign> {
        vec![
            Campaign {
                kind: CampaignKind::Impersonation,
                share: 0.30,
                age_weight: [0.1, 0.5, 1.0, 3.0],
                number_mix: [0.45, 0.40, 0.10, 0.05],
                hours: (9, 18),
                calls_per_number: 60.0,
                number_life_days: 2,
                hook_rate: 0.03,
                engage_rate: 0.0,
                followups: 0.0,
                short_median_s: 40.0,
                loss_median_s: 1_800.0,
            },
            Campaign {
                kind: CampaignKind::Refund,
                share: 0.35,
                age_weight: [0.3, 2.0, 1.0, 0.4],
                number_mix: [0.10, 0.30, 0.40, 0.20],
                hours: (10, 21),
                calls_per_number: 40.0,
                number_life_days: 3,
                hook_rate: 0.05,
                engage_rate: 0.0,
                followups: 0.0,
                short_median_s: 35.0,
                loss_median_s: 1_200.0,
            },
            Campaign {
                kind: CampaignKind::Investment,
                share: 0.15,
                age_weight: [0.0, 1.2, 1.5, 0.8],
                number_mix: [0.10, 0.0, 0.20, 0.70],
                hours: (12, 23),
                calls_per_number: 8.0,
                number_life_days: 30,
                hook_rate: 0.12,
                engage_rate: 0.4,
                followups: 3.0,
                short_median_s: 120.0,
                loss_median_s: 2_400.0,
            },
            Campaign {
                kind: CampaignKind::Loan,
                share: 0.20,
                age_weight: [0.1, 2.0, 1.0, 0.3],
                number_mix: [0.10, 0.0, 0.50, 0.40],
                hours: (9, 20),
                calls_per_number: 25.0,
                number_life_days: 5,
                hook_rate: 0.05,
                engage_rate: 0.0,
                followups: 0.0,
                short_median_s: 50.0,
                loss_median_s: 600.0,
            },
        ]
    }
}

/// The adversarial scenario families (`citywatch gen --families ...`), all off
/// by default: with every switch off the output is today's, byte for byte.
/// Each family draws its parameters from ranges (per campaign, number or
/// dataset), never one fixed value; `datasets/README.md` says which real
/// pattern each one stands for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Families {
    /// SIM farms: campaigns rotating 10-30 local numbers, each capped at 20-40 calls a day.
    pub sim_farms: bool,
    /// Aged or bought SIMs: 40-70% of each campaign's numbers are ordinary
    /// local numbers activated 1-8 years earlier (SIM-farm numbers too).
    pub aged_sims: bool,
    /// Call-backs: 15-35% of targets call the number back (1 min-6 h later),
    /// and accomplices or others call each number 0.5-3 times a day.
    pub call_backs: bool,
    /// Low and late reporting: 25-35% of losers report, 2-72 h later; fewer suspicious-call reports.
    pub late_reports: bool,
    /// Legitimate virtual-operator and international numbers that call 2-15
    /// subscribers repeatedly (families abroad, small traders).
    pub legit_virtual: bool,
    /// Legitimate high-fan-out subscribers with old registrations (clinics,
    /// schools, couriers, delivery riders) whose callees call them back.
    pub legit_fanout: bool,
}

impl Families {
    /// The switch names, as `--families` takes them.
    pub const NAMES: [&'static str; 6] =
        ["sim-farms", "aged-sims", "call-backs", "late-reports", "legit-virtual", "legit-fanout"];

    /// Parses a comma-separated list of switch names; `hard` is all of them, `none` none.
    pub fn parse(list: &str) -> Result<Families, String> {
        let mut f = Families::default();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "none" | "standard" => {}
                "hard" | "all" => {
                    f = Families {
                        sim_farms: true,
                        aged_sims: true,
                        call_backs: true,
                        late_reports: true,
                        legit_virtual: true,
                        legit_fanout: true,
                    }
                }
                "sim-farms" => f.sim_farms = true,
                "aged-sims" => f.aged_sims = true,
                "call-backs" => f.call_backs = true,
                "late-reports" => f.late_reports = true,
                "legit-virtual" => f.legit_virtual = true,
                "legit-fanout" => f.legit_fanout = true,
                other => {
                    return Err(format!(
                        "unknown family `{other}`; use a comma-separated list of {}, or `hard` (all), `none`",
                        Families::NAMES.join(", ")
                    ));
                }
            }
        }
        Ok(f)
    }

    /// Whether any switch is on.
    pub fn any(&self) -> bool {
        *self != Families::default()
    }
}

/// Fraud settings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FraudRates {
    /// Answered fraud calls per day per million subscribers. Reality is perhaps
    /// a tenth of the default; it is inflated so evaluation has enough positives.
    pub calls_per_million_per_day: f64,
    /// Share of victims with a loss who report it (`fraud_report` alarm).
    pub report_rate: f64,
    /// Share of targets not hooked who report the call as suspicious.
    pub suspicious_report_rate: f64,
    /// Median delay from loss to report, hours.
    pub report_delay_median_h: f64,
    /// The campaigns.
    pub campaigns: Vec<Campaign>,
    /// Adversarial scenario families (all off by default).
    pub families: Families,
}

impl Default for FraudRates {
    fn default() -> Self {
        FraudRates {
            calls_per_million_per_day: 1_500.0,
            report_rate: 0.6,
            suspicious_report_rate: 0.01,
            report_delay_median_h: 4.0,
            campaigns: Campaign::defaults(),
            families: Families::default(),
        }
    }
}

impl FraudRates {
    /// The hook rate over all targets that the configuration implies.
    pub fn expected_hook_rate(&self) -> f64 {
        let targets: f64 = self.campaigns.iter().map(|c| c.share / c.calls_per_target()).sum();
        let hooked: f64 = self.campaigns.iter().map(|c| c.share / c.calls_per_target() * c.hook_rate).sum();
        hooked / targets
    }
}

/// Registration data of a local fraud number (it is in the subscribers table).
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    /// Registered age.
    pub age: u8,
    /// Registered home.
    pub home: (f64, f64),
    /// Activation time.
    pub activated_ms: i64,
    /// Where the subscribers table lists it (index of the subscriber it precedes).
    pub table_slot: u64,
}

/// A number used by fraudsters.
#[derive(Debug, Clone)]
pub struct FraudNumber {
    /// As dialled.
    pub number: String,
    /// Its campaign.
    pub campaign: CampaignKind,
    /// Its shape.
    pub kind: NumberKind,
    /// For local numbers: registration, and the serving cell calls come from.
    pub registration: Option<Registration>,
    /// An aged or bought SIM (family `aged-sims`): local, activated years ago.
    pub aged: bool,
}

impl FraudNumber {
    /// The scenario family the number belongs to (`labels/families.json`).
    pub fn family(&self) -> &'static str {
        if self.campaign == CampaignKind::SimFarm {
            "sim_farm"
        } else if self.aged {
            "aged_sim"
        } else {
            "standard"
        }
    }
}

/// A call that is not from a fraud number but belongs to a scenario family:
/// a call-back to a fraud number, or a legitimate fan-out caller's call.
#[derive(Debug, Clone, Copy)]
pub struct ExtraCall {
    /// Answer time.
    pub ts_ms: i64,
    /// Caller.
    pub caller: Party,
    /// Callee.
    pub callee: Party,
    /// Talk time, seconds.
    pub duration_s: u32,
}

/// One fraud call.
#[derive(Debug, Clone, Copy)]
pub struct FraudCall {
    /// Answer time.
    pub ts_ms: i64,
    /// Talk time, seconds.
    pub duration_s: u32,
    /// Index into [`FraudPlan::numbers`].
    pub number: u32,
    /// The subscriber called.
    pub victim: u64,
    /// When money left the victim (during this call), if it did.
    pub loss_ts_ms: Option<i64>,
}

/// A report of a fraud number by a subscriber.
#[derive(Debug, Clone, Copy)]
pub struct FraudReport {
    /// When the alarm is received.
    pub ts_ms: i64,
    /// The reporting subscriber.
    pub reporter: u64,
    /// The number reported.
    pub number: u32,
    /// Whether the reporter lost money (else: a suspicious-call report).
    pub after_loss: bool,
}

/// All fraud over the generated period.
#[derive(Debug, Clone, Default)]
pub struct FraudPlan {
    /// Numbers used.
    pub numbers: Vec<FraudNumber>,
    /// Calls, sorted by answer time.
    pub calls: Vec<FraudCall>,
    /// Reports received inside the period, sorted by time.
    pub reports: Vec<FraudReport>,
    /// Targets reached.
    pub targets: u64,
    /// Targets hooked (each has exactly one loss).
    pub hooked: u64,
    /// Reports that would arrive after the period ends (not written).
    pub reports_after_end: u64,
    /// Calls to fraud numbers (family `call-backs`), sorted by time.
    pub call_backs: Vec<ExtraCall>,
}

const TAG_FRAUD: u64 = 0x4652_4155;
const TAG_FARM: u64 = 0x4641_524d;
const TAG_AGED: u64 = 0x4147_4544;
const TAG_CALLBACK: u64 = 0x4342_4143;
const TAG_REPORTING: u64 = 0x5245_5054;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

fn age_group(age: Option<u8>) -> usize {
    match age {
        Some(a) if a < 18 => 0,
        Some(a) if a < 40 => 1,
        Some(a) if a < 60 => 2,
        Some(_) => 3,
        None => 2,
    }
}

/// How reports are drawn: today's (60%, median 4 h) or the `late-reports`
/// family's (25-35%, 2-72 h, log-uniform), drawn once per dataset.
#[derive(Debug, Clone, Copy)]
struct Reporting {
    rate: f64,
    suspicious_rate: f64,
    late: bool,
    median_h: f64,
}

impl Reporting {
    fn new(seed: u64, rates: &FraudRates) -> Reporting {
        if rates.families.late_reports {
            let mut rng = Rng::new(&[seed, TAG_REPORTING]);
            Reporting {
                rate: rng.range(0.25, 0.35),
                suspicious_rate: rates.suspicious_report_rate * rng.range(0.2, 0.5),
                late: true,
                median_h: 0.0,
            }
        } else {
            Reporting {
                rate: rates.report_rate,
                suspicious_rate: rates.suspicious_report_rate,
                late: false,
                median_h: rates.report_delay_median_h,
            }
        }
    }

    /// The delay from a loss to its report, ms.
    fn delay_ms(&self, rng: &mut Rng) -> i64 {
        let h = if self.late { (rng.range(2f64.ln(), 72f64.ln())).exp() } else { rng.lognormal(self.median_h, 1.3) };
        (h * HOUR_MS as f64) as i64
    }
}

/// A victim for a campaign with these age weights (rejection sampling), never
/// a courier or sales line.
fn pick_victim(pop: &Population, rng: &mut Rng, age_weight: &[f64; 4]) -> u64 {
    let max_w = age_weight.iter().copied().fold(0.0, f64::max);
    loop {
        let v = rng.below(pop.n);
        let p = pop.profile(v);
        if matches!(p.kind, Kind::Courier | Kind::Sales) {
            continue;
        }
        if rng.f64() * max_w < age_weight[age_group(p.age)] {
            break v;
        }
    }
}

/// Plans all fraud for `days` days from `start_ms`.
pub fn plan(pop: &Population, rates: &FraudRates, start_ms: i64, days: u32) -> FraudPlan {
    let mut out = FraudPlan::default();
    let end_ms = start_ms + i64::from(days) * DAY_MS;
    let mut number_index: HashMap<(usize, u32, u64), u32> = HashMap::new();
    let mut local_count = 0u64;
    let seed = pop.seed;
    let reporting = Reporting::new(seed, rates);
    let fam = rates.families;
    let mut cb = CallBacks::new(seed, fam.call_backs);
    for day in 0..days {
        let day_start = start_ms + i64::from(day) * DAY_MS;
        for (ci, c) in rates.campaigns.iter().enumerate() {
            let mut rng = Rng::new(&[seed, TAG_FRAUD, u64::from(day), ci as u64]);
            let budget = rates.calls_per_million_per_day * pop.n as f64 / 1e6 * c.share;
            if budget <= 0.0 {
                continue;
            }
            let n_targets = rng.poisson(budget / c.calls_per_target());
            let n_numbers = (budget / c.calls_per_number).ceil().max(1.0) as u64;
            let epoch = day / c.number_life_days.max(1);
            for _ in 0..n_targets {
                // The number: a slot in this campaign's pool for this epoch.
                let slot = rng.below(n_numbers);
                let nkey = (ci, epoch, slot);
                let number = match number_index.get(&nkey) {
                    Some(&n) => n,
                    None => {
                        let n = out.numbers.len() as u32;
                        let fnum = make_number(pop, c, nkey, &mut local_count, start_ms, day_start, fam.aged_sims);
                        out.numbers.push(fnum);
                        number_index.insert(nkey, n);
                        n
                    }
                };
                let victim = pick_victim(pop, &mut rng, &c.age_weight);
                out.targets += 1;
                let span = i64::from(c.hours.1.saturating_sub(c.hours.0).max(1));
                let local_from = i64::from(c.hours.0);
                // Local hour h is UTC hour h - 8.
                let first = day_start + (local_from - 8) * HOUR_MS + rng.below((span * HOUR_MS) as u64) as i64;
                let first = first.max(day_start);
                let engaged = rng.chance(c.engage_rate);
                let hooked = if c.engage_rate > 0.0 {
                    engaged && rng.chance(c.hook_rate / c.engage_rate)
                } else {
                    rng.chance(c.hook_rate)
                };
                let mut times = vec![first];
                if engaged {
                    let k = rng.poisson(c.followups);
                    let mut t = first;
                    for _ in 0..k {
                        t += (rng.range(0.4, 2.5) * DAY_MS as f64) as i64;
                        if t >= end_ms {
                            break;
                        }
                        times.push(t);
                    }
                }
                if hooked {
                    out.hooked += 1;
                }
                let last = times.len() - 1;
                for (i, &t) in times.iter().enumerate() {
                    let is_loss = hooked && i == last;
                    let dur = if is_loss {
                        rng.lognormal(c.loss_median_s, 0.5).clamp(300.0, 4.0 * 3600.0)
                    } else if i > 0 {
                        rng.lognormal(600.0, 0.7).clamp(30.0, 3.0 * 3600.0)
                    } else {
                        rng.lognormal(c.short_median_s, 0.9).clamp(3.0, 1_800.0)
                    } as u32;
                    let loss_ts_ms = is_loss.then(|| t + (f64::from(dur) * 1000.0 * rng.range(0.5, 0.95)) as i64);
                    out.calls.push(FraudCall { ts_ms: t, duration_s: dur, number, victim, loss_ts_ms });
                    if let Some(loss) = loss_ts_ms
                        && rng.chance(reporting.rate)
                    {
                        let ts = loss + reporting.delay_ms(&mut rng) + 60_000;
                        if ts < end_ms {
                            out.reports.push(FraudReport { ts_ms: ts, reporter: victim, number, after_loss: true });
                        } else {
                            out.reports_after_end += 1;
                        }
                    }
                }
                if !hooked && rng.chance(reporting.suspicious_rate) {
                    let ts = times[0] + (rng.lognormal(1.0, 1.0) * HOUR_MS as f64) as i64 + 300_000;
                    if ts < end_ms {
                        out.reports.push(FraudReport { ts_ms: ts, reporter: victim, number, after_loss: false });
                    }
                }
                cb.target(victim, number, first, end_ms, &mut out.call_backs);
            }
        }
    }
    if fam.sim_farms {
        plan_sim_farms(pop, &reporting, fam.aged_sims, start_ms, days, &mut local_count, &mut cb, &mut out);
    }
    cb.others(pop, &out, end_ms);
    out.call_backs.append(&mut cb.others_calls);
    out.calls.sort_by_key(|c| (c.ts_ms, c.number, c.victim));
    out.reports.sort_by_key(|r| (r.ts_ms, r.number, r.reporter));
    out.call_backs.sort_by_key(|c| (c.ts_ms, c.caller, c.callee));
    out
}

/// The `call-backs` family: targets who call the number back, and others
/// (accomplices, victims' relatives, curious people) calling fraud numbers.
struct CallBacks {
    on: bool,
    rng: Rng,
    /// Share of targets who call back, drawn once per dataset.
    target_rate: f64,
    /// Mean calls per day to each number from others, drawn once per dataset (per-number factor below).
    others_per_day: f64,
    others_calls: Vec<ExtraCall>,
}

impl CallBacks {
    fn new(seed: u64, on: bool) -> CallBacks {
        let mut rng = Rng::new(&[seed, TAG_CALLBACK]);
        let target_rate = rng.range(0.15, 0.35);
        let others_per_day = rng.range(0.5, 3.0);
        CallBacks { on, rng, target_rate, others_per_day, others_calls: Vec::new() }
    }

    /// A target reached at `first` may call the number back, once or twice, 1 min to 6 h later.
    fn target(&mut self, victim: u64, number: u32, first: i64, end_ms: i64, out: &mut Vec<ExtraCall>) {
        if !self.on || !self.rng.chance(self.target_rate) {
            return;
        }
        let k = 1 + u64::from(self.rng.chance(0.3));
        let mut t = first;
        for _ in 0..k {
            t += (self.rng.range(60f64.ln(), (6.0 * 3600f64).ln()).exp() * 1000.0) as i64;
            if t >= end_ms {
                break;
            }
            let duration_s = self.rng.lognormal(40.0, 1.0).clamp(3.0, 1_800.0) as u32;
            out.push(ExtraCall { ts_ms: t, caller: Party::Sub(victim), callee: Party::Fraud(number), duration_s });
        }
    }

    /// Others call each number while it is in use (from its first call to a day after its last).
    fn others(&mut self, pop: &Population, plan: &FraudPlan, end_ms: i64) {
        if !self.on {
            return;
        }
        let mut span: Vec<(i64, i64)> = vec![(i64::MAX, i64::MIN); plan.numbers.len()];
        for c in &plan.calls {
            let s = &mut span[c.number as usize];
            *s = (s.0.min(c.ts_ms), s.1.max(c.ts_ms));
        }
        for (n, &(from, to)) in span.iter().enumerate() {
            if from > to {
                continue;
            }
            let to = (to + DAY_MS).min(end_ms);
            let rate = self.others_per_day * self.rng.range(0.3, 1.7);
            let k = self.rng.poisson(rate * (to - from) as f64 / DAY_MS as f64);
            for _ in 0..k {
                let ts = from + self.rng.below((to - from).max(1) as u64) as i64;
                let caller = if self.rng.chance(0.5) {
                    Party::Sub(self.rng.below(pop.n))
                } else {
                    Party::Ext(self.rng.below(1 << 40))
                };
                let duration_s = self.rng.lognormal(90.0, 1.0).clamp(3.0, 3_600.0) as u32;
                self.others_calls.push(ExtraCall { ts_ms: ts, caller, callee: Party::Fraud(n as u32), duration_s });
            }
        }
    }
}

/// The `sim-farms` family: campaigns of 10-30 local numbers, each capped at
/// 20-40 calls a day, rotated every 3-10 days (staggered), one short script
/// with quick hang-ups. About one campaign per 25,000 subscribers.
#[allow(clippy::too_many_arguments)]
fn plan_sim_farms(
    pop: &Population,
    reporting: &Reporting,
    aged: bool,
    start_ms: i64,
    days: u32,
    local_count: &mut u64,
    cb: &mut CallBacks,
    out: &mut FraudPlan,
) {
    let seed = pop.seed;
    let end_ms = start_ms + i64::from(days) * DAY_MS;
    let mut rng = Rng::new(&[seed, TAG_FARM]);
    let n_campaigns = ((pop.n as f64 / 25_000.0 * rng.range(0.7, 1.3)).round() as u64).max(1);
    let targeting = [[0.1, 0.5, 1.0, 3.0], [0.3, 2.0, 1.0, 0.4], [0.1, 2.0, 1.0, 0.3]];
    for farm in 0..n_campaigns {
        let mut fr = Rng::new(&[seed, TAG_FARM, farm]);
        let pool = 10 + fr.below(21);
        let cap = 20 + fr.below(21);
        let life = 3 + fr.below(8) as u32;
        let hook = fr.range(0.02, 0.05);
        let short_median = fr.range(6.0, 20.0);
        let loss_median = fr.range(900.0, 2_400.0);
        let from_h = 8 + fr.below(3) as i64;
        let to_h = 17 + fr.below(5) as i64;
        let age_weight = targeting[fr.below(3) as usize];
        let campaign = Campaign {
            kind: CampaignKind::SimFarm,
            share: 0.0,
            age_weight,
            number_mix: [0.0, 0.0, 0.0, 1.0],
            hours: (from_h as u32, to_h as u32),
            calls_per_number: cap as f64,
            number_life_days: life,
            hook_rate: hook,
            engage_rate: 0.0,
            followups: 0.0,
            short_median_s: short_median,
            loss_median_s: loss_median,
        };
        let mut index: HashMap<(u64, u32), u32> = HashMap::new();
        for day in 0..days {
            let day_start = start_ms + i64::from(day) * DAY_MS;
            let mut rng = Rng::new(&[seed, TAG_FARM, farm, u64::from(day)]);
            for slot in 0..pool {
                // Staggered rotation: each slot changes its SIM on its own day.
                let epoch = (day + (slot as u32 % life)) / life;
                let number = *index.entry((slot, epoch)).or_insert_with(|| {
                    let h = key(&[seed, TAG_FARM, farm, slot, u64::from(epoch)]);
                    let n = out.numbers.len() as u32;
                    let mut nr = Rng::new(&[h]);
                    let mut number = String::new();
                    let registration =
                        local_registration(pop, &mut nr, h, local_count, start_ms, day_start, aged, &mut number);
                    out.numbers.push(FraudNumber {
                        number,
                        campaign: CampaignKind::SimFarm,
                        kind: NumberKind::Local,
                        registration: Some(registration),
                        aged,
                    });
                    n
                });
                let calls = ((cap as f64) * rng.range(0.6, 1.0)).round() as u64;
                for _ in 0..calls.min(cap) {
                    let t = day_start + (from_h - 8) * HOUR_MS + rng.below(((to_h - from_h) * HOUR_MS) as u64) as i64;
                    let t = t.max(day_start);
                    let victim = pick_victim(pop, &mut rng, &campaign.age_weight);
                    out.targets += 1;
                    let hooked = rng.chance(hook);
                    let dur = if hooked {
                        rng.lognormal(loss_median, 0.5).clamp(300.0, 4.0 * 3600.0)
                    } else {
                        rng.lognormal(short_median, 0.9).clamp(2.0, 1_800.0)
                    } as u32;
                    let loss_ts_ms = hooked.then(|| t + (f64::from(dur) * 1000.0 * rng.range(0.5, 0.95)) as i64);
                    out.calls.push(FraudCall { ts_ms: t, duration_s: dur, number, victim, loss_ts_ms });
                    if let Some(loss) = loss_ts_ms {
                        out.hooked += 1;
                        if rng.chance(reporting.rate) {
                            let ts = loss + reporting.delay_ms(&mut rng) + 60_000;
                            if ts < end_ms {
                                out.reports.push(FraudReport { ts_ms: ts, reporter: victim, number, after_loss: true });
                            } else {
                                out.reports_after_end += 1;
                            }
                        }
                    } else if rng.chance(reporting.suspicious_rate) {
                        let ts = t + (rng.lognormal(1.0, 1.0) * HOUR_MS as f64) as i64 + 300_000;
                        if ts < end_ms {
                            out.reports.push(FraudReport { ts_ms: ts, reporter: victim, number, after_loss: false });
                        }
                    }
                    cb.target(victim, number, t, end_ms, &mut out.call_backs);
                }
            }
        }
    }
}

/// A local fraud number (written into `number`) and its registration: an
/// ordinary 11-digit number numbered after the subscribers (same prefixes and
/// shape, never a collision), in the subscribers table. Fresh (2-60 days)
/// 75% of the time else years old; with `aged`, 1-8 years old always.
#[allow(clippy::too_many_arguments)]
fn local_registration(
    pop: &Population,
    rng: &mut Rng,
    h: u64,
    local_count: &mut u64,
    start_ms: i64,
    day_start: i64,
    aged: bool,
    number: &mut String,
) -> Registration {
    let idx = pop.n + *local_count;
    *local_count += 1;
    pop.number(crate::people::Party::Sub(idx), &[], number);
    let comm = rng.below(pop.city.communities.len() as u64) as usize;
    let home = pop.place_in_community(comm, mix(h ^ 77));
    // Most are fresh SIMs; some are old numbers bought or rented from real people.
    let activated_ms = if aged {
        let mut ar = Rng::new(&[h, TAG_AGED]);
        start_ms - (ar.range(1.0, 8.0) * 365.25 * DAY_MS as f64) as i64
    } else if rng.chance(0.75) {
        day_start - (rng.range(2.0, 60.0) * DAY_MS as f64) as i64
    } else {
        start_ms - (rng.range(1.0, 6.0) * 365.25 * DAY_MS as f64) as i64
    };
    Registration { age: 22 + rng.below(35) as u8, home, activated_ms, table_slot: rng.below(pop.n.max(1)) }
}

const INTL: [(&str, u32); 6] = [("855", 8), ("63", 10), ("95", 9), ("60", 9), ("66", 9), ("84", 9)];
const SPOOF_SHAPES: [&str; 8] = ["95588", "95533", "95599", "95566", "10086", "10010", "12315", "95555"];
const VIRTUAL: [&str; 5] = ["170", "171", "162", "165", "167"];

fn make_number(
    pop: &Population,
    c: &Campaign,
    nkey: (usize, u32, u64),
    local_count: &mut u64,
    start_ms: i64,
    day_start: i64,
    aged_sims: bool,
) -> FraudNumber {
    let h = key(&[pop.seed, TAG_FRAUD, 0x004e_554d, nkey.0 as u64, u64::from(nkey.1), nkey.2]);
    let mut rng = Rng::new(&[h]);
    let mut kind = match rng.weighted(&crate::rng::cumulative(c.number_mix)) {
        0 => NumberKind::International,
        1 => NumberKind::SpoofedService,
        2 => NumberKind::Virtual,
        _ => NumberKind::Local,
    };
    // Aged SIMs: 40-70% of a campaign's numbers (drawn per campaign) become
    // ordinary local numbers activated years ago.
    let aged = aged_sims && {
        let share = Rng::new(&[pop.seed, TAG_AGED, nkey.0 as u64]).range(0.4, 0.7);
        kind == NumberKind::Local || Rng::new(&[h, TAG_AGED, 1]).chance(share)
    };
    if aged {
        kind = NumberKind::Local;
    }
    let mut number = String::new();
    let mut registration = None;
    match kind {
        NumberKind::International => {
            let (cc, len) = INTL[rng.below(INTL.len() as u64) as usize];
            number.push_str(if rng.chance(0.8) { "+" } else { "00" });
            number.push_str(cc);
            let lo = 10u64.pow(len - 1);
            push_digits(&mut number, lo + rng.below(9 * lo), len as usize);
        }
        NumberKind::SpoofedService => {
            let prefix = ["+", "+86", "00", "0086"][rng.below(4) as usize];
            number.push_str(prefix);
            if rng.chance(0.25) {
                number.push_str("400");
                push_digits(&mut number, rng.below(10_000_000), 7);
            } else {
                number.push_str(SPOOF_SHAPES[rng.below(SPOOF_SHAPES.len() as u64) as usize]);
            }
        }
        NumberKind::Virtual => {
            number.push_str(VIRTUAL[rng.below(VIRTUAL.len() as u64) as usize]);
            push_digits(&mut number, 50_000_000 + rng.below(50_000_000), 8);
        }
        NumberKind::Local => {
            registration =
                Some(local_registration(pop, &mut rng, h, local_count, start_ms, day_start, aged, &mut number));
        }
    }
    FraudNumber { number, campaign: c.kind, kind, registration, aged }
}

//! The learned call-level model: a logistic regression over causal features
//! of the caller at a decision instant (`start + open_s` of a call still
//! open), its weights a small versioned JSON file (`weights/fraud_call.json`),
//! trained by `citywatch train fraud_call` ([`fit`]).
//!
//! **Features** ([`NAMES`], [`vector`]): counts are taken as `ln(1 + n)`,
//! shares as they are. Behaviour: the caller's calls and distinct callees in
//! the last hour and 24 h, calls in the burst window, the shares of its ended
//! calls of the last 24 h that were short (< 60 s) and very short (< 15 s:
//! hang-ups), the share of its calls to callees it had no contact with, how
//! many of its remembered callees it called since it last answered a call
//! and their share (reciprocity: a number nobody calls back), hours since it
//! last answered a call and whether it answered one in the contact memory,
//! hours since it was first seen, hour of day (UTC, as a circle), callees it
//! shares with reported numbers, and two interactions (hourly fan-out x
//! hang-up share; daily fan-out x outbound-only share). Identity ([`IDENTITY`]):
//! reports naming the number, number shape (international, virtual operator,
//! spoofed service, service), registration known, young (< 90 days), and
//! registration age. The ablation trains without the identity block.
//!
//! **Inference** folds the standardisation into the weights when the file is
//! loaded, so a decision is one fixed-size dot product and a sigmoid: no
//! allocation, tens of nanoseconds. Explanations (the strongest reasons, in
//! words) are computed only for alerts.
//!
//! **Training** ([`fit`]): L2-regularised logistic regression by Newton's
//! method (iteratively reweighted least squares) on standardised features,
//! a Cholesky solve of a 28 x 28 system per step: deterministic to the bit for
//! the same rows in the same order (the trainer sorts them by call id), so
//! the same inputs give the same file. The alert threshold is the lowest
//! probability at which the training decisions' precision is still at least
//! the stated target (the threshold that keeps the most recall there).

// Dot products, standardisation and the Cholesky solve index several
// parallel arrays by one feature index: a plain `for i in 0..N` reads best.
#![allow(clippy::needless_range_loop)]

use std::sync::{Arc, OnceLock};

use citywatch_engine::pseudonym::NumberClass;

use crate::features::Features;

/// Number of features.
pub const N: usize = 27;

/// Feature names, in vector order (the weights file must list the same).
pub const NAMES: [&str; N] = [
    "ln_calls_1h",
    "ln_fanout_1h",
    "ln_calls_24h",
    "ln_fanout_24h",
    "ln_burst",
    "short_share",
    "very_short_share",
    "has_ended_calls",
    "new_callee_share",
    "ln_out_only_callees",
    "out_only_share",
    "ln_quiet_h",
    "answered_recently",
    "ln_seen_h",
    "hour_sin",
    "hour_cos",
    "ln_linked_callees",
    "fanout_1h_x_very_short",
    "fanout_24h_x_out_only",
    "reported",
    "international",
    "virtual_operator",
    "spoofed_service",
    "service",
    "registration_known",
    "young_number",
    "registration_age",
];

/// The identity block (prefix class, registration, reports): features index `IDENTITY..N`.
pub const IDENTITY: usize = 19;

/// A number activated less than this many days ago is young.
pub const YOUNG_DAYS: u32 = 90;

fn ln1p(x: u32) -> f64 {
    f64::from(x).ln_1p()
}

fn share(a: u32, b: u32) -> f64 {
    if b == 0 { 0.0 } else { f64::from(a) / f64::from(b) }
}

/// The feature vector of a caller's [`Features`] at decision time `at_ms`.
pub fn vector(f: &Features, at_ms: u64) -> [f64; N] {
    let hour = (at_ms % 86_400_000) as f64 / 3_600_000.0;
    let angle = hour / 24.0 * std::f64::consts::TAU;
    let very_short = share(f.very_short_24h, f.completed_24h);
    let out_only = share(f.out_only_callees, f.contacts);
    let age = f.age_days;
    let b = |x: bool| if x { 1.0 } else { 0.0 };
    [
        ln1p(f.calls_1h),
        ln1p(f.fanout_1h),
        ln1p(f.calls_24h),
        ln1p(f.fanout_24h),
        ln1p(f.burst),
        share(f.short_24h, f.completed_24h),
        very_short,
        b(f.completed_24h > 0),
        share(f.new_callee_24h, f.calls_24h),
        ln1p(f.out_only_callees),
        out_only,
        ln1p(f.quiet_h),
        b(f.answered),
        ln1p(f.seen_h),
        angle.sin(),
        angle.cos(),
        ln1p(f.linked_callees),
        ln1p(f.fanout_1h) * very_short,
        ln1p(f.fanout_24h) * out_only,
        b(f.reports > 0),
        b(f.class.has(NumberClass::INTERNATIONAL)),
        b(f.class.has(NumberClass::VIRTUAL_OPERATOR)),
        b(f.class.has(NumberClass::SPOOFED_SERVICE)),
        b(f.class.has(NumberClass::SERVICE) && !f.class.has(NumberClass::SPOOFED_SERVICE)),
        b(age.is_some()),
        b(age.is_some_and(|d| d < YOUNG_DAYS)),
        age.map_or(0.0, |d| f64::from(d).ln_1p()),
    ]
}

/// The weights file, as written by [`fit`] and read by the model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsFile {
    /// `citywatch-fraud-call-logit/1`.
    pub format: String,
    /// The model version the file gives (becomes the alerts' `model_version` part).
    pub version: String,
    /// Feature names, in order ([`NAMES`]).
    pub features: Vec<String>,
    /// Features the model uses (an ablation trains with some off: their coefficient is 0).
    pub used: Vec<bool>,
    /// Training means of the features.
    pub mean: Vec<f64>,
    /// Training standard deviations (1 for a constant feature).
    pub scale: Vec<f64>,
    /// Coefficients on the standardised features.
    pub coef: Vec<f64>,
    /// Intercept.
    pub intercept: f64,
    /// Probability at or above which a call raises `fraud_in_progress` (chosen on the training data).
    pub threshold: f64,
    /// Probability at or above which the number is raised (`fraud_number`) and the alert is `severe`.
    pub number_threshold: f64,
    /// The training precision target the threshold was chosen for.
    pub precision_target: f64,
    /// How it was trained: inputs, rows, positives, regularisation, held-out families.
    pub training: serde_json::Value,
}

/// Format tag of the weights file.
pub const FORMAT: &str = "citywatch-fraud-call-logit/1";

/// A loaded model: the file, and the weights folded for inference.
#[derive(Debug, Clone, PartialEq)]
pub struct Logit {
    /// The file as read.
    pub file: WeightsFile,
    /// Weights on the raw features (standardisation folded in).
    w: [f64; N],
    /// Intercept on the raw features.
    b: f64,
}

/// The weights committed with the model (`weights/fraud_call.json`).
pub const DEFAULT_WEIGHTS: &str = include_str!("../weights/fraud_call.json");

impl Logit {
    /// Parses and checks a weights file's text; `what` names it in errors.
    pub fn parse(text: &str, what: &str) -> Result<Logit, String> {
        let file: WeightsFile =
            serde_json::from_str(text).map_err(|e| format!("{what}: not a fraud_call weights file: {e}"))?;
        Logit::from_file(file, what)
    }

    /// Checks a weights file and folds it for inference.
    pub fn from_file(file: WeightsFile, what: &str) -> Result<Logit, String> {
        if file.format != FORMAT {
            return Err(format!("{what}: format `{}`, expected `{FORMAT}`", file.format));
        }
        if file.features.iter().map(String::as_str).ne(NAMES.iter().copied()) {
            return Err(format!(
                "{what}: features {:?} differ from this build's {:?}; retrain with `citywatch train fraud_call`",
                file.features, NAMES
            ));
        }
        for (name, v) in [("used", file.used.len()), ("mean", file.mean.len()), ("scale", file.scale.len())] {
            if v != N {
                return Err(format!("{what}: `{name}` has {v} entries, expected {N}"));
            }
        }
        if file.coef.len() != N {
            return Err(format!("{what}: `coef` has {} entries, expected {N}", file.coef.len()));
        }
        let finite = file
            .mean
            .iter()
            .chain(&file.scale)
            .chain(&file.coef)
            .chain([&file.intercept, &file.threshold, &file.number_threshold])
            .all(|x| x.is_finite());
        if !finite || file.scale.iter().any(|&s| s <= 0.0) {
            return Err(format!("{what}: a weight is not finite, or a scale is not positive"));
        }
        let mut w = [0.0; N];
        let mut b = file.intercept;
        for i in 0..N {
            if file.used[i] {
                w[i] = file.coef[i] / file.scale[i];
                b -= file.coef[i] * file.mean[i] / file.scale[i];
            }
        }
        Ok(Logit { file, w, b })
    }

    /// The committed model (parsed once).
    pub fn committed() -> Arc<Logit> {
        static MODEL: OnceLock<Arc<Logit>> = OnceLock::new();
        MODEL
            .get_or_init(|| {
                Arc::new(Logit::parse(DEFAULT_WEIGHTS, "weights/fraud_call.json").expect("committed weights"))
            })
            .clone()
    }

    /// Probability that the call is a fraud call, rounded to 1e-6 (so that the
    /// dataflow and the reference, which compute it from the same integer
    /// features, compare exactly). No allocation.
    #[inline]
    pub fn prob(&self, f: &Features, at_ms: u64) -> f64 {
        let x = vector(f, at_ms);
        let mut z = self.b;
        for i in 0..N {
            z += self.w[i] * x[i];
        }
        let p = 1.0 / (1.0 + (-z).exp());
        (p * 1e6).round() / 1e6
    }

    /// Each feature's contribution to the log-odds against the training mean.
    pub fn contributions(&self, f: &Features, at_ms: u64) -> [f64; N] {
        let x = vector(f, at_ms);
        let mut c = [0.0; N];
        for i in 0..N {
            if self.file.used[i] {
                c[i] = self.file.coef[i] * (x[i] - self.file.mean[i]) / self.file.scale[i];
            }
        }
        c
    }

    /// The two or three strongest reasons for a high probability, in words
    /// an officer reads (never feature codes), strongest first.
    pub fn reasons(&self, f: &Features, at_ms: u64) -> Vec<String> {
        let c = self.contributions(f, at_ms);
        // Group features that say the same thing; a group's weight is its sum.
        let groups: [ReasonGroup; 12] = [
            (&[0, 1, 4, 17], |f| {
                (f.fanout_1h >= 2).then(|| {
                    let hung = if f.very_short_24h > 0 {
                        format!(", {} of its calls today hung up within 15 s", f.very_short_24h)
                    } else {
                        String::new()
                    };
                    format!("called {} different people in the last hour{hung}", f.fanout_1h)
                })
            }),
            (&[2, 3], |f| (f.fanout_24h >= 2).then(|| format!("called {} different people today", f.fanout_24h))),
            (&[5, 6, 7], |f| {
                (f.completed_24h > 0).then(|| {
                    format!(
                        "{} of its {} finished calls today lasted under a minute ({} under 15 s)",
                        f.short_24h, f.completed_24h, f.very_short_24h
                    )
                })
            }),
            (&[8], |f| {
                (f.new_callee_24h > 0).then(|| {
                    format!(
                        "{} of its {} calls today went to numbers it had never called",
                        f.new_callee_24h, f.calls_24h
                    )
                })
            }),
            (&[9, 10, 11, 12, 18], |f| {
                Some(if f.answered {
                    format!("{} people called since it last answered a call ({} h ago)", f.out_only_callees, f.quiet_h)
                } else {
                    format!("nobody has called it back: {} people called, no call answered", f.out_only_callees)
                })
            }),
            (&[13], |f| Some(format!("active for {} h", f.seen_h))),
            (&[14, 15], |_| Some("calling at the hours fraud calls cluster".to_owned())),
            (&[16], |f| {
                (f.linked_callees > 0)
                    .then(|| format!("{} of its callees were also called by reported numbers", f.linked_callees))
            }),
            (&[19], |f| (f.reports > 0).then(|| format!("{} victim report(s) name this number", f.reports))),
            (&[20, 21, 22, 23], |f| {
                if f.class.has(NumberClass::SPOOFED_SERVICE) {
                    Some("a bank or telecom hotline number arriving from abroad (forged)".to_owned())
                } else if f.class.has(NumberClass::INTERNATIONAL) {
                    Some("an international number".to_owned())
                } else if f.class.has(NumberClass::VIRTUAL_OPERATOR) {
                    Some("a virtual-operator number".to_owned())
                } else {
                    None
                }
            }),
            (&[24, 25, 26], |f| f.age_days.map(|d| format!("SIM activated {d} days ago"))),
            (&[], |_| None),
        ];
        let mut scored: Vec<(f64, String)> = groups
            .iter()
            .filter_map(|(idx, say)| {
                let w: f64 = idx.iter().map(|&i| c[i]).sum();
                (w > 0.05).then(|| say(f).map(|s| (w, s))).flatten()
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().take(3).map(|(_, s)| s).collect()
    }
}

/// Features that say one thing, and how to say it for a caller (`None`: nothing to say).
type ReasonGroup = (&'static [usize], fn(&Features) -> Option<String>);

/// Training settings of [`fit`].
#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions {
    /// L2 penalty on the standardised coefficients, per training row (λ / n).
    pub l2: f64,
    /// Newton steps at most.
    pub max_steps: usize,
    /// Precision target for the in-progress threshold.
    pub precision_target: f64,
    /// Precision target for the number threshold.
    pub number_precision_target: f64,
    /// Features used (false: left out, coefficient 0).
    pub used: [bool; N],
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions { l2: 1e-4, max_steps: 30, precision_target: 0.9, number_precision_target: 0.98, used: [true; N] }
    }
}

/// Fits the model on feature rows and labels (true: a fraud call). Rows
/// must come in a fixed order (the result depends on it only through
/// floating-point summation order). `version` and `training` go into the file.
pub fn fit(
    rows: &[[f64; N]],
    labels: &[bool],
    opts: &FitOptions,
    version: &str,
    training: serde_json::Value,
) -> Result<WeightsFile, String> {
    let n = rows.len();
    if n == 0 || n != labels.len() {
        return Err(format!("{n} rows and {} labels: need the same, at least one", labels.len()));
    }
    let pos = labels.iter().filter(|&&l| l).count();
    if pos == 0 || pos == n {
        return Err(format!("{pos} positive rows of {n}: need both classes to train"));
    }
    let nf = n as f64;
    let mut mean = [0.0; N];
    let mut scale = [1.0; N];
    for j in 0..N {
        mean[j] = rows.iter().map(|r| r[j]).sum::<f64>() / nf;
        let var = rows.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / nf;
        scale[j] = if var > 1e-12 { var.sqrt() } else { 1.0 };
    }
    // Columns in the model: the intercept (index 0) and the used features.
    let cols: Vec<usize> = (0..N).filter(|&j| opts.used[j]).collect();
    let d = cols.len() + 1;
    let z =
        |r: &[f64; N], k: usize| if k == 0 { 1.0 } else { (r[cols[k - 1]] - mean[cols[k - 1]]) / scale[cols[k - 1]] };
    let mut beta = vec![0.0; d];
    beta[0] = (pos as f64 / (nf - pos as f64)).ln();
    let mut grad = vec![0.0; d];
    let mut hess = vec![0.0; d * d];
    let mut x = vec![0.0; d];
    // Penalised negative log-likelihood (stable form), for the step search.
    let loss = |beta: &[f64], x: &mut Vec<f64>| -> f64 {
        let mut l = 0.0;
        for (r, &y) in rows.iter().zip(labels) {
            for (k, xk) in x.iter_mut().enumerate() {
                *xk = z(r, k);
            }
            let eta: f64 = x.iter().zip(beta).map(|(a, b)| a * b).sum();
            // log(1 + e^eta) - y * eta
            l += eta.max(0.0) + (-eta.abs()).exp().ln_1p() - if y { eta } else { 0.0 };
        }
        l + 0.5 * opts.l2 * nf * beta[1..].iter().map(|b| b * b).sum::<f64>()
    };
    let mut current = loss(&beta, &mut x);
    for _ in 0..opts.max_steps {
        grad.iter_mut().for_each(|g| *g = 0.0);
        hess.iter_mut().for_each(|h| *h = 0.0);
        for (r, &y) in rows.iter().zip(labels) {
            for (k, xk) in x.iter_mut().enumerate() {
                *xk = z(r, k);
            }
            let eta: f64 = x.iter().zip(&beta).map(|(a, b)| a * b).sum();
            let p = 1.0 / (1.0 + (-eta).exp());
            let wgt = (p * (1.0 - p)).max(1e-12);
            let e = p - if y { 1.0 } else { 0.0 };
            for a in 0..d {
                grad[a] += e * x[a];
                let wa = wgt * x[a];
                for b in 0..=a {
                    hess[a * d + b] += wa * x[b];
                }
            }
        }
        for a in 0..d {
            for b in 0..a {
                hess[b * d + a] = hess[a * d + b];
            }
        }
        // Penalty on the coefficients, not the intercept.
        for a in 1..d {
            grad[a] += opts.l2 * nf * beta[a];
            hess[a * d + a] += opts.l2 * nf;
        }
        let step = cholesky_solve(&hess, &grad, d).ok_or("the Hessian is not positive definite; raise --l2")?;
        // Damped Newton: halve the step until the loss goes down.
        let mut t = 1.0;
        let mut next = beta.clone();
        loop {
            for a in 0..d {
                next[a] = beta[a] - t * step[a];
            }
            let l = loss(&next, &mut x);
            if l <= current || t < 1e-6 {
                let gain = current - l;
                current = l.min(current);
                if l <= current {
                    beta.clone_from(&next);
                }
                t = if gain.abs() <= 1e-10 * current.abs().max(1.0) { 0.0 } else { t };
                break;
            }
            t *= 0.5;
        }
        if t == 0.0 {
            break;
        }
    }
    let mut coef = vec![0.0; N];
    for (k, &j) in cols.iter().enumerate() {
        coef[j] = beta[k + 1];
    }
    let mut file = WeightsFile {
        format: FORMAT.to_owned(),
        version: version.to_owned(),
        features: NAMES.iter().map(|s| (*s).to_owned()).collect(),
        used: opts.used.to_vec(),
        mean: mean.to_vec(),
        scale: scale.to_vec(),
        coef,
        intercept: beta[0],
        threshold: 0.5,
        number_threshold: 0.5,
        precision_target: opts.precision_target,
        training,
    };
    let model = Logit::from_file(file.clone(), "fitted weights")?;
    let mut scored: Vec<(f64, bool)> = rows
        .iter()
        .zip(labels)
        .map(|(r, &y)| {
            let mut z = model.b;
            for i in 0..N {
                z += model.w[i] * r[i];
            }
            (((1.0 / (1.0 + (-z).exp())) * 1e6).round() / 1e6, y)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    file.threshold = threshold_for(&scored, opts.precision_target);
    file.number_threshold = threshold_for(&scored, opts.number_precision_target).max(file.threshold);
    if let serde_json::Value::Object(m) = &mut file.training {
        let at = |t: f64| {
            let (mut tp, mut all) = (0usize, 0usize);
            for &(p, y) in &scored {
                if p >= t {
                    all += 1;
                    tp += usize::from(y);
                }
            }
            serde_json::json!({ "threshold": t, "alerts": all, "true": tp, "recall": tp as f64 / pos as f64 })
        };
        m.insert("at_threshold".into(), at(file.threshold));
        m.insert("at_number_threshold".into(), at(file.number_threshold));
        m.insert("rows".into(), n.into());
        m.insert("positives".into(), pos.into());
        m.insert("l2".into(), opts.l2.into());
    }
    Ok(file)
}

/// The lowest score at which the precision of the rows scoring at least it
/// is still at least `target` (scores sorted high to low); the top score if
/// no cut reaches the target.
fn threshold_for(scored: &[(f64, bool)], target: f64) -> f64 {
    let (mut tp, mut best) = (0usize, scored.first().map_or(1.0, |s| s.0));
    let mut i = 0;
    while i < scored.len() {
        // Rows with the same score are all in or all out.
        let p = scored[i].0;
        while i < scored.len() && scored[i].0 == p {
            tp += usize::from(scored[i].1);
            i += 1;
        }
        if tp as f64 >= target * i as f64 {
            best = p;
        }
    }
    best
}

/// Solves `a x = b` for a symmetric positive definite `a` (row-major, `d x d`).
fn cholesky_solve(a: &[f64], b: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= l[i * d + k] * l[j * d + k];
            }
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[i * d + i] = s.sqrt();
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
    }
    let mut y = vec![0.0; d];
    for i in 0..d {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * d + k] * y[k];
        }
        y[i] = s / l[i * d + i];
    }
    let mut x = vec![0.0; d];
    for i in (0..d).rev() {
        let mut s = y[i];
        for k in i + 1..d {
            s -= l[k * d + i] * x[k];
        }
        x[i] = s / l[i * d + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// Rows whose label depends on two features: the fit recovers the signs,
    /// is the same twice, and its threshold keeps the training precision at
    /// the target.
    #[test]
    fn fit_recovers_signs_and_is_reproducible() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for _ in 0..4_000 {
            let mut r = [0.0; N];
            for v in r.iter_mut() {
                *v = rng.random::<f64>();
            }
            let z = 6.0 * r[1] - 4.0 * r[12] - 2.0;
            labels.push(rng.random::<f64>() < 1.0 / (1.0 + (-z).exp()));
            rows.push(r);
        }
        let opts = FitOptions::default();
        let a = fit(&rows, &labels, &opts, "t", serde_json::json!({})).unwrap();
        let b = fit(&rows, &labels, &opts, "t", serde_json::json!({})).unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
        assert!(a.coef[1] > 0.5 && a.coef[12] < -0.3, "{:?}", a.coef);
        let at = &a.training["at_threshold"];
        let precision = at["true"].as_f64().unwrap() / at["alerts"].as_f64().unwrap();
        assert!(precision >= 0.9, "{at}");
        // Leaving a feature out gives it no weight.
        let mut used = [true; N];
        used[1] = false;
        let c = fit(&rows, &labels, &FitOptions { used, ..opts }, "t", serde_json::json!({})).unwrap();
        assert_eq!(c.coef[1], 0.0);
    }

    #[test]
    fn committed_weights_load_and_a_bad_file_is_refused() {
        let m = Logit::committed();
        assert!(m.file.threshold > 0.0 && m.file.threshold < 1.0);
        let mut f = m.file.clone();
        f.coef.pop();
        assert!(Logit::from_file(f, "x").unwrap_err().contains("coef"));
        assert!(Logit::parse("{}", "x").is_err());
    }

    /// A decision is a fixed-size dot product: time a million (printed; the
    /// bound only catches a gross regression, e.g. an allocation per call in
    /// a debug build).
    #[test]
    fn a_decision_costs_well_under_a_microsecond() {
        let m = Logit::committed();
        let f = Features {
            calls_1h: 5,
            fanout_1h: 4,
            calls_24h: 30,
            fanout_24h: 28,
            completed_24h: 25,
            short_24h: 20,
            very_short_24h: 12,
            contacts: 28,
            out_only_callees: 28,
            ..Features::default()
        };
        let t = std::time::Instant::now();
        let mut acc = 0.0;
        for i in 0..1_000_000u64 {
            acc += m.prob(&f, i * 1_000);
        }
        let ns = t.elapsed().as_nanos() as f64 / 1e6;
        println!("{ns:.0} ns per decision (sum {acc:.1})");
        assert!(ns < 5_000.0, "{ns} ns per decision");
    }
}

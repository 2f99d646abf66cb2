//! `citywatch train fraud_call`: the training set from replays of labelled
//! datasets, and the fit ([`crate::learned::fit`]).
//!
//! Each dataset is replayed through the model with a tap that records every
//! in-progress decision (the call, its decision time, the caller's features
//! then; every call still open at each decision point, `early_checks_s` and
//! `open_s`, whatever its score). A decision is positive when its call is in
//! `labels/fraud_calls`. Decisions are sorted by call id and time within a
//! dataset and datasets taken in the order given, so the same inputs give
//! the same rows in the same order, and the same file; a call's decisions
//! are consecutive, and thresholds are chosen over calls
//! ([`crate::learned::fit`]).
//!
//! **Prevalence.** Training cities carry many times the fraud rate of the
//! city the model serves (so that there are enough fraud calls to learn
//! from), and a model fitted to them believes fraud is that common: its
//! probabilities, and precision at any threshold, are those of the training
//! mix. Given the deployment's share of fraud among decisions
//! (`--prevalence`: among the calls judged at least once), each dataset's
//! other calls' decisions are weighted so that its fraud share of calls
//! (counted before any family is left out), weighted, is that share: the trees then learn from the
//! ordinary callers as many times as the deployment meets them per fraud
//! call, their probabilities are the deployment's, and so are the
//! thresholds' precisions.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use citywatch_engine::contract::Table;
use citywatch_engine::parquet_io::require;
use citywatch_engine::pseudonym::{Pseudonymiser, token_hex};
use citywatch_engine::replay::{ReplayOptions, replay};
use citywatch_engine::{Error, Result};

use crate::eval::{read_families, read_fraud_labels};
use crate::learned::{FitOptions, N, WeightsFile, fit, vector};
use crate::{Config, FraudCall};

/// The training rows of one or more datasets.
#[derive(Debug, Default)]
pub struct TrainingSet {
    /// Feature vectors.
    pub rows: Vec<[f32; N]>,
    /// Whether each row's call is a labelled fraud call.
    pub labels: Vec<bool>,
    /// How many deployment decisions each row stands for (1 for fraud calls).
    pub weights: Vec<f32>,
    /// Each row's call (its index among the calls of the set): the rows of
    /// one call (its decision points) are consecutive.
    pub calls: Vec<u32>,
    /// Each dataset's name and the weight of its other decisions.
    pub negative_weights: Vec<(String, f64)>,
    /// Each dataset's fraud and other calls judged at least once (held-out families included).
    pub judged: Vec<(usize, usize)>,
    /// Decisions left out because their caller's family was held out.
    pub held_out: usize,
    /// One line per row (`dataset,call_id,at_ms,family,label`), when asked for (`--dump`).
    pub keys: Option<Vec<String>>,
}

/// Replays `dir` and appends its decisions to `set`, leaving out callers of
/// the families in `exclude` (`labels/families.json`), its other decisions
/// weighted to the fraud share `prevalence` when given (see the module doc).
pub fn add_dataset(
    set: &mut TrainingSet,
    dir: &Path,
    config: &Config,
    pseudonym_key: &str,
    workers: usize,
    exclude: &[String],
    prevalence: Option<f64>,
) -> Result<()> {
    let tap = Arc::new(Mutex::new(Vec::new()));
    let model = FraudCall { config: config.clone(), tap: Some(tap.clone()) };
    let opts = ReplayOptions {
        input: dir.to_owned(),
        out: None,
        workers,
        pseudonym_key: pseudonym_key.to_owned(),
        ..ReplayOptions::default()
    };
    replay(&opts, vec![Box::new(model)])?;
    let mut decisions = std::mem::take(&mut *tap.lock().map_err(|_| Error::Bug("training tap poisoned".into()))?);
    decisions.sort_by_key(|d| (d.call_id, d.at_ms));
    let files = require(dir, Table::FraudLabels, "training needs labels/fraud_calls")?;
    let mut ps = Pseudonymiser::new(pseudonym_key, "86");
    let mut rejects = Vec::new();
    let labels = read_fraud_labels(&files, &mut ps, &mut rejects)?;
    if !rejects.is_empty() {
        return Err(Error::config(
            format!("labels in {}", dir.display()),
            format!("{} bad label row(s), first: {:?}", rejects.len(), rejects[0]),
        ));
    }
    let fraud: HashSet<u64> = labels.iter().map(|l| l.call_id).collect();
    let families = read_families(dir, pseudonym_key)?;
    let name = dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
    let first = set.rows.len();
    // The city's own mix of calls judged at least once, held-out families
    // included: their rows leave, the weight stays the city's.
    let judged = |fraud_calls: bool| {
        let mut ids: Vec<u64> =
            decisions.iter().map(|d| d.call_id).filter(|id| fraud.contains(id) == fraud_calls).collect();
        ids.dedup();
        ids.len()
    };
    let (pos, neg) = (judged(true), judged(false));
    let mut next_call = set.calls.last().map_or(0, |&c| c + 1);
    let mut last_id = None;
    for d in decisions {
        let fam = families.get(&token_hex(d.caller)).map(String::as_str);
        let fam = fam.unwrap_or(if fraud.contains(&d.call_id) { "standard" } else { "everyday" });
        if exclude.iter().any(|e| e == fam) {
            set.held_out += 1;
            continue;
        }
        if let Some(keys) = &mut set.keys {
            keys.push(format!("{name},{},{},{fam},{}", d.call_id, d.at_ms, u8::from(fraud.contains(&d.call_id))));
        }
        if last_id.is_some_and(|id| id != d.call_id) {
            next_call += 1;
        }
        last_id = Some(d.call_id);
        set.calls.push(next_call);
        set.rows.push(vector(&d.features, d.at_ms));
        set.labels.push(fraud.contains(&d.call_id));
    }
    let labels = &set.labels[first..];
    let weight = match prevalence {
        None => 1.0,
        Some(p) if pos > 0 && neg > 0 => pos as f64 * (1.0 - p) / (p * neg as f64),
        Some(p) => {
            return Err(Error::config(
                format!("training input {}", dir.display()),
                format!(
                    "{pos} fraud and {neg} other calls judged: weighting to prevalence {p} needs both; \
                     give a labelled city with fraud calls"
                ),
            ));
        }
    };
    set.weights.extend(labels.iter().map(|&y| if y { 1.0 } else { weight as f32 }));
    set.negative_weights.push((name, (weight * 1e3).round() / 1e3));
    set.judged.push((pos, neg));
    Ok(())
}

/// Training options of [`train`].
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Labelled datasets.
    pub inputs: Vec<PathBuf>,
    /// Pseudonym key of the replays.
    pub pseudonym_key: String,
    /// Replay workers.
    pub workers: usize,
    /// Families whose callers are left out of training (leave-one-family-out).
    pub exclude: Vec<String>,
    /// Leave the identity features out (the ablation).
    pub no_identity: bool,
    /// Decision points: the last (`open_s`), seconds.
    pub open_s: u64,
    /// The earlier decision points, seconds (ascending, below `open_s`).
    pub early_checks_s: Vec<u64>,
    /// Fit settings.
    pub fit: FitOptions,
    /// Version string written into the file.
    pub version: String,
    /// Also write the training rows here as CSV (keys, label, features), for analysis.
    pub dump: Option<PathBuf>,
    /// The deployment's share of fraud calls among decisions: each dataset's
    /// other decisions are weighted to it (None: every row weighs 1).
    pub prevalence: Option<f64>,
}

/// Builds the training set of `opts.inputs` and fits the model.
pub fn train(opts: &TrainOptions) -> Result<WeightsFile> {
    let mut set = TrainingSet { keys: opts.dump.as_ref().map(|_| Vec::new()), ..TrainingSet::default() };
    let config = Config { open_s: opts.open_s, early_checks_s: Some(opts.early_checks_s.clone()), ..Config::default() };
    config.validate().map_err(|e| Error::config("citywatch train fraud_call", e))?;
    for dir in &opts.inputs {
        add_dataset(&mut set, dir, &config, &opts.pseudonym_key, opts.workers, &opts.exclude, opts.prevalence)?;
    }
    let mut fit_opts = opts.fit.clone();
    if opts.early_checks_s.is_empty() {
        // One decision point: how long the call has been open is the same for every row.
        fit_opts.used[crate::learned::OPEN_S] = false;
    }
    if opts.no_identity {
        for u in &mut fit_opts.used[crate::learned::IDENTITY] {
            *u = false;
        }
    }
    let inputs: Vec<String> = opts
        .inputs
        .iter()
        .map(|p| p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned()))
        .collect();
    let training = serde_json::json!({
        "inputs": inputs,
        "held_out_families": opts.exclude,
        "held_out_rows": set.held_out,
        "identity_features": !opts.no_identity,
        "open_s": config.open_s,
        "early_checks_s": opts.early_checks_s,
        "judged_calls": set.negative_weights.iter().zip(&set.judged)
            .map(|((d, _), (p, n))| serde_json::json!([d, p, n])).collect::<Vec<_>>(),
        "prevalence": opts.prevalence,
        "negative_weights": set.negative_weights.iter().map(|(d, w)| serde_json::json!([d, w])).collect::<Vec<_>>(),
    });
    if let (Some(path), Some(keys)) = (&opts.dump, &set.keys) {
        let mut csv = format!("dataset,call_id,at_ms,family,label,{}\n", crate::learned::NAMES.join(","));
        for (k, r) in keys.iter().zip(&set.rows) {
            csv.push_str(k);
            for v in r {
                csv.push_str(&format!(",{v}"));
            }
            csv.push('\n');
        }
        std::fs::write(path, csv).map_err(|e| Error::config(format!("--dump {}", path.display()), e.to_string()))?;
    }
    let mut file = fit(&set.rows, &set.labels, &set.weights, &set.calls, &fit_opts, &opts.version, training)
        .map_err(|e| Error::config("citywatch train fraud_call", e))?;
    file.early_checks_s = opts.early_checks_s.clone();
    Ok(file)
}

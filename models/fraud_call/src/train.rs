//! `citywatch train fraud_call`: the training set from replays of labelled
//! datasets, and the fit ([`crate::learned::fit`]).
//!
//! Each dataset is replayed through the model with a tap that records every
//! in-progress decision (the call, its decision time, the caller's features
//! then; every call still open at `open_s`, whatever its score). A decision
//! is positive when its call is in `labels/fraud_calls`. Decisions are sorted
//! by call id within a dataset and datasets taken in the order given, so the
//! same inputs give the same rows in the same order, and the same file.

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
    /// Decisions left out because their caller's family was held out.
    pub held_out: usize,
    /// One line per row (`dataset,call_id,at_ms,family,label`), when asked for (`--dump`).
    pub keys: Option<Vec<String>>,
}

/// Replays `dir` and appends its decisions to `set`, leaving out callers of
/// the families in `exclude` (`labels/families.json`).
pub fn add_dataset(
    set: &mut TrainingSet,
    dir: &Path,
    config: &Config,
    pseudonym_key: &str,
    workers: usize,
    exclude: &[String],
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
        set.rows.push(vector(&d.features, d.at_ms));
        set.labels.push(fraud.contains(&d.call_id));
    }
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
    /// Fit settings.
    pub fit: FitOptions,
    /// Version string written into the file.
    pub version: String,
    /// Also write the training rows here as CSV (keys, label, features), for analysis.
    pub dump: Option<PathBuf>,
}

/// Builds the training set of `opts.inputs` and fits the model.
pub fn train(opts: &TrainOptions) -> Result<WeightsFile> {
    let mut set = TrainingSet { keys: opts.dump.as_ref().map(|_| Vec::new()), ..TrainingSet::default() };
    let config = Config::default();
    for dir in &opts.inputs {
        add_dataset(&mut set, dir, &config, &opts.pseudonym_key, opts.workers, &opts.exclude)?;
    }
    let mut fit_opts = opts.fit.clone();
    if opts.no_identity {
        for u in fit_opts.used.iter_mut().skip(crate::learned::IDENTITY) {
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
    fit(&set.rows, &set.labels, &fit_opts, &opts.version, training)
        .map_err(|e| Error::config("citywatch train fraud_call", e))
}

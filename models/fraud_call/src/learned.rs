//! The learned call-level model: gradient-boosted decision trees over causal
//! features of the caller at a decision instant (`start + open_s` of a call
//! still open), its trees a small versioned JSON file
//! (`weights/fraud_call.json`), trained by `citywatch train fraud_call`
//! ([`fit`], with the `gbdt` crate).
//!
//! **Features** ([`NAMES`], [`vector`]): counts are taken as `ln(1 + n)`,
//! shares as they are. Behaviour: the caller's calls and distinct callees in
//! the last hour and 24 h, calls in the burst window, the shares of its ended
//! calls of the last 24 h that were short (< 60 s), very short (< 15 s:
//! hang-ups) and long (>= 5 min), the share of its calls to callees it had no
//! contact with, how many of its remembered callees it called since it last
//! answered a call and their share (reciprocity: a number nobody calls back),
//! hours since it last answered a call and whether it answered one in the
//! contact memory, hours since it was first seen, hour of day (UTC, as a
//! circle), callees it shares with reported numbers, whether the call being
//! judged goes to a new contact, and how near its callees
//! are (the share within [`crate::features::NEAR_M`] of the caller's cell, and
//! the count of far ones: a clinic, a school or a courier calls its own
//! district; a call list is city-wide), and how long the call being judged
//! has been open (`ln_open_s`: with several decision points,
//! `early_checks_s`). Identity ([`IDENTITY`]): reports
//! naming the number, number shape (international, virtual operator, spoofed
//! service, service), registration known, young (< 90 days), and registration
//! age. The ablation trains without the identity block.
//!
//! **Inference** walks the trees from arrays built when the file is loaded
//! (each tree complete to the forest's depth, breadth first: `Forest`): a
//! fixed-size feature array on the stack, a branch-free walk, no
//! allocation; the dataflow's check stops as soon as the trees left cannot
//! reach its threshold ([`Learned::prob_at_least`]). Explanations (the
//! strongest reasons, in words) are computed only for alerts, from each
//! feature's contribution along the decision paths (the change of the node
//! value at each split it decides).
//!
//! **Training** ([`fit`]): log-likelihood boosting (labels ±1, probability
//! `1 / (1 + e^(-2F))`) with the `gbdt` crate's tree learner (exact splits,
//! all rows and all features at every tree) and leaf values set here, the
//! Newton step with an L2 penalty (`boost`): no randomness,
//! single-threaded, so the same rows in the same order (the trainer sorts
//! them by call id) give the same file. Rows carry weights (the trainer
//! weights other decisions to the deployment's fraud rate), and the alert
//! threshold is the lowest probability at which the weighted training
//! decisions' precision is still at least the stated target.

use std::sync::{Arc, OnceLock};

use citywatch_engine::pseudonym::NumberClass;

use crate::features::Features;

/// Number of features (at most 32: the tree walk masks feature indices to 5 bits).
pub const N: usize = 30;
const _: () = assert!(N <= 32);

/// Feature names, in vector order (the weights file must list the same).
pub const NAMES: [&str; N] = [
    "ln_calls_1h",
    "ln_fanout_1h",
    "ln_calls_24h",
    "ln_fanout_24h",
    "ln_burst",
    "short_share",
    "very_short_share",
    "long_share",
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
    "near_share",
    "ln_far_calls",
    "current_new_callee",
    "reported",
    "international",
    "virtual_operator",
    "spoofed_service",
    "service",
    "registration_known",
    "young_number",
    "registration_age",
    "ln_open_s",
];

/// The identity block (prefix class, registration, reports): the features indexed by this range.
pub const IDENTITY: std::ops::Range<usize> = 21..29;

/// Index of `ln_open_s`, how long the call has been open at the decision.
pub const OPEN_S: usize = 29;

/// A number activated less than this many days ago is young.
pub const YOUNG_DAYS: u32 = 90;

fn ln1p(x: u32) -> f32 {
    /// `ln(1 + n)` of the small counts most features hold, computed once (the same values).
    static SMALL: std::sync::LazyLock<[f32; 256]> =
        std::sync::LazyLock::new(|| std::array::from_fn(|n| (n as f64).ln_1p() as f32));
    match SMALL.get(x as usize) {
        Some(&v) => v,
        None => f64::from(x).ln_1p() as f32,
    }
}

fn share(a: u32, b: u32) -> f32 {
    if b == 0 { 0.0 } else { (f64::from(a) / f64::from(b)) as f32 }
}

/// The feature vector of a caller's [`Features`] at decision time `at_ms`
/// (single precision: the trees split on `f32` values).
pub fn vector(f: &Features, at_ms: u64) -> [f32; N] {
    let hour = (at_ms % 86_400_000) as f64 / 3_600_000.0;
    let angle = hour / 24.0 * std::f64::consts::TAU;
    let age = f.age_days;
    let b = |x: bool| if x { 1.0 } else { 0.0 };
    [
        ln1p(f.calls_1h),
        ln1p(f.fanout_1h),
        ln1p(f.calls_24h),
        ln1p(f.fanout_24h),
        ln1p(f.burst),
        share(f.short_24h, f.completed_24h),
        share(f.very_short_24h, f.completed_24h),
        share(f.long_24h, f.completed_24h),
        b(f.completed_24h > 0),
        share(f.new_callee_24h, f.calls_24h),
        ln1p(f.out_only_callees),
        share(f.out_only_callees, f.contacts),
        ln1p(f.quiet_h),
        b(f.answered),
        ln1p(f.seen_h),
        angle.sin() as f32,
        angle.cos() as f32,
        ln1p(f.linked_callees),
        share(f.near_24h, f.located_24h),
        ln1p(f.located_24h - f.near_24h),
        b(f.current_new),
        b(f.reports > 0),
        b(f.class.has(NumberClass::INTERNATIONAL)),
        b(f.class.has(NumberClass::VIRTUAL_OPERATOR)),
        b(f.class.has(NumberClass::SPOOFED_SERVICE)),
        b(f.class.has(NumberClass::SERVICE) && !f.class.has(NumberClass::SPOOFED_SERVICE)),
        b(age.is_some()),
        b(age.is_some_and(|d| d < YOUNG_DAYS)),
        age.map_or(0.0, |d| f64::from(d).ln_1p() as f32),
        ln1p(f.open_s),
    ]
}

/// One tree of the weights file, as flat arrays indexed by node (node 0 is
/// the root). A node with `left == 0` is a leaf; otherwise a row goes left
/// when its feature `feature` is below `split`, else right.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeFile {
    /// Split feature of each node (index into [`NAMES`]; 0 for leaves).
    pub feature: Vec<u16>,
    /// Split threshold of each node.
    pub split: Vec<f32>,
    /// Left child of each node (0: a leaf).
    pub left: Vec<u32>,
    /// Right child of each node (0: a leaf).
    pub right: Vec<u32>,
    /// Value of each node (the leaf's output; inner nodes' for explanations), before shrinkage.
    pub value: Vec<f32>,
}

/// The weights file, as written by [`fit`] and read by the model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsFile {
    /// [`FORMAT`].
    pub format: String,
    /// The model version the file gives (becomes the alerts' `model_version` part).
    pub version: String,
    /// Feature names, in order ([`NAMES`]).
    pub features: Vec<String>,
    /// Features the model was trained with (an ablation trains with some off: no tree splits on them).
    pub used: Vec<bool>,
    /// Score before any tree (half the training log-odds).
    pub bias: f32,
    /// Each tree's output is multiplied by this.
    pub shrinkage: f32,
    /// The trees.
    pub trees: Vec<TreeFile>,
    /// Probability at or above which a call raises `fraud_in_progress` (chosen on the training data).
    pub threshold: f64,
    /// Probability at or above which the number is raised (`fraud_number`) and the alert is `severe`.
    pub number_threshold: f64,
    /// The training precision target the threshold was chosen for.
    pub precision_target: f64,
    /// The trade on the training decisions: `[precision target, threshold,
    /// recall of fraud decisions there]` for targets 0.50-0.90 by 0.05 and
    /// 0.91-0.99 by 0.01 (the `precision_target` setting picks a row).
    pub thresholds: Vec<[f64; 3]>,
    /// How it was trained: inputs, rows, positives, tree settings, held-out families.
    pub training: serde_json::Value,
    /// The decision points before `open_s` the training decisions were taken
    /// at, seconds (the `early_checks_s` setting's default; absent: none).
    #[serde(default)]
    pub early_checks_s: Vec<u64>,
}

/// Format tag of the weights file.
pub const FORMAT: &str = "citywatch-fraud-call-gbdt/1";

/// One node of the flattened forest.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    split: f32,
    feature: u16,
    /// Absolute index of the left child; 0: a leaf.
    left: u32,
    right: u32,
    /// Value times the shrinkage.
    value: f64,
}

/// One inner node of [`Forest`]: a row goes right when its feature
/// `feature` is at least `split` (features are never NaN, so this is the
/// file's "left when below").
#[derive(Debug, Clone, Copy, PartialEq)]
struct Split {
    split: f32,
    feature: u32,
}

/// The trees for scoring: each one padded to a complete tree of the forest's
/// depth and laid out breadth first (node `i`'s children are `2i + 1` and
/// `2i + 2`), so a walk is `depth` steps of index arithmetic with no branch
/// to mispredict, over 8-byte nodes that sit next to each other (a leaf
/// above the full depth becomes inner nodes that always go left, over copies
/// of its value). The trees are walked largest leaf first (`order`); the
/// sum is the same, tree by tree, as the walk of [`Learned::nodes`] in that order.
#[derive(Debug, Clone, PartialEq)]
struct Forest {
    depth: u32,
    /// `2^depth - 1` inner nodes per tree, tree after tree.
    splits: Vec<Split>,
    /// `2^depth` leaf values (times the shrinkage) per tree, tree after tree.
    leaves: Vec<f64>,
    /// `reach[t]`: the most that trees `t..` can add (the sum of their
    /// largest leaves); `reach[trees] = 0`.
    reach: Vec<f64>,
    /// The root (in [`Learned::nodes`]) of each tree, in the order walked.
    order: Vec<u32>,
}

/// A walk that may stop early checks whether it still can reach its floor every this many trees.
const REACH_EVERY: usize = 8;

impl Forest {
    fn of(nodes: &[Node], roots: &[u32]) -> Forest {
        fn depth(nodes: &[Node], i: u32) -> u32 {
            let n = &nodes[i as usize];
            if n.left == 0 { 0 } else { 1 + depth(nodes, n.left).max(depth(nodes, n.right)) }
        }
        let depth = roots.iter().map(|&r| depth(nodes, r)).max().unwrap_or(0);
        let inner = (1usize << depth) - 1;
        let mut forest = Forest {
            depth,
            splits: vec![Split { split: f32::INFINITY, feature: 0 }; inner * roots.len()],
            leaves: vec![0.0; (inner + 1) * roots.len()],
            reach: vec![0.0; roots.len() + 1],
            order: Vec::new(),
        };
        // Trees with the largest leaves first: what the trees left can add then
        // shrinks fastest, so a walk that cannot reach its floor stops soonest.
        let most = |root: u32| {
            let mut stack = vec![root];
            let mut most = f64::MIN;
            while let Some(i) = stack.pop() {
                let n = &nodes[i as usize];
                if n.left == 0 { most = most.max(n.value) } else { stack.extend([n.left, n.right]) }
            }
            most
        };
        let mut order: Vec<(f64, u32)> = roots.iter().map(|&r| (most(r), r)).collect();
        order.sort_by(|a, b| b.0.total_cmp(&a.0));
        // (node, position in the complete tree, level)
        let mut stack = Vec::new();
        for (t, &(_, root)) in order.iter().enumerate() {
            stack.push((root, 0usize, 0u32));
            while let Some((i, pos, level)) = stack.pop() {
                let n = &nodes[i as usize];
                if n.left != 0 {
                    forest.splits[t * inner + pos] = Split { split: n.split, feature: u32::from(n.feature) };
                    stack.push((n.left, 2 * pos + 1, level + 1));
                    stack.push((n.right, 2 * pos + 2, level + 1));
                } else {
                    // A leaf at `level`: the leaves of the complete tree under it hold its value.
                    let below = depth - level;
                    let first = ((pos + 1) << below) - 1 - inner;
                    let base = t * (inner + 1);
                    forest.leaves[base + first..base + first + (1 << below)].fill(n.value);
                }
            }
        }
        for t in (0..roots.len()).rev() {
            forest.reach[t] = forest.reach[t + 1] + order[t].0;
        }
        forest.order = order.iter().map(|&(_, root)| root).collect();
        forest
    }

    /// The sum of the trees' leaves for `x`, tree by tree in `order`,
    /// added to `z`; `None` as soon as it cannot reach `floor` any more.
    #[inline]
    fn sum(&self, x: &[f32; N], mut z: f64, floor: f64) -> Option<f64> {
        // Padded to a power of two, so that masking the feature index (always
        // below N: checked at load) stands in for a bounds check at every step.
        let mut padded = [0.0f32; 32];
        padded[..N].copy_from_slice(x);
        let inner = (1usize << self.depth) - 1;
        for (t, leaves) in self.leaves.chunks_exact(inner + 1).enumerate() {
            if t % REACH_EVERY == 0 && z + self.reach[t] < floor {
                return None;
            }
            let splits = &self.splits[t * inner..(t + 1) * inner];
            let mut i = 0usize;
            for _ in 0..self.depth {
                let s = splits[i];
                i = 2 * i + 1 + usize::from(padded[s.feature as usize & 31] >= s.split);
            }
            z += leaves[i - inner];
        }
        Some(z)
    }
}

/// A loaded model: the file, and the forest flattened for inference.
#[derive(Debug, Clone, PartialEq)]
pub struct Learned {
    /// The file as read.
    pub file: WeightsFile,
    /// All trees' nodes, one tree after another (for explanations).
    nodes: Vec<Node>,
    /// Index of each tree's root in `nodes`.
    roots: Vec<u32>,
    /// The same trees laid out for scoring.
    forest: Forest,
}

/// The weights committed with the model (`weights/fraud_call.json`).
pub const DEFAULT_WEIGHTS: &str = include_str!("../weights/fraud_call.json");

impl Learned {
    /// Parses and checks a weights file's text; `what` names it in errors.
    pub fn parse(text: &str, what: &str) -> Result<Learned, String> {
        let file: WeightsFile =
            serde_json::from_str(text).map_err(|e| format!("{what}: not a fraud_call weights file: {e}"))?;
        Learned::from_file(file, what)
    }

    /// Checks a weights file and flattens it for inference.
    pub fn from_file(file: WeightsFile, what: &str) -> Result<Learned, String> {
        if file.format != FORMAT {
            return Err(format!(
                "{what}: format `{}`, expected `{FORMAT}`; retrain with `citywatch train fraud_call`",
                file.format
            ));
        }
        if file.features.iter().map(String::as_str).ne(NAMES.iter().copied()) {
            return Err(format!(
                "{what}: features {:?} differ from this build's {:?}; retrain with `citywatch train fraud_call`",
                file.features, NAMES
            ));
        }
        if file.used.len() != N {
            return Err(format!("{what}: `used` has {} entries, expected {N}", file.used.len()));
        }
        let finite = [file.bias, file.shrinkage].iter().all(|x| x.is_finite())
            && [file.threshold, file.number_threshold].iter().all(|x| x.is_finite());
        if !finite {
            return Err(format!("{what}: bias, shrinkage or a threshold is not finite"));
        }
        let mut nodes = Vec::new();
        let mut roots = Vec::with_capacity(file.trees.len());
        for (t, tree) in file.trees.iter().enumerate() {
            let n = tree.feature.len();
            let lens = [tree.split.len(), tree.left.len(), tree.right.len(), tree.value.len()];
            if n == 0 || lens.iter().any(|&l| l != n) {
                return Err(format!("{what}: tree {t} has arrays of lengths {n} and {lens:?}; need equal, non-empty"));
            }
            let base = nodes.len() as u32;
            roots.push(base);
            for i in 0..n {
                let (l, r, f) = (tree.left[i], tree.right[i], tree.feature[i]);
                let leaf = l == 0 && r == 0;
                // Children come after their parent: every walk ends, in at most n steps.
                let ok = leaf || ((l as usize) > i && (l as usize) < n && (r as usize) > i && (r as usize) < n);
                if !ok || usize::from(f) >= N || !tree.split[i].is_finite() || !tree.value[i].is_finite() {
                    return Err(format!("{what}: tree {t} node {i} is malformed (children {l}/{r}, feature {f})"));
                }
                nodes.push(Node {
                    split: tree.split[i],
                    feature: f,
                    left: if leaf { 0 } else { base + l },
                    right: if leaf { 0 } else { base + r },
                    value: f64::from(tree.value[i]) * f64::from(file.shrinkage),
                });
            }
        }
        let forest = Forest::of(&nodes, &roots);
        Ok(Learned { file, nodes, roots, forest })
    }

    /// The committed model (parsed once).
    pub fn committed() -> Arc<Learned> {
        static MODEL: OnceLock<Arc<Learned>> = OnceLock::new();
        MODEL
            .get_or_init(|| {
                Arc::new(Learned::parse(DEFAULT_WEIGHTS, "weights/fraud_call.json").expect("committed weights"))
            })
            .clone()
    }

    /// The raw score of a feature vector (the probability is `1 / (1 + e^(-2F))`).
    fn raw(&self, x: &[f32; N]) -> f64 {
        self.forest.sum(x, f64::from(self.file.bias), f64::NEG_INFINITY).expect("no floor")
    }

    /// Probability of a raw score, rounded to 1e-6 (so that the dataflow and
    /// the reference, which compute it from the same integer features,
    /// compare exactly, and thresholds read cleanly).
    fn prob_of(z: f64) -> f64 {
        let p = 1.0 / (1.0 + (-2.0 * z).exp());
        (p * 1e6).round() / 1e6
    }

    /// Probability that the call is a fraud call. No allocation.
    #[inline]
    pub fn prob(&self, f: &Features, at_ms: u64) -> f64 {
        Learned::prob_of(self.raw(&vector(f, at_ms)))
    }

    /// [`Learned::prob`] when it is at least `floor`; `None` when it is
    /// surely below: the walk stops as soon as the trees left cannot lift
    /// the score to `floor` even with their largest leaves (most calls of
    /// ordinary callers stop after a few trees). Exact: `None` only when
    /// `prob` is below `floor`.
    #[inline]
    pub fn prob_at_least(&self, f: &Features, at_ms: u64, floor: f64) -> Option<f64> {
        // The raw score whose probability, before rounding to 1e-6, is a
        // little below `floor` (so the rounding cannot lift a stopped walk over it).
        let q = floor - 2e-6;
        let z_floor = if q <= 0.0 { f64::NEG_INFINITY } else { (q / (1.0 - q)).ln() / 2.0 };
        let z = self.forest.sum(&vector(f, at_ms), f64::from(self.file.bias), z_floor - 1e-9)?;
        let p = Learned::prob_of(z);
        (p >= floor).then_some(p)
    }

    /// Each feature's contribution to the score: along each tree's path, the
    /// change of the node value at every split is credited to the split's feature.
    pub fn contributions(&self, f: &Features, at_ms: u64) -> [f64; N] {
        let x = vector(f, at_ms);
        let mut c = [0.0; N];
        for &root in &self.roots {
            let mut node = &self.nodes[root as usize];
            while node.left != 0 {
                let j = usize::from(node.feature);
                let next = &self.nodes[(if x[j] < node.split { node.left } else { node.right }) as usize];
                c[j] += next.value - node.value;
                node = next;
            }
        }
        c
    }

    /// The two or three strongest reasons for a high probability, in words
    /// an officer reads (never feature codes), strongest first.
    pub fn reasons(&self, f: &Features, at_ms: u64) -> Vec<String> {
        let c = self.contributions(f, at_ms);
        // Group features that say the same thing; a group's weight is its sum.
        let groups: [ReasonGroup; 14] = [
            (&[0, 1, 4], |f| {
                (f.fanout_1h >= 2).then(|| format!("called {} different people in the last hour", f.fanout_1h))
            }),
            (&[2, 3], |f| (f.fanout_24h >= 2).then(|| format!("called {} different people today", f.fanout_24h))),
            (&[5, 6, 7, 8], |f| {
                (f.completed_24h > 0).then(|| {
                    format!(
                        "{} of its {} finished calls today hung up within 15 s ({} under a minute)",
                        f.very_short_24h, f.completed_24h, f.short_24h
                    )
                })
            }),
            (&[9], |f| {
                (f.new_callee_24h > 0).then(|| {
                    format!(
                        "{} of its {} calls today went to numbers it had never called",
                        f.new_callee_24h, f.calls_24h
                    )
                })
            }),
            (&[10, 11, 12, 13], |f| {
                Some(if f.answered {
                    format!("{} people called since it last answered a call ({} h ago)", f.out_only_callees, f.quiet_h)
                } else {
                    format!("nobody has called it back: {} people called, no call answered", f.out_only_callees)
                })
            }),
            (&[14], |f| Some(format!("active for {} h", f.seen_h))),
            (&[15, 16], |_| Some("calling at the hours fraud calls cluster".to_owned())),
            (&[17], |f| {
                (f.linked_callees > 0)
                    .then(|| format!("{} of its callees were also called by reported numbers", f.linked_callees))
            }),
            (&[18, 19], |f| {
                (f.located_24h > 0).then(|| {
                    format!(
                        "{} of its {} calls today went to people more than 2 km away",
                        f.located_24h - f.near_24h,
                        f.located_24h
                    )
                })
            }),
            (&[20], |f| f.current_new.then(|| "it had never called this person before".to_owned())),
            (&[21], |f| (f.reports > 0).then(|| format!("{} victim report(s) name this number", f.reports))),
            (&[22, 23, 24, 25], |f| {
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
            (&[26, 27, 28], |f| f.age_days.map(|d| format!("SIM activated {d} days ago"))),
            (&[OPEN_S], |f| (f.open_s > 0).then(|| format!("this call has lasted {} s so far", f.open_s))),
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
    /// Trees.
    pub trees: usize,
    /// Depth of each tree (the root is depth 0).
    pub depth: u32,
    /// Shrinkage (learning rate).
    pub shrinkage: f32,
    /// Fewest training rows in a leaf.
    pub min_leaf: usize,
    /// L2 penalty on leaf values (in row weights: a leaf's Newton step is
    /// damped as if it held this much more weight of rows already scored
    /// right); 0: the crate's unregularised step.
    pub l2: f64,
    /// Largest leaf value before shrinkage (0: no bound): a leaf of fraud
    /// rows only has an unbounded Newton step, which one tree would take whole.
    pub max_step: f64,
    /// Precision target for the in-progress threshold.
    pub precision_target: f64,
    /// Precision target for the number threshold.
    pub number_precision_target: f64,
    /// Features used (false: held at 0 in training, so no tree splits on them).
    pub used: [bool; N],
    /// The trees see every positive row and one negative row in this many
    /// (picked by a hash of the row's position), weighted by it: most
    /// decisions are ordinary one-call callers, and the crate's exact splits
    /// cost time in proportion to the rows. Thresholds use every row. 1: all.
    pub negative_stride: u64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            trees: 60,
            depth: 5,
            shrinkage: 0.1,
            min_leaf: 20,
            l2: 10.0,
            max_step: 0.0,
            precision_target: 0.6,
            number_precision_target: 0.98,
            used: [true; N],
            negative_stride: 4,
        }
    }
}

/// The crate's model as it serialises (only what we read).
#[cfg(test)]
#[derive(serde::Deserialize)]
struct CrateModel {
    trees: Vec<CrateTree>,
    bias: f32,
}

#[derive(serde::Deserialize)]
struct CrateTree {
    tree: CrateNodes,
}

#[derive(serde::Deserialize)]
struct CrateNodes {
    tree: Vec<CrateNode>,
}

#[derive(serde::Deserialize)]
struct CrateNode {
    value: CrateValue,
    left: usize,
    right: usize,
}

#[derive(serde::Deserialize)]
struct CrateValue {
    feature_index: usize,
    feature_value: f32,
    pred: f32,
    is_leaf: bool,
}

/// One of the crate's trees as a [`TreeFile`] (its node vector, root first; children by index).
fn tree_file(nodes: &[CrateNode]) -> TreeFile {
    let mut tree =
        TreeFile { feature: Vec::new(), split: Vec::new(), left: Vec::new(), right: Vec::new(), value: Vec::new() };
    for n in nodes {
        let leaf = n.value.is_leaf;
        tree.feature.push(if leaf { 0 } else { n.value.feature_index as u16 });
        tree.split.push(if leaf { 0.0 } else { n.value.feature_value });
        tree.left.push(if leaf { 0 } else { n.left as u32 });
        tree.right.push(if leaf { 0 } else { n.right as u32 });
        tree.value.push(n.value.pred);
    }
    tree
}

/// The crate's boosted trees as [`TreeFile`]s, and its bias.
#[cfg(test)]
fn trees_of(model: &gbdt::gradient_boost::GBDT) -> Result<(Vec<TreeFile>, f32), String> {
    let json = serde_json::to_value(model).map_err(|e| format!("serialising the trained trees: {e}"))?;
    let m: CrateModel = serde_json::from_value(json).map_err(|e| format!("reading the trained trees: {e}"))?;
    Ok((m.trees.iter().map(|t| tree_file(&t.tree.tree)).collect(), m.bias))
}

/// The node path of a row in a [`TreeFile`], root first, into `path`.
fn path_of(tree: &TreeFile, x: &[f32], path: &mut Vec<usize>) {
    path.clear();
    let mut i = 0usize;
    path.push(i);
    while tree.left[i] != 0 {
        i = if x[usize::from(tree.feature[i])] < tree.split[i] { tree.left[i] } else { tree.right[i] } as usize;
        path.push(i);
    }
}

/// Log-likelihood boosting (Friedman's TreeBoost for labels ±1, the
/// crate's loss) with the crate's tree learner: each tree is grown by
/// `gbdt` on the rows' gradients, and its node values are then set here to
/// the regularised Newton step `Σ w·g / (Σ w·|g|(2 - |g|) + l2)`, at most
/// `max_step` either way when set. The
/// crate's own step has no `l2`: a leaf of fraud rows that the trees so far
/// score far below zero gets a step of tens to thousands (the curvature
/// there is near 0), so the model becomes certain of rare rows, and more so
/// the rarer fraud is in the (weighted) training mix. Returns the trees and
/// the bias (half the weighted log-odds, as the crate's).
fn boost(mut data: Vec<gbdt::decision_tree::Data>, opts: &FitOptions) -> Result<(Vec<TreeFile>, f32), String> {
    use gbdt::decision_tree::{DecisionTree, TrainingCache};
    let (mut s, mut c) = (0.0f64, 0.0f64);
    for d in data.iter() {
        s += f64::from(d.label) * f64::from(d.weight);
        c += f64::from(d.weight);
    }
    let mean = s / c;
    let bias = (((1.0 + mean) / (1.0 - mean)).ln() / 2.0) as f32;
    let mut score = vec![f64::from(bias); data.len()];
    let subset: Vec<usize> = (0..data.len()).collect();
    let mut cache = TrainingCache::get_cache(N, &data, 2);
    let mut trees = Vec::with_capacity(opts.trees);
    let mut path = Vec::new();
    let shrinkage = f64::from(opts.shrinkage);
    for _ in 0..opts.trees {
        for (d, &f) in data.iter_mut().zip(&score) {
            let y = f64::from(d.label);
            d.target = (2.0 * y / (1.0 + (2.0 * y * f).exp())) as f32;
        }
        let mut tree = DecisionTree::new();
        tree.set_feature_size(N);
        tree.set_max_depth(opts.depth);
        tree.set_min_leaf_size(opts.min_leaf);
        tree.set_feature_sample_ratio(1.0);
        tree.set_loss(gbdt::config::Loss::LogLikelyhood);
        tree.fit_n(&data, &subset, &mut cache);
        let json = serde_json::to_value(&tree).map_err(|e| format!("serialising a trained tree: {e}"))?;
        let nodes: CrateTree = serde_json::from_value(json).map_err(|e| format!("reading a trained tree: {e}"))?;
        let mut file = tree_file(&nodes.tree.tree);
        let mut sums = vec![(0.0f64, 0.0f64); file.value.len()];
        for d in &data {
            path_of(&file, &d.feature, &mut path);
            let (g, w) = (f64::from(d.target), f64::from(d.weight));
            for &i in &path {
                sums[i].0 += w * g;
                sums[i].1 += w * g.abs() * (2.0 - g.abs());
            }
        }
        for (v, &(sg, sh)) in file.value.iter_mut().zip(&sums) {
            let step = sg / (sh + opts.l2);
            *v = if opts.max_step > 0.0 { step.clamp(-opts.max_step, opts.max_step) } else { step } as f32;
        }
        for (d, f) in data.iter().zip(score.iter_mut()) {
            path_of(&file, &d.feature, &mut path);
            *f += f64::from(file.value[*path.last().expect("a path has a leaf")]) * shrinkage;
        }
        trees.push(file);
    }
    Ok((trees, bias))
}

/// Fits the model on feature rows, labels (true: a fraud call) and row
/// weights (how many decisions of the deployment each row stands for: see
/// [`crate::train`]'s prevalence). Rows must come in a fixed order (the
/// crate's sorts and sums follow it). `version` and `training` go into the
/// file. Thresholds are chosen on the weighted rows, so their precisions are
/// the deployment's. `calls` gives each row's call (the rows of one call,
/// its decision points, are consecutive): a call alerts at its first
/// decision whose probability reaches the threshold, so thresholds, their
/// precision and recall are taken over calls, each at its highest probability.
pub fn fit(
    rows: &[[f32; N]],
    labels: &[bool],
    weights: &[f32],
    calls: &[u32],
    opts: &FitOptions,
    version: &str,
    training: serde_json::Value,
) -> Result<WeightsFile, String> {
    use gbdt::decision_tree::Data;
    let n = rows.len();
    if n == 0 || n != labels.len() || n != weights.len() || n != calls.len() {
        return Err(format!(
            "{n} rows, {} labels, {} weights and {} calls: need the same, at least one",
            labels.len(),
            weights.len(),
            calls.len()
        ));
    }
    if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
        return Err(format!("row weight {w}: need finite weights above 0"));
    }
    let pos = labels.iter().filter(|&&l| l).count();
    if pos == 0 || pos == n {
        return Err(format!("{pos} positive rows of {n}: need both classes to train"));
    }
    if opts.trees == 0 || opts.depth == 0 || !(opts.shrinkage > 0.0 && opts.shrinkage <= 1.0) {
        return Err("need at least one tree of depth >= 1 and a shrinkage in (0, 1]".into());
    }
    let stride = opts.negative_stride.max(1);
    let data: Vec<Data> = rows
        .iter()
        .zip(labels)
        .zip(weights)
        .enumerate()
        .filter(|&(i, ((_, &y), _))| y || mix(i as u64).is_multiple_of(stride))
        .map(|(_, ((r, &y), &w))| {
            let x = (0..N).map(|j| if opts.used[j] { r[j] } else { 0.0 }).collect();
            let weight = if y { w } else { w * stride as f32 };
            Data::new_training_data(x, weight, if y { 1.0 } else { -1.0 }, None)
        })
        .collect();
    let trained_rows = data.len();
    let (trees, bias) = boost(data, opts)?;
    let mut file = WeightsFile {
        format: FORMAT.to_owned(),
        version: version.to_owned(),
        features: NAMES.iter().map(|s| (*s).to_owned()).collect(),
        used: opts.used.to_vec(),
        bias,
        shrinkage: opts.shrinkage,
        trees,
        threshold: 0.5,
        number_threshold: 0.5,
        precision_target: opts.precision_target,
        thresholds: Vec::new(),
        training,
        early_checks_s: Vec::new(),
    };
    let learned = Learned::from_file(file.clone(), "fitted trees")?;
    let probs: Vec<f64> = rows.iter().map(|r| Learned::prob_of(learned.raw(r))).collect();
    let mut scored = per_call(&probs, labels, weights, calls);
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    file.threshold = threshold_for(&scored, opts.precision_target);
    file.number_threshold = threshold_for(&scored, opts.number_precision_target).max(file.threshold);
    let pos_w: f64 = scored.iter().filter(|s| s.1).map(|s| s.2).sum();
    let recall_at = |t: f64| scored.iter().filter(|&&(p, y, _)| y && p >= t).map(|s| s.2).sum::<f64>() / pos_w;
    file.thresholds = TARGETS
        .iter()
        .map(|&target| {
            let t = threshold_for(&scored, target);
            [target, t, (recall_at(t) * 1e4).round() / 1e4]
        })
        .collect();
    if let serde_json::Value::Object(m) = &mut file.training {
        let pos_calls = scored.iter().filter(|s| s.1).count();
        let at = |t: f64| {
            let (mut tp, mut all, mut tp_w, mut all_w) = (0usize, 0usize, 0.0, 0.0);
            for &(p, y, w) in &scored {
                if p >= t {
                    all += 1;
                    tp += usize::from(y);
                    all_w += w;
                    tp_w += if y { w } else { 0.0 };
                }
            }
            serde_json::json!({ "threshold": t, "alerts": all, "true": tp, "recall": tp as f64 / pos_calls as f64,
                "weighted_precision": (tp_w / all_w * 1e4).round() / 1e4 })
        };
        m.insert("at_threshold".into(), at(file.threshold));
        m.insert("at_number_threshold".into(), at(file.number_threshold));
        m.insert("rows".into(), n.into());
        m.insert("positives".into(), pos.into());
        m.insert("calls".into(), scored.len().into());
        m.insert("positive_calls".into(), pos_calls.into());
        m.insert(
            "trees".into(),
            serde_json::json!({ "trees": opts.trees, "depth": opts.depth, "shrinkage": opts.shrinkage,
                "min_leaf": opts.min_leaf, "l2": opts.l2, "max_step": opts.max_step, "negative_stride": stride, "trained_rows": trained_rows,
                "crate": "gbdt 0.1.3, loss LogLikelyhood" }),
        );
    }
    Ok(file)
}

/// SplitMix64's finaliser: a well-spread hash of a row position.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The precision targets of [`WeightsFile::thresholds`].
pub const TARGETS: [f64; 18] =
    [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99];

impl WeightsFile {
    /// The file's text as `citywatch train` writes it: indented JSON with
    /// one tree a line (a number a line would triple its size).
    pub fn to_text(&self) -> Result<String, String> {
        let head = WeightsFile { trees: Vec::new(), ..self.clone() };
        let head = serde_json::to_string_pretty(&head).map_err(|e| format!("writing the weights: {e}"))?;
        let mut trees = Vec::with_capacity(self.trees.len());
        for t in &self.trees {
            trees.push(format!("    {}", serde_json::to_string(t).map_err(|e| format!("writing a tree: {e}"))?));
        }
        let list = format!("\"trees\": [\n{}\n  ]", trees.join(",\n"));
        head.contains("\"trees\": []")
            .then(|| head.replacen("\"trees\": []", &list, 1) + "\n")
            .ok_or_else(|| "writing the weights: no tree list in the file's text".to_owned())
    }

    /// The threshold chosen on the training decisions for a precision of at
    /// least `target` (the row of the smallest listed target at or above it).
    pub fn threshold_for_precision(&self, target: f64) -> Option<f64> {
        self.thresholds.iter().find(|r| r[0] >= target - 1e-9).map(|r| r[1])
    }
}

/// A training row scored: probability, label, weight.
type Scored = (f64, bool, f64);

/// One entry per call (its rows are consecutive, `calls` gives each row's
/// call): its highest probability, the label and weight of its first row.
/// A call alerts at its first decision at or above the threshold, so it
/// alerts at all exactly when its highest probability reaches it.
fn per_call(probs: &[f64], labels: &[bool], weights: &[f32], calls: &[u32]) -> Vec<Scored> {
    let mut scored: Vec<Scored> = Vec::new();
    for (i, ((&p, &y), &w)) in probs.iter().zip(labels).zip(weights).enumerate() {
        match scored.last_mut() {
            Some(last) if i > 0 && calls[i] == calls[i - 1] => last.0 = last.0.max(p),
            _ => scored.push((p, y, f64::from(w))),
        }
    }
    scored
}

/// The lowest score at which the weighted precision of the rows scoring at
/// least it is still at least `target` (scores sorted high to low); the top
/// score if no cut reaches the target.
fn threshold_for(scored: &[Scored], target: f64) -> f64 {
    let (mut tp, mut all, mut best) = (0.0, 0.0, scored.first().map_or(1.0, |s| s.0));
    let mut i = 0;
    while i < scored.len() {
        // Rows with the same score are all in or all out.
        let p = scored[i].0;
        while i < scored.len() && scored[i].0 == p {
            let (_, y, w) = scored[i];
            all += w;
            tp += if y { w } else { 0.0 };
            i += 1;
        }
        if tp >= target * all {
            best = p;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// Rows whose label depends on two features jointly: the trees learn it, the fit is the same twice,
    /// and the threshold keeps the training precision at the target.
    #[test]
    fn fit_learns_an_interaction_and_is_reproducible() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for _ in 0..3_000 {
            let mut r = [0.0f32; N];
            for v in r.iter_mut() {
                *v = rng.random::<f32>();
            }
            // Fraud when both are high (an interaction: neither alone decides).
            let y = r[1] > 0.5 && r[12] > 0.5;
            labels.push(if rng.random::<f64>() < 0.05 { !y } else { y });
            rows.push(r);
        }
        let opts = FitOptions { trees: 30, depth: 3, precision_target: 0.9, ..FitOptions::default() };
        let ones = vec![1.0; rows.len()];
        let calls: Vec<u32> = (0..rows.len() as u32).collect();
        let a = fit(&rows, &labels, &ones, &calls, &opts, "t", serde_json::json!({})).unwrap();
        // The written text reads back as the same file (its trees exactly; other floats to within
        // serde_json's parsing), one tree a line.
        let text = a.to_text().unwrap();
        let back = serde_json::from_str::<WeightsFile>(&text).unwrap();
        assert_eq!(back.trees, a.trees);
        assert!((back.threshold - a.threshold).abs() < 1e-12 && back.thresholds.len() == a.thresholds.len());
        assert_eq!(text.lines().count(), a.trees.len() + text.lines().filter(|l| !l.starts_with("    {")).count());
        let b = fit(&rows, &labels, &ones, &calls, &opts, "t", serde_json::json!({})).unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
        let m = Learned::from_file(a.clone(), "t").unwrap();
        let correct = rows.iter().zip(&labels).filter(|(r, y)| (Learned::prob_of(m.raw(r)) >= 0.5) == **y).count();
        assert!(correct as f64 > 0.85 * rows.len() as f64, "{correct} of {} right", rows.len());
        let at = &a.training["at_threshold"];
        let precision = at["true"].as_f64().unwrap() / at["alerts"].as_f64().unwrap();
        assert!(precision >= 0.9, "{at}");
        // Leaving a feature out: no tree splits on it.
        let mut used = [true; N];
        used[1] = false;
        let c = fit(&rows, &labels, &ones, &calls, &FitOptions { used, ..opts }, "t", serde_json::json!({})).unwrap();
        assert!(c.trees.iter().all(|t| t.feature.iter().zip(&t.left).all(|(&f, &l)| l == 0 || f != 1)));
    }

    /// Thresholds are taken over calls at their highest probability: a call
    /// judged at several points counts once, as it alerts once.
    #[test]
    fn thresholds_count_each_call_once_at_its_highest_probability() {
        // Call 0: a fraud call scored 0.2 then 0.9; call 1: an ordinary call
        // scored 0.8 then 0.1; call 2: an ordinary call at 0.5.
        let probs = [0.2, 0.9, 0.8, 0.1, 0.5];
        let labels = [true, true, false, false, false];
        let weights = [1.0, 1.0, 3.0, 3.0, 1.0];
        let calls = [0, 0, 1, 1, 2];
        let mut scored = per_call(&probs, &labels, &weights, &calls);
        assert_eq!(scored, vec![(0.9, true, 1.0), (0.8, false, 3.0), (0.5, false, 1.0)]);
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        // Only at 0.9 is the precision (weighted) above 1/2: at 0.8 it is 1 of 4.
        assert_eq!(threshold_for(&scored, 0.5), 0.9);
        assert_eq!(threshold_for(&scored, 0.2), 0.5);
        // Row by row (each its own call) the fraud call's 0.2 row would count as a miss of its own.
        let rows = per_call(&probs, &labels, &weights, &[0, 1, 2, 3, 4]);
        assert_eq!(rows.len(), 5);
    }

    /// Our walk of the flattened trees gives what the crate itself predicts.
    #[test]
    fn walking_the_file_matches_the_crate() {
        use gbdt::decision_tree::Data;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let rows: Vec<[f32; N]> = (0..500)
            .map(|_| {
                let mut r = [0.0f32; N];
                r.iter_mut().for_each(|v| *v = rng.random::<f32>());
                r
            })
            .collect();
        let labels: Vec<bool> = rows.iter().map(|r| r[3] + r[7] > 1.0).collect();
        let mut data: Vec<Data> = rows
            .iter()
            .zip(&labels)
            .map(|(r, &y)| Data::new_training_data(r.to_vec(), 1.0, if y { 1.0 } else { -1.0 }, None))
            .collect();
        let mut cfg = gbdt::config::Config::new();
        cfg.set_feature_size(N);
        cfg.set_max_depth(3);
        cfg.set_iterations(10);
        cfg.set_shrinkage(0.1);
        cfg.set_min_leaf_size(5);
        cfg.set_loss("LogLikelyhood");
        let mut model = gbdt::gradient_boost::GBDT::new(&cfg);
        model.fit(&mut data);
        let theirs = model.predict(&data);
        let (trees, bias) = trees_of(&model).unwrap();
        let file = WeightsFile {
            format: FORMAT.into(),
            version: "t".into(),
            features: NAMES.iter().map(|s| (*s).to_owned()).collect(),
            used: vec![true; N],
            bias,
            shrinkage: 0.1,
            trees,
            threshold: 0.5,
            number_threshold: 0.5,
            precision_target: 0.9,
            thresholds: Vec::new(),
            training: serde_json::json!({}),
            early_checks_s: Vec::new(),
        };
        let ours = Learned::from_file(file, "t").unwrap();
        for (r, p) in rows.iter().zip(theirs) {
            let mine = 1.0 / (1.0 + (-2.0 * ours.raw(r)).exp());
            assert!((mine - f64::from(p)).abs() < 1e-5, "{mine} vs {p}");
        }
    }

    #[test]
    fn committed_weights_load_and_a_bad_file_is_refused() {
        let m = Learned::committed();
        assert!(m.file.threshold > 0.0 && m.file.threshold < 1.0);
        let mut f = m.file.clone();
        f.trees[0].left.pop();
        assert!(Learned::from_file(f, "x").unwrap_err().contains("tree 0"));
        // A node with one child is refused (a walk could not end there).
        let mut f = m.file.clone();
        f.trees[0].left[0] = 0;
        f.trees[0].right[0] = 1;
        assert!(Learned::from_file(f, "x").unwrap_err().contains("malformed"));
        assert!(Learned::parse("{}", "x").is_err());
    }

    /// The scoring layout (complete trees, breadth first) gives exactly the
    /// sum of the trees as the file has them, on the committed trees (whose
    /// leaves sit at several depths) and on random vectors and the training
    /// vectors' edge values; and stays small enough to live in a core's L2
    /// cache (its speed is `cargo bench -p citywatch-bench --bench fraud_call`).
    #[test]
    fn the_scoring_layout_sums_the_trees_exactly_and_is_compact() {
        let m = Learned::committed();
        let by_nodes = |x: &[f32; N]| {
            let mut z = f64::from(m.file.bias);
            for &root in &m.forest.order {
                let mut node = &m.nodes[root as usize];
                while node.left != 0 {
                    let next = if x[usize::from(node.feature)] < node.split { node.left } else { node.right };
                    node = &m.nodes[next as usize];
                }
                z += node.value;
            }
            z
        };
        let mut roots = m.forest.order.clone();
        roots.sort_unstable();
        assert_eq!(roots, m.roots, "every tree walked once");
        let full = (2usize << m.forest.depth) - 1;
        let sizes: Vec<usize> = m.file.trees.iter().map(|t| t.feature.len()).collect();
        assert!(sizes.iter().any(|&n| n < full), "some tree has a leaf above the full depth: {sizes:?}");
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for i in 0..20_000 {
            let mut x = [0.0f32; N];
            for v in x.iter_mut() {
                *v = match i % 3 {
                    0 => rng.random::<f32>() * 6.0,
                    1 => f32::from(rng.random::<u8>() % 3) / 2.0,
                    _ => m.nodes[rng.random_range(0..m.nodes.len())].split,
                };
            }
            assert_eq!(m.raw(&x).to_bits(), by_nodes(&x).to_bits(), "vector {x:?}");
        }
        // Stopping early never hides a probability at or above the floor.
        let mut stopped = 0;
        for i in 0..20_000u32 {
            let f = Features {
                calls_1h: i % 7,
                fanout_1h: i % 5,
                calls_24h: i % 31,
                fanout_24h: i % 29,
                completed_24h: i % 13,
                very_short_24h: i % 11 % (i % 13 + 1),
                contacts: i % 17,
                out_only_callees: i % 17 % (i % 9 + 1),
                answered: i % 3 == 0,
                seen_h: i % 100,
                class: NumberClass::classify(if i % 4 == 0 { "+442079460000" } else { "13800138000" }, "86"),
                age_days: (i % 5 != 0).then_some(i % 4000),
                ..Features::default()
            };
            let at = 1_772_409_721_146 + u64::from(i) * 97_000;
            let p = m.prob(&f, at);
            for floor in [0.0, 0.01, 0.3, p, m.file.threshold, 0.99, 1.0] {
                match m.prob_at_least(&f, at, floor) {
                    Some(q) => assert!(q == p && p >= floor, "{q} for {p} at floor {floor}"),
                    None => {
                        assert!(p < floor, "stopped below {floor} at probability {p}");
                        stopped += 1;
                    }
                }
            }
        }
        assert!(stopped > 0);
        let bytes = m.forest.splits.len() * size_of::<Split>() + m.forest.leaves.len() * size_of::<f64>();
        println!("{} trees of depth {}: {bytes} B", m.roots.len(), m.forest.depth);
        assert!(bytes <= 64 * 1024, "{bytes} B of trees to walk per decision");
    }
}

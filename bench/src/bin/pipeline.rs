//! Full-pipeline scenario runner (issue 7).
//!
//! ```text
//! cargo run --release -p citywatch-bench --bin pipeline -- city_1m [--runs 3] [--reference-runs 1] [--workers 1,2]
//!     [--data /tmp/citywatch-bench] [--input DATASET] [--no-reference]
//! ```
//!
//! Generates the scenario's seeded city once (cached under `--data`), then, for
//! each run, replays it through every model with each worker count and runs
//! the single-threaded references, alternating configurations so machine noise
//! hits them alike. Each configuration runs in a child process of this binary,
//! so its peak memory (`VmHWM`) is its own. Reported, as medians over the runs:
//! wall clock (Parquet reading included) and events/s, peak memory, alerts per
//! model, and the COST ratio: the references' time over citywatch's, both
//! reading the same files.
//!
//! The model list is built here from the model crates (the binary's
//! registration list is the engine owner's); keep it in step with `models()`
//! in `src/main.rs`.

#[path = "../pipeline/mod.rs"]
mod pipeline;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use citywatch_engine::event::Event;
use citywatch_engine::replay::{ReplayOptions, merged_events, replay};
use citywatch_registry::models;
use clap::Parser;

/// The citywatch binary's allocator, so these figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// citywatch full-pipeline scenarios.
#[derive(Debug, Parser)]
struct Args {
    /// Scenario name (`list` to show them).
    scenario: String,
    /// Runs per configuration (medians are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Worker counts to measure, comma-separated.
    #[arg(long, default_value = "1,2", value_delimiter = ',')]
    workers: Vec<usize>,
    /// Where generated datasets are cached.
    #[arg(long, default_value = "/tmp/citywatch-bench")]
    data: PathBuf,
    /// Use this dataset folder instead of generating the scenario's.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Skip the references (they can take long on big cities).
    #[arg(long)]
    no_reference: bool,
    /// Runs of the references (slow and single-threaded: once is usually enough).
    #[arg(long, default_value_t = 1)]
    reference_runs: usize,
    /// Internal: run one configuration in this process (`replay:N` or `reference`).
    #[arg(long, hide = true)]
    child: Option<String>,
}

/// The registered models' names, in the registry's order.
fn model_names() -> Vec<String> {
    models().iter().map(|m| m.name()).collect()
}

/// Peak resident memory of this process so far, KiB.
fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Child: one replay with `workers`; prints `key value` lines.
fn child_replay(input: &Path, workers: usize) -> Result<(), String> {
    let opts = ReplayOptions { input: input.to_owned(), workers, ..ReplayOptions::default() };
    let t = Instant::now();
    let out = replay(&opts, models()).map_err(|e| e.to_string())?;
    let wall = t.elapsed().as_secs_f64();
    println!("wall_s {wall}");
    println!("events {}", out.summary.events);
    println!("hwm_kb {}", vm_hwm_kb());
    for (model, kinds) in &out.summary.alerts {
        println!("alerts {model} {}", kinds.values().sum::<u64>());
    }
    Ok(())
}

/// Child: the references over the same merged events, one process, one thread each.
fn child_reference(input: &Path) -> Result<(), String> {
    let opts = ReplayOptions { input: input.to_owned(), ..ReplayOptions::default() };
    let t = Instant::now();
    let (events, reference) = merged_events(&opts).map_err(|e| e.to_string())?;
    println!("read_s {}", t.elapsed().as_secs_f64());
    println!("events {}", events.len());
    println!("active_numbers {}", active_numbers(&events));
    for model in models() {
        let t = Instant::now();
        // A model without a reference adds nothing to the references' time.
        let Some(alerts) = model.reference(&events, &reference) else { continue };
        println!("ref_s {} {}", model.name(), t.elapsed().as_secs_f64());
        println!("alerts {} {}", model.name(), alerts.len());
    }
    println!("hwm_kb {}", vm_hwm_kb());
    Ok(())
}

/// Distinct numbers (callers and callees) in the calls: the "active subscribers".
fn active_numbers(events: &[Event]) -> usize {
    let mut active = std::collections::HashSet::new();
    for e in events {
        if let Event::Call(c) = e {
            active.insert(c.caller);
            active.insert(c.callee);
        }
    }
    active.len()
}

/// Child: only the active numbers (for `--no-reference` runs).
fn child_active(input: &Path) -> Result<(), String> {
    let opts = ReplayOptions { input: input.to_owned(), ..ReplayOptions::default() };
    let (events, _) = merged_events(&opts).map_err(|e| e.to_string())?;
    println!("active_numbers {}", active_numbers(&events));
    Ok(())
}

/// One child's `key [name] value` lines.
#[derive(Debug, Default, Clone)]
struct Measured {
    values: BTreeMap<String, f64>,
}

fn run_child(input: &Path, mode: &str) -> Result<Measured, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .args(["--child", mode, "--input"])
        .arg(input)
        .arg("child")
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("child {mode} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let mut m = Measured::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let Some((value, key)) = parts.split_last()
            && let Ok(v) = value.parse::<f64>()
        {
            m.values.insert(key.join(" "), v);
        }
    }
    Ok(m)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(mode) = &args.child {
        let input = args.input.as_deref().expect("--input with --child");
        let r = match (mode.as_str(), mode.strip_prefix("replay:")) {
            (_, Some(w)) => child_replay(input, w.parse().expect("replay:N")),
            ("active", None) => child_active(input),
            _ => child_reference(input),
        };
        return match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let all = pipeline::scenarios();
    let Some(scenario) = all.iter().find(|s| s.name == args.scenario) else {
        eprintln!("unknown scenario '{}'; one of:", args.scenario);
        for s in &all {
            eprintln!("  {:10} {}", s.name, s.question);
        }
        return ExitCode::FAILURE;
    };
    let input = match &args.input {
        Some(i) => i.clone(),
        None => {
            let dir = args.data.join(scenario.name);
            if !dir.join("generated.json").is_file() {
                eprintln!("generating {} into {} ...", scenario.name, dir.display());
                let t = Instant::now();
                if let Err(e) = citywatch_datasets::generate(&(scenario.options)(&dir)) {
                    eprintln!("generation failed: {e}");
                    return ExitCode::FAILURE;
                }
                eprintln!("generated in {:.1} s", t.elapsed().as_secs_f64());
            }
            dir
        }
    };
    println!("scenario {}: {}", scenario.name, scenario.question);
    println!("input {}", input.display());
    let mut modes: Vec<String> = args.workers.iter().map(|w| format!("replay:{w}")).collect();
    if !args.no_reference {
        modes.push("reference".into());
    }
    let mut results: BTreeMap<String, Vec<Measured>> = BTreeMap::new();
    for run in 0..args.runs {
        // Alternate the order each run so drift in the machine's load is shared.
        let order: Vec<&String> = if run % 2 == 0 { modes.iter().collect() } else { modes.iter().rev().collect() };
        for mode in order {
            if mode == "reference" && run >= args.reference_runs {
                continue;
            }
            match run_child(&input, mode) {
                Ok(m) => {
                    let wall = m.values.get("wall_s").or(m.values.get("read_s")).copied().unwrap_or(f64::NAN);
                    eprintln!("run {run} {mode}: {wall:.2} s");
                    results.entry(mode.clone()).or_default().push(m);
                }
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    let med = |mode: &str, key: &str| -> f64 {
        median(results.get(mode).map_or(Vec::new(), |v| v.iter().filter_map(|m| m.values.get(key).copied()).collect()))
    };
    let names = model_names();
    let reference_total = if args.no_reference {
        f64::NAN
    } else {
        med("reference", "read_s")
            + names.iter().map(|m| med("reference", &format!("ref_s {m}"))).filter(|s| !s.is_nan()).sum::<f64>()
    };
    let active = if args.no_reference {
        match run_child(&input, "active") {
            Ok(m) => m.values.get("active_numbers").copied().unwrap_or(f64::NAN),
            Err(e) => {
                eprintln!("{e}");
                f64::NAN
            }
        }
    } else {
        med("reference", "active_numbers")
    };
    println!();
    println!(
        "| configuration | wall s (median of {}) | events/s | peak RSS MiB | RSS per active number, bytes | COST ratio (ref / this) | alerts {} |",
        args.runs,
        names.join(" / ")
    );
    println!("|---|---|---|---|---|---|---|");
    for mode in &modes {
        let is_ref = mode == "reference";
        let wall = if is_ref { reference_total } else { med(mode, "wall_s") };
        let events = med(mode, "events");
        let hwm = med(mode, "hwm_kb") * 1024.0;
        let alerts: Vec<String> = names.iter().map(|m| format!("{}", med(mode, &format!("alerts {m}")))).collect();
        let name = if is_ref {
            format!("references, 1 thread (read + {} models)", names.len())
        } else {
            format!("citywatch, {} worker(s)", &mode[7..])
        };
        println!(
            "| {name} | {wall:.2} | {:.0} | {:.0} | {:.0} | {:.2} | {} |",
            events / wall,
            hwm / 1048576.0,
            hwm / active,
            reference_total / wall,
            alerts.join(" / ")
        );
    }
    println!();
    println!("active numbers {active:.0}");
    if !args.no_reference {
        let each: Vec<String> =
            names.iter().map(|m| format!("{m} {:.2} s", med("reference", &format!("ref_s {m}")))).collect();
        println!(
            "references (medians): read+merge {:.2} s; {}; active numbers {active:.0}",
            med("reference", "read_s"),
            each.join("; ")
        );
    }
    ExitCode::SUCCESS
}

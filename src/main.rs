//! The `citywatch` command line. Thin by design: it parses arguments, builds
//! the model registration list, and calls library code; everything testable
//! lives in the crates.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use citywatch_engine::lateness::{parse_date_ms, parse_duration_ms};
use citywatch_engine::model::Model;
use citywatch_engine::replay::{self, Cluster, ReplayOptions, Speed};
use citywatch_engine::settings::Settings;
use clap::{Args, Parser, Subcommand};

/// The registration list: every model citywatch can run, in one visible place.
fn models() -> Vec<Box<dyn Model>> {
    vec![
        Box::new(citywatch_fraud_call::FraudCall::default()),
        Box::new(citywatch_risk_hotspot::RiskHotspot::default()),
        Box::new(citywatch_response_gap::ResponseGap::default()),
    ]
}

#[derive(Parser, Debug)]
#[command(
    name = "citywatch",
    version,
    about = "Real-time public-safety analytics: fraud calls, hotspots, response gaps"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate a small synthetic city and replay it through every model (no data, no config needed).
    Demo(DemoArgs),
    /// Replay a dataset folder through the models, deterministically.
    Replay(ReplayArgs),
    /// Generate a synthetic city (or lay out the real Toronto incidents) as a dataset folder.
    Gen(GenArgs),
    /// Score a replay's alerts: fraud (against the dataset's labels), hotspots (PAI/PEI*), officer load.
    Eval(EvalArgs),
    /// List the registered models with their versions and settings.
    Models {
        /// Print each model's card too.
        #[arg(long)]
        cards: bool,
    },
}

#[derive(Args, Debug)]
struct EngineArgs {
    /// Config file (TOML): pseudonym key, lateness, `[models.<name>]` sections.
    #[arg(long)]
    config: Option<PathBuf>,
    /// HMAC key for phone-number pseudonyms (overrides the config; default: the public demo key).
    #[arg(long)]
    pseudonym_key: Option<String>,
    /// Allowed lateness of events, e.g. 60s, 5m (default 60s).
    #[arg(long)]
    lateness: Option<String>,
    /// Comma-separated models to run (default: all registered).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
}

#[derive(Args, Debug)]
struct ReplayArgs {
    /// Dataset folder (calls, alarms, patrols, and optional reference tables).
    #[arg(long)]
    input: PathBuf,
    /// Output folder for alerts.parquet, alerts.ndjson, rejected.ndjson, summary.json, run.json.
    #[arg(long)]
    out: PathBuf,
    /// Worker threads per process.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// `max`, or a multiple of real time (e.g. 60).
    #[arg(long, default_value = "max")]
    speed: String,
    /// Number of processes in a timely cluster (with --process and --hostfile).
    #[arg(long, default_value_t = 1)]
    processes: usize,
    /// This process's index in the cluster, 0-based.
    #[arg(long, default_value_t = 0)]
    process: usize,
    /// File with one host:port per line, one per process.
    #[arg(long)]
    hostfile: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Args, Debug)]
struct GenArgs {
    /// Output dataset folder.
    #[arg(long)]
    out: PathBuf,
    /// `city` (synthetic Qingdao-like city) or `toronto` (real incidents, alarms only).
    #[arg(long, default_value = "city")]
    scenario: String,
    /// Days to simulate.
    #[arg(long, default_value_t = 1)]
    days: u32,
    /// Subscribers.
    #[arg(long, default_value_t = 20_000)]
    subscribers: u64,
    /// Seed: same seed, same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// First day, YYYY-MM-DD (UTC).
    #[arg(long, default_value = "2026-03-02")]
    start: String,
    /// Generator threads (default: all cores; never changes the output).
    #[arg(long)]
    threads: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct EvalArgs {
    /// The dataset folder that was replayed (its labels and alarms are the truth).
    #[arg(long)]
    input: PathBuf,
    /// The replay's output folder (with alerts.parquet). Without it, only the hotspot ranking is scored.
    #[arg(long)]
    alerts: Option<PathBuf>,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// HMAC key the replay used (to match labels to pseudonyms); default: the demo key.
    #[arg(long)]
    pseudonym_key: Option<String>,
    /// Score hotspot forecasts from this date on (YYYY-MM-DD; default: one year after the first alarm).
    #[arg(long)]
    score_from: Option<String>,
    /// Skip the hotspot evaluation (it replays the risk surface over every day of the data).
    #[arg(long)]
    no_hotspot: bool,
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Where to put the generated city and the alerts (default: a fresh temporary folder).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Subscribers of the demo city.
    #[arg(long, default_value_t = 20_000)]
    subscribers: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

/// The models to run, configured from the settings and filtered by `--models`.
fn selected_models(settings: &Settings, names: &[String]) -> Result<Vec<Box<dyn Model>>> {
    let mut all = models();
    settings.configure(&mut all)?;
    if names.is_empty() {
        return Ok(all);
    }
    let known: Vec<String> = all.iter().map(|m| m.name()).collect();
    for n in names {
        if !known.contains(n) {
            bail!("--models: unknown model `{n}`; registered models: {}", known.join(", "));
        }
    }
    Ok(all.into_iter().filter(|m| names.contains(&m.name())).collect())
}

fn replay_options(engine: &EngineArgs, settings: &Settings) -> Result<ReplayOptions> {
    let lateness = engine.lateness.clone().or_else(|| settings.lateness.clone()).unwrap_or_else(|| "60s".into());
    let lateness_ms = parse_duration_ms(&lateness)
        .with_context(|| format!("--lateness: '{lateness}' is not a duration; use e.g. 60s, 5m, 250ms"))?;
    let mut opts = ReplayOptions { lateness_ms, ..ReplayOptions::default() };
    if let Some(k) = engine.pseudonym_key.clone().or_else(|| settings.pseudonym_key.clone()) {
        opts.pseudonym_key = k;
    }
    if let Some(cc) = settings.home_country_code.clone() {
        opts.home_cc = cc;
    }
    Ok(opts)
}

fn load_settings(path: Option<&PathBuf>) -> Result<Settings> {
    Ok(match path {
        Some(p) => Settings::load(p)?,
        None => Settings::default(),
    })
}

fn run_replay(args: ReplayArgs) -> Result<()> {
    let settings = load_settings(args.engine.config.as_ref())?;
    let models = selected_models(&settings, &args.engine.models)?;
    let cluster = match (args.processes, &args.hostfile) {
        (1, None) => None,
        (n, Some(h)) => Some(Cluster { processes: n, process: args.process, hostfile: h.clone() }),
        (_, None) => bail!("--processes {} needs --hostfile (one host:port line per process)", args.processes),
    };
    let opts = ReplayOptions {
        input: args.input,
        out: Some(args.out.clone()),
        workers: args.workers,
        cluster,
        speed: args.speed.parse::<Speed>()?,
        progress: !args.quiet,
        ..replay_options(&args.engine, &settings)?
    };
    let outcome = replay::replay(&opts, models)?;
    if opts.cluster.as_ref().is_none_or(|c| c.process == 0) {
        print!("{}", outcome.summary);
        println!("{}", outcome.stats);
        println!("outputs in {}", args.out.display());
    }
    Ok(())
}

fn run_gen(args: GenArgs) -> Result<()> {
    match args.scenario.as_str() {
        "toronto" => {
            let summary = citywatch_datasets::toronto::write_dataset(&args.out)?;
            println!("{summary}");
        }
        "city" => {
            let start_ms = parse_date_ms(&args.start)
                .with_context(|| format!("--start: '{}' is not a date; use YYYY-MM-DD", args.start))?;
            let opts = citywatch_datasets::GenOptions {
                days: args.days,
                subscribers: args.subscribers,
                seed: args.seed,
                out: args.out,
                start_ms,
                threads: args.threads,
                progress: !args.quiet,
                ..citywatch_datasets::GenOptions::default()
            };
            let summary = citywatch_datasets::generate(&opts)?;
            println!("{summary}");
        }
        other => bail!("--scenario: unknown scenario `{other}`; use `city` or `toronto`"),
    }
    Ok(())
}

fn run_eval(args: EvalArgs) -> Result<()> {
    let key = args.pseudonym_key.clone().unwrap_or_else(|| citywatch_engine::pseudonym::DEMO_KEY.to_owned());
    let mut report = serde_json::Map::new();
    let has_labels =
        citywatch_engine::read::locate(&args.input, citywatch_engine::contract::Table::FraudLabels)?.is_some();
    if let Some(dir) = &args.alerts {
        let alerts = citywatch_engine::alert::read_parquet(&dir.join("alerts.parquet"))?;
        if has_labels {
            let fraud = citywatch_fraud_call::eval::evaluate(&args.input, &alerts, &key)?;
            println!("{fraud}");
            report.insert("fraud".into(), serde_json::to_value(&fraud)?);
        } else {
            println!("fraud: no labels/fraud_calls in {}; skipped", args.input.display());
        }
    }
    let has_alarms = citywatch_engine::read::locate(&args.input, citywatch_engine::contract::Table::Alarms)?.is_some();
    if has_alarms && !args.no_hotspot {
        let mut opts = citywatch_risk_hotspot::eval::EvalOptions { alerts: args.alerts.clone(), ..Default::default() };
        if let Some(d) = &args.score_from {
            let ms = parse_date_ms(d).with_context(|| format!("--score-from: '{d}' is not a date; use YYYY-MM-DD"))?;
            opts.score_from_ms = Some(ms as u64);
        }
        let hotspot = citywatch_risk_hotspot::eval::evaluate_dataset(&args.input, &opts)?;
        println!("{hotspot}");
        report.insert("hotspot".into(), serde_json::to_value(&hotspot)?);
    }
    if report.is_empty() {
        bail!("nothing to evaluate: {} has no labels/fraud_calls (with --alerts) and no alarms", args.input.display());
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn run_demo(args: DemoArgs) -> Result<()> {
    let (dir, _keep) = match args.dir {
        Some(d) => (d, None),
        None => {
            let t = tempfile::Builder::new().prefix("citywatch-demo-").tempdir()?;
            (t.path().to_owned(), Some(t.keep()))
        }
    };
    let data = dir.join("city");
    let out = dir.join("alerts");
    println!("generating a demo city ({} subscribers, 1 day) in {}", args.subscribers, data.display());
    let gen_summary = citywatch_datasets::generate(&citywatch_datasets::GenOptions {
        subscribers: args.subscribers,
        out: data.clone(),
        progress: true,
        ..citywatch_datasets::GenOptions::default()
    })?;
    println!("{gen_summary}");
    println!("replaying it through {} model(s) with {} workers", models().len(), args.workers);
    let opts = ReplayOptions {
        input: data,
        out: Some(out.clone()),
        workers: args.workers,
        progress: true,
        ..ReplayOptions::default()
    };
    let outcome = replay::replay(&opts, models())?;
    print!("{}", outcome.summary);
    println!("{}", outcome.stats);
    println!("\nfirst alerts:");
    for a in outcome.alerts.iter().take(5) {
        println!(
            "  [{}] {} {} -> {}: {}",
            a.severity,
            citywatch_engine::lateness::utc_short(a.event_ts_ms),
            a.kind,
            a.assignee.as_deref().unwrap_or("unassigned"),
            a.summary
        );
    }
    println!("\nall alerts in {}", out.display());
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(a) => run_demo(a),
        Command::Replay(a) => run_replay(a),
        Command::Gen(a) => run_gen(a),
        Command::Eval(a) => run_eval(a),
        Command::Models { cards } => {
            for m in models() {
                println!("{} {}  settings: {}", m.name(), m.version(), m.config());
                if cards {
                    println!("{}\n", m.card());
                }
            }
            Ok(())
        }
    }
}

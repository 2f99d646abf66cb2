//! The `citywatch` command line. Thin by design: it parses arguments, builds
//! the model registration list, and calls library code; everything testable
//! lives in the crates.

mod feed;
mod progress;
mod scaffold;

/// mimalloc rather than glibc's malloc: 13-14% less CPU on a replay (see the
/// workspace Cargo.toml and bench/PIPELINE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use citywatch_engine::contract::Table;
use citywatch_engine::lateness::{parse_date_ms, parse_duration_ms};
use citywatch_engine::model::Model;
use citywatch_engine::replay::{self, Cluster, ReplayOptions, Speed};
use citywatch_engine::settings::Settings;
use citywatch_engine::share::LogSource;
use clap::{Args, Parser, Subcommand};

use citywatch_registry::{Registry, models, registry};

/// The live engine as the server's pipeline, plus the hotspot model's surface.
struct ServedPipeline {
    live: citywatch_server::LivePipeline,
    surface: citywatch_risk_hotspot::SurfaceHandle,
}

impl citywatch_server::Pipeline for ServedPipeline {
    fn ingest(
        &self,
        events: Vec<citywatch_engine::event::Event>,
    ) -> std::result::Result<u64, citywatch_server::PipelineRefusal> {
        self.live.ingest(events)
    }

    fn ingest_keyed(
        &self,
        key: Option<&str>,
        events: Vec<citywatch_engine::event::Event>,
    ) -> std::result::Result<citywatch_server::Applied, citywatch_server::PipelineRefusal> {
        self.live.ingest_keyed(key, events)
    }

    fn ingest_log(
        &self,
        key: &str,
        events: Vec<citywatch_engine::event::Event>,
    ) -> std::result::Result<citywatch_server::Applied, citywatch_server::PipelineRefusal> {
        self.live.ingest_log(key, events)
    }

    fn restore(&self) -> std::result::Result<String, String> {
        self.live.restore()
    }

    fn queue_depth(&self) -> usize {
        self.live.queue_depth()
    }

    fn journal_lag_bytes(&self) -> u64 {
        self.live.journal_lag_bytes()
    }

    fn log_position(&self) -> Option<String> {
        self.live.log_position()
    }

    fn advance_clock(&self, now_ms: u64) {
        self.live.advance_clock(now_ms);
    }

    fn watermark(&self) -> Option<u64> {
        self.live.watermark()
    }

    fn risk_surface(&self) -> Vec<(String, f64)> {
        self.surface.top_cells(500)
    }

    fn unit_directory(&self) -> citywatch_engine::reference::UnitDirectory {
        self.live.unit_directory()
    }
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
    /// Generate a small synthetic city, serve the console, and feed the city through it live (no data, no config needed).
    Demo(DemoArgs),
    /// Run the live service: ingest API, alert store, push, console (see server/README.md).
    Serve(ServeArgs),
    /// Issue an access token for an officer (only its argon2 hash is stored).
    Token(TokenArgs),
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Replay a dataset folder through the models, deterministically.
    Replay(ReplayArgs),
    /// Generate a synthetic city (or lay out the real Toronto incidents) as a dataset folder.
    Gen(GenArgs),
    /// Write a dataset folder's calls, alarms and patrols into Kafka topics (one JSON row per record).
    Publish(PublishArgs),
    /// Import an analyst's export into a dataset folder.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Score a replay's alerts: fraud (against the dataset's labels, beside the simple rule), hotspots (PAI/PEI*), officer load.
    Eval(EvalArgs),
    /// Train a learned model on labelled datasets (today: `fraud_call`).
    Train(TrainArgs),
    /// List the registered models with their versions and settings.
    Models {
        /// Print each model's card too.
        #[arg(long)]
        cards: bool,
    },
    /// Start a new model: writes models/NAME from the template (card, dataflow, reference, 1/2/4-worker test) and registers it.
    NewModel {
        /// The model's name, in snake case (e.g. alarm_burst): hashed into every alert id.
        name: String,
        /// The citywatch repository's root.
        #[arg(long, default_value = ".")]
        root: PathBuf,
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
    /// Read calls, alarms and patrols from the Kafka topics `<topic-prefix><table>` on these
    /// brokers (comma-separated host:port) instead of --input, which then gives the reference tables.
    #[arg(long)]
    brokers: Option<String>,
    /// Prefix of the topics (with --brokers).
    #[arg(long, default_value = "citywatch.")]
    topic_prefix: String,
    /// Also write the alerts to the topic `<topic-prefix>alerts`, keyed by alert id (ids already there are skipped).
    #[arg(long, requires = "brokers")]
    alerts_to_log: bool,
    /// What the topics' record values hold: `json` (one row each) or `arrow` (an Arrow IPC stream of rows).
    #[arg(long, default_value = "json", requires = "brokers")]
    log_format: citywatch_kafka::ValueFormat,
    /// Name a table's topic outright, TABLE=TOPIC (calls, alarms, patrols, alerts); repeatable.
    #[arg(long = "topic", value_name = "TABLE=TOPIC", requires = "brokers")]
    topics: Vec<String>,
    /// What --alerts-to-log writes: `json` (a row of alerts.ndjson) or `cap` (a CAP 1.2 message).
    #[arg(long, default_value = "json", requires = "alerts_to_log")]
    alerts_format: citywatch_kafka::AlertFormat,
    /// CAP `<sender>` of the alert messages (with --alerts-format cap).
    #[arg(long, default_value = "citywatch@localhost", requires = "alerts_to_log")]
    cap_sender: String,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Args, Debug)]
struct PublishArgs {
    /// Dataset folder.
    #[arg(long)]
    input: PathBuf,
    /// Kafka brokers, comma-separated host:port.
    #[arg(long)]
    brokers: String,
    /// Topics are `<topic-prefix><table>`.
    #[arg(long, default_value = "citywatch.")]
    topic_prefix: String,
    /// Partitions of each topic created (an existing topic keeps its own).
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Record values: `json` (one row each, as the ingest API's NDJSON lines) or `arrow` (an Arrow IPC stream of a batch's rows per partition).
    #[arg(long, default_value = "json")]
    log_format: citywatch_kafka::ValueFormat,
    /// Name a table's topic outright, TABLE=TOPIC (calls, alarms, patrols); repeatable.
    #[arg(long = "topic", value_name = "TABLE=TOPIC")]
    topics: Vec<String>,
    /// `max` (as fast as the broker takes them), or a multiple of real time (e.g. 60): the tables
    /// merged in event time, each record produced when it falls due (JSON values only).
    #[arg(long, default_value = "max")]
    speed: String,
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
    /// Adversarial scenario families, comma-separated: sim-farms, aged-sims,
    /// call-backs, late-reports, legit-virtual, legit-fanout; `hard` for all
    /// (see datasets/README.md). Default: none (today's city).
    #[arg(long, default_value = "none")]
    families: String,
    /// Answered calls per day per million subscribers of the standard fraud
    /// campaigns (default 1500; raise it for enough losses in a small city).
    #[arg(long)]
    fraud_per_million: Option<f64>,
    /// Fresh fraud SIMs are activated minutes before their first call, their
    /// subscribers rows dated from then (`valid_from_ms`; docs/input-contract.md).
    #[arg(long)]
    intraday_registrations: bool,
    /// Community and station officers work 3 x 8 h shifts with hand-overs at
    /// 00:00, 08:00 and 16:00 UTC (a dated officers table).
    #[arg(long)]
    shifts: bool,
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
    /// Score hotspot forecasts only for periods that end by this date (YYYY-MM-DD; default: the end of the data).
    #[arg(long)]
    score_until: Option<String>,
    /// Alarm categories the hotspot evaluation scores, comma-separated (default: the crimes
    /// burglary, theft, robbery, assault, vehicle_theft).
    #[arg(long)]
    kinds: Option<String>,
    /// Forecasts at 00:00 UTC plus this many hours (local midnight: 5 for Toronto).
    #[arg(long, default_value_t = 0)]
    day_offset_h: u64,
    /// Config file (TOML) whose `[models.risk_hotspot]` section the hotspot ranking uses.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Skip the hotspot ranking evaluation (it replays the risk surface over every day of the data); hotspot alerts (with --alerts) are still scored.
    #[arg(long)]
    no_hotspot: bool,
    /// Skip the simple-rule fraud baseline (it reads the dataset's calls again).
    #[arg(long)]
    no_rule: bool,
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// The model to train: `fraud_call`.
    model: String,
    /// Labelled dataset folders (`citywatch gen`), in a fixed order.
    #[arg(long, num_args = 1.., required = true)]
    input: Vec<PathBuf>,
    /// The weights file to write (JSON).
    #[arg(long)]
    out: PathBuf,
    /// Precision the in-progress threshold is chosen for, on the training decisions (weighted to
    /// `--prevalence` when given); the model's `precision_target` setting picks another row.
    #[arg(long, default_value_t = 0.6)]
    precision: f64,
    /// Precision the number threshold is chosen for.
    #[arg(long, default_value_t = 0.98)]
    number_precision: f64,
    /// Leave the callers of these families out (comma-separated: standard, aged_sim, sim_farm, legit_virtual, legit_fanout).
    #[arg(long, value_delimiter = ',')]
    exclude_family: Vec<String>,
    /// Train without the identity features (prefix class, registration, reports): the ablation.
    #[arg(long)]
    no_identity: bool,
    /// The last decision point of an open call, seconds after it was answered.
    #[arg(long, default_value_t = 120)]
    open_s: u64,
    /// Earlier decision points, seconds (comma-separated, ascending, below --open-s, e.g. 30,60;
    /// the file records them as the model's default `early_checks_s`). Default: none.
    #[arg(long, value_delimiter = ',', default_value = "")]
    early_checks: Vec<String>,
    /// Trees to grow.
    #[arg(long, default_value_t = 60)]
    trees: usize,
    /// Depth of each tree.
    #[arg(long, default_value_t = 5)]
    depth: u32,
    /// Shrinkage (learning rate) of each tree.
    #[arg(long, default_value_t = 0.1)]
    shrinkage: f32,
    /// Fewest training decisions in a leaf (larger: smoother, less confident trees).
    #[arg(long, default_value_t = 20)]
    min_leaf: usize,
    /// L2 penalty on leaf values, in decisions' weight (0: the unregularised Newton step, which makes
    /// the trees certain of small leaves of rare fraud rows).
    #[arg(long, default_value_t = 10.0)]
    l2: f64,
    /// Largest leaf value before shrinkage, either way (0: unbounded; a leaf of fraud decisions
    /// only would otherwise take its whole, unbounded Newton step in one tree).
    #[arg(long, default_value_t = 0.0)]
    max_step: f64,
    /// The trees see every fraud decision and one other decision in this many, weighted by it (1: all).
    #[arg(long, default_value_t = 4)]
    negative_stride: u64,
    /// Also write the training decisions to this CSV file (keys, family, label, features), for analysis.
    #[arg(long)]
    dump: Option<PathBuf>,
    /// The share of fraud calls among the calls the model judges where it will run (calls still
    /// open at the first decision point): each input's other calls are weighted so that its fraud
    /// share is this, and thresholds are chosen for precision at it. Unset: every call weighs 1.
    #[arg(long)]
    prevalence: Option<f64>,
    /// Version written into the file (the alerts' model_version carries it).
    #[arg(long, default_value = "dev")]
    version: String,
    /// Replay workers (never changes the result).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// HMAC key for pseudonyms (default: the demo key).
    #[arg(long)]
    pseudonym_key: Option<String>,
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Where to put the generated city, the store and the alerts (default: a fresh temporary folder).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Subscribers of the demo city.
    #[arg(long, default_value_t = 20_000)]
    subscribers: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Address of the console and API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Pace of the live feed, a multiple of real time (60: a day in 24 minutes).
    #[arg(long, default_value_t = 60.0)]
    speed: f64,
    /// Replay the city at full speed and print the alerts instead of serving them.
    #[arg(long)]
    no_serve: bool,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Config file (TOML): engine settings, `reference = DIR`, `[models.*]`, `[server]`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Dataset folder with the reference tables (grids, officers, subscribers); overrides the config.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Worker threads (default 2).
    #[arg(long)]
    workers: Option<usize>,
}

#[derive(Args, Debug)]
struct TokenArgs {
    /// Config file whose `[server] credentials_path` receives the token hash.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The officer_id the token speaks for.
    #[arg(long, required_unless_present = "revoke", conflicts_with = "revoke")]
    officer: Option<String>,
    /// Revoke a token instead: its public id (the 8 hex digits after `cw_`) or
    /// the whole token. A running server stops accepting it within
    /// `credentials_poll_ms` (2 s), or at once on SIGHUP.
    #[arg(long)]
    revoke: Option<String>,
}

#[derive(Subcommand, Debug)]
enum ImportCommand {
    /// An incident export (CSV or Parquet) to a dataset's alarms table; rejected rows to rejected.ndjson.
    Incidents(ImportIncidentsArgs),
}

#[derive(Args, Debug)]
struct ImportIncidentsArgs {
    /// The export: a .csv file (header row, quoted fields) or a .parquet file.
    #[arg(long)]
    input: PathBuf,
    /// The dataset folder to write (alarms.parquet, rejected.ndjson, and officers.parquet if absent).
    #[arg(long)]
    out: PathBuf,
    /// Column of the incident time.
    #[arg(long)]
    time: String,
    /// Format of the time, a chrono pattern ('%m/%d/%Y %I:%M:%S %p') or rfc3339, epoch_s, epoch_ms;
    /// repeat the flag for several formats, tried in order.
    #[arg(long = "time-format", required = true)]
    time_formats: Vec<String>,
    /// Time zone of local times (IANA name, e.g. America/Toronto; or UTC).
    #[arg(long)]
    time_zone: String,
    /// Latitude column (WGS84 degrees); with --lon.
    #[arg(long, requires = "lon", conflicts_with_all = ["x", "y", "epsg"])]
    lat: Option<String>,
    /// Longitude column (WGS84 degrees).
    #[arg(long, requires = "lat")]
    lon: Option<String>,
    /// Projected x (easting) column; with --y and --epsg.
    #[arg(long, requires_all = ["y", "epsg"])]
    x: Option<String>,
    /// Projected y (northing) column.
    #[arg(long, requires = "x")]
    y: Option<String>,
    /// EPSG code of x/y (e.g. 2263 for New York state plane, 32617 for UTM 17N).
    #[arg(long, requires = "x")]
    epsg: Option<u16>,
    /// Column of the source category.
    #[arg(long)]
    category: String,
    /// Mapping file, CSV `source,category[,priority]` (category: a contract category or `skip`; source `*`: any other).
    #[arg(long)]
    categories: PathBuf,
    /// Column of the incident id (default: the row number).
    #[arg(long)]
    id: Option<String>,
    /// Column of the priority, 1 (most urgent) to 4 (default: the mapping's, else 3).
    #[arg(long)]
    priority: Option<String>,
    /// Officer id of the city analyst written when the folder has no officers table.
    #[arg(long, default_value = "A01")]
    analyst: String,
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Check the audit log's keyed chain; exits non-zero when a row was edited, reordered or deleted,
    /// or when `--expect-head` (a head printed earlier by `audit head`) is no longer in the chain.
    Verify {
        #[command(flatten)]
        store: AuditStore,
        /// A head recorded earlier (`citywatch audit head`): fail unless it is still in the chain,
        /// which catches rows deleted from the end.
        #[arg(long)]
        expect_head: Option<String>,
    },
    /// Print the chain's head (row count and hash) to record outside the database.
    Head {
        #[command(flatten)]
        store: AuditStore,
    },
}

#[derive(Args, Debug)]
struct AuditStore {
    /// The store (SQLite file); default: the config's `[server] store_path`.
    #[arg(long)]
    store: Option<PathBuf>,
    /// Config file: the store and the audit key (`[server] audit_key`, or derived from `vault_key`).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// The models to run, configured from the settings and filtered by `--models`.
fn selected_models(settings: &Settings, names: &[String]) -> Result<Vec<Box<dyn Model>>> {
    configured(models(), settings, names)
}

fn configured(mut all: Vec<Box<dyn Model>>, settings: &Settings, names: &[String]) -> Result<Vec<Box<dyn Model>>> {
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
    match settings.max_clock_skew.as_deref().map(str::trim) {
        None => {}
        Some("off") => opts.max_ahead_ms = None,
        Some(s) => {
            opts.max_ahead_ms = Some(
                parse_duration_ms(s)
                    .with_context(|| format!("max_clock_skew: '{s}' is not a duration; use e.g. 5m, 1h, or off"))?,
            )
        }
    }
    if let Some(k) = engine.pseudonym_key.clone().or_else(|| settings.pseudonym_key.clone()) {
        opts.pseudonym_key = k;
    }
    if let Some(cc) = settings.home_country_code.clone() {
        opts.home_cc = cc;
    }
    opts.fallback_officer = settings.fallback_officer.clone();
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
    let log = match args.brokers.as_deref() {
        Some(b) => Some(
            citywatch_kafka::LogConfig {
                format: args.log_format,
                alert_format: args.alerts_format,
                cap_sender: args.cap_sender.clone(),
                ..citywatch_kafka::LogConfig::new(b, &args.topic_prefix)
            }
            .with_topics(&args.topics.join(","))
            .map_err(|e| anyhow::anyhow!("--topic {e}"))?,
        ),
        None => None,
    };
    let opts = ReplayOptions {
        input: args.input,
        out: Some(args.out.clone()),
        workers: args.workers,
        cluster,
        speed: args.speed.parse::<Speed>()?,
        progress: (!args.quiet).then(progress::Bar::shared),
        log: log.clone().map(|c| Arc::new(citywatch_kafka::KafkaSource::new(c)) as Arc<dyn LogSource>),
        ..replay_options(&args.engine, &settings)?
    };
    let outcome = replay::replay(&opts, models)?;
    if let Some(cfg) = log.filter(|_| args.alerts_to_log) {
        let mut sink = citywatch_kafka::AlertSink::open(&cfg)?;
        let known = sink.known();
        let sent = sink.send(&outcome.alerts)?;
        println!(
            "alerts to {}: {sent} sent, {} already there ({known} ids before)",
            cfg.topic("alerts"),
            outcome.alerts.len() - sent
        );
    }
    if opts.cluster.as_ref().is_none_or(|c| c.process == 0) {
        print!("{}", outcome.summary);
        println!("{}", outcome.stats);
        println!("outputs in {}", args.out.display());
    }
    Ok(())
}

fn run_publish(args: PublishArgs) -> Result<()> {
    let cfg = citywatch_kafka::LogConfig {
        format: args.log_format,
        ..citywatch_kafka::LogConfig::new(&args.brokers, &args.topic_prefix)
    }
    .with_topics(&args.topics.join(","))
    .map_err(|e| anyhow::anyhow!("--topic {e}"))?;
    let speed = match args.speed.parse::<Speed>()? {
        Speed::Max => None,
        Speed::Times(x) => Some(x),
    };
    let started = std::time::Instant::now();
    let opts = citywatch_kafka::PublishOptions { input: args.input, partitions: args.partitions, speed };
    let stats = citywatch_kafka::publish(&cfg, &opts)?;
    let secs = started.elapsed().as_secs_f64();
    for (t, n) in Table::STREAMS.iter().zip(stats.records) {
        println!("{:<8} {n:>10} records -> {}", t.name(), cfg.topic(t.name()));
    }
    let total: u64 = stats.records.iter().sum();
    println!("{total} records in {secs:.1} s ({:.0} records/s)", total as f64 / secs.max(1e-9));
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
            let mut rates = citywatch_datasets::Rates::default();
            rates.fraud.families = citywatch_datasets::fraud::Families::parse(&args.families)
                .map_err(|e| anyhow::anyhow!("--families: {e}"))?;
            if let Some(f) = args.fraud_per_million {
                if !(f.is_finite() && f >= 0.0) {
                    bail!("--fraud-per-million: {f} is not a rate; give calls per day per million subscribers, >= 0");
                }
                rates.fraud.calls_per_million_per_day = f;
            }
            let opts = citywatch_datasets::GenOptions {
                rates,
                days: args.days,
                subscribers: args.subscribers,
                seed: args.seed,
                out: args.out,
                start_ms,
                threads: args.threads,
                progress: !args.quiet,
                intraday_registrations: args.intraday_registrations,
                shifts: args.shifts,
            };
            let summary = citywatch_datasets::generate(&opts)?;
            println!("{summary}");
        }
        other => bail!("--scenario: unknown scenario `{other}`; use `city` or `toronto`"),
    }
    Ok(())
}

fn run_import_incidents(a: ImportIncidentsArgs) -> Result<()> {
    let opts = citywatch_datasets::import::ImportOptions {
        input: a.input,
        out: a.out.clone(),
        time: a.time,
        time_formats: a.time_formats,
        time_zone: a.time_zone,
        lat_lon: a.lat.zip(a.lon),
        xy: match (a.x, a.y, a.epsg) {
            (Some(x), Some(y), Some(e)) => Some((x, y, e)),
            _ => None,
        },
        category: a.category,
        categories: a.categories,
        id: a.id,
        priority: a.priority,
        analyst: a.analyst,
    };
    let summary = citywatch_datasets::import::import_incidents(&opts)?;
    println!("{summary}");
    println!("dataset in {} (rejected rows in rejected.ndjson)", a.out.display());
    Ok(())
}

fn run_eval(args: EvalArgs) -> Result<()> {
    let key = args.pseudonym_key.clone().unwrap_or_else(|| citywatch_engine::pseudonym::DEMO_KEY.to_owned());
    let mut report = serde_json::Map::new();
    let has_labels =
        citywatch_engine::parquet_io::locate(&args.input, citywatch_engine::contract::Table::FraudLabels)?.is_some();
    if let Some(dir) = &args.alerts {
        let alerts = citywatch_engine::alert::read_parquet(&dir.join("alerts.parquet"))?;
        if has_labels {
            let fraud = citywatch_fraud_call::eval::evaluate(&args.input, &alerts, &key)?;
            println!("{fraud}");
            report.insert("fraud".into(), serde_json::to_value(&fraud)?);
            if !args.no_rule {
                // The simple-rule baseline, from the same calls.
                let rule_alerts = citywatch_fraud_call::rule::alerts(&args.input, &key)?;
                let rule = citywatch_fraud_call::eval::evaluate_model(
                    &args.input,
                    &rule_alerts,
                    &key,
                    citywatch_fraud_call::rule::MODEL,
                )?;
                println!("{rule}");
                println!("{}", citywatch_fraud_call::eval::side_by_side(&fraud, &rule));
                report.insert("fraud_simple_rule".into(), serde_json::to_value(&rule)?);
            }
        } else {
            println!("fraud: no labels/fraud_calls in {}; skipped", args.input.display());
        }
    }
    let has_alarms =
        citywatch_engine::parquet_io::locate(&args.input, citywatch_engine::contract::Table::Alarms)?.is_some();
    if has_alarms && (!args.no_hotspot || args.alerts.is_some()) {
        let mut opts = citywatch_risk_hotspot::eval::EvalOptions {
            alerts: args.alerts.clone(),
            day_offset_ms: args.day_offset_h * 3_600_000,
            ..Default::default()
        };
        if let Some(d) = &args.score_from {
            let ms = parse_date_ms(d).with_context(|| format!("--score-from: '{d}' is not a date; use YYYY-MM-DD"))?;
            opts.score_from_ms = Some(ms as u64);
        }
        if let Some(d) = &args.score_until {
            let ms = parse_date_ms(d).with_context(|| format!("--score-until: '{d}' is not a date; use YYYY-MM-DD"))?;
            opts.score_until_ms = Some(ms as u64);
        }
        if let Some(k) = &args.kinds {
            opts.kinds = citywatch_risk_hotspot::eval::parse_kinds(k)?;
        }
        if args.config.is_some() {
            let settings = load_settings(args.config.as_ref())?;
            let mut model = citywatch_risk_hotspot::RiskHotspot::default();
            if let Some(section) = settings.models.get("risk_hotspot") {
                model.configure(&serde_json::to_value(section)?)?;
            }
            opts.config = model.config;
        }
        if let Some(dir) = &args.alerts {
            // What officers receive, beside what the same budget would send by a simple rule.
            let alerts = citywatch_engine::alert::read_parquet(&dir.join("alerts.parquet"))?;
            let scored = citywatch_risk_hotspot::alert_eval::score_dataset(
                &args.input,
                &alerts,
                &opts.kinds,
                opts.score_from_ms,
                opts.score_until_ms,
            )?;
            if scored.alerts > 0 {
                println!("{scored}\n");
                report.insert("hotspot_alerts".into(), serde_json::to_value(&scored)?);
            }
        }
        if args.no_hotspot {
            return finish_eval(report, &args);
        }
        let hotspot = citywatch_risk_hotspot::eval::evaluate_dataset(&args.input, &opts)?;
        if hotspot.rows.iter().all(|r| r.periods == 0) {
            // Every row would be zeros: say why instead of printing the table.
            println!(
                "hotspot: nothing to score: forecasts are scored from {} to {}, which holds no whole forecast \
                 period ({} alarms read). The data is too short: use several days or more (e.g. `citywatch gen \
                 --days 28`), or move the split with --score-from YYYY-MM-DD.",
                citywatch_engine::lateness::utc_short(hotspot.scored_from_ms as i64),
                citywatch_engine::lateness::utc_short(hotspot.scored_until_ms as i64),
                hotspot.alarms
            );
        } else {
            println!("{hotspot}");
        }
        report.insert("hotspot".into(), serde_json::to_value(&hotspot)?);
    }
    finish_eval(report, &args)
}

/// Writes the evaluation's JSON report, or says that there was nothing to evaluate.
fn finish_eval(report: serde_json::Map<String, serde_json::Value>, args: &EvalArgs) -> Result<()> {
    if report.is_empty() {
        bail!("nothing to evaluate: {} has no labels/fraud_calls (with --alerts) and no alarms", args.input.display());
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn run_train(args: TrainArgs) -> Result<()> {
    if args.model != "fraud_call" {
        bail!("citywatch train: unknown model `{}`; only `fraud_call` is trained", args.model);
    }
    for (name, p) in [("--precision", args.precision), ("--number-precision", args.number_precision)] {
        if !(p > 0.0 && p <= 1.0) {
            bail!("{name} {p}: give a precision in (0, 1]");
        }
    }
    if args.trees == 0 || !(1..=12).contains(&args.depth) || !(args.shrinkage > 0.0 && args.shrinkage <= 1.0) {
        bail!(
            "--trees {} --depth {} --shrinkage {}: give at least one tree, a depth in 1..=12 and a shrinkage in (0, 1]",
            args.trees,
            args.depth,
            args.shrinkage
        );
    }
    if !(args.l2 >= 0.0 && args.l2.is_finite() && args.max_step >= 0.0 && args.max_step.is_finite()) {
        bail!("--l2 {} --max-step {}: give values of 0 or more", args.l2, args.max_step);
    }
    if let Some(p) = args.prevalence
        && !(p > 0.0 && p < 1.0)
    {
        bail!("--prevalence {p}: give the deployment's fraud share of the calls judged, in (0, 1)");
    }
    let known = ["standard", "aged_sim", "sim_farm", "legit_virtual", "legit_fanout", "everyday"];
    if let Some(f) = args.exclude_family.iter().find(|f| !known.contains(&f.as_str())) {
        bail!("--exclude-family: unknown family `{f}`; use {}", known.join(", "));
    }
    let early_checks_s = args
        .early_checks
        .iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.trim().parse::<u64>().with_context(|| format!("--early-checks: `{p}` is not a number of seconds")))
        .collect::<Result<Vec<u64>>>()?;
    let opts = citywatch_fraud_call::train::TrainOptions {
        inputs: args.input,
        pseudonym_key: args.pseudonym_key.unwrap_or_else(|| citywatch_engine::pseudonym::DEMO_KEY.to_owned()),
        workers: args.workers.max(1),
        exclude: args.exclude_family,
        no_identity: args.no_identity,
        open_s: args.open_s,
        early_checks_s,
        fit: citywatch_fraud_call::learned::FitOptions {
            trees: args.trees,
            depth: args.depth,
            shrinkage: args.shrinkage,
            negative_stride: args.negative_stride.max(1),
            min_leaf: args.min_leaf.max(1),
            l2: args.l2,
            max_step: args.max_step,
            precision_target: args.precision,
            number_precision_target: args.number_precision,
            ..Default::default()
        },
        version: args.version,
        dump: args.dump,
        prevalence: args.prevalence,
    };
    let file = citywatch_fraud_call::train::train(&opts)?;
    std::fs::write(&args.out, file.to_text().map_err(anyhow::Error::msg)?)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!("wrote {}: {}", args.out.display(), file.training);
    Ok(())
}

/// The server settings from the config's `[server]` table, with the engine's pseudonym key.
fn server_config(settings: &Settings) -> Result<citywatch_server::ServerConfig> {
    let mut config: citywatch_server::ServerConfig = match &settings.server {
        Some(table) => table.clone().try_into().context("the [server] table of the config file")?,
        None => citywatch_server::ServerConfig::default(),
    };
    if let Some(k) = &settings.pseudonym_key {
        config.pseudonym_key = k.clone();
    }
    if let Some(cc) = &settings.home_country_code {
        config.home_country_code = cc.clone();
    }
    Ok(config)
}

/// Refuses to serve on the public demo keys: `serve` needs an explicit
/// pseudonym key (top level or `[server]`) and an explicit `[server]
/// vault_key`, or numbers would be pseudonymised, and kept numbers sealed,
/// with keys anyone can read in the source.
fn require_keys(settings: &Settings, config: &citywatch_server::ServerConfig) -> Result<()> {
    let in_server = |k: &str| settings.server.as_ref().and_then(|t| t.get(k)).is_some();
    if settings.pseudonym_key.is_none() && !in_server("pseudonym_key") {
        bail!(
            "no pseudonym_key in the config: set `pseudonym_key = \"<a long random secret>\"` at the top of the \
             config (the same key the data's pseudonyms were made with); serve will not fall back to the public demo key"
        );
    }
    if config.pseudonym_key == citywatch_engine::pseudonym::DEMO_KEY {
        bail!("pseudonym_key is the public demo key; set a secret of your own");
    }
    match &config.vault_key {
        None if !config.keep_numbers => Ok(()),
        None => bail!(
            "no [server] vault_key in the config: set `vault_key = \"<a long random secret>\"` (it seals the kept \
             phone numbers; keep it out of the database's backups), or `keep_numbers = false`"
        ),
        Some(k) if k == &config.pseudonym_key => bail!("[server] vault_key must differ from pseudonym_key"),
        Some(_) => Ok(()),
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (what systemd, Docker and
/// Kubernetes send): both drain the same way.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Starts the live engine and serves until Ctrl-C (or until `shutdown` fires).
fn serve_live(
    settings: &Settings,
    config: citywatch_server::ServerConfig,
    reference: citywatch_engine::reference::Reference,
    workers: usize,
    on_ready: impl FnOnce() + Send + 'static,
) -> Result<()> {
    let Registry { models, risk_surface: surface } = registry();
    let models = configured(models, settings, &[])?;
    let lateness_ms =
        replay_options(&EngineArgs { config: None, pseudonym_key: None, lateness: None, models: vec![] }, settings)?
            .lateness_ms;
    let (tx, rx) = crossbeam_channel::bounded(4096);
    let journal = config.journal_options();
    tracing::info!(
        journal = %journal.dir.display(),
        fsync = if journal.fsync { "on: answered after fdatasync" } else { "off" },
        retention_s = journal.retention_ms / 1000,
        segment_bytes = journal.segment_bytes,
        max_bytes = journal.max_bytes,
        workers,
        lateness_ms,
        "live engine starting"
    );
    let jurisdiction = Arc::clone(&reference.jurisdiction);
    let units = reference.units.clone();
    let engine = citywatch_engine::live::LiveEngine::start(
        models,
        reference,
        citywatch_engine::live::LiveOptions { workers, lateness_ms, journal: Some(journal) },
        tx,
    )?;
    let pipeline = Arc::new(ServedPipeline { live: citywatch_server::LivePipeline::new(engine, units), surface });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&config.addr)
            .await
            .with_context(|| format!("binding {} (is another citywatch running? pass --addr)", config.addr))?;
        on_ready();
        let shutdown = async {
            stop_signal().await;
            tracing::info!("stopping: draining requests in flight, the engine and the store");
        };
        citywatch_server::serve_on(listener, config, pipeline, rx, jurisdiction, shutdown).await?;
        anyhow::Ok(())
    })
}

fn run_serve(args: ServeArgs) -> Result<()> {
    let settings = load_settings(args.config.as_ref())?;
    let config = server_config(&settings)?;
    require_keys(&settings, &config)?;
    if !config.credentials_path.exists() {
        bail!(
            "no credentials file at {}; issue a token first: citywatch token --officer <officer_id>{}",
            config.credentials_path.display(),
            args.config.as_ref().map(|c| format!(" --config {}", c.display())).unwrap_or_default()
        );
    }
    let ps = citywatch_engine::pseudonym::Pseudonymiser::new(&config.pseudonym_key, &config.home_country_code);
    let reference = match args.reference.or_else(|| settings.reference.clone()) {
        Some(dir) => {
            let (r, rejects) = citywatch_engine::load::reference(&dir, &ps)?;
            if !rejects.is_empty() {
                eprintln!("warning: {} bad reference row(s) skipped, e.g. {:?}", rejects.len(), rejects[0]);
            }
            r
        }
        None => citywatch_engine::reference::Reference::empty(),
    };
    let mut reference = reference;
    if settings.fallback_officer.is_some() {
        Arc::make_mut(&mut reference.jurisdiction).set_fallback(settings.fallback_officer.clone());
    }
    let workers = args.workers.or(settings.workers).unwrap_or(2);
    let addr = config.addr.clone();
    serve_live(&settings, config, reference, workers, move || {
        println!("citywatch serving on http://{addr}/ (Ctrl-C to stop)");
    })
}

fn run_token(args: TokenArgs) -> Result<()> {
    let settings = load_settings(args.config.as_ref())?;
    let config = server_config(&settings)?;
    if let Some(id) = &args.revoke {
        let path = &config.credentials_path;
        let mut file = citywatch_server::auth::CredentialsFile::load(path)?;
        let gone = file.revoke(id);
        if gone.is_empty() {
            bail!(
                "no token `{id}` in {} ({} tokens); give its public id (cw_<id>_...)",
                path.display(),
                file.tokens.len()
            );
        }
        file.save(path)?;
        eprintln!(
            "revoked {} token(s) of {} in {}; a running server drops them within its credentials_poll_ms",
            gone.len(),
            gone.join(", "),
            path.display()
        );
        return Ok(());
    }
    let officer = args.officer.clone().unwrap_or_default();
    let Some(reference) = settings.reference.as_ref() else {
        bail!(
            "citywatch token needs the officers table to check `{}` exists: set `reference = \"<dataset folder>\"` \
             in the config",
            officer
        );
    };
    let officers = match citywatch_engine::parquet_io::locate(reference, citywatch_engine::contract::Table::Officers)? {
        Some(files) => citywatch_engine::load::read_officers(&files, &mut Vec::new())?,
        None => bail!("no officers table in {}", reference.display()),
    };
    if !officers.iter().any(|o| o.officer_id == officer) {
        bail!(
            "no officer `{}` in the officers table of {} ({} officers); a token must speak for an existing officer",
            officer,
            reference.display(),
            officers.len()
        );
    }
    let path = &config.credentials_path;
    let mut file = if path.exists() {
        citywatch_server::auth::CredentialsFile::load(path)?
    } else {
        citywatch_server::auth::CredentialsFile::default()
    };
    let token = file.issue(&officer)?;
    file.save(path)?;
    println!("{token}");
    eprintln!("token for {} added to {} (only its hash is stored; keep the token safe)", officer, path.display());
    Ok(())
}

fn run_audit(command: AuditCommand) -> Result<()> {
    let (AuditCommand::Verify { store: args, .. } | AuditCommand::Head { store: args }) = &command;
    let config = server_config(&load_settings(args.config.as_ref())?)?;
    let store = args.store.clone().unwrap_or_else(|| config.store_path.clone());
    let report = citywatch_server::audit_verify(&store, &config.audit_key_bytes())?;
    if let Some((seq, what)) = &report.broken {
        bail!("audit chain BROKEN at row {seq}: {what} ({} rows checked, store {})", report.rows, store.display());
    }
    if let Some(what) = &report.state {
        bail!(
            "alert state does NOT match the audit chain: {what} (chain intact, {} rows; store {})",
            report.rows,
            store.display()
        );
    }
    match command {
        AuditCommand::Head { .. } => println!("{} {}", report.rows, report.head),
        AuditCommand::Verify { expect_head, .. } => {
            if let Some(head) = expect_head
                && !report.contains(&head)
            {
                bail!(
                    "audit chain TRUNCATED or rewritten: the recorded head {head} is not in the chain \
                     ({} rows, head now {}, store {})",
                    report.rows,
                    report.head,
                    store.display()
                );
            }
            println!("audit chain intact: {} rows, head {}", report.rows, report.head);
        }
    }
    Ok(())
}

fn run_demo(args: DemoArgs) -> Result<()> {
    let dir = match args.dir.clone() {
        Some(d) => d,
        None => tempfile::Builder::new().prefix("citywatch-demo-").tempdir()?.keep(),
    };
    let data = dir.join("city");
    // Today's date, so the console's ages and times read naturally.
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let start_ms = now_ms - now_ms.rem_euclid(86_400_000);
    println!("generating a demo city ({} subscribers, 1 day) in {}", args.subscribers, data.display());
    let gen_summary = citywatch_datasets::generate(&citywatch_datasets::GenOptions {
        subscribers: args.subscribers,
        out: data.clone(),
        start_ms,
        progress: true,
        ..citywatch_datasets::GenOptions::default()
    })?;
    println!("{gen_summary}");
    if args.no_serve {
        return replay_demo(&data, &dir.join("alerts"), args.workers);
    }
    serve_demo(&dir, &data, &args, start_ms)
}

fn replay_demo(data: &Path, out: &Path, workers: usize) -> Result<()> {
    println!("replaying it through {} model(s) with {workers} workers", models().len());
    let opts = ReplayOptions {
        input: data.to_owned(),
        out: Some(out.to_owned()),
        workers,
        progress: Some(progress::Bar::shared()),
        // Today's whole day: up to a day ahead of the clock.
        max_ahead_ms: None,
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

/// The community officer whose area sees alerts soonest once the feed runs:
/// a full-speed replay of the day, then the community with the most alerts in
/// the first `window_ms` of event time (ties: the earliest). Returns the
/// officer id, the community, its alert count in the window and the first
/// alert's event time.
fn early_officer(
    data: &Path,
    jurisdiction: &citywatch_engine::jurisdiction::Jurisdiction,
    start_ms: i64,
    window_ms: i64,
    workers: usize,
) -> Result<Option<(String, String, usize, i64)>> {
    let opts = ReplayOptions { input: data.to_owned(), workers, ..ReplayOptions::default() };
    let outcome = replay::replay(&opts, models())?;
    let mut per: std::collections::BTreeMap<&str, (usize, i64)> = std::collections::BTreeMap::new();
    for a in outcome.alerts.iter().filter(|a| a.event_ts_ms < start_ms + window_ms) {
        if let Some(c) = a.community.as_deref() {
            let e = per.entry(c).or_insert((0, a.event_ts_ms));
            e.0 += 1;
            e.1 = e.1.min(a.event_ts_ms);
        }
    }
    let officer_of = |community: &str| {
        jurisdiction
            .officers()
            .iter()
            .find(|o| o.role == citywatch_engine::contract::Role::Community && o.scope == community)
            .map(|o| o.officer_id.clone())
    };
    let mut ranked: Vec<_> = per.into_iter().collect();
    ranked.sort_by_key(|(_, (n, first))| (std::cmp::Reverse(*n), *first));
    Ok(ranked.into_iter().find_map(|(c, (n, first))| officer_of(c).map(|o| (o, c.to_owned(), n, first))))
}

/// The one-line progress report of the demo's feed: event time (simulated),
/// events sent, alerts so far by model.
fn progress_line(t_ms: i64, speed: f64, fed: &feed::Fed, alerts: &[(String, u64)]) -> String {
    let alerts = if alerts.is_empty() {
        "none yet".to_owned()
    } else {
        alerts.iter().map(|(m, n)| format!("{m} {n}")).collect::<Vec<_>>().join(", ")
    };
    format!(
        "event time {} (simulated, {speed}x) | {} events | alerts: {alerts}",
        citywatch_engine::lateness::utc_short(t_ms),
        fed.rows
    )
}

fn serve_demo(dir: &Path, data: &Path, args: &DemoArgs, start_ms: i64) -> Result<()> {
    use std::io::{IsTerminal, Write};
    // Fresh random keys every run: the demo never runs on a key anyone can
    // read in the source. (Its pseudonyms differ from run to run.)
    let pseudonym_key = citywatch_server::auth::random_key()?;
    let settings = Settings { pseudonym_key: Some(pseudonym_key.clone()), ..Settings::default() };
    let config = citywatch_server::ServerConfig {
        addr: args.addr.clone(),
        // The feed drives event time; the wall clock must not.
        clock_tick_ms: 0,
        // The demo city is today's whole day, fed faster than real time: its
        // rows run ahead of the clock by up to a day.
        max_clock_skew_ms: 2 * 86_400_000,
        pseudonym_key,
        vault_key: Some(citywatch_server::auth::random_key()?),
        ..citywatch_server::ServerConfig::in_dir(dir)
    };
    println!("demo: random pseudonym and vault keys for this run (kept numbers cannot be read after it)");
    let ps = citywatch_engine::pseudonym::Pseudonymiser::new(&config.pseudonym_key, &config.home_country_code);
    let (reference, _) = citywatch_engine::load::reference(data, &ps)?;
    let tokens = citywatch_server::demo_credentials(&config.credentials_path, &reference.jurisdiction)?;
    // An officer whose area sees alerts in the first three minutes of the feed.
    let window_ms = (args.speed * 180_000.0) as i64;
    println!("finding a community officer whose area sees alerts early (a full-speed replay of the day)...");
    let early = early_officer(data, &reference.jurisdiction, start_ms, window_ms, args.workers)?;
    let community = match &early {
        Some((officer, community, n, first)) => {
            let mut file = citywatch_server::auth::CredentialsFile::load(&config.credentials_path)?;
            let token = file.issue(officer)?;
            file.save(&config.credentials_path)?;
            let wall_s = (first - start_ms) as f64 / 1000.0 / args.speed;
            let note =
                format!("community {community}: {n} alert(s) in the first 3 min, the first after ~{wall_s:.0} s");
            (officer.clone(), token, note)
        }
        None => (tokens.community.0.clone(), tokens.community.1.clone(), "no community alerts early in the day".into()),
    };
    let (addr, data, speed) = (args.addr.clone(), data.to_owned(), args.speed);
    let feed_token = tokens.analyst.1.clone();
    let dir = dir.to_owned();
    serve_live(&settings, config, reference, args.workers, move || {
        println!("\nconsole:   http://{addr}/");
        println!("analyst:   {} token {}", tokens.analyst.0, tokens.analyst.1);
        println!("community: {} token {}  ({})", community.0, community.1, community.2);
        println!("demo folder: {} (city data, alert store, credentials; delete it when done)", dir.display());
        println!(
            "feeding the city at {speed}x real time (a day in {:.0} min; event time is simulated); Ctrl-C to stop\n",
            24.0 * 60.0 / speed
        );
        std::thread::spawn(move || {
            let tty = std::io::stdout().is_terminal();
            let mut last = std::time::Instant::now();
            let every = std::time::Duration::from_secs(if tty { 2 } else { 30 });
            let report = |t: i64, f: &feed::Fed| {
                let alerts = feed::alerts_by_model(&addr, &feed_token).unwrap_or_default();
                let line = progress_line(t, speed, f, &alerts);
                if tty {
                    print!("\r{line:<100}");
                } else {
                    println!("{line}");
                }
                let _ = std::io::stdout().flush();
            };
            let result = feed::wait_for(&addr, std::time::Duration::from_secs(10)).and_then(|()| {
                feed::feed(&data, &addr, &feed_token, speed, |t, f| {
                    if last.elapsed() >= every {
                        last = std::time::Instant::now();
                        report(t, f);
                    }
                })
            });
            match result {
                Ok(f) => println!("\nfeed done: {} rows accepted, {} requests refused", f.rows, f.refused),
                Err(e) => eprintln!("\nfeed stopped: {e:#}"),
            }
        });
    })
}

/// `citywatch models`: each model with its settings, one a line (and its card).
/// Written at once, and a closed pipe (`citywatch models | head`) ends it
/// quietly instead of panicking.
fn print_models(cards: bool) -> Result<()> {
    use std::fmt::Write as _;
    let mut out = String::new();
    for m in models() {
        writeln!(out, "{} {}", m.name(), m.version())?;
        match m.config() {
            serde_json::Value::Object(settings) if !settings.is_empty() => {
                writeln!(out, "  settings ([models.{}] in a config file):", m.name())?;
                for (k, v) in settings {
                    writeln!(out, "    {k} = {v}")?;
                }
            }
            serde_json::Value::Object(_) => writeln!(out, "  no settings")?,
            other => writeln!(out, "  settings: {other}")?,
        }
        if cards {
            writeln!(out, "{}\n", m.card())?;
        }
    }
    match std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Logs to stderr at the level of `CITYWATCH_LOG` (`error`, `warn`, `info`,
/// `debug`, `trace`; default `info`), one line an event with its fields.
fn init_logs() -> Result<()> {
    let level = match std::env::var("CITYWATCH_LOG") {
        Ok(v) => v.parse::<tracing::Level>().map_err(|_| {
            anyhow::anyhow!("CITYWATCH_LOG={v:?} is not a log level; use error, warn, info, debug or trace")
        })?,
        Err(_) => tracing::Level::INFO,
    };
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // The Kafka client logs every connection at info: keep its warnings only.
    let targets = tracing_subscriber::filter::Targets::new()
        .with_default(level)
        .with_target("rskafka", tracing::Level::WARN.min(level));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false);
    tracing_subscriber::registry().with(fmt).with(targets).init();
    Ok(())
}

fn main() -> Result<()> {
    init_logs()?;
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(a) => run_demo(a),
        Command::Serve(a) => run_serve(a),
        Command::Token(a) => run_token(a),
        Command::Audit { command } => run_audit(command),
        Command::Replay(a) => run_replay(a),
        Command::Gen(a) => run_gen(a),
        Command::Publish(a) => run_publish(a),
        Command::Import { command: ImportCommand::Incidents(a) } => run_import_incidents(a),
        Command::Eval(a) => run_eval(a),
        Command::Train(a) => run_train(a),
        Command::Models { cards } => print_models(cards),
        Command::NewModel { name, root } => {
            let done = scaffold::new_model(&root, &name)?;
            println!("wrote {} ({} files); registered it in:", done.dir.display(), done.written.len());
            for f in &done.edited {
                println!("  {}", f.display());
            }
            println!(
                "next: edit {0}/src/lib.rs and src/reference.rs, then `cargo test --workspace --test against_reference` \
                 and `cargo test --workspace --test every_model` (guide: docs/writing-a-model.md)",
                done.dir.display()
            );
            Ok(())
        }
    }
}

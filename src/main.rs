//! The `citywatch` command line. Thin by design: it parses arguments, builds
//! the model registration list, and calls library code; everything testable
//! lives in the crates.

mod feed;

/// mimalloc rather than glibc's malloc: 13-14% less CPU on a replay (see the
/// workspace Cargo.toml and bench/PIPELINE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use citywatch_engine::lateness::{parse_date_ms, parse_duration_ms};
use citywatch_engine::model::Model;
use citywatch_engine::replay::{self, Cluster, ReplayOptions, Speed};
use citywatch_engine::settings::Settings;
use clap::{Args, Parser, Subcommand};

/// The registration list: every model citywatch can run, in one visible place,
/// with the hotspot model's live risk surface (served at `/api/v1/risk`).
fn registry() -> (Vec<Box<dyn Model>>, citywatch_risk_hotspot::SurfaceHandle) {
    let hotspot = citywatch_risk_hotspot::RiskHotspot::default();
    let surface = hotspot.surface();
    let models: Vec<Box<dyn Model>> = vec![
        Box::new(citywatch_fraud_call::FraudCall::default()),
        Box::new(hotspot),
        Box::new(citywatch_response_gap::ResponseGap::default()),
    ];
    (models, surface)
}

fn models() -> Vec<Box<dyn Model>> {
    registry().0
}

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

    fn advance_clock(&self, now_ms: u64) {
        self.live.advance_clock(now_ms);
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
    /// Import an analyst's export into a dataset folder.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
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
    /// Skip the hotspot evaluation (it replays the risk surface over every day of the data).
    #[arg(long)]
    no_hotspot: bool,
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
    #[arg(long)]
    officer: String,
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
    /// Check the audit log's hash chain; exits non-zero when a row was edited, reordered or deleted.
    Verify {
        /// The store (SQLite file); default: the config's `[server] store_path`.
        #[arg(long)]
        store: Option<PathBuf>,
        /// Config file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
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

/// Starts the live engine and serves until Ctrl-C (or until `shutdown` fires).
fn serve_live(
    settings: &Settings,
    config: citywatch_server::ServerConfig,
    reference: citywatch_engine::reference::Reference,
    workers: usize,
    on_ready: impl FnOnce() + Send + 'static,
) -> Result<()> {
    let (models, surface) = registry();
    let models = configured(models, settings, &[])?;
    let lateness_ms =
        replay_options(&EngineArgs { config: None, pseudonym_key: None, lateness: None, models: vec![] }, settings)?
            .lateness_ms;
    let (tx, rx) = crossbeam_channel::bounded(4096);
    let jurisdiction = Arc::clone(&reference.jurisdiction);
    let units = reference.units.clone();
    let engine = citywatch_engine::live::LiveEngine::start(
        models,
        reference,
        citywatch_engine::live::LiveOptions { workers, lateness_ms },
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
            let _ = tokio::signal::ctrl_c().await;
        };
        citywatch_server::serve_on(listener, config, pipeline, rx, jurisdiction, shutdown).await?;
        anyhow::Ok(())
    })
}

fn run_serve(args: ServeArgs) -> Result<()> {
    let settings = load_settings(args.config.as_ref())?;
    let config = server_config(&settings)?;
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
            let (r, rejects) = citywatch_engine::reference::load(&dir, &ps)?;
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
    let path = &config.credentials_path;
    let mut file = if path.exists() {
        citywatch_server::auth::CredentialsFile::load(path)?
    } else {
        citywatch_server::auth::CredentialsFile::default()
    };
    let token = file.issue(&args.officer)?;
    file.save(path)?;
    println!("{token}");
    eprintln!("token for {} added to {} (only its hash is stored; keep the token safe)", args.officer, path.display());
    Ok(())
}

fn run_audit(command: AuditCommand) -> Result<()> {
    let AuditCommand::Verify { store, config } = command;
    let store = match store {
        Some(s) => s,
        None => server_config(&load_settings(config.as_ref())?)?.store_path,
    };
    let report = citywatch_server::audit_verify(&store)?;
    if report.is_intact() {
        println!("audit chain intact: {} rows, head {}", report.rows, report.head);
        Ok(())
    } else {
        let (seq, what) = report.broken.clone().unwrap_or_default();
        bail!("audit chain BROKEN at row {seq}: {what} ({} rows checked, store {})", report.rows, store.display())
    }
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
    serve_demo(&dir, &data, &args)
}

fn replay_demo(data: &Path, out: &Path, workers: usize) -> Result<()> {
    println!("replaying it through {} model(s) with {workers} workers", models().len());
    let opts = ReplayOptions {
        input: data.to_owned(),
        out: Some(out.to_owned()),
        workers,
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

fn serve_demo(dir: &Path, data: &Path, args: &DemoArgs) -> Result<()> {
    let settings = Settings::default();
    let config = citywatch_server::ServerConfig {
        addr: args.addr.clone(),
        // The feed drives event time; the wall clock must not.
        clock_tick_ms: 0,
        ..citywatch_server::ServerConfig::in_dir(dir)
    };
    let ps = citywatch_engine::pseudonym::Pseudonymiser::new(&config.pseudonym_key, &config.home_country_code);
    let (reference, _) = citywatch_engine::reference::load(data, &ps)?;
    let tokens = citywatch_server::demo_credentials(&config.credentials_path, &reference.jurisdiction)?;
    let (addr, data, speed) = (args.addr.clone(), data.to_owned(), args.speed);
    let feed_token = tokens.analyst.1.clone();
    serve_live(&settings, config, reference, args.workers, move || {
        println!("\nconsole:   http://{addr}/");
        println!("analyst:   {} token {}", tokens.analyst.0, tokens.analyst.1);
        println!("community: {} token {}", tokens.community.0, tokens.community.1);
        println!("feeding the city at {speed}x real time; Ctrl-C to stop\n");
        std::thread::spawn(move || {
            let result = feed::wait_for(&addr, std::time::Duration::from_secs(10))
                .and_then(|()| feed::feed(&data, &addr, &feed_token, speed, |_, _| {}));
            match result {
                Ok(f) => println!("feed done: {} rows accepted, {} requests refused", f.rows, f.refused),
                Err(e) => eprintln!("feed stopped: {e:#}"),
            }
        });
    })
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(a) => run_demo(a),
        Command::Serve(a) => run_serve(a),
        Command::Token(a) => run_token(a),
        Command::Audit { command } => run_audit(command),
        Command::Replay(a) => run_replay(a),
        Command::Gen(a) => run_gen(a),
        Command::Import { command: ImportCommand::Incidents(a) } => run_import_incidents(a),
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

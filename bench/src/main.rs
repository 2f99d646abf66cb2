//! `citywatch-bench`: runs a scenario over a peer workload's input, or converts
//! a workload's CSV to Parquet.
//!
//! ```text
//! citywatch-bench window-count --input events.csv --out out.csv --workers 2
//! citywatch-bench fanout --input events.parquet --out out.csv --workers 2
//! citywatch-bench convert --input events.csv --out events.parquet
//! citywatch-bench gen-fanout --out events.csv [--rows 2000000] [--seed 20261126]
//! citywatch-bench reference-fanout --input events.csv --out ref_out.csv
//! ```
//!
//! `gen-window-count` and `reference-window-count` do the same for the other
//! workload (see `workload.rs` for what each generates and answers).

use std::path::PathBuf;
use std::process::ExitCode;

use citywatch_bench::{Format, Options, SCENARIOS, table, workload};
use clap::Parser;
use parquet::basic::{Compression, ZstdLevel};

/// citywatch peer-workload benchmarks.
#[derive(Debug, Parser)]
struct Args {
    /// `window-count`, `fanout`, `convert` (CSV to Parquet), `gen-<workload>`
    /// (a workload's input) or `reference-<workload>` (its exact answer).
    scenario: String,
    /// Input: the generator's CSV, or a `.parquet` file written by `convert`
    /// (not used by `gen-<workload>`).
    #[arg(long, default_value = "")]
    input: PathBuf,
    /// Output file (the reference's format; Parquet for `convert`).
    #[arg(long)]
    out: PathBuf,
    /// Timely worker threads (they also read the input, in parallel).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// CSV input: KiB per piece a worker reads (and per watermark advance).
    #[arg(long, default_value_t = 1024)]
    piece_kib: usize,
    /// `convert`: rows per Parquet row group (the Parquet input's piece).
    #[arg(long, default_value_t = table::ROW_GROUP_ROWS)]
    row_group_rows: usize,
    /// `convert`: page compression, `none`, `snappy` or `zstd`.
    #[arg(long, default_value = "none")]
    compression: String,
    /// `gen-<workload>`: rows to write (default: the workload's full size).
    #[arg(long)]
    rows: Option<usize>,
    /// `gen-<workload>`: the generator's seed.
    #[arg(long, default_value_t = workload::DEFAULT_SEED)]
    seed: u64,
}

/// `gen-<workload>` and `reference-<workload>`; `None` for any other command.
fn workload_command(args: &Args) -> Option<std::io::Result<String>> {
    let rows = |full| args.rows.unwrap_or(full);
    Some(match args.scenario.as_str() {
        "gen-fanout" => workload::generate_fanout(&args.out, rows(workload::FANOUT_ROWS), args.seed)
            .map(|share| format!("wrote {} rows, spam share ~{share:.3}", rows(workload::FANOUT_ROWS))),
        "gen-window-count" => workload::generate_window_count(&args.out, rows(workload::WINDOW_COUNT_ROWS), args.seed)
            .map(|()| format!("wrote {} rows", rows(workload::WINDOW_COUNT_ROWS))),
        "reference-fanout" => workload::reference_fanout(&args.input, &args.out).map(|s| format!("{s:?}")),
        "reference-window-count" => workload::reference_window_count(&args.input, &args.out).map(|s| format!("{s:?}")),
        _ => return None,
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(done) = workload_command(&args) {
        return match done {
            Ok(what) => {
                eprintln!("{}: {what} to {}", args.scenario, args.out.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {}: {e}", args.scenario);
                ExitCode::FAILURE
            }
        };
    }
    if args.scenario == "convert" {
        let compression = match args.compression.as_str() {
            "none" => Compression::UNCOMPRESSED,
            "snappy" => Compression::SNAPPY,
            "zstd" => Compression::ZSTD(ZstdLevel::default()),
            other => {
                eprintln!("error: unknown compression `{other}`; expected none, snappy or zstd");
                return ExitCode::FAILURE;
            }
        };
        let layout = table::Layout { row_group_rows: args.row_group_rows.max(1), compression };
        return match table::convert(&args.input, &args.out, layout) {
            Ok(rows) => {
                eprintln!("convert: {rows} rows to {}", args.out.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let Some((name, scenario)) = SCENARIOS.iter().find(|(name, _)| *name == args.scenario) else {
        let names: Vec<&str> = SCENARIOS.iter().map(|(n, _)| *n).collect();
        eprintln!(
            "error: unknown scenario `{}`; expected one of {}, convert, gen-<workload> or reference-<workload>",
            args.scenario,
            names.join(", ")
        );
        return ExitCode::FAILURE;
    };
    let format = Format::of(&args.input);
    let options = Options { workers: args.workers.max(1), piece_bytes: args.piece_kib.max(1) * 1024 };
    match scenario(&args.input, &args.out, format, &options) {
        Ok(s) => {
            let secs = s.elapsed.as_secs_f64();
            eprintln!(
                "{name}: {} rows ({} late, {} late in operators), {:?} input, {} workers: {:.3} s, {:.0} events/s; {} output rows",
                s.stats.rows,
                s.stats.late,
                s.stats.operator_late,
                format,
                args.workers,
                secs,
                s.stats.rows as f64 / secs,
                s.output_rows
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

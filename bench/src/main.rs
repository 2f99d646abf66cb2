//! `citywatch-bench`: runs a scenario over a peer workload's input, or converts
//! a workload's CSV to Parquet.
//!
//! ```text
//! citywatch-bench window-count --input events.csv --out out.csv --workers 2
//! citywatch-bench fanout --input events.parquet --out out.csv --workers 2
//! citywatch-bench convert --input events.csv --out events.parquet
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use citywatch_bench::{Format, Options, SCENARIOS, table};
use clap::Parser;
use parquet::basic::{Compression, ZstdLevel};

/// citywatch peer-workload benchmarks.
#[derive(Debug, Parser)]
struct Args {
    /// `window-count`, `fanout`, or `convert` (CSV to Parquet).
    scenario: String,
    /// Input: the generator's CSV, or a `.parquet` file written by `convert`.
    #[arg(long)]
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
}

fn main() -> ExitCode {
    let args = Args::parse();
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
        eprintln!("error: unknown scenario `{}`; expected one of {}, or convert", args.scenario, names.join(", "));
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

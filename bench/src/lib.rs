//! citywatch benchmarks: scenario runners over the peer workloads (one
//! scenario per file, each stating what it measures), the replay driver they
//! share, the CSV / Parquet input, and the workloads' own seeded generators and
//! exact reference answers ([`workload`]).
//!
//! The scenarios are built from the operators the models use
//! (`citywatch-operators`); nothing here is a benchmark-only dataflow path.
#![deny(missing_docs)]

pub mod csv;
pub mod error;
pub mod fanout;
pub mod replay;
pub mod table;
pub mod window_count;
pub mod workload;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

pub use error::BenchError;
pub use replay::ReplayStats;

/// Input format of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The generator's CSV, as it is.
    Csv,
    /// The same rows converted to Parquet (`convert`).
    Parquet,
}

impl Format {
    /// Parquet for a `.parquet` file, CSV otherwise.
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("parquet") => Format::Parquet,
            _ => Format::Csv,
        }
    }
}

/// What a scenario run did.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Input counts.
    pub stats: ReplayStats,
    /// Rows written.
    pub output_rows: usize,
    /// From the start of reading to the output written.
    pub elapsed: Duration,
}

/// The scenarios, by name: the one registration list.
pub const SCENARIOS: &[(&str, Scenario)] =
    &[("window-count", window_count::run_scenario), ("fanout", fanout::run_scenario)];

/// A scenario's entry point: input, output, format, how to run.
pub type Scenario = fn(&Path, &Path, Format, &Options) -> Result<Summary, BenchError>;

/// How a scenario runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Timely worker threads; they also read the input, in parallel.
    pub workers: usize,
    /// CSV input: bytes per piece, the unit a worker reads and the watermark
    /// advances by (Parquet input: a row group, chosen by `convert`).
    pub piece_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { workers: 1, piece_bytes: 1 << 20 }
    }
}

/// A scenario's input, split into pieces the workers read in parallel.
#[derive(Debug, Clone)]
pub enum Input {
    /// The generator's CSV, in byte ranges.
    Csv(csv::CsvPieces),
    /// The Parquet copy, by row group.
    Parquet(table::ParquetPieces),
}

impl Input {
    /// Opens `path`: CSV with header `header`, or Parquet, of which the columns
    /// `columns` are read.
    pub fn open(
        path: &Path,
        format: Format,
        header: &str,
        columns: &[&str],
        options: &Options,
    ) -> Result<Self, BenchError> {
        Ok(match format {
            Format::Csv => Input::Csv(csv::CsvPieces::open(path, header, options.piece_bytes)?),
            Format::Parquet => Input::Parquet(table::ParquetPieces::open(path, columns)?),
        })
    }

    /// How many pieces there are.
    pub fn pieces(&self) -> usize {
        match self {
            Input::Csv(c) => c.count(),
            Input::Parquet(p) => p.count(),
        }
    }
}

/// Writes `header` and `lines` to `path`, one per line.
pub fn write_lines(path: &Path, header: &str, lines: impl Iterator<Item = String>) -> Result<(), BenchError> {
    let file = std::fs::File::create(path).map_err(|e| BenchError::io(path, e))?;
    let mut out = std::io::BufWriter::new(file);
    let write = || -> std::io::Result<()> {
        writeln!(out, "{header}")?;
        for line in lines {
            writeln!(out, "{line}")?;
        }
        out.flush()
    };
    write().map_err(|e| BenchError::io(path, e))
}

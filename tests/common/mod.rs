//! Helpers shared by the integration tests: run the binary, write fixtures.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `citywatch` with `args`.
pub fn citywatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_citywatch")).args(args).output().expect("run citywatch")
}

/// Runs a replay of `input` into `out` with `workers`; panics with stderr on failure.
pub fn replay_ok(input: &Path, out: &Path, workers: usize, extra: &[&str]) -> Output {
    let w = workers.to_string();
    let mut args =
        vec!["replay", "--quiet", "--input", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--workers", &w];
    args.extend_from_slice(extra);
    let o = citywatch(&args);
    assert!(o.status.success(), "replay failed: {}", String::from_utf8_lossy(&o.stderr));
    o
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Reads a JSON file.
pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

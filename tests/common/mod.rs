//! Helpers shared by the integration tests: run the binary, write fixtures.
#![allow(dead_code)]

pub mod crash;

use std::path::Path;
use std::process::{Command, Output};

/// Runs `citywatch` with `args`.
pub fn citywatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_citywatch")).args(args).output().expect("run citywatch")
}

/// Runs the binary like [`citywatch`], but kills it and panics if it has not
/// ended within `limit`: for runs that could hang, so that a hang fails the
/// test instead of stalling the suite.
pub fn citywatch_within(args: &[&str], limit: std::time::Duration) -> Output {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_citywatch"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run citywatch");
    let start = std::time::Instant::now();
    while child.try_wait().expect("wait for citywatch").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let o = child.wait_with_output().expect("collect citywatch");
            panic!("citywatch {args:?} did not end within {limit:?}: {}", String::from_utf8_lossy(&o.stderr));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("collect citywatch")
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

/// One HTTP request to a service at `addr` through `ureq`: bearer `token`,
/// extra `headers`, and `body` (GET when empty, else POST). A fresh connection
/// each time (no pool: the server may have been killed and restarted between
/// two requests), no proxy, a 20 s bound; an answer of any status is
/// `Some((status, body))`, a refused or cut connection `None`.
pub fn http(addr: &str, path: &str, token: &str, headers: &[(&str, &str)], body: &str) -> Option<(u16, String)> {
    static AGENT: std::sync::OnceLock<ureq::Agent> = std::sync::OnceLock::new();
    let agent = AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .max_idle_connections(0)
            .timeout_global(Some(std::time::Duration::from_secs(20)))
            .build()
            .into()
    });
    let url = format!("http://{addr}{path}");
    let auth = format!("Bearer {token}");
    let answer = if body.is_empty() {
        let mut r = agent.get(&url).header("Authorization", &auth);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.call()
    } else {
        let mut r = agent.post(&url).header("Authorization", &auth);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send(body)
    };
    let answer = answer.ok()?;
    let status = answer.status().as_u16();
    Some((status, answer.into_body().read_to_string().ok()?))
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Reads a JSON file.
pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Rewrites `<input>/calls.parquet` as a `calls/` folder of `parts` files, the
/// rows dealt in order (part 0 the first rows) and then the files named so that
/// the *last* rows come first in file order; each file in row groups of
/// `group_rows`, written with `ts_ms` statistics or (`stats: false`) without.
/// Returns the rows written.
pub fn split_calls(input: &Path, parts: usize, group_rows: usize, stats: bool) -> usize {
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    let whole = input.join("calls.parquet");
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&whole).unwrap()).unwrap().build().unwrap();
    let batches: Vec<_> = reader.map(Result::unwrap).collect();
    let batch = arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap();
    std::fs::remove_file(&whole).unwrap();
    std::fs::create_dir_all(input.join("calls")).unwrap();
    let per = batch.num_rows().div_ceil(parts);
    for p in 0..parts {
        let start = (p * per).min(batch.num_rows());
        let part = batch.slice(start, per.min(batch.num_rows() - start));
        let stats = if stats { EnabledStatistics::Chunk } else { EnabledStatistics::None };
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(group_rows))
            .set_statistics_enabled(stats)
            .build();
        let path = input.join(format!("calls/part-{}.parquet", parts - 1 - p));
        let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), part.schema(), Some(props)).unwrap();
        w.write(&part).unwrap();
        w.close().unwrap();
    }
    batch.num_rows()
}

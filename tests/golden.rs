//! Golden scenarios: one folder per scenario under `tests/golden/` with
//! `input/<table>.ndjson` (contract rows), `args` (replay options) and
//! `expected/` (alerts.ndjson, summary.json, rejected.ndjson). Each runs the
//! binary and compares byte for byte.
//!
//! After a deliberate change, rewrite the expected files with
//! `CITYWATCH_BLESS=1 cargo test --test golden` and review the diff.

mod common;

use std::path::Path;

use citywatch_engine::rows::{AlarmRow, CallRow, ContractRow, GridRow, OfficerRow, PatrolRow, write_table};

fn convert<R: ContractRow + serde::de::DeserializeOwned>(scenario: &Path, out: &Path, name: &str) {
    let path = scenario.join("input").join(format!("{name}.ndjson"));
    if !path.exists() {
        return;
    }
    let rows: Vec<R> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1)))
        .collect();
    write_table(out, &rows).unwrap();
}

fn run_scenario(scenario: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("input");
    std::fs::create_dir(&input).unwrap();
    convert::<CallRow>(scenario, &input, "calls");
    convert::<AlarmRow>(scenario, &input, "alarms");
    convert::<PatrolRow>(scenario, &input, "patrols");
    convert::<GridRow>(scenario, &input, "grids");
    convert::<OfficerRow>(scenario, &input, "officers");
    let args = std::fs::read_to_string(scenario.join("args")).unwrap_or_default();
    let args: Vec<&str> = args.split_whitespace().collect();
    let out = tmp.path().join("out");
    let mut all = vec!["replay", "--quiet", "--input", input.to_str().unwrap(), "--out", out.to_str().unwrap()];
    all.extend(args);
    let o = common::citywatch(&all);
    assert!(o.status.success(), "{}: {}", scenario.display(), common::stderr(&o));
    let bless = std::env::var_os("CITYWATCH_BLESS").is_some();
    let expected = scenario.join("expected");
    for f in ["alerts.ndjson", "summary.json", "rejected.ndjson"] {
        let got = std::fs::read_to_string(out.join(f)).unwrap();
        if bless {
            std::fs::create_dir_all(&expected).unwrap();
            std::fs::write(expected.join(f), &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(expected.join(f)).unwrap_or_else(|_| {
            panic!("{}: no expected/{f}; run with CITYWATCH_BLESS=1 to create it", scenario.display())
        });
        assert!(
            got == want,
            "{}: {f} differs from the golden file (after a deliberate change: CITYWATCH_BLESS=1 cargo test --test golden)\n--- got ---\n{got}\n--- want ---\n{want}",
            scenario.display()
        );
    }
}

#[test]
fn golden_scenarios() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut n = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        if dir.is_dir() {
            run_scenario(&dir);
            n += 1;
        }
    }
    assert!(n >= 1, "no scenarios under {}", root.display());
}

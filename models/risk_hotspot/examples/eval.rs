//! Hotspot evaluation of a dataset folder, printed as a table.
//!
//! ```text
//! cargo run --release -p citywatch-risk-hotspot --example eval -- DIR \
//!     [--from 2020-01-01] [--until 2022-01-01] [--day-offset-h 5] \
//!     [--config '{"recent_half_life_days": 30}'] [--alerts ALERTS_DIR] [--json FILE] \
//!     [--kinds burglary,theft] [--bootstrap 2000]
//! ```
//! `--config` may be given several times: each is evaluated in turn (for tuning).

use citywatch_engine::lateness::parse_date_ms;
use citywatch_risk_hotspot::Config;
use citywatch_risk_hotspot::eval::{EvalOptions, evaluate, read_alarms};

fn date_ms(s: &str) -> u64 {
    parse_date_ms(s).unwrap_or_else(|| panic!("'{s}' is not a date; use YYYY-MM-DD")) as u64
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::path::PathBuf::from(args.first().expect("usage: eval DIR [options]"));
    let mut opts = EvalOptions::default();
    let mut configs: Vec<serde_json::Value> = Vec::new();
    let mut json_out = None;
    let mut i = 1;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--from" => opts.score_from_ms = Some(date_ms(&v)),
            "--until" => opts.score_until_ms = Some(date_ms(&v)),
            "--day-offset-h" => opts.day_offset_ms = v.parse::<u64>().unwrap() * 3_600_000,
            "--config" => configs.push(serde_json::from_str(&v).expect("--config takes JSON")),
            "--alerts" => opts.alerts = Some(v.into()),
            "--kde-window-days" => opts.kde_window_days = v.parse().unwrap(),
            "--kde-bandwidth-m" => opts.kde_bandwidth_m = v.parse().unwrap(),
            "--kinds" => opts.kinds = citywatch_risk_hotspot::eval::parse_kinds(&v).unwrap(),
            "--bootstrap" => opts.bootstrap = v.parse().unwrap(),
            "--json" => json_out = Some(v),
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    if configs.is_empty() {
        configs.push(serde_json::json!({}));
    }
    let started = std::time::Instant::now();
    let (alarms, jurisdiction) = read_alarms(&dir).unwrap();
    eprintln!("read {} alarms in {:.1}s", alarms.len(), started.elapsed().as_secs_f64());
    for c in configs {
        let config: Config = serde_json::from_value(c.clone()).expect("config");
        opts.config = config;
        let t = std::time::Instant::now();
        let result = evaluate(&alarms, &jurisdiction, &opts).unwrap();
        println!("config {c}");
        println!("{result}");
        for c in &result.comparisons {
            println!(
                "  PAI@{:.0}% {}/{}: model {:.2} best {} {:.2} ratio {:.3} [{:.3}, {:.3}] (ceiling {:.3})",
                c.area_share * 100.0,
                c.crime,
                c.horizon,
                c.model_pai,
                c.best_baseline,
                c.best_pai,
                c.ratio,
                c.paired.ci_low,
                c.paired.ci_high,
                c.ceiling_ratio
            );
        }
        println!("  mean ratio {:.4}", result.mean_ratio());
        eprintln!("evaluated in {:.1}s", t.elapsed().as_secs_f64());
        if let Some(p) = &json_out {
            std::fs::write(p, serde_json::to_string_pretty(&result).unwrap()).unwrap();
        }
    }
}

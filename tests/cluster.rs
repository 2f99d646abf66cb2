//! Beyond one machine: two timely processes on 127.0.0.1 give exactly the
//! alerts of a one-process run.

mod common;

use std::net::TcpListener;
use std::process::Command;

use citywatch_engine::testkit::{RandomSpec, write_random_dataset};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn two_processes_match_one() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    write_random_dataset(&input, &RandomSpec { seed: 5, alarms: 200, calls: 500, ..Default::default() }).unwrap();
    // Several shares (row groups) per process, so that each reads only its own.
    common::split_calls(&input, 2, 151, true);
    let single = dir.path().join("single");
    common::replay_ok(&input, &single, 2, &[]);

    let hostfile = dir.path().join("hosts");
    std::fs::write(&hostfile, format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port())).unwrap();
    let cluster_out = dir.path().join("cluster");
    let spawn = |process: usize| {
        Command::new(env!("CARGO_BIN_EXE_citywatch"))
            .args(["replay", "--quiet", "--workers", "1", "--processes", "2"])
            .args(["--process", &process.to_string(), "--hostfile", hostfile.to_str().unwrap()])
            .args(["--input", input.to_str().unwrap(), "--out", cluster_out.to_str().unwrap()])
            .spawn()
            .unwrap()
    };
    let mut p1 = spawn(1);
    let mut p0 = spawn(0);
    assert!(p0.wait().unwrap().success(), "process 0 failed");
    assert!(p1.wait().unwrap().success(), "process 1 failed");
    for f in ["alerts.ndjson", "alerts.parquet", "summary.json"] {
        let a = std::fs::read(single.join(f)).unwrap();
        let b = std::fs::read(cluster_out.join(f)).unwrap();
        assert!(a == b, "{f}: two processes differ from one");
    }
    assert!(std::fs::read_to_string(single.join("alerts.ndjson")).unwrap().lines().count() > 10);
}

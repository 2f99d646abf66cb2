//! Issue 16: the live service loses nothing. `citywatch serve` (the real
//! engine, journal on) is killed with SIGKILL at random points while a known
//! stream of urgent alarms and patrol fixes is posted; the client retries
//! each unanswered request with the same `Idempotency-Key` against the
//! restarted server. The alerts in the store must equal those of an
//! uninterrupted run of the same stream: none lost, none repeated (no alert
//! id logged `new` twice, no extra updates). SIGTERM drains like SIGINT.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::crash::{Batch, City, alerts, assert_same_alerts, city, post, settle, start_server, stream, wait_up};
use rand::{Rng, SeedableRng};

/// Posts every batch (retrying through restarts with the same key); with
/// `kills`, a killer thread SIGKILLs the server that many times at random
/// moments (`seed`) while the stream is posted. Returns the kills done.
fn run(c: &City, batches: &[Batch], kills: usize, seed: u64) -> usize {
    let server = Arc::new(Mutex::new(start_server(c)));
    wait_up(c, &server);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    // Kill points: before these request indices, after a random delay (so
    // some land inside a request, some between, some during a restore).
    let mut at: Vec<(usize, u64)> =
        (0..kills).map(|_| (rng.random_range(0..batches.len()), rng.random_range(0..40))).collect();
    at.sort();
    let killed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut killers = Vec::new();
    let mut next_kill = 0;
    for (i, (table, body)) in batches.iter().enumerate() {
        while next_kill < at.len() && at[next_kill].0 == i {
            let (s, delay, n) = (Arc::clone(&server), at[next_kill].1, Arc::clone(&killed));
            killers.push(std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(delay));
                let mut s = s.lock().unwrap();
                // Only a running server counts as a kill point.
                if s.try_wait().unwrap().is_none() && s.kill().is_ok() {
                    n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }));
            next_kill += 1;
        }
        let key = format!("batch-{i}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some((status, resp)) = post(&c.addr, &format!("/api/v1/ingest/{table}"), &c.token, Some(&key), body)
            {
                assert!(status == 200 || status == 503, "batch {i}: {status} {resp}");
                if status == 200 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "batch {i} was never accepted");
            wait_up(c, &server);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Any kill thread still sleeping lands now; make sure a server runs.
    for k in killers {
        k.join().unwrap();
    }
    wait_up(c, &server);
    settle(c, &server);
    let mut s = server.lock().unwrap();
    let pid = s.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let status = s.wait().unwrap();
    assert!(status.success(), "SIGTERM must drain and exit 0, got {status}");
    killed.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn issue_16_sigkill_at_random_points_loses_no_alert_and_repeats_none() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    // The whole stream sits within the last two hours (the default clock-skew bound).
    let base = now - 2 * 3_600_000;
    let batches = stream(base, 300);

    let ref_dir = tempfile::tempdir().unwrap();
    let reference = city(ref_dir.path());
    run(&reference, &batches, 0, 0);
    let want = alerts(&ref_dir.path().join("store.sqlite"));
    let kinds = want.values().fold(BTreeMap::new(), |mut m: BTreeMap<&str, u32>, a| {
        *m.entry(a.0.as_str()).or_default() += 1;
        m
    });
    // 300 alarms: 200 never dispatched, 250 never on scene.
    assert!(kinds.get("no_dispatch").copied().unwrap_or(0) >= 200, "{kinds:?}");
    assert!(kinds.get("not_on_scene").copied().unwrap_or(0) >= 250, "{kinds:?}");

    let mut kill_points = 0;
    for seed in [1u64, 2, 3, 4] {
        let dir = tempfile::tempdir().unwrap();
        let c = city(dir.path());
        kill_points += run(&c, &batches, 10, seed);
        assert_same_alerts(&want, dir.path(), &format!("seed {seed}"));
    }
    assert!(kill_points >= 20, "{kill_points} kill points");
    eprintln!("issue_16: {kill_points} SIGKILLs, {} alerts, 0 lost, 0 repeated", want.len());
}

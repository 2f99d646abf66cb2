//! Feeds from a message log (issue 22), against a real Kafka-protocol broker
//! (tansu, started here on a loopback port with in-memory storage). When the
//! `tansu` program is missing the tests print a loud SKIPPED message and
//! pass, unless `CITYWATCH_REQUIRE_KAFKA=1` (set in CI, which installs it)
//! makes that a failure.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use citywatch_engine::testkit::{RandomSpec, write_random_dataset};

/// A broker on a free loopback port, killed on drop.
struct Broker {
    child: Child,
    addr: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_tansu() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("CITYWATCH_TANSU") {
        return Some(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join("tansu")).find(|p| p.is_file())
}

/// Starts a broker, or returns `None` (after a loud SKIPPED message) when
/// tansu is not installed, unless `CITYWATCH_REQUIRE_KAFKA=1`.
fn broker() -> Option<Broker> {
    let Some(tansu) = find_tansu() else {
        let msg = "the tansu broker is required (cargo install tansu --version 0.6.0 --features dynostore,libsql)";
        if std::env::var("CITYWATCH_REQUIRE_KAFKA").is_ok_and(|v| v == "1") {
            panic!("{msg}");
        }
        eprintln!("\n!!! SKIPPED a Kafka test: {msg}\n");
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(tansu)
        .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tansu");
    let broker = Broker { child, addr: format!("127.0.0.1:{port}") };
    let start = Instant::now();
    while TcpStream::connect(&broker.addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "tansu did not listen on {} within 30 s", broker.addr);
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(broker)
}

fn ok(o: std::process::Output, what: &str) -> String {
    assert!(o.status.success(), "{what} failed: {}", common::stderr(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A dataset whose events interact (bursts of calls, repeat reporters, units
/// dispatched) so that every model has something to say.
fn dataset(dir: &Path, coarse_ms: Option<i64>) {
    let spec =
        RandomSpec { seed: 22, alarms: 300, units: 10, calls: 2_000, grids: true, coarse_ms, ..Default::default() };
    write_random_dataset(dir, &spec).unwrap();
}

const LIMIT: Duration = Duration::from_secs(120);

/// `citywatch publish` of `input` into topics `prefix*`; its stdout.
fn publish(broker: &Broker, input: &Path, prefix: &str, partitions: u32) -> String {
    let p = partitions.to_string();
    let args = ["publish", "--input", input.to_str().unwrap(), "--brokers", &broker.addr, "--topic-prefix", prefix];
    ok(common::citywatch_within(&[&args[..], &["--partitions", &p]].concat(), LIMIT), "publish")
}

/// A replay of the topics `prefix*` with the reference tables of `input`; its stdout.
fn replay_log(broker: &Broker, input: &Path, out: &Path, prefix: &str, workers: usize, extra: &[&str]) -> String {
    let w = workers.to_string();
    let (input, out) = (input.to_str().unwrap(), out.to_str().unwrap());
    let args = ["replay", "--quiet", "--input", input, "--out", out, "--workers", &w, "--brokers", &broker.addr];
    ok(
        common::citywatch_within(&[&args[..], &["--topic-prefix", prefix], extra].concat(), LIMIT),
        "replay from the log",
    )
}

#[test]
fn replay_from_topics_gives_the_bytes_of_replay_from_parquet_for_any_partitions_and_workers() {
    let Some(broker) = broker() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("city");
    dataset(&input, None);
    let from_files = dir.path().join("files");
    common::replay_ok(&input, &from_files, 1, &[]);
    let alerts = std::fs::read(from_files.join("alerts.ndjson")).unwrap();
    assert!(alerts.len() > 1_000, "the dataset raises alerts");

    let out = publish(&broker, &input, "t.", 3);
    assert!(out.contains("records -> t.calls"), "{out}");
    for w in [1, 2, 4] {
        let out_dir = dir.path().join(format!("log-{w}"));
        replay_log(&broker, &input, &out_dir, "t.", w, &[]);
        assert!(
            std::fs::read(out_dir.join("alerts.ndjson")).unwrap() == alerts,
            "alerts from 3 partitions with {w} workers differ from the Parquet replay's"
        );
        let (a, b) = (common::json(&from_files.join("summary.json")), common::json(&out_dir.join("summary.json")));
        assert_eq!(a["events"], b["events"], "every event read from the log");
        assert_eq!(a["late_events"], b["late_events"]);
    }
    // Arrow IPC values: a record per partition and batch of rows.
    let input_s = input.to_str().unwrap();
    let args =
        ["publish", "--input", input_s, "--brokers", &broker.addr, "--topic-prefix", "a.", "--log-format", "arrow"];
    ok(common::citywatch_within(&args, LIMIT), "publish as Arrow");
    for w in [1, 2] {
        let out_dir = dir.path().join(format!("arrow-{w}"));
        replay_log(&broker, &input, &out_dir, "a.", w, &["--log-format", "arrow"]);
        assert!(
            std::fs::read(out_dir.join("alerts.ndjson")).unwrap() == alerts,
            "alerts from Arrow records with {w} workers differ from the Parquet replay's"
        );
    }
}

#[test]
fn bad_records_are_rejected_with_reasons_and_the_partition_goes_on() {
    let Some(broker) = broker() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("city");
    dataset(&input, None);
    // Reference tables only: the streams come from the log.
    let reference = dir.path().join("reference");
    std::fs::create_dir_all(&reference).unwrap();
    for f in ["grids.parquet", "officers.parquet"] {
        std::fs::copy(input.join(f), reference.join(f)).unwrap();
    }
    let cfg = citywatch_kafka::LogConfig::new(&broker.addr, "bad.");
    let alarm = |id: u64, ts: i64| {
        format!(
            r#"{{"alarm_id":{id},"ts_ms":{ts},"source":"110","category":"theft","priority":2,"lat":36.07,"lon":120.38}}"#
        )
        .into_bytes()
    };
    let t0 = citywatch_engine::testkit::T0_MS;
    let values = vec![
        alarm(1, t0),
        b"this is not json".to_vec(),
        br#"{"alarm_id":"three","ts_ms":1}"#.to_vec(),
        alarm(4, 4_102_444_800_000), // 2100-01-01: far in the future
        b"[1,2,3]".to_vec(),
        Vec::new(),
        alarm(7, t0 + 60_000),
    ];
    let values = values.into_iter().map(|v| (t0, v)).collect();
    citywatch_kafka::produce_values(&cfg, "bad.alarms", 1, 0, values).unwrap();
    let out = dir.path().join("out");
    replay_log(&broker, &reference, &out, "bad.", 1, &[]);
    let summary = common::json(&out.join("summary.json"));
    assert_eq!(summary["events"], 2, "the two good alarms, before and after the bad records: {summary}");
    assert_eq!(summary["tables"]["alarms"]["read"], 7);
    assert_eq!(summary["tables"]["alarms"]["rejected"], 5);
    let rejected = std::fs::read_to_string(out.join("rejected.ndjson")).unwrap();
    let rows: Vec<serde_json::Value> = rejected.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let codes: Vec<(u64, &str)> =
        rows.iter().map(|r| (r["row"].as_u64().unwrap(), r["code"].as_str().unwrap())).collect();
    assert_eq!(codes[0], (1, "bad_json"), "{rejected}");
    assert_eq!(codes[1].0, 2, "{rejected}");
    assert_eq!(codes[2], (3, "out_of_range"), "{rejected}");
    assert_eq!(codes[3], (4, "not_an_object"), "{rejected}");
    assert_eq!(codes[4], (5, "not_an_object"), "{rejected}");
    assert!(rows.iter().all(|r| r["file"] == "kafka:bad.alarms/0"), "{rejected}");
    assert!(rows[1]["reason"].as_str().unwrap().contains("alarm_id"), "names the column: {rejected}");

    // A topic read as Arrow: a value that is not an Arrow IPC stream is one
    // rejected row, and the good record after it is read.
    let good = {
        let rows = [citywatch_engine::rows::AlarmRow {
            alarm_id: 9,
            ts_ms: t0,
            category: "theft".into(),
            priority: 2,
            lat: 36.07,
            lon: 120.38,
            reporter: None,
            suspect_number: None,
            source: "110".into(),
        }];
        let batch = <citywatch_engine::rows::AlarmRow as citywatch_engine::rows::ContractRow>::to_batch(&rows);
        let mut w = arrow_ipc::writer::StreamWriter::try_new(Vec::new(), &batch.schema()).unwrap();
        w.write(&batch).unwrap();
        w.into_inner().unwrap()
    };
    let values = vec![(t0, b"not an arrow stream".to_vec()), (t0, good)];
    citywatch_kafka::produce_values(&cfg, "arrow.alarms", 1, 0, values).unwrap();
    let out = dir.path().join("out-arrow");
    replay_log(&broker, &reference, &out, "arrow.", 1, &["--log-format", "arrow"]);
    let summary = common::json(&out.join("summary.json"));
    assert_eq!(summary["events"], 1, "{summary}");
    let rejected = std::fs::read_to_string(out.join("rejected.ndjson")).unwrap();
    assert!(rejected.contains("\"code\":\"bad_arrow\"") && rejected.contains("kafka:arrow.alarms/0"), "{rejected}");
}

#[test]
fn alerts_written_to_the_log_twice_are_there_once() {
    let Some(broker) = broker() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("city");
    dataset(&input, None);
    publish(&broker, &input, "s.", 2);
    let run =
        |n: usize| replay_log(&broker, &input, &dir.path().join(format!("out-{n}")), "s.", 1, &["--alerts-to-log"]);
    let first = run(1);
    let total = std::fs::read_to_string(dir.path().join("out-1/alerts.ndjson")).unwrap().lines().count();
    assert!(total > 0);
    assert!(first.contains(&format!("{total} sent, 0 already there")), "{first}");
    let second = run(2);
    assert!(second.contains(&format!("0 sent, {total} already there ({total} ids before)")), "{second}");
}

type Records = Vec<(i64, Vec<u8>)>;

/// The value of the metric whose line starts with `name` in a `/metrics`
/// answer (0 when absent).
fn metric(metrics: &str, name: &str) -> u64 {
    metrics.lines().find_map(|l| l.strip_prefix(name)).map(|n| n.trim().parse::<u64>().unwrap()).unwrap_or(0)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The stream of tests/issue_16.rs (`alarms` urgent alarms from `base_ms`
/// and their patrol fixes), row by row: `(ts_ms, NDJSON line)` of alarms and
/// of patrols.
fn stream_records(base_ms: i64, alarms: u64) -> (Records, Records) {
    let (mut a, mut p): (Records, Records) = Default::default();
    for (table, body) in common::crash::stream(base_ms, alarms) {
        for line in body.lines() {
            let ts = serde_json::from_str::<serde_json::Value>(line).unwrap()["ts_ms"].as_i64().unwrap();
            let to = if table == "alarms" { &mut a } else { &mut p };
            to.push((ts, line.as_bytes().to_vec()));
        }
    }
    (a, p)
}

/// A store's change log: `(seq, alert_id, change)` in order.
fn change_log(store: &Path) -> Vec<(i64, String, String)> {
    let db = rusqlite::Connection::open(store).unwrap();
    let mut q = db.prepare("SELECT seq, alert_id, change FROM changes ORDER BY seq").unwrap();
    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
}

/// The live service reads the log; it is SIGKILLed at random moments while it
/// does and restarted on the same store and journal. Its alerts must equal
/// those of an uninterrupted run: none lost, none repeated (the feed's
/// offsets are committed in the journal with the state they made).
#[test]
fn serve_from_the_log_killed_at_random_loses_no_alert_and_repeats_none() {
    use common::crash::{alerts, assert_same_alerts, city_with, settle, start_server, wait_up};
    use rand::{Rng, SeedableRng};
    use std::sync::{Arc, Mutex};

    let Some(broker) = broker() else { return };
    let now = now_ms();
    let cfg = citywatch_kafka::LogConfig::new(&broker.addr, "live.");
    // The stream of tests/issue_16.rs, row by row: alarms over 2 partitions.
    let (all_alarms, patrols) = stream_records(now - 2 * 3_600_000, 200);
    let mut alarms: [Records; 2] = Default::default();
    for (ts, row) in all_alarms {
        alarms[(ts / 5_000 % 2) as usize].push((ts, row));
    }
    // The same records under one prefix per run: each run writes its own
    // alerts topic (`<prefix>alerts`).
    let mut producer = citywatch_kafka::LogProducer::open(&cfg).unwrap();
    for prefix in ["ref.", "k1.", "k2."] {
        for (p, rows) in alarms.iter().enumerate() {
            producer.send(&format!("{prefix}alarms"), 2, p as i32, rows.clone()).unwrap();
        }
        producer.send(&format!("{prefix}patrols"), 1, 0, patrols.clone()).unwrap();
    }
    let run = |dir: &Path, kills: usize, seed: u64, prefix: &str| -> usize {
        let lines = format!(
            "log_brokers = \"{}\"\nlog_topic_prefix = \"{prefix}\"\nlog_batch = 4\nlog_alerts = true\n",
            broker.addr
        );
        let c = city_with(dir, &lines);
        let server = Arc::new(Mutex::new(start_server(&c)));
        wait_up(&c, &server);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut killed = 0;
        for _ in 0..kills {
            std::thread::sleep(Duration::from_millis(rng.random_range(50..700)));
            let mut s = server.lock().unwrap();
            if s.try_wait().unwrap().is_none() && s.kill().is_ok() {
                let _ = s.wait();
                killed += 1;
            }
            drop(s);
            wait_up(&c, &server);
        }
        settle(&c, &server);
        let mut s = server.lock().unwrap();
        let _ = Command::new("kill").args(["-TERM", &s.id().to_string()]).status();
        assert!(s.wait().unwrap().success(), "SIGTERM drains and exits 0");
        killed
    };
    let ref_dir = tempfile::tempdir().unwrap();
    run(ref_dir.path(), 0, 0, "ref.");
    let want = alerts(&ref_dir.path().join("store.sqlite"));
    assert!(want.len() >= 150, "the stream raises alerts: {}", want.len());
    let mut kills = 0;
    for (seed, prefix) in [(1u64, "k1."), (2, "k2.")] {
        let dir = tempfile::tempdir().unwrap();
        kills += run(dir.path(), 6, seed, prefix);
        assert_same_alerts(&want, dir.path(), &format!("seed {seed}"));
        // The alerts topic holds the store's change log once, in order,
        // though the sink was killed with the service.
        let log = change_log(&dir.path().join("store.sqlite"));
        let topic: Vec<(i64, String, String)> = citywatch_kafka::read_values(&cfg, &format!("{prefix}alerts"), 0)
            .unwrap()
            .into_iter()
            .map(|(_, v)| {
                let v: serde_json::Value = serde_json::from_slice(&v).unwrap();
                let id = v["alert"]["alert_id"].as_str().unwrap().to_owned();
                (v["seq"].as_i64().unwrap(), id, v["change"].as_str().unwrap().to_owned())
            })
            .collect();
        assert!(!log.is_empty());
        assert_eq!(topic, log, "seed {seed}: the alerts topic is the change log, each change once");
    }
    assert!(kills >= 6, "{kills} kills landed on a running service");
    eprintln!("kafka live: {kills} SIGKILLs, {} alerts, 0 lost, 0 repeated", want.len());
}

/// `log_start`: a feed with no position in its journal starts at the first
/// record at or after the given time (the broker's timestamp index), or at
/// the end (`latest`).
#[test]
fn a_new_feed_starts_where_log_start_says() {
    use common::crash::{city_with, post, start_server, wait_up};
    use std::sync::Mutex;

    let Some(broker) = broker() else { return };
    let now = now_ms();
    let alarm = |id: u64, ts: i64| {
        let row = format!(
            r#"{{"alarm_id":{id},"ts_ms":{ts},"category":"theft","priority":3,"lat":36.07,"lon":120.38,"source":"110"}}"#
        );
        (ts, row.into_bytes())
    };
    let cfg = citywatch_kafka::LogConfig::new(&broker.addr, "st.");
    let early = now - 3_600_000;
    let values = vec![alarm(1, early), alarm(2, early + 1_000), alarm(3, now - 60_000), alarm(4, now - 30_000)];
    citywatch_kafka::produce_values(&cfg, "st.alarms", 1, 0, values).unwrap();
    for (start, want) in [("earliest", 4), (&*(now - 120_000).to_string(), 2), ("latest", 0)] {
        let dir = tempfile::tempdir().unwrap();
        let lines = format!("log_brokers = \"{}\"\nlog_topic_prefix = \"st.\"\nlog_start = \"{start}\"\n", broker.addr);
        let c = city_with(dir.path(), &lines);
        let server = Mutex::new(start_server(&c));
        wait_up(&c, &server);
        let read = || {
            let (_, m) = post(&c.addr, "/metrics", &c.token, None, "").unwrap_or_default();
            metric(&m, "citywatch_events_in_total{table=\"alarms\"} ")
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while read() < want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(500)); // nothing more comes
        assert_eq!(read(), want, "log_start = {start}");
        let _ = server.lock().unwrap().kill();
    }
}

/// `rows` (NDJSON lines of one table) as Arrow IPC record values of `per`
/// rows each, stamped with their first row's time.
fn arrow_values(table: citywatch_engine::contract::Table, rows: &[(i64, Vec<u8>)], per: usize) -> Vec<(i64, Vec<u8>)> {
    rows.chunks(per)
        .map(|chunk| {
            let (batch, faults) = citywatch_engine::ndjson::records_to_batch(table, chunk.iter().map(|r| &r.1[..]));
            assert!(faults.is_empty(), "{faults:?}");
            let mut w = arrow_ipc::writer::StreamWriter::try_new(Vec::new(), &batch.schema()).unwrap();
            w.write(&batch).unwrap();
            (chunk[0].0, w.into_inner().unwrap())
        })
        .collect()
}

/// What a CAP message of the alerts topic says: `(identifier, msgType)`.
fn cap_fields(xml: &[u8]) -> (String, String) {
    let xml = std::str::from_utf8(xml).unwrap();
    assert!(xml.contains("urn:oasis:names:tc:emergency:cap:1.2"), "a CAP 1.2 message: {xml}");
    let tag = |t: &str| {
        let open = format!("<{t}>");
        let at = xml.find(&open).unwrap_or_else(|| panic!("<{t}> in {xml}")) + open.len();
        xml[at..at + xml[at..].find('<').unwrap()].to_owned()
    };
    (tag("identifier"), tag("msgType"))
}

/// The live feed reads Arrow IPC record values from topics a city named
/// itself (`log_topics`), raises the alerts the JSON feed raises, reads
/// every row of records that hold several and passes over a record that is
/// not Arrow (counted as rejected), and writes every
/// alert change to its alerts topic as a CAP message: an Alert per alert,
/// an Update per later change, each once.
#[test]
fn the_live_feed_reads_arrow_from_named_topics_and_writes_cap_changes() {
    use citywatch_engine::contract::Table;
    use common::crash::{alerts, assert_same_alerts, city_with, post, settle, start_server, wait_up};
    use std::sync::Mutex;

    let Some(broker) = broker() else { return };
    let now = now_ms();
    let cfg = citywatch_kafka::LogConfig::new(&broker.addr, "unused.");
    let (alarms, patrols) = stream_records(now - 2 * 3_600_000, 120);
    let mut producer = citywatch_kafka::LogProducer::open(&cfg).unwrap();
    producer.send("j.alarms", 1, 0, alarms.clone()).unwrap();
    producer.send("j.patrols", 1, 0, patrols.clone()).unwrap();
    // One row a record: the feed merges records by time, so these are
    // applied in the JSON feed's order and must raise its alerts.
    producer.send("dispatch.110.v1", 1, 0, arrow_values(Table::Alarms, &alarms, 1)).unwrap();
    producer.send("units.gps.v1", 1, 0, arrow_values(Table::Patrols, &patrols, 1)).unwrap();
    // Three rows a record, and one record that is not Arrow: every row of
    // every good record is read (a record is applied whole, so its later
    // rows come before other partitions' records of their time: the alerts
    // may differ from the row-by-row feed's, and are not compared).
    let mut batched = arrow_values(Table::Alarms, &alarms, 3);
    batched.insert(5, (batched[5].0, b"{\"not\": \"arrow\"}".to_vec()));
    producer.send("b.alarms", 1, 0, batched).unwrap();
    producer.send("b.patrols", 1, 0, arrow_values(Table::Patrols, &patrols, 3)).unwrap();

    let run = |dir: &Path, lines: &str| {
        let c = city_with(dir, &format!("log_brokers = \"{}\"\n{lines}", broker.addr));
        let server = Mutex::new(start_server(&c));
        wait_up(&c, &server);
        settle(&c, &server);
        let (_, metrics) = post(&c.addr, "/metrics", &c.token, None, "").unwrap();
        let _ = Command::new("kill").args(["-TERM", &server.lock().unwrap().id().to_string()]).status();
        assert!(server.lock().unwrap().wait().unwrap().success(), "SIGTERM drains and exits 0");
        metrics
    };
    let json_dir = tempfile::tempdir().unwrap();
    run(json_dir.path(), "log_topic_prefix = \"j.\"\n");
    let want = alerts(&json_dir.path().join("store.sqlite"));
    assert!(want.len() >= 50, "the stream raises alerts: {}", want.len());

    let dir = tempfile::tempdir().unwrap();
    let metrics = run(
        dir.path(),
        "log_format = \"arrow\"\nlog_alerts = true\nlog_alerts_format = \"cap\"\n\
         log_topics = { alarms = \"dispatch.110.v1\", patrols = \"units.gps.v1\", alerts = \"police.alerts.cap\" }\n",
    );
    assert_same_alerts(&want, dir.path(), "Arrow records from named topics");
    assert_eq!(metric(&metrics, "citywatch_rejected_rows_total{table=\"alarms\"} "), 0, "{metrics}");

    let batched_dir = tempfile::tempdir().unwrap();
    let metrics = run(batched_dir.path(), "log_format = \"arrow\"\nlog_topic_prefix = \"b.\"\n");
    let read = |table: &str| metric(&metrics, &format!("citywatch_events_in_total{{table=\"{table}\"}} "));
    assert_eq!((read("alarms"), read("patrols")), (alarms.len() as u64, patrols.len() as u64), "{metrics}");
    assert_eq!(
        metric(&metrics, "citywatch_rejected_rows_total{table=\"alarms\"} "),
        1,
        "the record that is not Arrow is one rejected row: {metrics}"
    );

    // Every change once, in order, as CAP.
    let log = change_log(&dir.path().join("store.sqlite"));
    let topic = citywatch_kafka::read_values(&cfg, "police.alerts.cap", 0).unwrap();
    assert_eq!(topic.len(), log.len(), "one CAP message per change");
    for ((_, value), (seq, id, change)) in topic.iter().zip(&log) {
        let (identifier, msg_type) = cap_fields(value);
        if change == "new" {
            assert_eq!((identifier.as_str(), msg_type.as_str()), (id.as_str(), "Alert"));
        } else {
            assert_eq!((identifier, msg_type), (format!("{id}.{seq}"), "Update".to_owned()), "{change}");
        }
    }
    let news = log.iter().filter(|c| c.2 == "new").count();
    assert_eq!(news, want.len(), "one Alert message per alert");
}

/// `publish --speed` paces the records in event time into topics named
/// outright (`--topic`); a replay of those topics gives the Parquet replay's
/// alerts, and `--alerts-format cap` writes them as CAP messages.
#[test]
fn a_paced_publish_into_named_topics_replays_the_same_and_alerts_go_out_as_cap() {
    let Some(broker) = broker() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("city");
    dataset(&input, None);
    let from_files = dir.path().join("files");
    common::replay_ok(&input, &from_files, 1, &[]);
    let alerts = std::fs::read_to_string(from_files.join("alerts.ndjson")).unwrap();

    let names = ["--topic", "calls=telco.cdr", "--topic", "alarms=dispatch.110", "--topic", "patrols=units.gps"];
    let speed = 14_400.0; // the 4-hour city in about a second
    let started = Instant::now();
    let args = ["publish", "--input", input.to_str().unwrap(), "--brokers", &broker.addr, "--partitions", "2"];
    let out = ok(common::citywatch_within(&[&args[..], &names, &["--speed", "14400"]].concat(), LIMIT), "publish");
    let took = started.elapsed();
    assert!(out.contains("records -> telco.cdr"), "{out}");
    // Paced: no faster than the event-time span allows.
    let cfg = citywatch_kafka::LogConfig::new(&broker.addr, "");
    let times: Vec<i64> = (0..2)
        .flat_map(|p| citywatch_kafka::read_values(&cfg, "telco.cdr", p).unwrap())
        .map(|(_, v)| serde_json::from_slice::<serde_json::Value>(&v).unwrap()["ts_ms"].as_i64().unwrap())
        .collect();
    let span_ms = times.iter().max().unwrap() - times.iter().min().unwrap();
    let least = Duration::from_secs_f64(span_ms as f64 / 1000.0 / speed);
    assert!(least > Duration::from_millis(500), "the city spans {span_ms} ms");
    assert!(took >= least.mul_f64(0.95), "published in {took:?}, the span at x{speed} takes {least:?}");

    let out_dir = dir.path().join("log");
    let extra = [&names[..], &["--alerts-to-log", "--alerts-format", "cap", "--topic", "alerts=police.cap"]].concat();
    replay_log(&broker, &input, &out_dir, "unused.", 2, &extra);
    assert_eq!(std::fs::read_to_string(out_dir.join("alerts.ndjson")).unwrap(), alerts, "paced records, same alerts");
    let ids: Vec<String> = alerts
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["alert_id"].as_str().unwrap().to_owned())
        .collect();
    let cap: Vec<(String, String)> =
        citywatch_kafka::read_values(&cfg, "police.cap", 0).unwrap().iter().map(|(_, v)| cap_fields(v)).collect();
    assert_eq!(cap.iter().map(|c| c.0.clone()).collect::<Vec<_>>(), ids, "one CAP message per alert, in order");
    assert!(cap.iter().all(|c| c.1 == "Alert"));

    // Arrow values cannot be paced: refused with what to do.
    let arrow = [&args[..], &["--speed", "60", "--log-format", "arrow", "--topic-prefix", "z."]].concat();
    let o = common::citywatch_within(&arrow, LIMIT);
    assert!(!o.status.success() && common::stderr(&o).contains("leave out --speed"), "{}", common::stderr(&o));
}

/// Two timely processes share the partitions of the log between them and
/// give the alerts of a one-process replay of the files.
#[test]
fn two_processes_share_the_partitions_and_match_one() {
    let Some(broker) = broker() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("city");
    dataset(&input, None);
    let from_files = dir.path().join("files");
    common::replay_ok(&input, &from_files, 1, &[]);
    publish(&broker, &input, "c.", 3);

    let port = || TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let hostfile = dir.path().join("hosts");
    std::fs::write(&hostfile, format!("127.0.0.1:{}\n127.0.0.1:{}\n", port(), port())).unwrap();
    let out = dir.path().join("cluster");
    let spawn = |process: usize| {
        Command::new(env!("CARGO_BIN_EXE_citywatch"))
            .args(["replay", "--quiet", "--workers", "2", "--processes", "2"])
            .args(["--process", &process.to_string(), "--hostfile", hostfile.to_str().unwrap()])
            .args(["--input", input.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .args(["--brokers", &broker.addr, "--topic-prefix", "c."])
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut p1, mut p0) = (spawn(1), spawn(0));
    assert!(p0.wait().unwrap().success(), "process 0 failed");
    assert!(p1.wait().unwrap().success(), "process 1 failed");
    let alerts = std::fs::read(from_files.join("alerts.ndjson")).unwrap();
    assert!(std::fs::read(out.join("alerts.ndjson")).unwrap() == alerts, "2 processes x 2 workers differ from files");
    let (a, b) = (common::json(&from_files.join("summary.json")), common::json(&out.join("summary.json")));
    assert_eq!(a["events"], b["events"], "every event read once");
}

//! The output contract (documented for users in
//! `docs/alert-contract.md`).
//!
//! A model emits [`AlertDraft`]s: what it knows (kind, severity, score, event
//! time, subject, position, evidence, the level of the hierarchy it is for).
//! The engine turns each into an [`Alert`]: it stamps the model's name and
//! version, derives the deterministic `alert_id`, and routes it to a cell, grid,
//! community, street, district and assignee ([`crate::jurisdiction`]).
//!
//! `alert_id` = the first 8 bytes, hex, of SHA-256 over
//! `model \0 kind \0 subject \0 event_ts_ms`: it depends only on the data, so
//! the same input gives the same ids whatever the worker or process count.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use sha2::{Digest, Sha256};

use crate::geo::Point;
use crate::{Error, Result};

/// CAP 1.2 severity terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Severity {
    /// Extraordinary threat to life or property.
    Extreme,
    /// Significant threat to life or property.
    Severe,
    /// Possible threat to life or property.
    Moderate,
    /// Minimal to no known threat.
    Minor,
}

impl Severity {
    /// CAP spelling, lower case as in the alert columns.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Extreme => "extreme",
            Severity::Severe => "severe",
            Severity::Moderate => "moderate",
            Severity::Minor => "minor",
        }
    }

    /// Parses the alert column's spelling.
    pub fn parse(s: &str) -> Option<Severity> {
        [Severity::Extreme, Severity::Severe, Severity::Moderate, Severity::Minor].into_iter().find(|v| v.as_str() == s)
    }

    /// CAP 1.2 spelling (capitalised).
    pub fn cap(self) -> &'static str {
        match self {
            Severity::Extreme => "Extreme",
            Severity::Severe => "Severe",
            Severity::Moderate => "Moderate",
            Severity::Minor => "Minor",
        }
    }
}

/// Which level of the hierarchy an alert is for. Routing finds the officer at
/// that level for the alert's place, and goes up a level when there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum RouteLevel {
    /// The community officer answering for the grid.
    Community,
    /// The station responsible for the street.
    Station,
    /// The district command.
    District,
    /// City analysts.
    City,
}

/// What a model emits; the engine completes it into an [`Alert`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertDraft {
    /// Alert kind within the model (e.g. `response_gap`, `fraud_in_progress`).
    pub kind: String,
    /// CAP severity.
    pub severity: Severity,
    /// Model score, higher is more urgent; its scale is the model's (see its card).
    pub score: f64,
    /// The event time the alert fired at.
    pub event_ts_ms: u64,
    /// What it is about: a number's pseudonym, a cell, `alarm:<id>`.
    pub subject: String,
    /// Where: used for routing. `None` sends it to the city analysts.
    pub pos: Option<Point>,
    /// An H3 cell the alert is about (hotspots); overrides the cell derived from `pos`.
    pub cell: Option<u64>,
    /// Who it is for.
    pub route: RouteLevel,
    /// One line a person reads.
    pub summary: String,
    /// JSON object text: the features and the event ids behind the alert.
    pub evidence: String,
    /// What the officer should do.
    pub action: String,
}

/// One alert row, as written and served.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    /// Deterministic id (see the module docs).
    pub alert_id: String,
    /// Model name.
    pub model: String,
    /// Model version.
    pub model_version: String,
    /// Alert kind.
    pub kind: String,
    /// `extreme`, `severe`, `moderate` or `minor`.
    pub severity: String,
    /// Model score.
    pub score: f64,
    /// Event time the alert fired at (ms since the epoch).
    pub event_ts_ms: i64,
    /// Pseudonym, cell or alarm.
    pub subject: String,
    /// Latitude, degrees.
    pub lat: Option<f64>,
    /// Longitude, degrees.
    pub lon: Option<f64>,
    /// H3 cell (hex string).
    pub cell: Option<String>,
    /// Grid id.
    pub grid: Option<String>,
    /// Community id.
    pub community: Option<String>,
    /// Street id.
    pub street: Option<String>,
    /// District id.
    pub district: Option<String>,
    /// officer_id of the responsible officer.
    pub assignee: Option<String>,
    /// One line a person reads.
    pub summary: String,
    /// JSON object text.
    pub evidence: String,
    /// What the officer should do.
    pub action: String,
}

/// The deterministic alert id.
pub fn alert_id(model: &str, kind: &str, subject: &str, event_ts_ms: u64) -> String {
    let mut h = Sha256::new();
    for part in [model.as_bytes(), kind.as_bytes(), subject.as_bytes()] {
        h.update(part);
        h.update([0u8]);
    }
    h.update(event_ts_ms.to_be_bytes());
    h.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The order alerts are written in: event time, then model, kind, id; then the
/// content, so that even alerts sharing an id sort the same way in every run.
pub fn sort_alerts(alerts: &mut [Alert]) {
    alerts.sort_by(alert_order);
}

/// The order of [`sort_alerts`]: event time, model, kind, id, then the
/// content, so that equal keys still sort the same on every run.
pub fn alert_order(a: &Alert, b: &Alert) -> std::cmp::Ordering {
    (a.event_ts_ms, &a.model, &a.kind, &a.alert_id, &a.summary, &a.evidence, &a.action, a.score.to_bits()).cmp(&(
        b.event_ts_ms,
        &b.model,
        &b.kind,
        &b.alert_id,
        &b.summary,
        &b.evidence,
        &b.action,
        b.score.to_bits(),
    ))
}

/// Folds alerts that share an id (same model, kind, subject and event time:
/// a model raised the same alert twice at one instant) into the first, as the
/// live store folds duplicates into the open alert. `alerts` must be sorted by
/// [`sort_alerts`]. Returns how many were folded; a replay never stops for
/// it, but each model and kind that lost alerts this way is logged as a
/// warning with its count and a first example: it is a model bug (one
/// subject's alert raised twice at one instant, docs/writing-a-model.md).
pub fn fold_duplicates(alerts: &mut Vec<Alert>) -> u64 {
    let before = alerts.len();
    let mut folded: std::collections::BTreeMap<(String, String), (u64, String, i64)> = Default::default();
    alerts.dedup_by(|later, first| {
        let same = later.alert_id == first.alert_id;
        if same {
            let e = folded
                .entry((later.model.clone(), later.kind.clone()))
                .or_insert_with(|| (0, later.subject.clone(), later.event_ts_ms));
            e.0 += 1;
        }
        same
    });
    for ((model, kind), (n, subject, ts)) in &folded {
        tracing::warn!(
            model = %model,
            kind = %kind,
            folded = n,
            "{n} alert(s) of {model}/{kind} shared an id with an earlier one and were folded into it \
             (first: subject {subject} at {ts} ms); a model must raise one alert per subject, kind and instant"
        );
    }
    (before - alerts.len()) as u64
}

/// Arrow schema of the alerts table.
pub fn schema() -> SchemaRef {
    let s = |n: &str, null| Field::new(n, DataType::Utf8, null);
    Arc::new(Schema::new(vec![
        s("alert_id", false),
        s("model", false),
        s("model_version", false),
        s("kind", false),
        s("severity", false),
        Field::new("score", DataType::Float64, false),
        Field::new("event_ts_ms", DataType::Int64, false),
        s("subject", false),
        Field::new("lat", DataType::Float64, true),
        Field::new("lon", DataType::Float64, true),
        s("cell", true),
        s("grid", true),
        s("community", true),
        s("street", true),
        s("district", true),
        s("assignee", true),
        s("summary", false),
        s("evidence", false),
        s("action", false),
    ]))
}

/// Alerts as one Arrow record batch.
pub fn to_record_batch(alerts: &[Alert]) -> Result<RecordBatch> {
    let strings = |f: &dyn Fn(&Alert) -> Option<&str>| -> ArrayRef {
        let mut b = StringBuilder::new();
        for a in alerts {
            b.append_option(f(a));
        }
        Arc::new(b.finish())
    };
    let floats = |f: &dyn Fn(&Alert) -> Option<f64>| -> ArrayRef {
        let mut b = Float64Builder::new();
        for a in alerts {
            b.append_option(f(a));
        }
        Arc::new(b.finish())
    };
    let mut ts = Int64Builder::new();
    for a in alerts {
        ts.append_value(a.event_ts_ms);
    }
    let columns: Vec<ArrayRef> = vec![
        strings(&|a| Some(&a.alert_id)),
        strings(&|a| Some(&a.model)),
        strings(&|a| Some(&a.model_version)),
        strings(&|a| Some(&a.kind)),
        strings(&|a| Some(&a.severity)),
        floats(&|a| Some(a.score)),
        Arc::new(ts.finish()),
        strings(&|a| Some(&a.subject)),
        floats(&|a| a.lat),
        floats(&|a| a.lon),
        strings(&|a| a.cell.as_deref()),
        strings(&|a| a.grid.as_deref()),
        strings(&|a| a.community.as_deref()),
        strings(&|a| a.street.as_deref()),
        strings(&|a| a.district.as_deref()),
        strings(&|a| a.assignee.as_deref()),
        strings(&|a| Some(&a.summary)),
        strings(&|a| Some(&a.evidence)),
        strings(&|a| Some(&a.action)),
    ];
    RecordBatch::try_new(schema(), columns).map_err(|e| Error::Bug(format!("alert batch: {e}")))
}

/// Writes alerts to a Parquet file (zstd).
pub fn write_parquet(path: &Path, alerts: &[Alert]) -> Result<()> {
    let batch = to_record_batch(alerts)?;
    crate::parquet_io::write_parquet_batches(path, schema(), std::iter::once(batch))
}

/// Writes alerts as NDJSON, one object per line, `evidence` as a nested object.
pub fn write_ndjson(path: &Path, alerts: &[Alert]) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut out = std::io::BufWriter::new(file);
    for a in alerts {
        let line = to_json_value(a);
        serde_json::to_writer(&mut out, &line).map_err(|e| Error::Bug(format!("alert json: {e}")))?;
        out.write_all(b"\n").map_err(|e| Error::io(path, e))?;
    }
    out.flush().map_err(|e| Error::io(path, e))
}

/// An alert as a JSON object, with `evidence` parsed (it is JSON text).
pub fn to_json_value(a: &Alert) -> serde_json::Value {
    let mut v = serde_json::to_value(a).expect("alerts serialise");
    if let Ok(e) = serde_json::from_str::<serde_json::Value>(&a.evidence) {
        v["evidence"] = e;
    }
    v
}

/// Reads alerts back from an `alerts.parquet` (for eval and the server).
pub fn read_parquet(path: &Path) -> Result<Vec<Alert>> {
    use arrow_array::{Array, Float64Array, Int64Array};
    let mut out = Vec::new();
    for batch in crate::parquet_io::read_whole_file(path, "alerts")? {
        let col = |name: &str| {
            batch.column_by_name(name).ok_or_else(|| Error::Bug(format!("{}: no column {name}", path.display())))
        };
        let st = |name: &str| -> Result<Vec<Option<String>>> {
            let c = col(name)?;
            let a = arrow_array::cast::AsArray::as_string_opt::<i32>(c.as_ref())
                .ok_or_else(|| Error::Bug(format!("{}: {name} is not utf8", path.display())))?;
            Ok((0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i).to_owned())).collect())
        };
        let fl = |name: &str| -> Result<Vec<Option<f64>>> {
            let c = col(name)?;
            let a = c.as_any().downcast_ref::<Float64Array>().ok_or_else(|| Error::Bug(format!("{name} not f64")))?;
            Ok((0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i))).collect())
        };
        let ts = col("event_ts_ms")?;
        let ts = ts.as_any().downcast_ref::<Int64Array>().ok_or_else(|| Error::Bug("event_ts_ms not i64".into()))?;
        let [id, model, ver, kind, sev, subject, cell, grid, comm, street, dist, assg, summ, evid, act] = [
            "alert_id",
            "model",
            "model_version",
            "kind",
            "severity",
            "subject",
            "cell",
            "grid",
            "community",
            "street",
            "district",
            "assignee",
            "summary",
            "evidence",
            "action",
        ]
        .map(st);
        let (score, lat, lon) = (fl("score")?, fl("lat")?, fl("lon")?);
        let (id, model, ver, kind, sev, subject) = (id?, model?, ver?, kind?, sev?, subject?);
        let (cell, grid, comm, street, dist, assg, summ, evid, act) =
            (cell?, grid?, comm?, street?, dist?, assg?, summ?, evid?, act?);
        for i in 0..batch.num_rows() {
            let req = |v: &Vec<Option<String>>| v[i].clone().unwrap_or_default();
            out.push(Alert {
                alert_id: req(&id),
                model: req(&model),
                model_version: req(&ver),
                kind: req(&kind),
                severity: req(&sev),
                score: score[i].unwrap_or(0.0),
                event_ts_ms: ts.value(i),
                subject: req(&subject),
                lat: lat[i],
                lon: lon[i],
                cell: cell[i].clone(),
                grid: grid[i].clone(),
                community: comm[i].clone(),
                street: street[i].clone(),
                district: dist[i].clone(),
                assignee: assg[i].clone(),
                summary: req(&summ),
                evidence: req(&evid),
                action: req(&act),
            });
        }
    }
    Ok(out)
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// An alert's evidence as labelled facts a person reads, in the evidence's
/// key order: `alarm_id` -> "Alarm id", times (`*_ts_ms`) as UTC, durations
/// (`*_ms`, `*_s`) in minutes or seconds, distances (`*_m`) in km or m,
/// booleans yes/no, lists joined; nulls are left out. Evidence that is not a
/// JSON object is one fact, "Evidence", as it is.
pub fn evidence_facts(evidence: &str) -> Vec<(String, String)> {
    use serde_json::Value;
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(evidence) else {
        return vec![("Evidence".to_owned(), evidence.to_owned())];
    };
    let plain = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{}", (f * 1000.0).round() / 1000.0),
            _ => n.to_string(),
        },
        other => other.to_string(),
    };
    let minutes = |ms: f64| {
        if ms >= 60_000.0 {
            format!("{} min", (ms / 6_000.0).round() / 10.0)
        } else {
            format!("{} s", (ms / 1000.0).round())
        }
    };
    let mut out = Vec::new();
    for (key, v) in &map {
        let (label, text) = match v {
            Value::Null => continue,
            Value::Array(items) if items.is_empty() => continue,
            Value::Array(items) => (key.as_str(), items.iter().map(plain).collect::<Vec<_>>().join(", ")),
            Value::Number(n) if key.ends_with("_ts_ms") => {
                (key.trim_end_matches("_ts_ms"), n.as_i64().map_or_else(|| n.to_string(), crate::lateness::utc_short))
            }
            Value::Number(n) if key.ends_with("_ms") => {
                (key.trim_end_matches("_ms"), minutes(n.as_f64().unwrap_or(0.0)))
            }
            Value::Number(n) if key.ends_with("_s") => {
                (key.trim_end_matches("_s"), minutes(n.as_f64().unwrap_or(0.0) * 1000.0))
            }
            Value::Number(n) if key.ends_with("_m") => {
                let m = n.as_f64().unwrap_or(0.0);
                (
                    key.trim_end_matches("_m"),
                    if m >= 1000.0 { format!("{:.1} km", m / 1000.0) } else { format!("{m:.0} m") },
                )
            }
            other => (key.as_str(), plain(other)),
        };
        let mut label = label.replace('_', " ");
        if let Some(first) = label.get(..1) {
            label = first.to_uppercase() + &label[1..];
        }
        out.push((label, text));
    }
    out
}

/// The alert as a CAP 1.2 message (OASIS Common Alerting Protocol).
/// `sender` identifies this deployment (e.g. `citywatch@qingdao.example`).
/// The description is the evidence in words ([`evidence_facts`]); the area
/// the grid hierarchy's ids.
pub fn to_cap_xml(a: &Alert, sender: &str) -> String {
    to_cap_xml_in(a, sender, None)
}

/// [`to_cap_xml`] with the area described in words (e.g. "community 'Taidong
/// 3', street 'Taidong', district 'Shinan'") instead of the ids.
pub fn to_cap_xml_in(a: &Alert, sender: &str, area: Option<&str>) -> String {
    to_cap_message(a, sender, area, &CapMessage::Alert)
}

/// Which CAP message of an alert's life: the alert itself, or a later
/// change to it (acknowledged, escalated, resolved, updated by a duplicate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapMessage {
    /// The first message (`msgType` Alert, `identifier` the alert id, `sent`
    /// its event time).
    Alert,
    /// A change (`msgType` Update): `identifier` is `ALERT_ID.SEQ` (unique per
    /// change), `references` names the first message, `note` says what
    /// changed, `sent` is when it changed.
    Update {
        /// The change's sequence number (the store's change log).
        seq: i64,
        /// What changed, in words (`acknowledged by officer-7`).
        note: String,
        /// When it changed (ms since the epoch).
        sent_ms: i64,
    },
}

/// The alert as one CAP 1.2 message of its life ([`CapMessage`]); `area` as
/// in [`to_cap_xml_in`].
pub fn to_cap_message(a: &Alert, sender: &str, area: Option<&str>, msg: &CapMessage) -> String {
    let first_sent = crate::lateness::utc_rfc3339(a.event_ts_ms);
    let (identifier, sent, msg_type, extra) = match msg {
        CapMessage::Alert => (a.alert_id.clone(), first_sent, "Alert", String::new()),
        CapMessage::Update { seq, note, sent_ms } => (
            format!("{}.{seq}", a.alert_id),
            crate::lateness::utc_rfc3339(*sent_ms),
            "Update",
            format!(
                "  <note>{}</note>\n  <references>{},{},{first_sent}</references>\n",
                xml_escape(note),
                xml_escape(sender),
                xml_escape(&a.alert_id)
            ),
        ),
    };
    let urgency = match a.severity.as_str() {
        "extreme" | "severe" => "Immediate",
        _ => "Expected",
    };
    let severity = Severity::parse(&a.severity).map_or("Unknown", Severity::cap);
    let area_desc = [&a.grid, &a.community, &a.street, &a.district]
        .iter()
        .filter_map(|x| x.as_deref())
        .collect::<Vec<_>>()
        .join(" / ");
    let area_desc = match area {
        Some(words) => words.to_owned(),
        None if area_desc.is_empty() => "city".to_owned(),
        None => area_desc,
    };
    let description: Vec<String> = evidence_facts(&a.evidence).into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let circle = match (a.lat, a.lon) {
        (Some(lat), Some(lon)) => format!("      <circle>{lat:.6},{lon:.6} 0.5</circle>\n"),
        _ => String::new(),
    };
    let assignee = a.assignee.as_deref().unwrap_or("unassigned");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">\n\
  <identifier>{id}</identifier>\n\
  <sender>{sender}</sender>\n\
  <sent>{sent}</sent>\n\
  <status>Actual</status>\n\
  <msgType>{msg_type}</msgType>\n\
  <scope>Restricted</scope>\n\
  <restriction>police use only; assignee {assignee}</restriction>\n\
{extra}  <info>\n\
    <category>Security</category>\n\
    <event>{kind}</event>\n\
    <urgency>{urgency}</urgency>\n\
    <severity>{severity}</severity>\n\
    <certainty>Possible</certainty>\n\
    <senderName>citywatch {model} {version}</senderName>\n\
    <headline>{headline}</headline>\n\
    <description>{evidence}</description>\n\
    <instruction>{action}</instruction>\n\
    <parameter><valueName>score</valueName><value>{score}</value></parameter>\n\
    <parameter><valueName>subject</valueName><value>{subject}</value></parameter>\n\
    <area>\n\
      <areaDesc>{area}</areaDesc>\n\
{circle}    </area>\n\
  </info>\n\
</alert>\n",
        id = xml_escape(&identifier),
        sender = xml_escape(sender),
        assignee = xml_escape(assignee),
        kind = xml_escape(&a.kind),
        model = xml_escape(&a.model),
        version = xml_escape(&a.model_version),
        headline = xml_escape(&a.summary),
        evidence = xml_escape(&description.join("; ")),
        action = xml_escape(&a.action),
        score = a.score,
        subject = xml_escape(&a.subject),
        area = xml_escape(&area_desc),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let a = alert_id("response_gap", "response_gap", "alarm:1", 10);
        assert_eq!(a, alert_id("response_gap", "response_gap", "alarm:1", 10));
        assert_ne!(a, alert_id("response_gap", "response_gap", "alarm:1", 11));
        assert_ne!(a, alert_id("response_gap", "response_gap", "alarm:2", 10));
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn duplicates_fold_into_the_first() {
        let a = |summary: &str| Alert {
            alert_id: alert_id("m", "k", "s", 5),
            model: "m".into(),
            model_version: "1".into(),
            kind: "k".into(),
            severity: "minor".into(),
            score: 0.0,
            event_ts_ms: 5,
            subject: "s".into(),
            lat: None,
            lon: None,
            cell: None,
            grid: None,
            community: None,
            street: None,
            district: None,
            assignee: None,
            summary: summary.into(),
            evidence: "{}".into(),
            action: String::new(),
        };
        let mut v = vec![a("second"), a("first"), a("first")];
        sort_alerts(&mut v);
        assert_eq!(fold_duplicates(&mut v), 2);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].summary, "first", "the content order decides which one stays");
    }

    #[test]
    fn cap_escapes_and_carries_severity() {
        let a = Alert {
            alert_id: "ab".into(),
            model: "m".into(),
            model_version: "1".into(),
            kind: "k".into(),
            severity: "severe".into(),
            score: 1.5,
            event_ts_ms: 0,
            subject: "s".into(),
            lat: Some(36.0),
            lon: Some(120.0),
            cell: None,
            grid: Some("g<1>".into()),
            community: None,
            street: None,
            district: None,
            assignee: None,
            summary: "a & b".into(),
            evidence: "{}".into(),
            action: "call".into(),
        };
        let xml = to_cap_xml(&a, "citywatch");
        assert!(xml.contains("<description></description>"), "no evidence, no facts: {xml}");
        assert!(xml.contains("<severity>Severe</severity>"));
        assert!(xml.contains("<headline>a &amp; b</headline>"));
        assert!(xml.contains("g&lt;1&gt;"));
        assert!(xml.contains("<sent>1970-01-01T00:00:00+00:00</sent>"));
        let named = to_cap_xml_in(&a, "citywatch", Some("community 'Taidong 3'"));
        assert!(
            named.contains("<areaDesc>community &apos;Taidong 3&apos;</areaDesc>")
                || named.contains("<areaDesc>community 'Taidong 3'</areaDesc>"),
            "{named}"
        );
        let first = to_cap_message(&a, "citywatch", None, &CapMessage::Alert);
        assert_eq!(first, xml, "the first message is the alert's CAP");
        assert!(!first.contains("<references>") && first.contains("<msgType>Alert</msgType>"));
        let update = CapMessage::Update { seq: 42, note: "acknowledged by o<7>".into(), sent_ms: 60_000 };
        let up = to_cap_message(&a, "citywatch", None, &update);
        assert!(up.contains("<identifier>ab.42</identifier>"), "one identifier per change: {up}");
        assert!(up.contains("<msgType>Update</msgType>"));
        assert!(up.contains("<sent>1970-01-01T00:01:00+00:00</sent>"), "sent when it changed");
        assert!(up.contains("<note>acknowledged by o&lt;7&gt;</note>"));
        assert!(up.contains("<references>citywatch,ab,1970-01-01T00:00:00+00:00</references>"));
        // CAP 1.2 order: restriction, note, references, then info.
        let at = |tag: &str| up.find(tag).unwrap_or_else(|| panic!("{tag} in {up}"));
        assert!(
            at("<restriction>") < at("<note>")
                && at("<note>") < at("<references>")
                && at("<references>") < at("<info>")
        );
    }

    #[test]
    fn evidence_reads_as_labelled_facts() {
        let ev = r#"{"alarm_id":102,"dispatched":false,"limit_ms":180000,"nearest_unit":null,
            "nearest_unit_distance_m":2374.0,"received_ts_ms":1772409660000,"open_s":45,"call_ids":[1,2],"risk":2.2999}"#;
        let facts = evidence_facts(ev);
        let get = |k: &str| facts.iter().find(|f| f.0 == k).map(|f| f.1.as_str());
        assert_eq!(get("Alarm id"), Some("102"));
        assert_eq!(get("Dispatched"), Some("no"));
        assert_eq!(get("Limit"), Some("3 min"));
        assert_eq!(get("Nearest unit"), None, "nulls are left out");
        assert_eq!(get("Nearest unit distance"), Some("2.4 km"));
        assert_eq!(get("Received"), Some("2026-03-02 00:01:00Z"));
        assert_eq!(get("Open"), Some("45 s"));
        assert_eq!(get("Call ids"), Some("1, 2"));
        assert_eq!(get("Risk"), Some("2.3"));
        assert_eq!(evidence_facts("not json"), vec![("Evidence".to_owned(), "not json".to_owned())]);
    }
}

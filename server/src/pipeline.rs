//! The seam between the server and the running dataflow.
//!
//! The server codes against [`Pipeline`], so it can be tested with a small
//! deterministic fake and run with the real engine through [`LivePipeline`]
//! (`citywatch_engine::live::LiveEngine` plus the unit directory shared with
//! the engine's reference data). The trait lives here, not in the engine,
//! because it is what the server needs; the adapter lives here too, because
//! neither the trait nor `LiveEngine` belongs to the binary (orphan rule).

use citywatch_engine::changes::ReferenceChange;
use citywatch_engine::event::Event;
use citywatch_engine::live::{LiveEngine, Outcome, ReferenceApplied};
use citywatch_engine::reference::UnitDirectory;

/// Why the pipeline refused a request; nothing of it was applied. The
/// engine's own refusal: `Rows` is served as 400 with the reasons,
/// `Unavailable` (shut down, a worker stopped) as 503.
pub use citywatch_engine::live::Refused as PipelineRefusal;

/// What [`Pipeline::ingest_keyed`] did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Applied; this many of its events were late.
    New {
        /// Late events.
        late: u64,
    },
    /// A request with the same idempotency key was applied before (a retry
    /// after a lost answer): nothing was applied again.
    Duplicate,
}

/// What the server needs from the running dataflow.
pub trait Pipeline: Send + Sync + 'static {
    /// Decoded, validated events of one request, in request order. The engine assigns
    /// sequence numbers and event time; returns how many were late.
    fn ingest(&self, events: Vec<Event>) -> Result<u64, PipelineRefusal>;
    /// [`Pipeline::ingest`] with the request's idempotency key, if it has one:
    /// a key seen before is answered [`Applied::Duplicate`] without applying
    /// anything. The default remembers no keys.
    fn ingest_keyed(&self, key: Option<&str>, events: Vec<Event>) -> Result<Applied, PipelineRefusal> {
        let _ = key;
        self.ingest(events).map(|late| Applied::New { late })
    }
    /// A batch of a message-log feed, its position as the key: applied
    /// without waiting for the journal's sync (see
    /// [`citywatch_engine::live::LiveEngine::ingest_log`]). The default is
    /// [`Pipeline::ingest_keyed`].
    fn ingest_log(&self, key: &str, events: Vec<Event>) -> Result<Applied, PipelineRefusal> {
        self.ingest_keyed(Some(key), events)
    }
    /// Reference rows sent live (registrations, cancellations, roster
    /// changes), applied from their time in event time (see
    /// [`citywatch_engine::live::LiveEngine::update_reference`]). The
    /// default takes none.
    fn update_reference(&self, change: ReferenceChange) -> Result<ReferenceApplied, PipelineRefusal> {
        let _ = change;
        Err(PipelineRefusal::Unavailable("this pipeline takes no reference changes".into()))
    }
    /// Restores the model state a previous run journaled, before any ingest;
    /// `serve` calls it once, with the store draining alerts (the restored
    /// dataflow fires them again; the store keeps each alert id once).
    /// Returns a line for the log. The default has nothing to restore.
    fn restore(&self) -> Result<String, String> {
        Ok("no journal".into())
    }
    /// The newest applied message-log position (see
    /// [`citywatch_engine::live::LiveEngine::log_position`]). Default none.
    fn log_position(&self) -> Option<String> {
        None
    }
    /// Epochs queued for the dataflow's busiest worker (a gauge in `/metrics`). Default 0.
    fn queue_depth(&self) -> usize {
        0
    }
    /// Journal bytes written but not yet on disk (a gauge in `/metrics`). Default 0.
    fn journal_lag_bytes(&self) -> u64 {
        0
    }
    /// Advances event time to `now_ms` with no new events, so deadlines fire in quiet periods.
    fn advance_clock(&self, now_ms: u64);
    /// The current hotspot surface: `(H3 cell hex, score)`, highest first. The
    /// default is an empty surface (no hotspot model running), which is valid.
    fn risk_surface(&self) -> Vec<(String, f64)> {
        Vec::new()
    }
    /// The watermark (ms of event time): events at or before it are late.
    /// `None` when the pipeline does not track one.
    fn watermark(&self) -> Option<u64> {
        None
    }
    /// The patrol unit names the engine's models use (the reference data's
    /// directory), so ingest registers names where the models look them up.
    /// The default is a directory of the server's own.
    fn unit_directory(&self) -> UnitDirectory {
        UnitDirectory::default()
    }
}

/// The real engine as a [`Pipeline`].
#[derive(Debug)]
pub struct LivePipeline {
    /// The running dataflow.
    pub engine: LiveEngine,
    /// The `units` of the `Reference` the engine was started with.
    pub units: UnitDirectory,
}

impl LivePipeline {
    /// Wraps a started engine and its reference data's unit directory.
    pub fn new(engine: LiveEngine, units: UnitDirectory) -> Self {
        LivePipeline { engine, units }
    }
}

impl Pipeline for LivePipeline {
    fn ingest(&self, events: Vec<Event>) -> Result<u64, PipelineRefusal> {
        self.engine.ingest(events).map(|i| i.late)
    }

    fn ingest_keyed(&self, key: Option<&str>, events: Vec<Event>) -> Result<Applied, PipelineRefusal> {
        Ok(match self.engine.ingest_keyed(key, events)? {
            Outcome::Applied(i) => Applied::New { late: i.late },
            Outcome::Duplicate => Applied::Duplicate,
        })
    }

    fn ingest_log(&self, key: &str, events: Vec<Event>) -> Result<Applied, PipelineRefusal> {
        Ok(match self.engine.ingest_log(key, events)? {
            Outcome::Applied(i) => Applied::New { late: i.late },
            Outcome::Duplicate => Applied::Duplicate,
        })
    }

    fn update_reference(&self, change: ReferenceChange) -> Result<ReferenceApplied, PipelineRefusal> {
        self.engine.update_reference(change)
    }

    fn queue_depth(&self) -> usize {
        self.engine.queue_depth()
    }

    fn journal_lag_bytes(&self) -> u64 {
        self.engine.journal_lag_bytes()
    }

    fn restore(&self) -> Result<String, String> {
        let r = self.engine.restore().map_err(|e| e.to_string())?;
        let (changes, _) = self.engine.reference_totals();
        Ok(format!(
            "restored {} journaled epochs ({} events) and {changes} live reference rows from the journal",
            r.epochs, r.events
        ))
    }

    fn advance_clock(&self, now_ms: u64) {
        self.engine.advance_clock(now_ms);
    }

    fn log_position(&self) -> Option<String> {
        self.engine.log_position()
    }

    fn watermark(&self) -> Option<u64> {
        Some(self.engine.watermark())
    }

    fn unit_directory(&self) -> UnitDirectory {
        self.units.clone()
    }
}

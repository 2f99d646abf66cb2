//! The seam between the server and the running dataflow.
//!
//! The server codes against [`Pipeline`], so it can be tested with a small
//! deterministic fake and run with the real engine through [`LivePipeline`]
//! (`citywatch_engine::live::LiveEngine` plus the unit directory shared with
//! the engine's reference data). The trait lives here, not in the engine,
//! because it is what the server needs; the adapter lives here too, because
//! neither the trait nor `LiveEngine` belongs to the binary (orphan rule).

use citywatch_engine::event::Event;
use citywatch_engine::live::LiveEngine;
use citywatch_engine::reference::UnitDirectory;

/// Why the pipeline refused a request; nothing of it was applied. The
/// engine's own refusal: `Rows` is served as 400 with the reasons,
/// `Unavailable` (shut down, a worker stopped) as 503.
pub use citywatch_engine::live::Refused as PipelineRefusal;

/// What the server needs from the running dataflow.
pub trait Pipeline: Send + Sync + 'static {
    /// Decoded, validated events of one request, in request order. The engine assigns
    /// sequence numbers and event time; returns how many were late.
    fn ingest(&self, events: Vec<Event>) -> Result<u64, PipelineRefusal>;
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

    fn advance_clock(&self, now_ms: u64) {
        self.engine.advance_clock(now_ms);
    }

    fn watermark(&self) -> Option<u64> {
        Some(self.engine.watermark())
    }

    fn unit_directory(&self) -> UnitDirectory {
        self.units.clone()
    }
}

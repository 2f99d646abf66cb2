//! The model seam: the one trait a model author implements.
//!
//! A model receives the three input streams (calls, alarms, patrols: timely
//! streams of compact events at event time, see [`crate::event`]) and the
//! read-only [`Reference`] data, and returns a stream of [`AlertDraft`]s. Only
//! [`Model::build`] is required; name, version, card and configuration have
//! defaults. The engine stamps each draft with the model's name and version,
//! gives it its deterministic id, routes it, and writes or pushes it.
//!
//! Models are registered in one plain list the binary passes to the engine
//! (see `src/main.rs`, `models()`): nothing in the engine knows a model by name.
//!
//! Determinism is the model's side of the contract: the alerts must depend only
//! on the events (their `ts_ms`, `seq` and content), never on which worker saw
//! what first. Buffer by time, sort by `(time, seq)`, and exchange by a key
//! derived from the data; the operators in `citywatch-operators` do this.
//!
//! ```
//! use citywatch_engine::model::{Inputs, Model};
//! use citywatch_engine::alert::AlertDraft;
//! use citywatch_engine::EventTime;
//! use timely::dataflow::StreamVec;
//! use timely::dataflow::operators::vec::Filter;
//! use timely::dataflow::operators::vec::Map;
//!
//! /// Raises nothing: the smallest possible model.
//! struct Quiet;
//!
//! impl Model for Quiet {
//!     fn build<'s>(&self, inputs: &Inputs<'s>) -> StreamVec<'s, EventTime, AlertDraft> {
//!         inputs.alarms.clone().filter(|_| false).map(|_| unreachable!())
//!     }
//! }
//! assert_eq!(Quiet.name(), "quiet");
//! ```

use timely::dataflow::StreamVec;

use crate::alert::AlertDraft;
use crate::event::{AlarmEvent, CallEvent, PatrolEvent};
use crate::reference::Reference;
use crate::{Error, EventTime, Result};

/// What a model builds from.
#[derive(Debug)]
pub struct Inputs<'s> {
    /// Call signalling events, at event time, not partitioned (exchange them by the key you need).
    pub calls: StreamVec<'s, EventTime, CallEvent>,
    /// Alarms, at event time.
    pub alarms: StreamVec<'s, EventTime, AlarmEvent>,
    /// Patrol fixes and status changes, at event time.
    pub patrols: StreamVec<'s, EventTime, PatrolEvent>,
    /// Subscribers, jurisdiction, unit names.
    pub reference: Reference,
}

/// A detection model.
pub trait Model: Send + Sync {
    /// Builds the model's part of the dataflow and returns its alerts.
    fn build<'s>(&self, inputs: &Inputs<'s>) -> StreamVec<'s, EventTime, AlertDraft>;

    /// The model's name, as in `--models` and the `model` alert column. Defaults
    /// to the type's name in snake case (`ResponseGap` -> `response_gap`).
    fn name(&self) -> String {
        snake_case(std::any::type_name::<Self>().rsplit("::").next().unwrap_or("model"))
    }

    /// The model's version, in the `model_version` alert column.
    fn version(&self) -> String {
        "0.1.0".to_owned()
    }

    /// The model card (its README), shown by `citywatch models`.
    fn card(&self) -> &'static str {
        ""
    }

    /// The effective configuration, as JSON (for summaries and `citywatch models`).
    fn config(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Applies settings from the config file's section for this model.
    /// The default accepts no settings.
    fn configure(&mut self, settings: &serde_json::Value) -> Result<()> {
        match settings {
            serde_json::Value::Null => Ok(()),
            serde_json::Value::Object(m) if m.is_empty() => Ok(()),
            other => Err(Error::config(
                format!("settings of model `{}`", self.name()),
                format!("this model takes no settings, got {other}"),
            )),
        }
    }
}

fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn snake() {
        assert_eq!(super::snake_case("ResponseGap"), "response_gap");
        assert_eq!(super::snake_case("Quiet"), "quiet");
    }
}

//! The model seam: the one trait a model author implements.
//!
//! A model receives the three input streams (calls, alarms, patrols: timely
//! streams of compact events at event time, see [`crate::event`]) and the
//! read-only [`Reference`] data, and returns a stream of [`AlertDraft`]s.
//! [`Model::name`] and [`Model::build`] are required (the name is hashed into
//! every alert id, so it is spelt out rather than derived from the type's
//! name); version, card, configuration and the single-threaded
//! [`Model::reference`] have defaults. A model whose settings are one serde
//! struct writes its configuration methods with one line,
//! [`config_field!`](crate::config_field). The engine stamps each draft with the
//! model's name and version, gives it its deterministic id, routes it, and
//! writes or pushes it.
//!
//! Models are registered in one plain list, `citywatch_registry::models()`
//! (models/registry), which the binary, the benchmarks and the tests use:
//! nothing in the engine knows a model by name. docs/writing-a-model.md is the
//! guide; `citywatch new-model NAME` writes a new model's crate and registers it.
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
//!     fn name(&self) -> String {
//!         "quiet".to_owned()
//!     }
//!
//!     fn build<'s>(&self, inputs: &Inputs<'s>) -> StreamVec<'s, EventTime, AlertDraft> {
//!         inputs.alarms.clone().filter(|_| false).map(|_| unreachable!())
//!     }
//! }
//! assert_eq!(Quiet.name(), "quiet");
//! ```

use timely::dataflow::StreamVec;

use crate::alert::AlertDraft;
use crate::event::{AlarmEvent, CallEvent, Event, PatrolEvent};
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

    /// The model's name, as in `--models` and the `model` alert column, in
    /// snake case (`response_gap`). Alert ids hash it: renaming a model
    /// changes every id it raises.
    fn name(&self) -> String;

    /// The model's version, in the `model_version` alert column.
    fn version(&self) -> String {
        "0.1.0".to_owned()
    }

    /// The model card (its README), shown by `citywatch models`.
    fn card(&self) -> &'static str {
        ""
    }

    /// The effective configuration, as JSON (for summaries and `citywatch models`).
    /// [`config_field!`](crate::config_field) writes it with [`Model::configure`].
    fn config(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Applies settings from the config file's section for this model.
    /// The default accepts no settings; [`config_field!`](crate::config_field)
    /// writes it for settings held in one serde struct.
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

    /// The model's single-threaded reference: the alerts it must raise on
    /// `events` (in the replay's merged order, as
    /// [`crate::replay::merged_events`] gives them), written as plainly as
    /// possible and with the same configuration. The dataflow is tested
    /// against it with 1, 2 and 4 workers, and the benchmarks time it
    /// (`None`: the model has none, and is skipped there).
    fn reference(&self, events: &[Event], reference: &Reference) -> Option<Vec<AlertDraft>> {
        let _ = (events, reference);
        None
    }
}

/// Writes [`Model::config`] and [`Model::configure`] for a model whose
/// settings are one serde struct in one of its fields: inside `impl Model`,
/// `citywatch_engine::config_field!(config);` or, to check or complete the
/// settings once read, `citywatch_engine::config_field!(config, Config::check);`
/// where the check is a `fn(&mut Config) -> Result<()>` (a `fn(&Config)`
/// also fits) whose error names the setting.
///
/// `config` is [`config_json`] of the field; `configure` reads the config
/// file's `[models.NAME]` table with [`configure_from`] (so a serde error
/// names the model), runs the check, and only then replaces the field: a
/// rejected section leaves the model as it was.
///
/// ```
/// use citywatch_engine::alert::AlertDraft;
/// use citywatch_engine::model::{Inputs, Model};
/// use citywatch_engine::{Error, EventTime, Result};
/// use serde_json::json;
/// use timely::dataflow::StreamVec;
/// use timely::dataflow::operators::vec::{Filter, Map};
///
/// #[derive(Debug, serde::Serialize, serde::Deserialize)]
/// #[serde(default, deny_unknown_fields)]
/// struct Config {
///     min_alarms: usize,
/// }
///
/// impl Default for Config {
///     fn default() -> Self {
///         Config { min_alarms: 3 }
///     }
/// }
///
/// impl Config {
///     fn check(&self) -> Result<()> {
///         match self.min_alarms {
///             0 => Err(Error::config("settings of model `bursts`", "min_alarms must be at least 1")),
///             _ => Ok(()),
///         }
///     }
/// }
///
/// struct Bursts {
///     config: Config,
/// }
///
/// impl Model for Bursts {
///     fn name(&self) -> String {
///         "bursts".to_owned()
///     }
///
///     citywatch_engine::config_field!(config, Config::check);
///
///     fn build<'s>(&self, inputs: &Inputs<'s>) -> StreamVec<'s, EventTime, AlertDraft> {
///         inputs.alarms.clone().filter(|_| false).map(|_| unreachable!())
///     }
/// }
///
/// let mut model = Bursts { config: Config::default() };
/// model.configure(&json!({ "min_alarms": 5 }))?;
/// assert_eq!(model.config(), json!({ "min_alarms": 5 }));
/// // A misspelt key and a failed check are errors naming the model, and
/// // leave the settings as they were.
/// let typo = model.configure(&json!({ "min_alarm": 2 })).unwrap_err().to_string();
/// assert!(typo.contains("settings of model `bursts`") && typo.contains("unknown field `min_alarm`"), "{typo}");
/// let zero = model.configure(&json!({ "min_alarms": 0 })).unwrap_err().to_string();
/// assert!(zero.contains("min_alarms must be at least 1"), "{zero}");
/// assert_eq!(model.config(), json!({ "min_alarms": 5 }));
/// // No section at all: the defaults.
/// model.configure(&serde_json::Value::Null)?;
/// assert_eq!(model.config(), json!({ "min_alarms": 3 }));
/// # Ok::<(), citywatch_engine::Error>(())
/// ```
///
/// It is a macro rather than a second trait with a `Config` associated type
/// because such a trait still needs two accessors per model (`&self.config`,
/// `&mut self.config`), which cost as many lines as the two methods they
/// would replace.
#[macro_export]
macro_rules! config_field {
    ($field:ident) => {
        $crate::config_field!($field, $crate::model::accept_settings);
    };
    ($field:ident, $check:expr) => {
        fn config(&self) -> $crate::model::serde_json::Value {
            $crate::model::config_json(&self.$field)
        }

        fn configure(&mut self, settings: &$crate::model::serde_json::Value) -> $crate::Result<()> {
            let mut config = $crate::model::configure_from(&$crate::model::Model::name(self), settings)?;
            ($check)(&mut config)?;
            self.$field = config;
            Ok(())
        }
    };
}

#[doc(hidden)]
pub use serde_json;

/// The check of [`config_field!`] when a model gives none: every setting
/// serde accepts is accepted.
pub fn accept_settings<C>(_: &mut C) -> Result<()> {
    Ok(())
}

/// [`Model::config`] for a model whose configuration is one serialisable struct.
pub fn config_json<C: serde::Serialize>(config: &C) -> serde_json::Value {
    serde_json::to_value(config).expect("a model configuration serialises to JSON")
}

/// [`Model::configure`] for a model whose configuration is one struct: reads
/// `settings` (the config file's `[models.NAME]` table, as JSON) into a new
/// `C`, naming the model and the field in the error. Fields left out keep
/// their defaults when `C` is `#[serde(default)]`.
pub fn configure_from<C: serde::de::DeserializeOwned>(model: &str, settings: &serde_json::Value) -> Result<C> {
    let settings = if settings.is_null() { &serde_json::Value::Object(Default::default()) } else { settings };
    C::deserialize(settings).map_err(|e| Error::config(format!("settings of model `{model}`"), e.to_string()))
}

//! The config file (`--config FILE`, TOML): engine settings and each model's
//! section. Every key has a documented default, so no file is needed to start.
//!
//! ```toml
//! pseudonym_key = "change-me"      # HMAC key of phone-number pseudonyms (default: the public demo key)
//! home_country_code = "86"         # to tell international numbers
//! lateness = "60s"                 # allowed lateness of events
//! max_clock_skew = "5m"            # replay: rows further ahead of the clock are out_of_range
//! fallback_officer = "A01"         # gets alerts no officer's scope covers (default: none)
//!
//! reference = "data/qingdao"        # live mode: grids, officers, subscribers
//! workers = 2                       # live mode: worker threads
//!
//! [models.response_gap]            # one table per model; see each model card
//! dispatch_within_ms = 180000
//!
//! [server]                         # the live service (server/README.md)
//! addr = "127.0.0.1:8080"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use crate::model::Model;
use crate::{Error, Result};

/// Engine settings from the config file. Unknown keys are errors (a typo
/// such as `pseudonymkey` must not silently leave the public demo key in use).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// HMAC key for phone-number pseudonyms.
    pub pseudonym_key: Option<String>,
    /// Home country calling code, digits.
    pub home_country_code: Option<String>,
    /// Allowed lateness, e.g. `60s`.
    pub lateness: Option<String>,
    /// Replay: rows dated further ahead of the wall clock than this (e.g.
    /// `5m`, the default; `off` for data generated for the future) are
    /// rejected as `out_of_range`. The live service has its own
    /// `[server] max_clock_skew_ms`.
    pub max_clock_skew: Option<String>,
    /// The officer who gets alerts that no officer's scope covers, not even a
    /// city analyst's (a dataset without an officers table); default: nobody.
    pub fallback_officer: Option<String>,
    /// Live mode: a dataset folder whose reference tables (grids, officers,
    /// subscribers) the service routes with.
    pub reference: Option<std::path::PathBuf>,
    /// Live mode: worker threads.
    pub workers: Option<usize>,
    /// Per-model settings, by model name.
    #[serde(default)]
    pub models: BTreeMap<String, toml::Value>,
    /// The `[server]` table, handed to the server as it is (it has its own
    /// documented keys, see `server/README.md`).
    pub server: Option<toml::Value>,
}

impl Settings {
    /// Reads a config file.
    pub fn load(path: &Path) -> Result<Settings> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        toml::from_str(&text).map_err(|e| Error::config(format!("config file {}", path.display()), e.to_string()))
    }

    /// Applies each model's section; a section for a model that is not registered is an error
    /// (a typo would otherwise silently leave a model on its defaults).
    pub fn configure(&self, models: &mut [Box<dyn Model>]) -> Result<()> {
        for (name, value) in &self.models {
            let model = models.iter_mut().find(|m| &m.name() == name).ok_or_else(|| {
                Error::config(
                    format!("[models.{name}]"),
                    "no model by that name is registered (see `citywatch models`)",
                )
            })?;
            let json =
                serde_json::to_value(value).map_err(|e| Error::config(format!("[models.{name}]"), e.to_string()))?;
            model.configure(&json)?;
        }
        Ok(())
    }
}

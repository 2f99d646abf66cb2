//! `model_template`: several alarms in one community within a few minutes
//! (a fight spilling over, a fire reported by many, a burglary spree), for
//! the community's officer.
//!
//! This crate is the template that `citywatch new-model NAME` copies: a small
//! model that is complete (configuration, card, dataflow, reference, test)
//! so that a new model starts from something that builds, runs and is
//! tested, and is edited from there. It is not registered. See
//! docs/writing-a-model.md.
//!
//! The dataflow: alarms, keyed by their community
//! ([`Jurisdiction::community_of`]), through a [`SlidingCount`]; each burst
//! becomes one alert at the event time of the alarm that completed it, routed
//! to the community officer at that alarm's place.

use citywatch_engine::alert::{AlertDraft, RouteLevel, Severity};
use citywatch_engine::event::{AlarmEvent, Event};
use citywatch_engine::jurisdiction::Jurisdiction;
use citywatch_engine::model::{Inputs, Model};
use citywatch_engine::reference::Reference;
use citywatch_engine::{EventTime, Result};
use citywatch_operators::{Burst, SlidingCount};
use timely::dataflow::StreamVec;
use timely::dataflow::operators::vec::{Filter, Map};

pub mod reference;

/// Settings (`[models.model_template]` in the config file).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Alarms in one community that make a burst.
    pub min_alarms: usize,
    /// Within this many minutes.
    pub window_min: u64,
    /// Only alarms this urgent or more (1 most urgent, 4 least).
    pub max_priority: u8,
}

impl Default for Config {
    fn default() -> Self {
        Config { min_alarms: 3, window_min: 10, max_priority: 4 }
    }
}

impl Config {
    fn window_ms(&self) -> u64 {
        self.window_min * 60_000
    }

    /// The ranges serde cannot check (`configure` runs it).
    fn check(&self) -> Result<()> {
        if self.min_alarms < 2 || self.window_min == 0 {
            return Err(citywatch_engine::Error::config(
                "settings of model `model_template`",
                format!(
                    "min_alarms must be at least 2 and window_min above 0, got {} and {}",
                    self.min_alarms, self.window_min
                ),
            ));
        }
        Ok(())
    }
}

/// The model.
#[derive(Debug, Clone, Default)]
pub struct ModelTemplate {
    /// Its settings.
    pub config: Config,
}

/// The alarms the model counts: urgent enough, inside the city's grids.
fn counted(config: &Config, jurisdiction: &Jurisdiction, alarm: &AlarmEvent) -> Option<u64> {
    if alarm.priority > config.max_priority {
        return None;
    }
    jurisdiction.community_of(alarm.pos)
}

/// The words of a burst's alert: summary, evidence and action. Shared with
/// the reference, which decides everything else (when, about what, where,
/// for whom) on its own, so that the test catches a mistake in those.
fn words(config: &Config, community: &str, alarms: &[AlarmEvent]) -> (String, String, String) {
    let ids: Vec<u64> = alarms.iter().map(|a| a.alarm_id).collect();
    let urgent = alarms.iter().filter(|a| a.priority <= 2).count();
    let summary =
        format!("{} alarms in community {community} within {} min ({urgent} urgent)", alarms.len(), config.window_min);
    let evidence = serde_json::json!({
        "alarm_ids": ids,
        "first_ts_ms": alarms[0].ts_ms,
        "window_min": config.window_min,
        "min_alarms": config.min_alarms,
    });
    let action = "Check whether these alarms are one incident; brief the units answering them.";
    (summary, evidence.to_string(), action.to_owned())
}

/// One burst's alert: about the community, at the alarm that completed it,
/// for the community officer there.
fn draft(config: &Config, jurisdiction: &Jurisdiction, burst: &Burst<AlarmEvent>) -> AlertDraft {
    let last = burst.events.last().expect("a burst has events");
    let community = jurisdiction.community_id(last.pos).map(|c| c.into_owned()).unwrap_or_default();
    let (summary, evidence, action) = words(config, &community, &burst.events);
    let urgent = burst.events.iter().any(|a| a.priority <= 2);
    AlertDraft {
        kind: "model_template".to_owned(),
        severity: if urgent { Severity::Severe } else { Severity::Moderate },
        score: burst.events.len() as f64,
        event_ts_ms: burst.at_ms,
        subject: format!("community:{community}"),
        pos: Some(last.pos),
        cell: None,
        route: RouteLevel::Community,
        summary,
        evidence,
        action,
    }
}

impl Model for ModelTemplate {
    fn name(&self) -> String {
        "model_template".to_owned()
    }

    fn card(&self) -> &'static str {
        include_str!("../README.md")
    }

    citywatch_engine::config_field!(config, Config::check);

    fn reference(&self, events: &[Event], reference: &Reference) -> Option<Vec<AlertDraft>> {
        Some(reference::run(&self.config, events, reference))
    }

    fn build<'s>(&self, inputs: &Inputs<'s>) -> StreamVec<'s, EventTime, AlertDraft> {
        let (config, jurisdiction) = (self.config.clone(), inputs.reference.jurisdiction.clone());
        let (c, j) = (config.clone(), jurisdiction.clone());
        // Late alarms (beyond the lateness) are counted like the others: the
        // engine marks them, and they still are alarms.
        let alarms = inputs.alarms.clone().filter(move |a: &AlarmEvent| counted(&c, &j, a).is_some());
        let j = jurisdiction.clone();
        alarms
            .sliding_count("ModelTemplateBursts", config.window_ms(), config.min_alarms, move |a: &AlarmEvent| {
                j.community_of(a.pos).unwrap_or(0)
            })
            .map(move |burst| draft(&config, &jurisdiction, &burst))
    }
}

//! The registration list: every model citywatch runs, in one place.
//!
//! The binary (replay, serve, eval, `citywatch models`), the pipeline
//! benchmark and the cross-model tests all take their models from here, so a
//! model registered once runs everywhere. `citywatch new-model NAME` adds its
//! line below (and the dependency in this crate's Cargo.toml); by hand it is
//! those same two lines.
//!
//! The order is the order of `citywatch models` and of the summary's tables;
//! alerts do not depend on it.

use citywatch_engine::model::Model;

/// The models, with what the live service serves beside their alerts.
pub struct Registry {
    /// Every registered model, with its default configuration.
    pub models: Vec<Box<dyn Model>>,
    /// risk_hotspot's live risk surface (served at `/api/v1/risk`).
    pub risk_surface: citywatch_risk_hotspot::SurfaceHandle,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("models", &self.models.iter().map(|m| m.name()).collect::<Vec<_>>()).finish()
    }
}

/// Every registered model, and the handles the live service needs.
pub fn registry() -> Registry {
    let hotspot = citywatch_risk_hotspot::RiskHotspot::default();
    let risk_surface = hotspot.surface();
    let models: Vec<Box<dyn Model>> = vec![
        Box::new(citywatch_fraud_call::FraudCall::default()),
        Box::new(hotspot),
        Box::new(citywatch_response_gap::ResponseGap::default()),
        // new-model: registrations above this line
    ];
    Registry { models, risk_surface }
}

/// Every registered model, with its default configuration.
pub fn models() -> Vec<Box<dyn Model>> {
    registry().models
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case_and_every_model_has_a_card() {
        let names: Vec<String> = models().iter().map(|m| m.name()).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "two models share a name: {names:?}");
        for m in models() {
            let n = m.name();
            assert!(
                !n.is_empty() && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "model name `{n}` must be snake case (it is hashed into alert ids and named in --models)"
            );
            assert!(m.card().starts_with("# "), "model `{n}` has no card (its README.md, starting with a title)");
        }
    }
}

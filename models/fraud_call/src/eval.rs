//! Evaluation (stub).

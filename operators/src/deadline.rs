//! Deadlines (being built).

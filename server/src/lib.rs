//! The citywatch live service (being built).

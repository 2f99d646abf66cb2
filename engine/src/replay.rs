//! Replay driver (filled in below).

//! Run summary (filled in below).

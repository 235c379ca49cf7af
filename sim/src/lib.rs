//! squall: a deterministic simulation test harness.
pub mod backends;
pub mod check;
pub mod history;
pub mod interop;
pub mod world;

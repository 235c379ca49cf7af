//! Hold your backend to squall's scenarios from your own `cargo test`:
//!
//! ```
//! use squall::backend::{Backend, Kind};
//! use squall::protocols::kv::{backends::reference::Reference, Kv};
//! use squall::suite::Suite;
//! use std::rc::Rc;
//!
//! // Your KV backend (here squall's own reference, under a name of its own).
//! let mine = Backend::new("kv/mine", Kind::RealSim, "my KV store")
//!     .serves::<Kv>(|_scenario| Rc::new(Reference::default()));
//! // Every seed of a shipped scenario; a failure fails the test with the minimal failing
//! // history and the command that replays its seed.
//! Suite::new(mine)
//!     .shipped("kv/no-faults.toml")
//!     .seeds(0..2)
//!     .snapshots(None)
//!     .run();
//! ```
//!
//! [`suite`] is the face for your tests, [`backend`] how a backend is named and built,
//! [`protocols`] the protocols and their client traits. The rest of this page is the README.
//!
#![doc = include_str!("../../README.md")]
pub mod backend;
#[cfg(feature = "bench")]
pub mod bench;
pub mod campaign;
pub mod check;
pub mod coverage;
pub mod faults;
pub mod history;
pub mod interop;
pub mod live;
pub mod plan;
#[cfg(feature = "cli")]
pub mod progress;
pub mod protocol;
pub mod protocols;
pub mod regressions;
pub mod report;
pub mod scenario;
pub mod shrink;
pub mod suite;
pub mod sweep;
pub mod time;
pub mod watchdog;
pub mod world;

//! Systems under test, per protocol: reference backends, mutants and real ones.
//!
//! Every backend is named `PROTOCOL/IMPL`. A *reference* backend is squall's own, correct
//! implementation; a *mutant* is a reference backend with one planted, realistic bug, which
//! the harness must catch; a *real* backend is someone else's code, embedded in the
//! simulation (`real-sim`) or reached over a socket (`real-live`); a *misbehaving* one
//! panics, hangs or answers garbage, to test the harness itself ([`misbehave`]).

use std::fmt;

pub mod frame;
pub mod kv;
pub mod misbehave;
pub mod spark;
pub mod stream;
pub mod suspension;

/// What a backend is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Reference,
    Mutant,
    RealSim,
    RealLive,
    Misbehaving,
}

/// A backend as `squall list backends` shows it.
#[derive(Clone, Copy, Debug)]
pub struct Info {
    pub name: &'static str,
    /// The protocols it serves.
    pub protocols: &'static [&'static str],
    pub kind: Kind,
    /// One line: what it is, and for a mutant, its bug.
    pub about: &'static str,
}

impl Info {
    pub fn serves(&self, protocol: &str) -> bool {
        self.protocols.contains(&protocol)
    }
}

/// Every backend, in name order.
pub fn all() -> Vec<Info> {
    let mut all: Vec<Info> = kv::BACKENDS.to_vec();
    all.extend(spark::BACKENDS);
    all.extend(suspension::BACKENDS);
    all.extend(stream::BACKENDS);
    all.extend(misbehave::BACKENDS);
    all.sort_by_key(|b| b.name);
    all
}

/// The backend called `name`.
pub fn find(name: &str) -> Option<Info> {
    all().into_iter().find(|b| b.name == name)
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Reference => "reference",
            Kind::Mutant => "mutant",
            Kind::RealSim => "real-sim",
            Kind::RealLive => "real-live",
            Kind::Misbehaving => "misbehaving",
        })
    }
}

//! Flaron spark backends: every server host is an edge node with a store of its own,
//! running invocations (flares) that clients send it.

use std::rc::Rc;

use super::{Info, Kind};
use crate::protocol::System;
use crate::scenario::Scenario;
use crate::workload::spark::Spark;

pub mod reference;

use reference::{Bug, Reference};

/// The spark backends, reference and mutants.
pub const BACKENDS: &[Info] = &[
    Info {
        name: "spark/reference",
        protocols: &["spark"],
        kind: Kind::Reference,
        about: "an edge node per server host: store synced to disk before it answers, expiry by the node's clock, pulls over the network",
    },
    Info {
        name: "spark/mutant-expiry-off-by-one",
        protocols: &["spark"],
        kind: Kind::Mutant,
        about: "deadlines kept in whole seconds and compared with >: entries live up to a second past their TTL",
    },
    Info {
        name: "spark/mutant-ttl-original",
        protocols: &["spark"],
        kind: Kind::Mutant,
        about: "get reports the TTL the entry was set with, not the remaining one",
    },
    Info {
        name: "spark/mutant-write-limit-not-reset",
        protocols: &["spark"],
        kind: Kind::Mutant,
        about: "the per-invocation write counter is not reset between invocations",
    },
    Info {
        name: "spark/mutant-second-pull",
        protocols: &["spark"],
        kind: Kind::Mutant,
        about: "the pull limit is checked with > instead of >=: a second pull in one invocation runs",
    },
    Info {
        name: "spark/mutant-lost-write",
        protocols: &["spark"],
        kind: Kind::Mutant,
        about: "writes acknowledged before the store is synced; the disk syncs once a second",
    },
];

/// The spark backend called `name`, with `scenario`'s spark parameters.
pub fn system(name: &str, scenario: &Scenario) -> Option<Rc<dyn System<Spark>>> {
    let bug = match name {
        "spark/reference" => None,
        _ => Some(Bug::ALL.into_iter().find(|b| b.backend() == name)?),
    };
    let params = scenario.spark.params.clone();
    Some(Rc::new(Reference { bug, params }))
}

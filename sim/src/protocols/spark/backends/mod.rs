//! Flaron spark backends: every server host is an edge node with a store of its own,
//! running invocations (flares) that clients send it.

use std::rc::Rc;

use crate::backend::Backend;
use crate::protocols::spark::Spark;

pub mod reference;

use reference::{Bug, Reference};

/// squall's spark backends: the reference and its mutants.
pub fn all() -> Vec<Backend> {
    let reference = |bug: Option<Bug>| {
        let backend = Backend::reference(
            "spark/reference",
            "an edge node per server host: store synced to disk before it answers, expiry by the node's clock, pulls over the network",
            bug.map(|b| (b.backend(), b.about())),
        );
        backend.serves::<Spark>(move |s| {
            Rc::new(Reference {
                bug,
                params: s.spark.params.clone(),
            })
        })
    };
    let mut all = vec![reference(None)];
    all.extend(Bug::ALL.map(|bug| reference(Some(bug))));
    all
}

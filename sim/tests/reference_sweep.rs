//! The test `scripts/mutants` gives cargo-mutants: squall's reference backends hold the
//! shipped scenarios of their protocols over a few seeds, stopping at the first failure.
//! `SQUALL_MUTANTS=PROTOCOL` limits it to one protocol's reference (kv's serves watch too).
//! Ignored in the normal run, where the conformance tests hold every scenario over all its
//! seeds.

mod common;

use std::path::PathBuf;

use squall::campaign::{self, Seeds, Sink};
use squall::protocols::{Registry, NAMES};
use squall::sweep::Sweep;

/// Seeds a scenario runs: few, for the test to stay fast under a thousand mutants.
const SEEDS: u64 = 8;

/// Prints each failing run's report.
struct Failures;

impl Sink for Failures {
    fn print(&mut self, text: &str) {
        print!("{text}");
    }
    fn tick(&mut self, _: bool) {}
    fn finish(&mut self) {}
}

#[test]
#[ignore = "cargo-mutants' test: run by scripts/mutants"]
fn the_references_hold_their_scenarios() {
    std::env::set_current_dir(common::root()).unwrap();
    let registry = Registry::shipped();
    let only = std::env::var("SQUALL_MUTANTS").ok();
    let mut scenarios = Vec::new();
    for protocol in NAMES {
        let reference = registry.reference(protocol).unwrap().name().to_string();
        if only
            .as_ref()
            .is_some_and(|p| !reference.starts_with(&format!("{p}/")))
        {
            continue;
        }
        let folder = PathBuf::from("scenarios").join(protocol);
        scenarios.extend(campaign::load(&registry, &[folder], Some(&reference)).unwrap());
    }
    let sweep = Sweep {
        jobs: 2,
        fail_fast: true,
        ..Sweep::default()
    };
    let seeds = Seeds {
        range: Some(0..SEEDS),
        shard: None,
    };
    let tally = campaign::run(&scenarios, &seeds, &sweep, false, &mut Failures);
    assert!(tally.failed.is_empty(), "{:?}", tally.failed);
}

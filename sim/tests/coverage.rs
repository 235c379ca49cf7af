//! Answer coverage: the shipped scenarios reach, on the reference backends, every answer
//! the protocols' models can give, within 64 seeds, but those
//! `squall::coverage::UNREACHABLE` excuses with a reason.

mod common;

use std::path::PathBuf;

use squall::campaign::{self, Seeds, Sink};
use squall::coverage::{Coverage, UNREACHABLE};
use squall::protocols::{Registry, NAMES};
use squall::sweep::Sweep;

/// Hears nothing: the table tells all at the end.
struct Quiet;

impl Sink for Quiet {
    fn print(&mut self, _: &str) {}
    fn tick(&mut self, _: bool) {}
    fn finish(&mut self) {}
}

#[test]
fn the_shipped_scenarios_reach_every_answer_on_the_reference_backends() {
    std::env::set_current_dir(common::root()).unwrap();
    let registry = Registry::shipped();
    let mut scenarios = Vec::new();
    for protocol in NAMES {
        let reference = registry.reference(protocol).unwrap().name().to_string();
        let folder = PathBuf::from("scenarios").join(protocol);
        scenarios.extend(campaign::load(&registry, &[folder], Some(&reference)).unwrap());
    }
    let sweep = Sweep {
        jobs: 2,
        ..Sweep::default()
    };
    let mut coverage = Coverage::default();
    // Eight seeds at a time, until nothing is missing or 64 seeds have run.
    for from in (0..64).step_by(8) {
        let seeds = Seeds {
            range: Some(from..from + 8),
            shard: None,
        };
        coverage.measure(&scenarios, &seeds, &sweep, &mut Quiet);
        if coverage.missing().is_empty() {
            break;
        }
    }
    let table = coverage.table();
    assert!(
        coverage.tally.failed.is_empty(),
        "a reference failed: {:?}",
        coverage.tally.failed
    );
    assert_eq!(coverage.missing(), Vec::new(), "not reached:\n{table}");
    assert_eq!(coverage.unlisted(), Vec::new(), "no model lists:\n{table}");
    for (protocol, op, answer, _) in UNREACHABLE {
        let key = (op.to_string(), answer.to_string());
        let n = coverage.reached[*protocol].get(&key).copied();
        assert_eq!(
            n,
            Some(0),
            "{protocol} {op} {answer} is listed as unreachable:\n{table}"
        );
    }
}

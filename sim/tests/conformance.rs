//! Conformance: every scenario file holds on its default backend over its seed range.
//! A failure prints the run's report: the minimal failing history and the replay command.

mod common;

use libtest_mimic::Failed;
use squall::report::Outcome;
use squall::sweep;

fn main() {
    common::per_scenario(|s| {
        let seeds: Vec<u64> = s.seeds.clone().collect();
        let mut failures = String::new();
        sweep::sweep(s, &s.backend, &seeds, 1, false, |run| {
            if run.verdict != Outcome::Ok {
                failures.push_str(&run.report(&s.path));
            }
        });
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Failed::from(failures))
        }
    })
}

//! Conformance: every scenario file holds on its default backend over its seed range.
//! So does every regression seed saved beside a scenario (see `squall::regressions`).
//! A failure prints the run's report: the minimal failing history and the replay command.

mod common;

use common::backend;
use libtest_mimic::Failed;
use squall::protocols::Registry;
use squall::regressions;
use squall::report::Outcome;
use squall::sweep::{self, Sweep};

fn main() {
    common::per_scenario(|s| {
        let seeds: Vec<u64> = s.seeds.clone().collect();
        let mut failures = String::new();
        Sweep::default().run(s, &backend(&s.backend), &seeds, |run| {
            if run.verdict != Outcome::Ok {
                failures.push_str(&run.report(&s.path));
            }
        });
        // Every saved regression seed, held to what it was saved for.
        let registry = Registry::shipped();
        let saved = regressions::load(&registry, &s.path).map_err(Failed::from)?;
        for (name, seed) in saved {
            let run = sweep::run(s, &backend(&name), seed);
            if let Err(why) = regressions::recheck(&registry, &run) {
                failures.push_str(&format!("{why}\n{}", run.report(&s.path)));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Failed::from(failures))
        }
    })
}

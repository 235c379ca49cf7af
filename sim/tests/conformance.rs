//! Conformance: every scenario file holds on its default backend over its seed range.
//! A failure prints the run's report: the minimal failing history and the replay command.

mod common;

use libtest_mimic::{Arguments, Failed, Trial};
use squall::report::Outcome;
use squall::sweep;

fn main() {
    let args = Arguments::from_args();
    let trials = common::scenarios()
        .into_iter()
        .map(|s| {
            Trial::test(common::name(&s), move || {
                let seeds: Vec<u64> = s.seeds.clone().collect();
                let mut failures = String::new();
                sweep::sweep(&s, &s.backend, &seeds, 1, false, |run| {
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
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

//! Mutants: every planted bug is caught within 64 seeds on some scenario of its protocol,
//! and on its protocol's swarm scenario alone (`NAME swarm`). A mutant the harness cannot
//! catch is a harness bug.

mod common;

use libtest_mimic::{Arguments, Failed, Trial};
use squall::backends::{self, Kind};
use squall::report::Outcome;
use squall::scenario::Scenario;
use squall::sweep;

const SEEDS: u64 = 64;

fn main() {
    let args = Arguments::from_args();
    let scenarios = common::scenarios();
    let mut trials = Vec::new();
    for b in backends::all()
        .into_iter()
        .filter(|b| b.kind == Kind::Mutant)
    {
        let mine = scenarios.iter().filter(|s| b.serves(&s.protocol));
        let swarms: Vec<_> = mine
            .clone()
            .filter(|s| s.swarm.is_some())
            .cloned()
            .collect();
        let all: Vec<_> = mine.cloned().collect();
        trials.push(Trial::test(b.name, move || caught(b, &all)));
        trials.push(Trial::test(format!("{} swarm", b.name), move || {
            caught(b, &swarms)
        }));
    }
    libtest_mimic::run(&args, trials).exit();
}

/// Whether some seed below [`SEEDS`] of some scenario of `scenarios` catches `b`.
fn caught(b: backends::Info, scenarios: &[Scenario]) -> Result<(), Failed> {
    for seed in 0..SEEDS {
        for s in scenarios {
            let run = sweep::run(s, b.name, seed);
            if let Outcome::Violation { .. } = run.verdict {
                println!(
                    "{}: caught by {} seed {seed}\n{}",
                    b.name,
                    s.path.display(),
                    run.report(&s.path)
                );
                return Ok(());
            }
        }
    }
    Err(Failed::from(format!(
        "{} ({}) not caught within {SEEDS} seeds on {} scenarios",
        b.name,
        b.about,
        scenarios.len()
    )))
}

//! Mutants: every planted bug is caught within 64 seeds on some scenario of its protocol.
//! A mutant the harness cannot catch is a harness bug.

mod common;

use libtest_mimic::{Arguments, Failed, Trial};
use squall::backends::{self, Kind};
use squall::report::Outcome;
use squall::sweep;

const SEEDS: u64 = 64;

fn main() {
    let args = Arguments::from_args();
    let scenarios = common::scenarios();
    let trials = backends::all()
        .into_iter()
        .filter(|b| b.kind == Kind::Mutant)
        .map(|b| {
            let scenarios: Vec<_> = scenarios
                .iter()
                .filter(|s| b.serves(&s.protocol))
                .cloned()
                .collect();
            Trial::test(b.name, move || {
                for seed in 0..SEEDS {
                    for s in &scenarios {
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
                    "{} ({}) not caught within {SEEDS} seeds on any scenario",
                    b.name, b.about
                )))
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

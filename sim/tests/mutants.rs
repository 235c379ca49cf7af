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
    let trials: Vec<Trial> = backends::all()
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
    let mut trials = trials;
    trials.push(Trial::test(
        "max_age is enforced",
        ignoring_max_age_is_caught,
    ));
    libtest_mimic::run(&args, trials).exit();
}

/// A backend whose watches ignore `max_age` is caught on the scenario made for it.
fn ignoring_max_age_is_caught() -> Result<(), Failed> {
    let mutant = "kv/mutant-watch-ignore-max-age";
    let s = common::scenarios()
        .into_iter()
        .find(|s| s.name == "watch-retention-age")
        .ok_or("no scenario watch-retention-age")?;
    for seed in 0..SEEDS {
        if let Outcome::Violation { .. } = sweep::run(&s, mutant, seed).verdict {
            return Ok(());
        }
    }
    Err(format!(
        "{mutant} not caught within {SEEDS} seeds on {}",
        s.path.display()
    )
    .into())
}

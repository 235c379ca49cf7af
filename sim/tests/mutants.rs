//! Mutants: every planted bug is caught within 64 seeds on some scenario of its protocol,
//! and within 256 seeds on its protocol's swarm scenario alone (`NAME swarm`: a swarm seed
//! draws one of many tests, so it takes more of them). A mutant the harness cannot catch is
//! a harness bug.

mod common;

use libtest_mimic::{Arguments, Failed, Trial};
use squall::backend::{Backend, Kind};
use squall::protocols::Registry;
use squall::report::Outcome;
use squall::scenario::Scenario;
use squall::sweep;

const SEEDS: u64 = 64;
const SWARM_SEEDS: u64 = 256;

fn main() {
    let args = Arguments::from_args();
    let scenarios = common::scenarios();
    let mut trials = Vec::new();
    let registry = Registry::shipped();
    let mutants = registry.backends().filter(|b| b.kind() == Kind::Mutant);
    for b in mutants {
        let b = b.clone();
        let mine = scenarios.iter().filter(|s| b.serves_protocol(&s.protocol));
        let swarms: Vec<_> = mine
            .clone()
            .filter(|s| s.swarm.is_some())
            .cloned()
            .collect();
        let all: Vec<_> = mine.cloned().collect();
        let swarm = b.clone();
        trials.push(Trial::test(b.name().to_string(), move || {
            caught(&b, &all, SEEDS)
        }));
        trials.push(Trial::test(format!("{} swarm", swarm.name()), move || {
            caught(&swarm, &swarms, SWARM_SEEDS)
        }));
    }
    trials.push(Trial::test(
        "max_age is enforced",
        ignoring_max_age_is_caught,
    ));
    libtest_mimic::run(&args, trials).exit();
}

/// Whether some seed below `seeds` of some scenario of `scenarios` catches `b`.
fn caught(b: &Backend, scenarios: &[Scenario], seeds: u64) -> Result<(), Failed> {
    for seed in 0..seeds {
        for s in scenarios {
            let run = sweep::run(s, b, seed);
            if let Outcome::Violation { .. } = run.verdict {
                println!(
                    "{}: caught by {} seed {seed}\n{}",
                    b.name(),
                    s.path.display(),
                    run.report(&s.path)
                );
                return Ok(());
            }
        }
    }
    Err(Failed::from(format!(
        "{} ({}) not caught within {seeds} seeds on {} scenarios",
        b.name(),
        b.about(),
        scenarios.len()
    )))
}

/// A backend whose watches ignore `max_age` is caught on the scenario made for it.
fn ignoring_max_age_is_caught() -> Result<(), Failed> {
    let mutant = "kv/mutant-watch-ignore-max-age";
    let s = common::scenarios()
        .into_iter()
        .find(|s| s.name == "watch-retention-age")
        .ok_or("no scenario watch-retention-age")?;
    for seed in 0..SEEDS {
        if let Outcome::Violation { .. } = sweep::run(&s, &common::backend(mutant), seed).verdict {
            return Ok(());
        }
    }
    Err(format!(
        "{mutant} not caught within {SEEDS} seeds on {}",
        s.path.display()
    )
    .into())
}

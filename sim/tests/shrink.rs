//! Shrinking: every mutant's first failure shrinks to a plan of a few operations per
//! client, and the scenario file written for it replays the same failure bit for bit.

mod common;

use libtest_mimic::{Arguments, Failed, Trial};
use squall::backend::Kind;
use squall::protocols::Registry;
use squall::report::Outcome;
use squall::scenario::Scenario;
use squall::{shrink, sweep};

/// Candidate plans a shrink may run, so that the whole test stays within minutes.
const BUDGET: u32 = 1000;
/// "A few operations per client."
const FEW: usize = 6;

fn main() {
    let args = Arguments::from_args();
    let scenarios = common::scenarios();
    let registry = Registry::shipped();
    let trials = registry
        .backends()
        .filter(|b| b.kind() == Kind::Mutant)
        .cloned()
        .map(|b| {
            let scenarios: Vec<Scenario> = scenarios
                .iter()
                .filter(|s| b.serves_protocol(&s.protocol))
                .cloned()
                .collect();
            Trial::test(b.name().to_string(), move || {
                let name = b.name();
                let (s, seed) = common::first_catch(&scenarios, &b)
                    .ok_or_else(|| format!("{name} is not caught"))?;
                let out = std::env::temp_dir().join(format!(
                    "squall-shrink-{}-{seed}.toml",
                    name.replace('/', "-")
                ));
                let registry = Registry::shipped();
                let shrunk = shrink::shrink(&registry, &s, &b, seed, BUDGET, &out)?;
                let report = format!(
                    "{} seed {seed}: {} candidates, ops {:?}\n{}{}",
                    s.path.display(),
                    shrunk.tried,
                    shrunk.ops,
                    shrunk.plan,
                    shrunk.run.report(&out)
                );
                println!("{report}");
                if shrunk.original.verdict_name() != shrunk.run.verdict_name() {
                    return Err(Failed::from(format!("the shrunk plan holds\n{report}")));
                }
                if shrunk.ops.iter().any(|&n| n > FEW) {
                    return Err(Failed::from(format!(
                        "more than {FEW} operations on a client\n{report}"
                    )));
                }
                // The written file, read from disk, replays the shrunk run bit for bit.
                std::fs::write(&out, &shrunk.file).map_err(|e| e.to_string())?;
                let again = Scenario::load(&out, &registry).map_err(|e| e.to_string())?;
                let replay = sweep::run(&again, &b, seed);
                std::fs::remove_file(&out).ok();
                if replay.history != shrunk.run.history
                    || !matches!(
                        replay.verdict,
                        Outcome::Violation { .. } | Outcome::Error(_)
                    )
                {
                    return Err(Failed::from(format!(
                        "the written file replays {replay}, not {}\n{}",
                        shrunk.run, shrunk.file
                    )));
                }
                Ok(())
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

//! Shrinking: every mutant's first failure shrinks to a plan of a few operations per
//! client, and the scenario file written for it replays the same failure bit for bit.

mod common;

use libtest_mimic::{Arguments, Failed, Trial};
use squall::backends::{self, Kind};
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
    let trials = backends::all()
        .into_iter()
        .filter(|b| b.kind == Kind::Mutant)
        .map(|b| {
            let scenarios: Vec<Scenario> = scenarios
                .iter()
                .filter(|s| b.serves(&s.protocol))
                .cloned()
                .collect();
            Trial::test(b.name, move || {
                let (s, seed) = common::first_catch(&scenarios, b.name)
                    .ok_or_else(|| format!("{} is not caught", b.name))?;
                let out = std::env::temp_dir().join(format!(
                    "squall-shrink-{}-{seed}.toml",
                    b.name.replace('/', "-")
                ));
                let shrunk = shrink::shrink(&s, b.name, seed, BUDGET, &out)?;
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
                let again = Scenario::load(&out).map_err(|e| e.to_string())?;
                let replay = sweep::run(&again, b.name, seed);
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

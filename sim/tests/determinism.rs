//! Determinism: for every scenario, the same seed twice gives the same history bytes.

mod common;

use libtest_mimic::{Arguments, Failed, Trial};
use squall::sweep;

fn main() {
    let args = Arguments::from_args();
    let trials = common::scenarios()
        .into_iter()
        .map(|s| {
            Trial::test(common::name(&s), move || {
                for seed in [0, 1, 7] {
                    let (a, b) = (
                        sweep::run(&s, &s.backend, seed),
                        sweep::run(&s, &s.backend, seed),
                    );
                    if a.history != b.history {
                        return Err(Failed::from(format!(
                            "seed {seed}: history {} then {}\n--- first\n{}--- second\n{}",
                            a.hash, b.hash, a.history, b.history
                        )));
                    }
                }
                Ok(())
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

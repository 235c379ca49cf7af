//! Determinism: for every scenario, the same seed twice gives the same history bytes.

mod common;

use common::backend;
use libtest_mimic::Failed;
use squall::sweep;

fn main() {
    common::per_scenario(|s| {
        let backend = backend(&s.backend);
        for seed in [0, 1, 7] {
            let (a, b) = (sweep::run(s, &backend, seed), sweep::run(s, &backend, seed));
            if a.history != b.history {
                return Err(Failed::from(format!(
                    "seed {seed}: history {} then {}\n--- first\n{}--- second\n{}",
                    a.hash, b.hash, a.history, b.history
                )));
            }
        }
        Ok(())
    })
}

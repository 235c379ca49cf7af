//! Snapshots: each scenario's history at seed 0, on its default backend, stored under
//! `snapshots/`. A change in what a scenario does shows up as a snapshot diff to review
//! with `cargo insta review`.

mod common;

use common::backend;
use squall::sweep;

fn main() {
    common::per_scenario(|s| {
        let run = sweep::run(s, &backend(&s.backend), 0);
        let description = format!(
            "{} --backend {} --seed 0: {}",
            s.path.display(),
            s.backend,
            run
        );
        common::snapshot(
            &common::name(s).replace('/', "__"),
            description,
            &run.history,
        );
        Ok(())
    })
}

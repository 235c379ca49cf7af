//! Snapshots: each scenario's history at seed 0, on its default backend, stored under
//! `snapshots/`. A change in what a scenario does shows up as a snapshot diff to review
//! with `cargo insta review`.

mod common;

use squall::sweep;

fn main() {
    common::per_scenario(|s| {
        let run = sweep::run(s, &s.backend, 0);
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(common::root().join("snapshots"));
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_description(format!(
            "{} --backend {} --seed 0: {}",
            s.path.display(),
            s.backend,
            run
        ));
        let name = common::name(s).replace('/', "__");
        settings.bind(|| insta::assert_snapshot!(name, run.history));
        Ok(())
    })
}

//! What the test harnesses share: the project's scenario files.
#![allow(dead_code)] // each test binary uses its own part

use std::path::PathBuf;

use libtest_mimic::{Arguments, Failed, Trial};
use squall::faults::Fault;
use squall::scenario::{self, Scenario};

/// The project's top folder.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Run the `squall` binary with `args` in the project's top folder. (The binary needs the
/// `cli` feature.)
#[cfg(feature = "cli")]
pub fn squall(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

/// Every scenario under `scenarios/`, loaded, with its path relative to the top folder so
/// that printed replay commands work from there.
pub fn scenarios() -> Vec<Scenario> {
    std::env::set_current_dir(root()).unwrap();
    scenario::files(&[PathBuf::from("scenarios")])
        .unwrap()
        .iter()
        .map(|f| {
            Scenario::load(f, &squall::protocols::Registry::shipped())
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

/// The scenarios of `protocol` that live mode runs on `backend`: every one but the swarm
/// scenarios and those with message faults, which it declines (a swarm may draw clock
/// jumps, which a real server's clock does not take; message faults strike squall's own
/// transport, which a real server does not speak).
pub fn live_scenarios(protocol: &str, name: &str) -> Vec<Scenario> {
    let mut live = Vec::new();
    for s in scenarios().into_iter().filter(|s| s.protocol == protocol) {
        let applicable = squall::sweep::applicable(&s, &backend(name));
        let messages = (s.faults.iter()).any(|(_, f)| matches!(f, Fault::Messages { .. }));
        if s.swarm.is_some() || messages {
            let why = applicable.expect_err("live mode declines swarms and message faults");
            let because = if messages { "messages" } else { "swarm" };
            assert!(why.contains(because), "{}: {why}", s.path.display());
        } else {
            assert_eq!(applicable, Ok(()), "{}", s.path.display());
            live.push(s);
        }
    }
    live
}

/// A test's name for a scenario: its path below `scenarios/`, without `.toml`.
pub fn name(s: &Scenario) -> String {
    s.path
        .strip_prefix("scenarios")
        .unwrap()
        .with_extension("")
        .display()
        .to_string()
}

/// Assert `history` matches the stored snapshot `name` under `snapshots/`, described by
/// `description` (the command and run line that made it).
pub fn snapshot(name: &str, description: String, history: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description(description);
    settings.bind(|| insta::assert_snapshot!(name, history));
}

/// Run `test` once per scenario, as a test named after it, and exit with the verdicts.
pub fn per_scenario(
    test: impl Fn(&Scenario) -> Result<(), Failed> + Send + Sync + Clone + 'static,
) -> ! {
    let args = Arguments::from_args();
    let trials = scenarios()
        .into_iter()
        .map(|s| {
            let test = test.clone();
            Trial::test(name(&s), move || test(&s))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit()
}

/// The first (seed, then scenario in order) of `scenarios` on which `backend` fails with a
/// violation, within 64 seeds.
pub fn first_catch(
    scenarios: &[Scenario],
    backend: &squall::backend::Backend,
) -> Option<(Scenario, u64)> {
    for seed in 0..64 {
        for s in scenarios {
            if let squall::report::Outcome::Violation { .. } =
                squall::sweep::run(s, backend, seed).verdict
            {
                return Some((s.clone(), seed));
            }
        }
    }
    None
}

/// squall's backend called `name`.
pub fn backend(name: &str) -> squall::backend::Backend {
    let registry = squall::protocols::Registry::shipped();
    let found = registry
        .get(name)
        .unwrap_or_else(|| panic!("no backend {name:?}"));
    found.clone()
}

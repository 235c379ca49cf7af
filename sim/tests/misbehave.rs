//! Backends that panic, deadlock, busy-loop, answer garbage or never answer: each run is an
//! `error` verdict with its seed, the reason and a replay line; the sweep goes on to its
//! other seeds, and `squall` exits.

use std::path::PathBuf;
use std::time::Duration;

use squall::protocols::Registry;
use squall::report::{Outcome, Run};
use squall::scenario::Scenario;
use squall::sweep;

/// The project's top folder, where replay commands run.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A shipped scenario, made small: two clients of five operations each.
fn scenario(name: &str) -> Scenario {
    let mut s = Scenario::load(&root().join("scenarios").join(name), &Registry::shipped()).unwrap();
    s.clients = 2;
    s.workload.ops_per_client = 5;
    s.timeout = Duration::from_millis(500);
    s
}

/// A sweep of three seeds against `backend`: every run reported, in seed order, each an
/// error whose reason says `why`, with the command that replays it.
fn sweep_errs(name: &str, why: &str) {
    let s = scenario("kv/no-faults.toml");
    let mut runs: Vec<Run> = Vec::new();
    let sweep = sweep::Sweep {
        jobs: 2,
        ..sweep::Sweep::default()
    };
    sweep.run(&s, &backend(name), &[0, 1, 2], |run| runs.push(run.clone()));
    let backend = name;
    assert_eq!(runs.iter().map(|r| r.seed).collect::<Vec<_>>(), [0, 1, 2]);
    for run in runs {
        let Outcome::Error(reason) = &run.verdict else {
            panic!("{backend} seed {}: {}", run.seed, run.report(&s.path));
        };
        assert!(reason.contains(why), "{backend}: {reason}");
        let report = run.report(&s.path);
        let replay = format!(
            "replay: squall replay {} --backend {backend} --seed {}",
            s.path.display(),
            run.seed
        );
        assert!(report.contains(&replay), "{report}");
    }
}

#[test]
fn a_panic_is_an_error_with_its_message() {
    sweep_errs(
        "kv/misbehave-panic",
        "panicked: kv/misbehave-panic: a request made the server panic at sim/src/protocols/kv/backends/",
    );
}

#[test]
fn a_deadlock_is_an_error() {
    sweep_errs(
        "kv/misbehave-deadlock",
        "the backend answered none of 10 operations (the first: no answer within 500ms)",
    );
}

#[test]
fn garbage_on_the_wire_is_an_error() {
    sweep_errs("kv/misbehave-garbage", "the backend answered none of");
}

#[test]
fn a_backend_that_never_answers_is_an_error() {
    sweep_errs("kv/misbehave-silent", "the backend answered none of");
}

#[test]
fn a_finale_past_the_overtime_is_stopped_by_the_watchdog() {
    let mut s = scenario("stream/partition.toml");
    s.limits.overtime = Duration::from_secs(1);
    let run = sweep::run(&s, &backend("stream/reference"), 0);
    let Outcome::Error(reason) = &run.verdict else {
        panic!("{}", run.report(&s.path));
    };
    assert!(reason.contains("simulated-time watchdog"), "{reason}");
}

/// `squall run` against a backend that spins forever without yielding: each seed is an
/// error once its budget is spent, the next seed runs, and the process exits although
/// the spinning threads never stop.
#[test]
#[cfg(feature = "cli")]
fn a_busy_loop_spends_its_budget_and_squall_exits() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_squall"))
        .current_dir(root())
        .args(["run", "scenarios/kv/no-faults.toml"])
        .args(["--backend", "kv/misbehave-busy-loop"])
        .args(["--seeds", "0..2", "--budget", "1s"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for seed in 0..2 {
        let line = format!("seed={seed} backend=kv/misbehave-busy-loop verdict=error");
        assert!(stdout.contains(&line), "{stdout}");
        let replay = format!(
            "replay: squall replay scenarios/kv/no-faults.toml \
             --backend kv/misbehave-busy-loop --seed {seed}\n"
        );
        assert!(stdout.contains(&replay), "{stdout}");
    }
    assert!(
        stdout.contains("no verdict within the wall-clock budget of 1s"),
        "{stdout}"
    );
}

/// squall's backend called `name`.
fn backend(name: &str) -> squall::backend::Backend {
    Registry::shipped()
        .get(name)
        .expect("a shipped backend")
        .clone()
}

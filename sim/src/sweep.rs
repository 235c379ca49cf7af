//! Running scenarios: one seed, or a sweep of seeds across threads (a simulation a thread).
//! A live backend's runs go to a real server instead ([`live`]).

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::backends::{self, Kind};
use crate::plan::Plan;
use crate::protocol::{self, Protocol};
use crate::report::{Outcome, Run};
use crate::scenario::Scenario;
use crate::workload::kv::Kv;
use crate::workload::spark::Spark;
use crate::workload::stream::Streams;
use crate::workload::suspension::Suspension;
use crate::workload::watch::Watches;
use crate::{live, world};

/// Run one seed of `scenario` against `backend`. Never panics: a backend that panics or
/// fails, or a scenario the backend cannot run, makes an `error` verdict.
pub fn run(scenario: &Scenario, backend: &str, seed: u64) -> Run {
    run_keeping(scenario, backend, seed, false).0
}

/// Whether `backend` runs in live mode, against a real server.
pub fn is_live(backend: &str) -> bool {
    backends::find(backend).is_some_and(|b| b.kind == Kind::RealLive)
}

/// Whether `backend` can say anything about `scenario`, or why not: live mode cannot apply
/// some faults, and a backend may lack a capability the scenario needs. Such a pair is
/// reported, never run.
pub fn applicable(scenario: &Scenario, backend: &str) -> Result<(), String> {
    fn lacks<P: Protocol>(scenario: &Scenario, backend: &str) -> Option<String> {
        protocol::not_applicable(scenario, P::system(backend, scenario)?.as_ref())
    }
    if is_live(backend) {
        return live::applicable(scenario);
    }
    let why = match scenario.protocol.as_str() {
        "kv" => lacks::<Kv>(scenario, backend),
        "spark" => lacks::<Spark>(scenario, backend),
        "suspension" => lacks::<Suspension>(scenario, backend),
        "watch" => lacks::<Watches>(scenario, backend),
        "stream" => lacks::<Streams>(scenario, backend),
        other => unreachable!("scenario validation admits no protocol {other:?}"),
    };
    why.map_or(Ok(()), Err)
}

/// Run one seed, keeping its history as JSON too (for `replay --history`).
pub fn run_keeping(
    scenario: &Scenario,
    backend: &str,
    seed: u64,
    json: bool,
) -> (Run, Option<String>) {
    let dispatch = || match scenario.protocol.as_str() {
        "kv" => simulate::<Kv>(scenario, backend, seed, json),
        "spark" => simulate::<Spark>(scenario, backend, seed, json),
        "suspension" => simulate::<Suspension>(scenario, backend, seed, json),
        "watch" => simulate::<Watches>(scenario, backend, seed, json),
        "stream" => simulate::<Streams>(scenario, backend, seed, json),
        other => unreachable!("scenario validation admits no protocol {other:?}"),
    };
    catch_unwind(AssertUnwindSafe(dispatch)).unwrap_or_else(|panic| {
        (
            Run::failed(
                seed,
                backend,
                format!("panicked: {}", panic_message(&panic)),
            ),
            None,
        )
    })
}

fn simulate<P: Protocol>(
    scenario: &Scenario,
    backend: &str,
    seed: u64,
    json: bool,
) -> (Run, Option<String>) {
    if let Err(why) = applicable(scenario, backend) {
        return (
            Run::failed(seed, backend, format!("not applicable: {why}")),
            None,
        );
    }
    let plan = Plan::draw::<P>(scenario, seed);
    let history = match P::live(backend, scenario) {
        Some(live) => {
            live::Server::shared().and_then(|server| live::run::<P>(scenario, &plan, live, &server))
        }
        None => {
            let system =
                P::system(backend, scenario).expect("backend names are validated before runs");
            world::run::<P>(scenario, &plan, system)
        }
    };
    match history {
        Ok(history) => {
            let verdict = P::check(scenario, &history);
            (
                Run::judged(seed, backend, &history, verdict),
                json.then(|| history.to_json()),
            )
        }
        Err(why) => (Run::failed(seed, backend, why), None),
    }
}

/// Run it twice; a difference in the history makes an `error` verdict.
pub fn run_twice(scenario: &Scenario, backend: &str, seed: u64) -> Run {
    let first = run(scenario, backend, seed);
    let second = run(scenario, backend, seed);
    if first.hash != second.hash || first.verdict != second.verdict {
        return Run {
            verdict: Outcome::Error(format!(
                "not deterministic: the same seed gave history {} ({}) then {} ({})",
                first.hash,
                first.verdict_name(),
                second.hash,
                second.verdict_name()
            )),
            ..first
        };
    }
    first
}

/// Run `seeds` on `jobs` threads, calling `each` with every run in the order of `seeds` as
/// soon as it and all before it are done.
pub fn sweep(
    scenario: &Scenario,
    backend: &str,
    seeds: &[u64],
    jobs: usize,
    determinism: bool,
    mut each: impl FnMut(&Run) + Send,
) {
    let next = AtomicUsize::new(0);
    let done = Mutex::new(Done::default());
    let each = Mutex::new(&mut each);
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&seed) = seeds.get(i) else { return };
                let result = if determinism {
                    run_twice(scenario, backend, seed)
                } else {
                    run(scenario, backend, seed)
                };
                let mut guard = done.lock().unwrap();
                let done = &mut *guard;
                done.runs.insert(i, result);
                // Report in seed order so output does not depend on thread timing.
                while let Some(r) = done.runs.remove(&done.next) {
                    (each.lock().unwrap())(&r);
                    done.next += 1;
                }
            });
        }
    });
}

/// Runs finished but not yet reported, and the index of the next one to report.
#[derive(Default)]
struct Done {
    next: usize,
    runs: BTreeMap<usize, Run>,
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

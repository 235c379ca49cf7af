//! Running scenarios: one seed, or a sweep of seeds across threads (a simulation a thread).
//! A live backend's runs go to a real server instead ([`live`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::backends::{self, Kind};
use crate::check::Verdict;
use crate::history::History;
use crate::interop::Format;
use crate::plan::Plan;
use crate::protocol::{self, Protocol};
use crate::report::{html, Outcome, Run};
use crate::scenario::Scenario;
use crate::workload::kv::Kv;
use crate::workload::spark::Spark;
use crate::workload::stream::Streams;
use crate::workload::suspension::Suspension;
use crate::workload::watch::Watches;
use crate::{live, watchdog, world};

/// Run one seed of `scenario` against `backend`. Never panics: a backend that panics, fails,
/// answers nothing or runs past the scenario's `[limits]`, or a scenario the backend cannot
/// run, makes an `error` verdict.
pub fn run(scenario: &Scenario, backend: &str, seed: u64) -> Run {
    run_keeping(scenario, backend, seed, Keep::default()).0
}

/// What to keep of a run besides its report (for `replay`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Keep {
    /// The history, in this format.
    pub history: Option<Format>,
    /// The HTML timeline ([`html::page`]).
    pub html: bool,
}

/// What was kept; `None` where not asked for or where the run produced no history.
#[derive(Clone, Debug, Default)]
pub struct Kept {
    pub history: Option<String>,
    pub html: Option<String>,
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

/// Run one seed, keeping what `keep` asks for. The run has a thread of its own and its
/// wall-clock budget ([`watchdog`]).
pub fn run_keeping(scenario: &Scenario, backend: &str, seed: u64, keep: Keep) -> (Run, Kept) {
    let (s, b) = (scenario.clone(), backend.to_string());
    watchdog::within(scenario.limits.budget, move || judge(&s, &b, seed, keep))
        .unwrap_or_else(|why| (Run::failed(seed, backend, why), Kept::default()))
}

fn judge(scenario: &Scenario, backend: &str, seed: u64, keep: Keep) -> (Run, Kept) {
    let dispatch = || match scenario.protocol.as_str() {
        "kv" => simulate::<Kv>(scenario, backend, seed, keep),
        "spark" => simulate::<Spark>(scenario, backend, seed, keep),
        "suspension" => simulate::<Suspension>(scenario, backend, seed, keep),
        "watch" => simulate::<Watches>(scenario, backend, seed, keep),
        "stream" => simulate::<Streams>(scenario, backend, seed, keep),
        other => unreachable!("scenario validation admits no protocol {other:?}"),
    };
    watchdog::catch(dispatch)
        .unwrap_or_else(|why| (Run::failed(seed, backend, why), Kept::default()))
}

fn simulate<P: Protocol>(scenario: &Scenario, backend: &str, seed: u64, keep: Keep) -> (Run, Kept) {
    if let Err(why) = applicable(scenario, backend) {
        return (
            Run::failed(seed, backend, format!("not applicable: {why}")),
            Kept::default(),
        );
    }
    let scenario = &scenario.for_seed(seed);
    let plan = Plan::draw::<P>(scenario, seed);
    match history::<P>(scenario, backend, &plan) {
        Ok(history) => {
            let judged = match is_live(backend) {
                true => Cow::Owned(scenario.judged_live()),
                false => Cow::Borrowed(&**scenario),
            };
            let (run, verdict) = assess::<P>(&judged, backend, seed, &history);
            let title = format!(
                "{} --backend {backend} --seed {seed}",
                scenario.path.display()
            );
            let kept = Kept {
                history: keep.history.map(|f| f.write(&history)),
                html: keep.html.then(|| html::page(&title, &history, &verdict)),
            };
            (run, kept)
        }
        Err(why) => (Run::failed(seed, backend, why), Kept::default()),
    }
}

/// Run `plan` of `scenario` against `backend`: its history, or why there is none.
pub(crate) fn history<P: Protocol>(
    scenario: &Scenario,
    backend: &str,
    plan: &Plan<P::Intent>,
) -> Result<History<P::Op, P::Ret>, String> {
    match P::live(backend, scenario) {
        Some(live) => live::run::<P>(scenario, plan, live),
        None => {
            let system =
                P::system(backend, scenario).expect("backend names are validated before runs");
            world::run::<P>(scenario, plan, system)
        }
    }
}

/// Judge `history` of seed `seed`: its run, and the checker's verdict (`Ok` when there is
/// none, the run being an `error`).
pub(crate) fn assess<P: Protocol>(
    scenario: &Scenario,
    backend: &str,
    seed: u64,
    history: &History<P::Op, P::Ret>,
) -> (Run, Verdict) {
    // A backend that never answers must not pass: nothing was tested.
    if let Some(why) = unanswered(history) {
        let run = Run::judged(seed, backend, history, Verdict::Ok);
        let run = Run {
            verdict: Outcome::Error(why),
            ..run
        };
        return (run, Verdict::Ok);
    }
    let verdict = P::check(scenario, history);
    (
        Run::judged(seed, backend, history, verdict.clone()),
        verdict,
    )
}

/// Why a history cannot be judged when its backend answered none of its operations: every
/// outcome unknown would pass any checker.
fn unanswered<O: Clone, R: Clone>(history: &History<O, R>) -> Option<String> {
    let ops = history.operations();
    if ops.is_empty() || ops.iter().any(|op| op.ret.is_some()) {
        return None;
    }
    let first = history.events.iter().find_map(|e| match e {
        crate::history::Event::Unknown { why, .. } => Some(why.as_str()),
        _ => None,
    });
    Some(format!(
        "the backend answered none of {} operations (the first: {})",
        ops.len(),
        first.unwrap_or("no answer")
    ))
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

/// How a sweep runs its seeds. `Sweep::default()` runs them one at a time, once each, to
/// the end.
#[derive(Clone, Debug, Default)]
pub struct Sweep {
    /// Simulations at once, one a thread (0 counts as 1).
    pub jobs: usize,
    /// Run every seed twice; a difference in the history makes an `error` verdict.
    pub determinism: bool,
    /// Raise [`Sweep::stop`] at the first run that does not hold.
    pub fail_fast: bool,
    /// Once raised (by Ctrl-C, by `fail_fast`), no new seed starts; runs under way finish
    /// and are reported, so what a stopped sweep reports is a prefix of its seeds.
    pub stop: Arc<AtomicBool>,
}

impl Sweep {
    /// Run `seeds` of `scenario` against `backend`, calling `each` with every run in the
    /// order of `seeds` as soon as it and all before it are done. Returns how many seeds
    /// ran: all of them unless the sweep was stopped.
    pub fn run(
        &self,
        scenario: &Scenario,
        backend: &str,
        seeds: &[u64],
        mut each: impl FnMut(&Run) + Send,
    ) -> usize {
        let next = AtomicUsize::new(0);
        let done = Mutex::new(Done::default());
        let each = Mutex::new(&mut each);
        std::thread::scope(|s| {
            for _ in 0..self.jobs.max(1) {
                s.spawn(|| loop {
                    if self.stopped() {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&seed) = seeds.get(i) else { return };
                    let result = if self.determinism {
                        run_twice(scenario, backend, seed)
                    } else {
                        run(scenario, backend, seed)
                    };
                    if self.fail_fast && result.verdict != Outcome::Ok {
                        self.stop.store(true, Ordering::SeqCst);
                    }
                    let mut guard = done.lock().unwrap();
                    let done = &mut *guard;
                    done.runs.insert(i, result);
                    // Report in seed order so output does not depend on thread timing;
                    // a reported run is dropped at once, so memory stays flat however
                    // many seeds a sweep has.
                    while let Some(r) = done.runs.remove(&done.next) {
                        (each.lock().unwrap())(&r);
                        done.next += 1;
                    }
                });
            }
        });
        done.into_inner().unwrap().next
    }

    /// Whether the sweep was told to stop.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// Runs finished but not yet reported, and the index of the next one to report.
#[derive(Default)]
struct Done {
    next: usize,
    runs: BTreeMap<usize, Run>,
}

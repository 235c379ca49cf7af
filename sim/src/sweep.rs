//! Running scenarios: one seed, or a sweep of seeds across threads (a simulation a thread).
//! A live backend's runs go to a real server instead ([`live`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::backend::Backend;
use crate::check::{Verdict, Violation};
use crate::history::{Event, History};
use crate::interop::Format;
use crate::plan::Plan;
use crate::protocol::{self, Protocol};
use crate::protocols::{self, Visit};
use crate::report::{html, Outcome, Run};
use crate::scenario::Scenario;
use crate::{live, watchdog, world};

/// Run one seed of `scenario` against `backend`. Never panics: a backend that panics, fails,
/// answers nothing or runs past the scenario's `[limits]`, or a scenario the backend cannot
/// run, makes an `error` verdict.
pub fn run(scenario: &Scenario, backend: &Backend, seed: u64) -> Run {
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

/// Whether `backend` can say anything about `scenario`, or why not: live mode cannot apply
/// some faults, and a backend may lack a capability the scenario needs. Such a pair is
/// reported, never run.
pub fn applicable(scenario: &Scenario, backend: &Backend) -> Result<(), String> {
    struct Lacks<'a>(&'a Scenario, &'a Backend);
    impl Visit for Lacks<'_> {
        type Out = Option<String>;
        fn visit<P: Protocol>(self) -> Option<String> {
            protocol::not_applicable(self.0, self.1.system::<P>(self.0)?.as_ref())
        }
    }
    if !backend.serves_protocol(&scenario.protocol) {
        return Err(format!(
            "{} does not serve protocol {}",
            backend.name(),
            scenario.protocol
        ));
    }
    if backend.is_live() {
        return live::applicable(scenario);
    }
    let why = protocols::visit(&scenario.protocol, Lacks(scenario, backend)).flatten();
    why.map_or(Ok(()), Err)
}

/// The kind of server `backend` needs for `scenario`, if it runs live.
pub fn flavor(scenario: &Scenario, backend: &Backend) -> Option<live::Flavor> {
    struct Flavor<'a>(&'a Scenario, &'a Backend);
    impl Visit for Flavor<'_> {
        type Out = Option<live::Flavor>;
        fn visit<P: Protocol>(self) -> Self::Out {
            Some(self.1.live::<P>(self.0)?.flavor())
        }
    }
    protocols::visit(&scenario.protocol, Flavor(scenario, backend)).flatten()
}

/// Run one seed, keeping what `keep` asks for. The run has a thread of its own and its
/// wall-clock budget ([`watchdog`]).
pub fn run_keeping(scenario: &Scenario, backend: &Backend, seed: u64, keep: Keep) -> (Run, Kept) {
    let (s, b) = (scenario.clone(), backend.clone());
    watchdog::within(scenario.limits.budget, move || judge(&s, &b, seed, keep))
        .unwrap_or_else(|why| (Run::failed(seed, backend.name(), why), Kept::default()))
}

fn judge(scenario: &Scenario, backend: &Backend, seed: u64, keep: Keep) -> (Run, Kept) {
    struct Simulate<'a>(&'a Scenario, &'a Backend, u64, Keep);
    impl Visit for Simulate<'_> {
        type Out = (Run, Kept);
        fn visit<P: Protocol>(self) -> (Run, Kept) {
            simulate::<P>(self.0, self.1, self.2, self.3)
        }
    }
    let dispatch = || {
        protocols::visit(&scenario.protocol, Simulate(scenario, backend, seed, keep))
            .unwrap_or_else(|| {
                let why = format!("no protocol {:?}", scenario.protocol);
                (Run::failed(seed, backend.name(), why), Kept::default())
            })
    };
    watchdog::catch(dispatch)
        .unwrap_or_else(|why| (Run::failed(seed, backend.name(), why), Kept::default()))
}

fn simulate<P: Protocol>(
    scenario: &Scenario,
    backend: &Backend,
    seed: u64,
    keep: Keep,
) -> (Run, Kept) {
    if let Err(why) = applicable(scenario, backend) {
        return (
            Run::failed(seed, backend.name(), format!("not applicable: {why}")),
            Kept::default(),
        );
    }
    let scenario = &scenario.for_seed(seed);
    let plan = P::plan(scenario, seed);
    match history::<P>(scenario, backend, &plan) {
        Ok(history) => {
            let judged = match backend.is_live() {
                true => Cow::Owned(scenario.judged_live()),
                false => Cow::Borrowed(&**scenario),
            };
            let (run, verdict) = assess::<P>(&judged, backend.name(), seed, &history);
            let title = format!(
                "{} --backend {} --seed {seed}",
                scenario.path.display(),
                backend.name()
            );
            let kept = Kept {
                history: keep.history.map(|f| f.write(&history)),
                html: keep.html.then(|| html::page(&title, &history, &verdict)),
            };
            (run, kept)
        }
        Err(why) => (Run::failed(seed, backend.name(), why), Kept::default()),
    }
}

/// Run `plan` of `scenario` against `backend`: its history, or why there is none.
pub(crate) fn history<P: Protocol>(
    scenario: &Scenario,
    backend: &Backend,
    plan: &Plan<P::Intent>,
) -> Result<History<P::Op, P::Ret>, String> {
    if let Some(live) = backend.live::<P>(scenario) {
        return live::run::<P>(scenario, plan, live);
    }
    match backend.system::<P>(scenario) {
        Some(system) => world::run::<P>(scenario, plan, system),
        None => Err(format!("{} does not serve {}", backend.name(), P::NAME)),
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
    let verdict = match stalled::<P>(scenario, history) {
        Some(v) => Verdict::Violation(v),
        None => P::check(scenario, history),
    };
    let mut run = Run::judged(seed, backend, history, verdict.clone());
    for o in history.operations() {
        for (op, answer) in o.ret.as_ref().map_or(Vec::new(), |r| P::answered(&o.op, r)) {
            *run.answers.entry((op.to_string(), answer)).or_default() += 1;
        }
    }
    (run, verdict)
}

/// Why a history cannot be judged when its backend answered none of its operations: every
/// outcome unknown would pass any checker.
fn unanswered<O: Clone, R: Clone>(history: &History<O, R>) -> Option<String> {
    let ops = history.operations();
    if ops.is_empty() || ops.iter().any(|op| op.ret.is_some()) {
        return None;
    }
    let first = history.events.iter().find_map(|e| match e {
        Event::Unknown { why, .. } => Some(why.as_str()),
        _ => None,
    });
    Some(format!(
        "the backend answered none of {} operations (the first: {})",
        ops.len(),
        first.unwrap_or("no answer")
    ))
}

/// The first operation that never answered (or answered that its request was never sent),
/// in a scenario that expects every one to; one the end of the run cut short (called less
/// than `timeout` before it) is excused.
fn stalled<P: Protocol>(
    scenario: &Scenario,
    history: &History<P::Op, P::Ret>,
) -> Option<Violation> {
    if !scenario.expect.answered {
        return None;
    }
    let timeout = scenario.timeout.as_nanos() as u64;
    let (o, why) = history.operations().into_iter().find_map(|o| {
        if let Some(ret) = &o.ret {
            return (!P::sent(ret)).then(|| (o.clone(), ret.to_string()));
        }
        let (at, why) = history.events.iter().find_map(|e| match e {
            Event::Unknown { id, at, why, .. } if *id == o.id => Some((*at, why.clone())),
            _ => None,
        })?;
        let cut = why == world::RUN_ENDED && at < history.events[o.call].at() + timeout;
        (!cut).then_some((o, why))
    })?;
    Some(Violation {
        what: format!(
            "#{} ({}) never answered ({why}), on a network without faults (expect.answered)",
            o.id, o.op
        ),
        ops: vec![o.id],
        ..Violation::default()
    })
}

/// Run it twice; a difference in the history makes an `error` verdict.
pub fn run_twice(scenario: &Scenario, backend: &Backend, seed: u64) -> Run {
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
        backend: &Backend,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::kv::Kv;
    use crate::protocols::Registry;
    use squall_models::kv::{KvError, KvOp, KvRet};

    fn scenario(expect: &str) -> Scenario {
        let text = format!(
            "name = \"t\"\nprotocol = \"kv\"\nduration = \"2s\"\ntimeout = \"1s\"\n\
             [topology]\nservers = 1\nclients = 1\n\
             [workload]\nkeys = 1\nops_per_client = 2\nmix = {{ get = 1 }}\n{expect}"
        );
        Scenario::parse("t.toml".as_ref(), &text, &Registry::shipped()).unwrap()
    }

    /// Operation 1 answers; operation 2 is called at `call` seconds and, at `end`, given
    /// up for `why` or answered `ret`.
    fn history(call: u64, end: u64, outcome: Result<KvRet, &str>) -> History<KvOp, KvRet> {
        let s = 1_000_000_000;
        let get = KvOp::Get { key: "k0".into() };
        let invoke = |at, id| Event::Invoke {
            at,
            client: 0,
            id,
            op: get.clone(),
        };
        let last = match outcome {
            Ok(ret) => Event::Return {
                at: end * s,
                client: 0,
                id: 2,
                ret,
            },
            Err(why) => Event::Unknown {
                at: end * s,
                client: 0,
                id: 2,
                why: why.into(),
            },
        };
        let first = Event::Return {
            at: 1,
            client: 0,
            id: 1,
            ret: KvRet::Value(None),
        };
        History {
            events: vec![invoke(0, 1), first, invoke(call * s, 2), last],
        }
    }

    #[test]
    fn an_operation_that_never_answers_is_a_violation_where_all_must() {
        let must = scenario("[expect]\nanswered = true\n");
        let stalled = |s: &Scenario, h| stalled::<Kv>(s, &h);
        let v = stalled(&must, history(1, 2, Err("timed out"))).expect("a violation");
        assert_eq!(v.ops, [2]);
        assert!(v.what.contains("never answered (timed out)"), "{}", v.what);
        // A request never sent is no answer either.
        let refused = Ok(KvRet::Err(KvError::NotConnected));
        assert!(stalled(&must, history(1, 2, refused)).is_some());
        assert!(stalled(&must, history(1, 2, Ok(KvRet::Value(None)))).is_none());
        // Cut short by the end of the run: excused, unless called a timeout before it.
        assert!(stalled(&must, history(1, 1, Err(world::RUN_ENDED))).is_none());
        assert!(stalled(&must, history(1, 3, Err(world::RUN_ENDED))).is_some());
        // Without `expect.answered` an unknown outcome is only unknown.
        assert!(stalled(&scenario(""), history(1, 2, Err("timed out"))).is_none());
    }
}

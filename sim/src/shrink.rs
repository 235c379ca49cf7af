//! Shrinking: a failing seed's plan cut down to the smallest plan that still fails.
//!
//! A plan (every client's steps and the fault schedule) runs deterministically, so a
//! smaller plan can be tried by running it: [`shrink`] hands the drawn plan to proptest as
//! a [`ValueTree`] whose simplifications drop a `[[fault]]`, empty a client, cut a client's
//! steps in half, drop one step, and zero one think time, in that order, and keeps each
//! that still fails the same way (a violation, or an error) until none does or the budget
//! of candidate runs is spent. The result is written as a scenario file with the plan
//! spelled out (`[[client]]` tables), which `squall run` and `replay` reproduce bit for bit.

use proptest::strategy::{NewTree, Strategy, ValueTree};
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use serde::Serialize;
use std::cell::RefCell;
use std::fmt::{self, Debug};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use crate::backend::Backend;
use crate::history::{Event, History};
use crate::plan::{Plan, Step};
use crate::protocol::Protocol;
use crate::protocols::{self, Registry, Visit};
use crate::report::{Outcome, Run};
use crate::scenario::Scenario;
use crate::{sweep, watchdog};

/// A shrunk failure.
#[derive(Debug)]
pub struct Shrunk {
    /// The scenario file that replays it, as text.
    pub file: String,
    /// It, read back.
    pub scenario: Scenario,
    /// The run of the shrunk plan (judged from the written file).
    pub run: Run,
    /// The seed's run before shrinking.
    pub original: Run,
    /// Candidate plans run.
    pub tried: u32,
    /// Operations per client of the shrunk plan.
    pub ops: Vec<usize>,
    /// The plan, one line a step or fault.
    pub plan: String,
}

/// Shrink seed `seed` of `scenario` on `backend`, trying at most `budget` candidate plans;
/// `path` names the written file in its header and errors. An error when the seed holds.
pub fn shrink(
    registry: &Registry,
    scenario: &Scenario,
    backend: &Backend,
    seed: u64,
    budget: u32,
    path: &Path,
) -> Result<Shrunk, String> {
    struct Shrink<'a>(&'a Registry, &'a Scenario, &'a Backend, u64, u32, &'a Path);
    impl Visit for Shrink<'_> {
        type Out = Result<Shrunk, String>;
        fn visit<P: Protocol>(self) -> Self::Out {
            shrink_as::<P>(self.0, self.1, self.2, self.3, self.4, self.5)
        }
    }
    let shrink = Shrink(registry, scenario, backend, seed, budget, path);
    protocols::visit(&scenario.protocol, shrink)
        .unwrap_or_else(|| Err(format!("no protocol {:?}", scenario.protocol)))
}

fn shrink_as<P: Protocol>(
    registry: &Registry,
    scenario: &Scenario,
    backend: &Backend,
    seed: u64,
    budget: u32,
    path: &Path,
) -> Result<Shrunk, String> {
    let name = backend.name();
    if backend.is_live() {
        return Err(format!(
            "{name} runs live: a live run is not a function of its seed, so it does not shrink"
        ));
    }
    let scenario = scenario.for_seed(seed);
    let plan = P::plan(&scenario, seed);
    let (original, spans) = judge::<P>(&scenario, backend, &plan);
    if original.verdict == Outcome::Ok {
        return Err(format!(
            "seed {seed} holds on {name}: there is no failure to shrink"
        ));
    }
    // The spans of the latest run, for the shrinker to keep the next candidates' timing.
    let last = Rc::new(RefCell::new(spans));
    let fails = |plan: &Plan<P::Intent>| {
        let (run, spans) = judge::<P>(&scenario, backend, plan);
        *last.borrow_mut() = spans;
        run.verdict_name() == original.verdict_name()
    };
    let mut runner = TestRunner::new(Config {
        cases: 1,
        max_shrink_iters: budget,
        max_shrink_time: 0,
        failure_persistence: None,
        fork: false,
        timeout: 0,
        verbose: 0,
        ..Config::default()
    });
    let tried = std::cell::Cell::new(0);
    let minimal = match runner.run(&Plans(plan.clone(), last.clone()), |p| {
        tried.set(tried.get() + 1);
        match fails(&p) {
            true => Err(TestCaseError::fail("fails")),
            false => Ok(()),
        }
    }) {
        Err(TestError::Fail(_, minimal)) => minimal,
        // The drawn plan failed above; a run is a function of its plan.
        _ => {
            return Err(format!(
                "seed {seed} on {name}: the drawn plan did not fail again: not deterministic"
            ))
        }
    };
    let file = write(&scenario, &minimal, name, seed, path);
    let written = Scenario::parse(path, &file, registry)
        .map_err(|e| format!("the written scenario does not read back: {e}"))?;
    let run = sweep::run(&written, backend, seed);
    Ok(Shrunk {
        file,
        scenario: written,
        run,
        original,
        tried: tried.get(),
        ops: minimal.clients.iter().map(Vec::len).collect(),
        plan: describe(&minimal),
    })
}

/// Run `plan` of `scenario` (its faults the plan's) and judge it; with how long each
/// client's operations took, from invoke to answer, in order.
fn judge<P: Protocol>(
    scenario: &Scenario,
    backend: &Backend,
    plan: &Plan<P::Intent>,
) -> (Run, Spans) {
    let scenario = scenario.with_specs(plan.specs.clone());
    let run = || match sweep::history::<P>(&scenario, backend, plan) {
        Ok(history) => {
            let (run, _) = sweep::assess::<P>(&scenario, backend.name(), plan.seed, &history);
            (run, spans(&history, plan.clients.len()))
        }
        Err(why) => (
            Run::failed(plan.seed, backend.name(), why),
            Spans::default(),
        ),
    };
    watchdog::catch(run).unwrap_or_else(|why| {
        (
            Run::failed(plan.seed, backend.name(), why),
            Spans::default(),
        )
    })
}

/// Per client, how long each of its operations took.
type Spans = Vec<Vec<Duration>>;

fn spans<O, R>(history: &History<O, R>, clients: usize) -> Spans {
    let mut open = std::collections::BTreeMap::new();
    let mut spans = vec![Vec::new(); clients];
    for e in &history.events {
        match e {
            Event::Invoke { at, id, .. } => drop(open.insert(*id, *at)),
            Event::Return { at, client, id, .. } | Event::Unknown { at, client, id, .. } => {
                if let (Some(call), Some(s)) =
                    (open.remove(id), spans.get_mut(*client as usize - 1))
                {
                    s.push(Duration::from_nanos(at - call));
                }
            }
            Event::Fault { .. } => {}
        }
    }
    spans
}

/// The scenario file of `plan`: the scenario as written, with the seed, the backend, the
/// topology (a swarm's draw), the plan's faults and its `[[client]]` steps spelled out.
fn write<I: Serialize>(
    scenario: &Scenario,
    plan: &Plan<I>,
    backend: &str,
    seed: u64,
    path: &Path,
) -> String {
    let mut doc = scenario.concrete();
    doc.insert("seeds".into(), seed.to_string().into());
    doc.insert("backend".into(), backend.into());
    let faults = plan.specs.iter().map(|s| s.to_toml().into()).collect();
    doc.insert("fault".into(), toml::Value::Array(faults));
    let clients = plan.script().into_iter().map(toml::Value::Table).collect();
    doc.insert("client".into(), toml::Value::Array(clients));
    format!(
        "# Shrunk by `squall shrink {} --seed {seed} --backend {backend}`; written as {}.\n{}",
        scenario.path.display(),
        path.display(),
        toml::to_string(&doc).expect("a scenario is TOML")
    )
}

/// The plan, a line a fault and a step.
fn describe<I: fmt::Display>(plan: &Plan<I>) -> String {
    let mut out = String::new();
    for (at, fault) in plan.faults.iter() {
        out += &format!(
            "  {:>10} {fault}\n",
            humantime::format_duration(*at).to_string()
        );
    }
    for (c, steps) in plan.clients.iter().enumerate() {
        out += &format!("  client-{}: {} operations\n", c + 1, steps.len());
        for s in steps {
            let think = humantime::format_duration(s.think).to_string();
            out += &format!("    think {think:>8}, then {}\n", s.intent);
        }
    }
    out
}

/// The strategy of one plan: it only shrinks; with the spans of the latest run.
#[derive(Debug)]
struct Plans<I>(Plan<I>, Rc<RefCell<Spans>>);

impl<I: Clone + Debug> Strategy for Plans<I> {
    type Tree = Shrinker<I>;
    type Value = Plan<I>;

    fn new_tree(&self, _: &mut TestRunner) -> NewTree<Self> {
        Ok(Shrinker {
            spans: self.1.borrow().clone(),
            last: self.1.clone(),
            best: self.0.clone(),
            current: self.0.clone(),
            next: 0,
            trying: false,
            progressed: false,
        })
    }
}

/// Walks the simplifications of the smallest failing plan so far.
struct Shrinker<I> {
    /// The smallest plan known to fail.
    best: Plan<I>,
    /// How long `best`'s operations took.
    spans: Spans,
    /// How long the operations of the plan run last took.
    last: Rc<RefCell<Spans>>,
    /// The plan being tried.
    current: Plan<I>,
    /// Which simplification of `best` `current` is.
    next: usize,
    /// Whether `current` is a simplification of `best` (else `best` itself).
    trying: bool,
    /// Whether a simplification failed since the last pass began.
    progressed: bool,
}

/// One way to make a plan smaller. Dropping steps adds their think times and how long they
/// took to the next step's think, so what stays runs when it ran before.
#[derive(Clone, Copy, Debug)]
enum Cut {
    /// Keep only the steps invoked before `n`/16 of the time the last step is invoked: what
    /// is sent later cannot change what happened before, so a failure early in the run
    /// survives it, however much its timing depends on everything else.
    Before(u64),
    Fault(usize),
    /// Empty a client (its host stays, so host names and their RNG streams do not move).
    Client(usize),
    /// Drop the second half of a client's steps.
    Tail(usize),
    /// Drop the first half.
    Head(usize),
    Step(usize, usize),
    Think(usize, usize),
}

impl Cut {
    /// Every cut of `plan`, most of the plan first.
    fn of<I: Clone>(plan: &Plan<I>, spans: &Spans) -> Vec<Cut> {
        let steps = |p: &Plan<I>| p.clients.iter().map(Vec::len).sum::<usize>();
        let mut cuts: Vec<Cut> = [8, 12, 14, 15]
            .into_iter()
            .map(Cut::Before)
            .filter(|cut| steps(&cut.apply(plan, spans)) < steps(plan))
            .collect();
        cuts.extend((0..plan.specs.len()).map(Cut::Fault));
        let clients = || plan.clients.iter().enumerate();
        cuts.extend(
            clients()
                .filter(|(_, s)| !s.is_empty())
                .map(|(c, _)| Cut::Client(c)),
        );
        for (c, steps) in clients().filter(|(_, s)| s.len() > 1) {
            cuts.extend([Cut::Tail(c), Cut::Head(c)]);
            cuts.extend((0..steps.len()).map(|j| Cut::Step(c, j)));
        }
        for (c, steps) in clients() {
            let thinking = steps.iter().enumerate().filter(|(_, s)| !s.think.is_zero());
            cuts.extend(thinking.map(|(j, _)| Cut::Think(c, j)));
        }
        cuts
    }

    fn apply<I: Clone>(self, plan: &Plan<I>, spans: &Spans) -> Plan<I> {
        let took = |c: usize| spans.get(c).map_or(&[][..], Vec::as_slice);
        let (mut clients, mut specs) = (plan.clients.clone(), plan.specs.clone());
        match self {
            Cut::Before(n) => {
                let invoked: Vec<Vec<Duration>> = (clients.iter().enumerate())
                    .map(|(c, steps)| invokes(steps, took(c)))
                    .collect();
                let last = invoked.iter().flatten().max().copied().unwrap_or_default();
                let cutoff = last * n as u32 / 16;
                for (steps, at) in clients.iter_mut().zip(&invoked) {
                    steps.truncate(at.iter().filter(|&&t| t < cutoff).count());
                }
            }
            Cut::Fault(i) => drop(specs.remove(i)),
            Cut::Client(c) => clients[c].clear(),
            Cut::Tail(c) => {
                let half = clients[c].len() / 2;
                clients[c].truncate(half)
            }
            Cut::Head(c) => {
                let half = clients[c].len() / 2;
                fold(&mut clients[c], 0..half, took(c))
            }
            Cut::Step(c, j) => fold(&mut clients[c], j..j + 1, took(c)),
            Cut::Think(c, j) => clients[c][j].think = Duration::ZERO,
        }
        Plan::new(plan.seed, clients, specs)
    }
}

/// When each of `steps` was invoked, given how long the answered ones took; the steps after
/// one that was never answered are left out (they never ran).
fn invokes<I>(steps: &[Step<I>], took: &[Duration]) -> Vec<Duration> {
    let mut at = Duration::ZERO;
    let mut out = Vec::new();
    for (j, step) in steps.iter().enumerate() {
        at += step.think;
        out.push(at);
        match took.get(j) {
            Some(span) => at += *span,
            None => break,
        }
    }
    out
}

/// Drop `steps[range]`, adding their think times and spans to the step after them.
fn fold<I>(steps: &mut Vec<Step<I>>, range: std::ops::Range<usize>, took: &[Duration]) {
    let spans: Duration = took.get(range.clone()).unwrap_or_default().iter().sum();
    let think: Duration = steps
        .drain(range.clone())
        .map(|s| s.think)
        .sum::<Duration>()
        + spans;
    if let Some(next) = steps.get_mut(range.start) {
        next.think += think;
    }
}

impl<I: Clone> Shrinker<I> {
    /// Make `current` the next simplification of `best`; at the end of a pass that made
    /// progress, start another. False once a whole pass fails to simplify.
    fn advance(&mut self) -> bool {
        loop {
            if let Some(cut) = Cut::of(&self.best, &self.spans).get(self.next) {
                self.current = cut.apply(&self.best, &self.spans);
                self.trying = true;
                return true;
            }
            self.current = self.best.clone();
            self.trying = false;
            if !std::mem::take(&mut self.progressed) {
                return false;
            }
            self.next = 0;
        }
    }
}

impl<I: Clone + Debug> ValueTree for Shrinker<I> {
    type Value = Plan<I>;

    fn current(&self) -> Plan<I> {
        self.current.clone()
    }

    /// `current` failed: it is the best so far; the cut at the same place comes next.
    fn simplify(&mut self) -> bool {
        self.progressed |= self.trying;
        self.best = self.current.clone();
        self.spans = self.last.borrow().clone();
        self.advance()
    }

    /// `current` passed: back to the best, and on to the next cut.
    fn complicate(&mut self) -> bool {
        self.current = self.best.clone();
        self.next += 1;
        self.advance()
    }
}

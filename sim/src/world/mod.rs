//! The simulated world: one seed builds a turmoil simulation with server and client hosts,
//! each with its own RNG stream, and drives it while applying the fault schedule.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use crate::faults::{Fault, Schedule};
use crate::history::{Event, History, Nanos};
use crate::plan::{Plan, Step};
use crate::protocol::{Caller, Capability, Protocol, System};
use crate::scenario::{server_names, Scenario};
use crate::time::{EPOCH_SECS, TICK};

mod clock;
mod dice;
pub mod disk;
pub mod frame;
pub mod host;

pub use clock::Clock;
use clock::HostClocks;
pub use dice::{fate, Fate};
pub use disk::Disk;
pub use host::{Node, Software, PORT};

/// Why an operation still open when the run stops is unknown: it was cut short, not lost.
pub const RUN_ENDED: &str = "run ended";

/// Run `plan` of `scenario` against `system`: the history it records, or why the run
/// could not finish (a host's software failed, or the run would pass the simulated-time
/// watchdog: `duration` and the scenario's `[limits] overtime`).
pub fn run<P: Protocol>(
    scenario: &Scenario,
    plan: &Plan<P::Intent>,
    system: Rc<dyn System<P>>,
) -> Result<History<P::Op, P::Ret>, String> {
    let finale = P::finale(scenario);
    let end = end_of(scenario, finale.len())?;
    // Over squall's transport, a frame's latency above the minimum is drawn frame by frame
    // (`frame`), so turmoil carries every message at the minimum.
    let framed = !system.lacks().iter().any(|(c, _)| *c == Capability::Frames);
    let (min, max) = scenario.latency;
    let mut sim = simulation(scenario, plan.seed, end, framed);

    let hosts = Hosts {
        servers: server_names(scenario.servers),
        seed: plan.seed,
        timeout: scenario.timeout,
        clocks: HostClocks::default(),
    };
    let dice = dice::Dice::start(plan.seed);
    if framed {
        dice.latency(max.saturating_sub(min));
    }
    let mut disks = BTreeMap::new();
    for name in &hosts.servers {
        let node = hosts.node(name);
        disks.insert(name.clone(), node.disk.clone());
        let system = system.clone();
        sim.host(name.as_str(), move || system.serve(node.clone()));
    }

    let recorder = Rc::new(RefCell::new(Recorder::new(Time::Simulated)));
    if let Some(drawn) = &scenario.drawn {
        let what = drawn.clone();
        recorder
            .borrow_mut()
            .history
            .events
            .push(Event::Fault { at: 0, what });
    }
    for (c, steps) in plan.clients.iter().enumerate() {
        let name = format!("client-{}", c + 1);
        let caller = system.client(hosts.node(&name));
        let recorder = recorder.clone();
        sim.client(
            name.as_str(),
            drive::<P>(
                c as u32 + 1,
                steps.clone(),
                caller,
                recorder,
                scenario.timeout,
                scenario.duration,
            ),
        );
    }
    if !finale.is_empty() {
        let node = hosts.node("finale");
        sim.client(
            "finale",
            drive::<P>(
                plan.clients.len() as u32 + 1,
                finale_steps::<P>(scenario, finale),
                system.client(node),
                recorder.clone(),
                scenario.timeout,
                end,
            ),
        );
    }

    let strike = |sim: &mut turmoil::Sim, fault: &Fault| match fault {
        Fault::Buggify { on } => dice.buggify(*on),
        Fault::Messages { odds } => dice.messages(*odds),
        Fault::Latency { max } if framed => dice.latency(max.saturating_sub(min)),
        _ => apply(sim, &disks, &hosts.clocks, fault),
    };
    play(&mut sim, &plan.faults, &recorder, end, strike)?;
    let end = nanos(sim.elapsed());
    drop(sim);
    let mut recorder = Rc::try_unwrap(recorder)
        .map_err(|_| "a client outlived its simulation")
        .unwrap()
        .into_inner();
    recorder.close(end);
    Ok(recorder.history)
}

/// When the run ends: at `duration`, or once the finale's `finale` operations have had
/// their time; too late for the simulated-time watchdog is an error.
fn end_of(scenario: &Scenario, finale: usize) -> Result<Duration, String> {
    // The finale starts once every client has stopped and its last call has timed out.
    let mut end = scenario.duration;
    if finale > 0 {
        end += scenario.timeout * (finale as u32 + 2);
    }
    let watchdog = scenario.duration + scenario.limits.overtime;
    if end > watchdog {
        return Err(format!(
            "stopped by the simulated-time watchdog: the run would take {} of simulated time, \
             past duration + [limits] overtime = {}",
            humantime::format_duration(end),
            humantime::format_duration(watchdog)
        ));
    }
    Ok(end)
}

/// The turmoil simulation of seed `seed`, its messages at the scenario's latency (at its
/// minimum when `framed`: frames draw the rest).
fn simulation(
    scenario: &Scenario,
    seed: u64,
    end: Duration,
    framed: bool,
) -> turmoil::Sim<'static> {
    let (min, max) = scenario.latency;
    turmoil::Builder::new()
        .rng_seed(seed)
        .epoch(UNIX_EPOCH + Duration::from_secs(EPOCH_SECS))
        .tick_duration(TICK)
        .min_message_latency(min)
        .max_message_latency(if framed { min } else { max })
        // The loop in `play` ends the run at `end`; turmoil's own limit must not.
        .simulation_duration(end + Duration::from_secs(1))
        .build()
}

/// What every host's [`Node`] is made from.
struct Hosts {
    servers: Vec<String>,
    seed: u64,
    timeout: Duration,
    clocks: HostClocks,
}

impl Hosts {
    fn node(&self, name: &str) -> Node {
        Node::new(name, &self.servers, self.seed, self.timeout, &self.clocks)
    }
}

/// The finale's steps: the first once the clients' last calls have timed out, the rest
/// one after another.
fn finale_steps<P: Protocol>(scenario: &Scenario, finale: Vec<P::Intent>) -> Vec<Step<P::Intent>> {
    finale
        .into_iter()
        .enumerate()
        .map(|(i, intent)| Step {
            think: if i == 0 {
                scenario.duration + scenario.timeout
            } else {
                Duration::ZERO
            },
            intent,
        })
        .collect()
}

/// Step `sim` until `end` (or until every client is done), striking each fault of
/// `schedule` when its time comes and recording it.
fn play<O, R>(
    sim: &mut turmoil::Sim,
    schedule: &Schedule,
    recorder: &RefCell<Recorder<O, R>>,
    end: Duration,
    strike: impl Fn(&mut turmoil::Sim, &Fault),
) -> Result<(), String> {
    let mut faults = schedule.iter().peekable();
    loop {
        let now = sim.elapsed();
        while let Some((_, fault)) = faults.next_if(|(at, _)| *at <= now) {
            strike(sim, fault);
            recorder.borrow_mut().history.events.push(Event::Fault {
                at: nanos(now),
                what: fault.to_string(),
            });
        }
        if now >= end {
            return Ok(());
        }
        match sim.step() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(format!("host software failed: {e}")),
        }
    }
}

/// A client's software: the plan's steps in turn, each operation recorded. The simulation
/// and live mode both run it.
pub(crate) async fn drive<P: Protocol>(
    client: u32,
    steps: Vec<Step<P::Intent>>,
    mut caller: Box<dyn Caller<P>>,
    recorder: Rc<RefCell<Recorder<P::Op, P::Ret>>>,
    timeout: Duration,
    duration: Duration,
) -> turmoil::Result {
    let mut memory = P::Memory::default();
    // The operations whose outcome was unknown, until the caller settles one.
    let mut lost: Vec<(u64, P::Op)> = Vec::new();
    for step in steps {
        tokio::time::sleep(step.think).await;
        if recorder.borrow().time.now() >= duration {
            break;
        }
        let op = P::op(&memory, &step.intent);
        let id = recorder.borrow_mut().invoke(client, op.clone());
        let outcome = tokio::time::timeout(timeout, caller.call(&op)).await;
        if let Some((sent, ran)) = caller.settled() {
            if let Some(i) = lost.iter().rposition(|(_, op)| *op == sent) {
                recorder.borrow_mut().ran(lost.remove(i).0, ran);
            }
        }
        match outcome {
            Ok(Ok(ret)) => {
                let op = match caller.ran(&op) {
                    Some(ran) => recorder.borrow_mut().ran(id, ran),
                    None => op,
                };
                P::learn(&mut memory, &op, &ret);
                recorder.borrow_mut().answer(client, id, ret);
            }
            Ok(Err(why)) => {
                lost.push((id, op));
                recorder.borrow_mut().unknown(client, id, why);
            }
            Err(_) => {
                lost.push((id, op));
                recorder.borrow_mut().unknown(
                    client,
                    id,
                    format!("no answer within {}", humantime::format_duration(timeout)),
                );
            }
        }
    }
    Ok(())
}

fn apply(
    sim: &mut turmoil::Sim,
    disks: &BTreeMap<String, Disk>,
    clocks: &HostClocks,
    fault: &Fault,
) {
    match fault {
        Fault::Partition { groups, oneway } => {
            for (a, b) in Fault::links(groups, *oneway) {
                if *oneway {
                    sim.partition_oneway(a, b);
                } else {
                    sim.partition(a, b);
                }
            }
        }
        Fault::Heal { groups, oneway } => {
            for (a, b) in Fault::links(groups, *oneway) {
                if *oneway {
                    sim.repair_oneway(a, b);
                } else {
                    sim.repair(a, b);
                }
            }
        }
        Fault::Crash { host } => {
            sim.crash(host.as_str());
            if let Some(disk) = disks.get(host) {
                disk.crash();
            }
        }
        Fault::Restart { host } => sim.bounce(host.as_str()),
        Fault::Latency { max } => sim.set_max_message_latency(*max),
        Fault::Clock { host, by } => clocks.jump(host, *by),
        Fault::Buggify { .. } | Fault::Messages { .. } => {}
    }
}

/// Where a run's times come from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Time {
    /// Simulated time, as seen from inside the simulation.
    Simulated,
    /// Real time since this instant: live mode only, never inside a simulation.
    Real(std::time::Instant),
}

impl Time {
    pub(crate) fn now(self) -> Duration {
        match self {
            Time::Simulated => turmoil::sim_elapsed().unwrap_or_default(),
            Time::Real(start) => start.elapsed(),
        }
    }
}

pub(crate) fn nanos(d: Duration) -> Nanos {
    d.as_nanos() as Nanos
}

/// Builds the history as clients call and answer.
pub(crate) struct Recorder<O, R> {
    pub(crate) history: History<O, R>,
    pub(crate) time: Time,
    next: u64,
    /// Operations invoked and not yet answered: id → client.
    open: BTreeMap<u64, u32>,
}

impl<O, R> Recorder<O, R> {
    pub(crate) fn new(time: Time) -> Self {
        Recorder {
            history: History::default(),
            time,
            next: 1,
            open: BTreeMap::new(),
        }
    }

    fn invoke(&mut self, client: u32, op: O) -> u64 {
        let id = self.next;
        self.next += 1;
        self.open.insert(id, client);
        self.history.events.push(Event::Invoke {
            at: nanos(self.time.now()),
            client,
            id,
            op,
        });
        id
    }

    /// Operation `id` ran as `op` (live mode: at the server's time); `op` back.
    fn ran(&mut self, id: u64, op: O) -> O
    where
        O: Clone,
    {
        for e in self.history.events.iter_mut().rev() {
            if let Event::Invoke { id: i, op: o, .. } = e {
                if *i == id {
                    *o = op.clone();
                    break;
                }
            }
        }
        op
    }

    fn answer(&mut self, client: u32, id: u64, ret: R) {
        self.open.remove(&id);
        self.history.events.push(Event::Return {
            at: nanos(self.time.now()),
            client,
            id,
            ret,
        });
    }

    fn unknown(&mut self, client: u32, id: u64, why: String) {
        self.open.remove(&id);
        self.history.events.push(Event::Unknown {
            at: nanos(self.time.now()),
            client,
            id,
            why,
        });
    }

    /// The run is over: what is still open will never be answered.
    pub(crate) fn close(&mut self, at: Nanos) {
        for (id, client) in std::mem::take(&mut self.open) {
            self.history.events.push(Event::Unknown {
                at,
                client,
                id,
                why: RUN_ENDED.into(),
            });
        }
    }
}

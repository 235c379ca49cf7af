//! Live mode: a scenario against a real server over real loopback sockets.
//!
//! `squall run scenarios/kv --backend kv/nats` runs the same scenario files, plans and
//! checkers as the simulation, but on a real tokio runtime against a real nats-server
//! ([`Server`]): each client is a task, each client's connection goes through a TCP
//! [`Proxy`] of its own, timeouts run on the real clock, and a history's times are the
//! real time since the run started. Live histories are not deterministic (a seed fixes
//! the plan, not the timing), so they are judged but never snapshot-checked.
//!
//! The server stands for `server-1`, the host the scenario's clients talk to. Faults act
//! on the proxies:
//! - `partition` between a client and `server-1` drops that client's bytes (one way with
//!   `oneway = true`); healing resets the connections that lost bytes, and the client
//!   reconnects. Cuts between hosts that do not exist live (`server-2`, links between
//!   servers) do nothing, and the history's fault line says so.
//! - `latency` sets the proxies' maximum delay; `[network] latency` is the base one.
//! - `crash`/`restart` and `clock` jumps cannot be applied to a real server process:
//!   a scenario with them is not applicable ([`applicable`]) and runs nothing.
//!
//! Every run makes its own namespace (a bucket named `squall_<seed>_<pid>_<n>`) and
//! removes it at the end; every run has a wall-clock budget.

use async_trait::async_trait;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

use crate::faults::Fault;
use crate::history::{Event, History};
use crate::plan::Plan;
use crate::protocol::{Caller, Protocol};
use crate::scenario::Scenario;
use crate::world::{self, nanos, Recorder, Time};

mod proxy;
mod server;

pub use proxy::{Proxy, Way};
pub use server::{Server, INSTALL};

/// The scenario host the live server stands for.
const SERVER: &str = "server-1";

/// Time a run may take past its scenario's duration (setting up, cleaning up).
const SLACK: Duration = Duration::from_secs(30);

/// A backend reached over real sockets, as one run uses it.
#[async_trait(?Send)]
pub trait Backend<P: Protocol> {
    /// Make the run's namespace on the server at `url`, over a connection of its own.
    async fn open(&mut self, url: &str, namespace: &str, timeout: Duration) -> Result<(), String>;
    /// A client that reaches the server at `url` (its proxy); it connects on its first call.
    fn client(&self, url: &str) -> Box<dyn Caller<P>>;
    /// Remove the namespace; an error if it is still there.
    async fn close(&mut self) -> Result<(), String>;
}

/// Whether live mode can apply every fault of `scenario`, or why not.
pub fn applicable(scenario: &Scenario) -> Result<(), String> {
    if scenario.swarm.is_some() {
        return Err("it is a swarm scenario, which may draw crashes and clock jumps".into());
    }
    for (_, fault) in scenario.faults.iter() {
        match fault {
            Fault::Crash { .. } | Fault::Restart { .. } => {
                return Err(
                    "it crashes a server; squall does not crash a real server process".into(),
                )
            }
            Fault::Clock { .. } => {
                return Err("it jumps a clock; a real server reads the machine's clock".into())
            }
            Fault::Buggify { .. } => {
                return Err(
                    "it switches BUGGIFY on; a real server has no squall fault points".into(),
                )
            }
            Fault::Partition { .. } | Fault::Heal { .. } | Fault::Latency { .. } => {}
        }
    }
    Ok(())
}

/// Run `plan` of `scenario` against `backend` on `server`: the history, or why the run
/// could not finish. Live mode only: a real runtime, real sockets, the real clock.
pub fn run<P: Protocol>(
    scenario: &Scenario,
    plan: &Plan<P::Intent>,
    backend: Box<dyn Backend<P>>,
    server: &Server,
) -> Result<History<P::Op, P::Ret>, String> {
    applicable(scenario).map_err(|why| format!("not applicable: {why}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("no runtime: {e}"))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, session(scenario, plan, backend, server))
}

/// Open the namespace, run the clients, close the namespace; each bounded in time.
async fn session<P: Protocol>(
    scenario: &Scenario,
    plan: &Plan<P::Intent>,
    mut backend: Box<dyn Backend<P>>,
    server: &Server,
) -> Result<History<P::Op, P::Ret>, String> {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let namespace = format!(
        "squall_{}_{}_{}",
        plan.seed,
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    );
    let budget = |what: &str| format!("{what} took longer than {SLACK:?}");
    let open = backend.open(server.url(), &namespace, SLACK / 3);
    tokio::time::timeout(SLACK / 2, open)
        .await
        .map_err(|_| budget("making the run's namespace"))??;
    let limit = scenario.duration + SLACK / 2;
    let history = tokio::time::timeout(limit, clients(scenario, plan, &*backend, server.addr()))
        .await
        .map_err(|_| budget("the run"))
        .and_then(|h| h);
    let closed = tokio::time::timeout(SLACK / 2, backend.close())
        .await
        .map_err(|_| budget("removing the run's namespace"))
        .and_then(|c| c);
    let history = history?;
    closed?;
    Ok(history)
}

/// The clients, each through its proxy, while the fault schedule plays.
async fn clients<P: Protocol>(
    scenario: &Scenario,
    plan: &Plan<P::Intent>,
    backend: &dyn Backend<P>,
    server: SocketAddr,
) -> Result<History<P::Op, P::Ret>, String> {
    // Live mode: history times are real time since the start.
    let start = Instant::now();
    let recorder = Rc::new(RefCell::new(Recorder::new(Time::Real(start))));
    let mut proxies = Vec::new();
    let mut tasks = JoinSet::new();
    for (c, steps) in plan.clients.iter().enumerate() {
        let name = format!("client-{}", c + 1);
        let rng = world::stream(plan.seed, &format!("{name}/proxy"));
        let proxy = Proxy::start(server, scenario.latency, rng)
            .await
            .map_err(|e| format!("no proxy for {name}: {e}"))?;
        let caller = backend.client(&format!("nats://{}", proxy.addr()));
        proxies.push(proxy);
        let drive = world::drive::<P>(
            c as u32 + 1,
            steps.clone(),
            caller,
            recorder.clone(),
            scenario.timeout,
            scenario.duration,
        );
        tasks.spawn_local(async move {
            let _ = drive.await;
        });
    }
    let faults = tokio::task::spawn_local(play(
        plan.faults.iter().cloned().collect(),
        proxies,
        recorder.clone(),
    ));
    let all = async { while tasks.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(scenario.duration, all).await;
    // Whatever still runs is cut off; awaiting the aborted tasks drops their futures.
    faults.abort();
    let _ = faults.await;
    tasks.shutdown().await;
    let end = nanos(start.elapsed());
    let mut recorder = Rc::try_unwrap(recorder)
        .map_err(|_| "a client outlived its run".to_string())?
        .into_inner();
    recorder.close(end);
    Ok(recorder.history)
}

/// Apply each fault at its time, recording it. Ends by dropping the proxies.
async fn play<O, R>(
    faults: Vec<(Duration, Fault)>,
    proxies: Vec<Proxy>,
    recorder: Rc<RefCell<Recorder<O, R>>>,
) {
    let Time::Real(start) = recorder.borrow().time else {
        unreachable!("live runs keep real time")
    };
    for (at, fault) in faults {
        tokio::time::sleep_until((start + at).into()).await;
        let what = match apply(&fault, &proxies) {
            true => fault.to_string(),
            false => format!("{fault} (no live link: the server is {SERVER})"),
        };
        let at = nanos(start.elapsed());
        recorder
            .borrow_mut()
            .history
            .events
            .push(Event::Fault { at, what });
    }
    // Keep the proxies until the run ends.
    std::future::pending::<()>().await;
}

/// Apply `fault` to the proxies; whether it touched any.
fn apply(fault: &Fault, proxies: &[Proxy]) -> bool {
    let (groups, oneway, heal) = match fault {
        Fault::Partition { groups, oneway } => (groups, *oneway, false),
        Fault::Heal { groups, oneway } => (groups, *oneway, true),
        Fault::Latency { max } => {
            for p in proxies {
                p.set_max_latency(*max);
            }
            return true;
        }
        Fault::Crash { .. }
        | Fault::Restart { .. }
        | Fault::Clock { .. }
        | Fault::Buggify { .. } => {
            unreachable!("applicable() admits no such fault")
        }
    };
    let mut touched = false;
    for (a, b) in Fault::links(groups, oneway) {
        let ways = if oneway {
            vec![(a, b)]
        } else {
            vec![(a, b), (b, a)]
        };
        for (from, to) in ways {
            let (proxy, way) = match (client_proxy(from, proxies), client_proxy(to, proxies)) {
                (Some(p), None) if to == SERVER => (p, Way::Up),
                (None, Some(p)) if from == SERVER => (p, Way::Down),
                _ => continue,
            };
            if heal {
                proxy.heal(way);
            } else {
                proxy.cut(way);
            }
            touched = true;
        }
    }
    touched
}

/// The proxy of client host `name` (`client-N`).
fn client_proxy<'a>(name: &str, proxies: &'a [Proxy]) -> Option<&'a Proxy> {
    let n: usize = name.strip_prefix("client-")?.parse().ok()?;
    proxies.get(n.checked_sub(1)?)
}

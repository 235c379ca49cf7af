//! Live mode: a scenario against a real server over real loopback sockets.
//!
//! `squall run scenarios/kv --backend kv/nats` runs the same scenario files, plans and
//! checkers as the simulation, but on a real tokio runtime against a real server of the
//! kind the backend names ([`Backend::flavor`], [`Server`]): each client is a task, each
//! client's connection goes through a TCP [`Proxy`] of its own, timeouts run on the real
//! clock, and a history's times are the real time since the run started. Live histories
//! are not deterministic (a seed fixes the plan, not the timing), so they are judged but
//! never snapshot-checked.
//!
//! The server stands for `server-1`, the host the scenario's clients talk to. Faults act
//! on the proxies and the server process:
//! - `partition` between a client and `server-1` drops that client's bytes (one way with
//!   `oneway = true`); healing resets the connections that lost bytes, and the client
//!   reconnects. Cuts between hosts that do not exist live (`server-2`, links between
//!   servers) do nothing, and the history's fault line says so.
//! - `latency` sets the proxies' maximum delay; `[network] latency` is the base one.
//! - `crash` of `server-1` kills the server process (SIGKILL); `restart` starts it again
//!   on the same port with the same store. Such a run has a server of its own, and only a
//!   server squall started can be crashed (not one `--server` names). `clock` jumps cannot
//!   be applied: a scenario with them is not applicable ([`applicable`]).
//!
//! Every run makes its own namespace ([`namespace`]) and removes it at the end, and first
//! removes the namespaces runs on this machine left behind when their process died
//! ([`leftover`]); every run has a wall-clock budget.

use async_trait::async_trait;
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
pub use server::{external, use_server, Flavor, Server, INSTALL};

/// The scenario host the live server stands for.
const SERVER: &str = "server-1";

/// Time a run may take past its scenario's duration (setting up, cleaning up).
const SLACK: Duration = Duration::from_secs(30);

/// A backend reached over real sockets, as one run uses it.
#[async_trait(?Send)]
pub trait Backend<P: Protocol> {
    /// The kind of server it needs.
    fn flavor(&self) -> Flavor;
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
                if let Some(addr) = external() {
                    return Err(format!(
                        "it crashes a server; squall crashes only a server it started itself, \
                         and --server {addr} names one it did not"
                    ));
                }
            }
            Fault::Clock { .. } => {
                return Err("it jumps a clock; a real server reads the machine's clock".into())
            }
            Fault::Buggify { .. } => {
                return Err(
                    "it switches BUGGIFY on; a real server has no squall fault points".into(),
                )
            }
            Fault::Messages { .. } => {
                return Err(
                    "it loses and repeats squall's own messages; a real server speaks its own \
                     wire protocol"
                        .into(),
                )
            }
            Fault::Partition { .. } | Fault::Heal { .. } | Fault::Latency { .. } => {}
        }
    }
    Ok(())
}

/// The namespace of a new run of `seed`: `squall_<machine>_<pid>_<seed>_<n>`, where
/// `<machine>` is 8 hex digits of this machine's host name's hash and `<n>` counts this
/// process's runs. Letters, digits and `_` only: a NATS bucket name, and a Redis hash tag.
pub fn namespace(seed: u64) -> String {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    format!("{}{}_{seed}_{n}", machine(), std::process::id())
}

/// `squall_<machine>_`: the start of the namespaces of this machine's runs.
fn machine() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default();
    let hash = blake3::hash(host.trim().as_bytes()).to_hex();
    format!("squall_{}_", &hash[..8])
}

/// Whether `name` is the namespace of a run on this machine whose process is gone (it
/// crashed or was killed before it could clean up). Another machine's namespaces, and those
/// of processes still running (other squall commands), are never leftovers.
pub fn leftover(name: &str) -> bool {
    let Some(pid) = name
        .strip_prefix(&machine())
        .and_then(|rest| rest.split('_').next())
        .and_then(|pid| pid.parse::<u32>().ok())
    else {
        return false;
    };
    let proc = Path::new("/proc");
    pid != std::process::id() && proc.join("self").exists() && !proc.join(pid.to_string()).exists()
}

/// Run `plan` of `scenario` against `backend`: the history, or why the run could not
/// finish. Live mode only: a real runtime, real sockets, the real clock. The server is the
/// command's shared one, or one of the run's own if the scenario crashes it.
pub fn run<P: Protocol>(
    scenario: &Scenario,
    plan: &Plan<P::Intent>,
    backend: Box<dyn Backend<P>>,
) -> Result<History<P::Op, P::Ret>, String> {
    applicable(scenario).map_err(|why| format!("not applicable: {why}"))?;
    let crashes = scenario
        .faults
        .iter()
        .any(|(_, f)| matches!(f, Fault::Crash { .. } | Fault::Restart { .. }));
    let server = match crashes {
        true => Arc::new(Server::start(backend.flavor())?),
        false => Server::shared(backend.flavor())?,
    };
    run_on(scenario, plan, backend, server)
}

/// [`run`] on `server`, which must be of the kind `backend` needs.
pub fn run_on<P: Protocol>(
    scenario: &Scenario,
    plan: &Plan<P::Intent>,
    backend: Box<dyn Backend<P>>,
    server: Arc<Server>,
) -> Result<History<P::Op, P::Ret>, String> {
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
    server: Arc<Server>,
) -> Result<History<P::Op, P::Ret>, String> {
    let namespace = namespace(plan.seed);
    let budget = |what: &str| format!("{what} took longer than {SLACK:?}");
    let url = server.url();
    let open = backend.open(&url, &namespace, SLACK / 3);
    let opened = tokio::time::timeout(SLACK / 2, open)
        .await
        .map_err(|_| budget("making the run's namespace"))
        .and_then(|o| o);
    if let Err(why) = opened {
        // Undo what was made of it.
        let _ = tokio::time::timeout(SLACK / 2, backend.close()).await;
        return Err(why);
    }
    let limit = scenario.duration + SLACK / 2;
    let history = tokio::time::timeout(limit, clients(scenario, plan, &*backend, server.clone()))
        .await
        .map_err(|_| budget("the run"))
        .and_then(|h| h);
    // A run may end between a crash and its restart: the server must be up to clean up.
    if server.crashable().is_ok() {
        let up = server.clone();
        let _ = tokio::task::spawn_blocking(move || up.restart()).await;
    }
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
    server: Arc<Server>,
) -> Result<History<P::Op, P::Ret>, String> {
    // Live mode: history times are real time since the start.
    let start = Instant::now();
    let recorder = Rc::new(RefCell::new(Recorder::new(Time::Real(start))));
    let mut proxies = Vec::new();
    let mut tasks = JoinSet::new();
    for (c, steps) in plan.clients.iter().enumerate() {
        let name = format!("client-{}", c + 1);
        let rng = crate::time::stream(plan.seed, &format!("{name}/proxy"));
        let proxy = Proxy::start(server.addr(), scenario.latency, rng)
            .await
            .map_err(|e| format!("no proxy for {name}: {e}"))?;
        let caller = backend.client(&server.flavor().url(proxy.addr()));
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
    let failed = Rc::new(RefCell::new(None));
    let faults = tokio::task::spawn_local(play(
        plan.faults.iter().cloned().collect(),
        Live {
            proxies,
            server,
            failed: failed.clone(),
        },
        recorder.clone(),
    ));
    let all = async { while tasks.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(scenario.duration, all).await;
    // Whatever still runs is cut off; awaiting the aborted tasks drops their futures.
    faults.abort();
    let _ = faults.await;
    tasks.shutdown().await;
    if let Some(why) = failed.take() {
        return Err(why);
    }
    let end = nanos(start.elapsed());
    let mut recorder = Rc::try_unwrap(recorder)
        .map_err(|_| "a client outlived its run".to_string())?
        .into_inner();
    recorder.close(end);
    Ok(recorder.history)
}

/// What faults act on: the proxies and the server process.
struct Live {
    proxies: Vec<Proxy>,
    server: Arc<Server>,
    /// Why a fault could not be applied (the server did not come back): the run fails.
    failed: Rc<RefCell<Option<String>>>,
}

/// Apply each fault at its time, recording it. Ends by dropping the proxies.
async fn play<O, R>(
    faults: Vec<(Duration, Fault)>,
    live: Live,
    recorder: Rc<RefCell<Recorder<O, R>>>,
) {
    let Time::Real(start) = recorder.borrow().time else {
        unreachable!("live runs keep real time")
    };
    for (at, fault) in faults {
        tokio::time::sleep_until((start + at).into()).await;
        let what = match apply(&fault, &live).await {
            Ok(true) => fault.to_string(),
            Ok(false) => format!("{fault} (no live host or link: the server is {SERVER})"),
            Err(why) => {
                *live.failed.borrow_mut() = Some(format!("{fault}: {why}"));
                format!("{fault} (failed: {why})")
            }
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

/// Apply `fault`; whether it touched anything.
async fn apply(fault: &Fault, live: &Live) -> Result<bool, String> {
    let (groups, oneway, heal) = match fault {
        Fault::Partition { groups, oneway } => (groups, *oneway, false),
        Fault::Heal { groups, oneway } => (groups, *oneway, true),
        Fault::Latency { max } => {
            for p in &live.proxies {
                p.set_max_latency(*max);
            }
            return Ok(true);
        }
        Fault::Crash { host } | Fault::Restart { host } if host != SERVER => return Ok(false),
        Fault::Crash { .. } => return live.server.kill().map(|()| true),
        Fault::Restart { .. } => {
            // Starting a process and waiting for it blocks; the clients carry on meanwhile.
            let server = live.server.clone();
            return tokio::task::spawn_blocking(move || server.restart())
                .await
                .map_err(|e| e.to_string())?
                .map(|()| true);
        }
        Fault::Clock { .. } | Fault::Buggify { .. } | Fault::Messages { .. } => {
            unreachable!("applicable() admits no clock, buggify or messages fault")
        }
    };
    let proxies = &live.proxies;
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
    Ok(touched)
}

/// The proxy of client host `name` (`client-N`).
fn client_proxy<'a>(name: &str, proxies: &'a [Proxy]) -> Option<&'a Proxy> {
    let n: usize = name.strip_prefix("client-")?.parse().ok()?;
    proxies.get(n.checked_sub(1)?)
}

#[cfg(test)]
mod tests {
    use super::{leftover, namespace};

    #[test]
    fn only_a_dead_process_of_this_machine_leaves_leftovers() {
        let ours = namespace(3);
        assert!(
            ours.starts_with("squall_") && ours.contains(&format!("_{}_3_", std::process::id()))
        );
        assert!(!leftover(&ours));
        let pid = format!("_{}_", std::process::id());
        assert!(leftover(&ours.replace(&pid, "_999999999_")));
        assert!(
            !leftover("squall_00000000_999999999_3_0"),
            "another machine's"
        );
        assert!(!leftover("unrelated"));
    }
}

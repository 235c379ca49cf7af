//! `squall bench`: the figures of BENCHMARKS.md, measured side by side in one process.
//!
//! - **Checkers**: squall's (revision pre-check, then Wing–Gong–Lowe search split by key)
//!   against porcupine-rs (a Rust port of porcupine) and stateright's
//!   `LinearizabilityTester` on the same histories: the Jepsen etcd corpus, generated KV
//!   histories, and a hard single-register history. porcupine-rs runs in this process with
//!   its own timeout of [`BUDGET`]; stateright runs each history in a child process given
//!   [`BUDGET`] of CPU time (killed after three times that in wall time), since its search
//!   cannot be interrupted.
//! - **Harness**: operations per wall second through `kv/reference` against a bare turmoil
//!   request/response loop with the same clients, think times and latency; simulated time
//!   over wall time; seeds per minute.
//!
//! Times are CPU time of the measuring thread, so a busy machine slows them less than it
//! slows wall time; ratios are measured side by side in one run.
//!
//! Generated histories are linearizable by construction: every operation takes effect at
//! a random instant inside its interval, against a correct bucket.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use squall_models::kv::{Entry, KvOp, KvRet};
use squall_models::register::{Register, RegisterOp, RegisterRet};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};

use crate::check::linear::{self, Budget, Linearizability};
use crate::check::Verdict;
use crate::history::Operation;
use crate::interop::jepsen;
use crate::protocols::Registry;
use crate::scenario::Scenario;
use crate::sweep;

/// What porcupine-rs and stateright may spend on one history.
pub const BUDGET: Duration = Duration::from_secs(1);

/// Where the Jepsen etcd corpus lives, from the repository root.
const CORPUS: &str = "sim/tests/data/jepsen-etcd";

/// A history to check, by name: `etcd/FILE`, `kv-10k`, `kv-100k`, `register-2k`.
pub enum Input {
    Register(Vec<Operation<RegisterOp, RegisterRet>>),
    Kv(Vec<Operation<KvOp, KvRet>>),
}

impl Input {
    pub fn load(name: &str) -> Result<Input, String> {
        Ok(match name {
            "kv-10k" => Input::Kv(kv_history(1, 10_000, 16, 100)),
            "kv-100k" => Input::Kv(kv_history(2, 100_000, 64, 1_000)),
            "register-2k" => Input::Register(register_history(3, 2_000, 16)),
            _ => {
                let file = name
                    .strip_prefix("etcd/")
                    .ok_or_else(|| format!("no bench input {name:?}"))?;
                let history =
                    jepsen::read(&Path::new(CORPUS).join(file)).map_err(|e| e.to_string())?;
                Input::Register(history.operations())
            }
        })
    }

    fn len(&self) -> usize {
        match self {
            Input::Register(ops) => ops.len(),
            Input::Kv(ops) => ops.len(),
        }
    }

    /// squall's verdict, as the harness reaches it.
    fn squall(&self) -> &'static str {
        match self {
            Input::Register(ops) => match linear::check(&Register, ops, &Budget::default()) {
                Linearizability::Linearizable => "ok",
                Linearizability::Violation(_) => "violation",
                Linearizability::Unknown { .. } => "unknown",
            },
            Input::Kv(ops) => match crate::protocols::kv::check_ops(ops) {
                Verdict::Ok => "ok",
                Verdict::Violation(_) => "violation",
                Verdict::Unknown(_) => "unknown",
            },
        }
    }

    /// Stateright's verdict; it has no budget of its own.
    pub fn stateright(&self) -> &'static str {
        let consistent = match self {
            Input::Register(ops) => tester(RegisterSpec(None), ops),
            Input::Kv(ops) => tester(KvSpec::default(), ops),
        };
        match consistent {
            Some(true) => "ok",
            Some(false) => "violation",
            None => "invalid",
        }
    }
}

impl Input {
    /// porcupine-rs's verdict within [`BUDGET`] of wall time (its own timeout).
    fn porcupine(&self) -> &'static str {
        let verdict = match self {
            Input::Register(ops) => {
                porcupine_rs::check_operations_timeout(&porc::<PorcRegister, _, _>(ops), BUDGET)
            }
            Input::Kv(ops) => {
                porcupine_rs::check_operations_timeout(&porc::<PorcKey, _, _>(ops), BUDGET)
            }
        };
        match verdict {
            porcupine_rs::CheckResult::Ok => "ok",
            porcupine_rs::CheckResult::Illegal => "violation",
            porcupine_rs::CheckResult::Unknown => "over budget",
        }
    }
}

/// `ops` as porcupine-rs operations: the call with its answer, `None` when unknown, which
/// stays open to the end, as porcupine's own Jepsen test has it.
fn porc<M, O, R>(ops: &[Operation<O, R>]) -> Vec<porcupine_rs::Operation<M>>
where
    M: porcupine_rs::Model<Op = (O, Option<R>), Metadata = ()>,
    O: Clone,
    R: Clone,
{
    (ops.iter())
        .map(|o| porcupine_rs::Operation {
            client_id: Some(o.client),
            call_time: o.call as i64,
            return_time: o.done.map_or(i64::MAX, |d| d as i64),
            op: (o.op.clone(), o.ret.clone()),
            metadata: None,
        })
        .collect()
}

/// The register as a porcupine-rs model; an unknown answer allows whatever the operation
/// would answer (so an unknown write takes effect, an unknown compare-and-set takes effect
/// only if it would have succeeded).
#[derive(Clone)]
struct PorcRegister;

impl porcupine_rs::Model for PorcRegister {
    type State = Option<i64>;
    type Op = (RegisterOp, Option<RegisterRet>);
    type Metadata = ();
    fn init() -> Option<i64> {
        None
    }
    fn step(state: &Option<i64>, (op, ret): &Self::Op) -> (bool, Option<i64>) {
        let mut spec = RegisterSpec(*state);
        let got = spec.invoke(op);
        (ret.as_ref().is_none_or(|r| *r == got), spec.0)
    }
}

/// One key of the generated KV histories as a porcupine-rs model, split by key as squall's
/// search splits them: its entry, and the revision of its last write, which a later write's
/// must exceed (squall's revision pre-check orders revisions across keys).
#[derive(Clone)]
struct PorcKey;

impl porcupine_rs::Model for PorcKey {
    type State = (Option<Entry>, u64);
    type Op = (KvOp, Option<KvRet>);
    type Metadata = ();
    fn partition_operations(
        history: &[porcupine_rs::Operation<Self>],
    ) -> Vec<Vec<porcupine_rs::Operation<Self>>> {
        let mut keys = BTreeMap::<String, Vec<_>>::new();
        for o in history {
            let key = o.op.0.key().unwrap_or_default().to_string();
            keys.entry(key).or_default().push(o.clone());
        }
        keys.into_values().collect()
    }
    fn init() -> Self::State {
        (None, 0)
    }
    fn step((entry, last): &Self::State, (op, ret): &Self::Op) -> (bool, Self::State) {
        match (op, ret) {
            (KvOp::Put { value, .. }, Some(KvRet::Written(rev))) => {
                let entry = Entry {
                    value: value.clone(),
                    rev: *rev,
                };
                (rev > last, (Some(entry), *rev))
            }
            (KvOp::Entry { .. }, ret) => (
                ret.as_ref()
                    .is_none_or(|r| *r == KvRet::Entry(entry.clone())),
                (entry.clone(), *last),
            ),
            (other, ret) => unreachable!("generated histories hold no {other} answered {ret:?}"),
        }
    }
}

/// Feeds `ops` to stateright in event order; `None` if it rejects the history's shape.
fn tester<S>(spec: S, ops: &[Operation<S::Op, S::Ret>]) -> Option<bool>
where
    S: SequentialSpec + Clone,
    S::Op: Clone + std::fmt::Debug,
    S::Ret: Clone + std::fmt::Debug,
{
    let mut events: Vec<(usize, usize, bool)> = Vec::new();
    for (i, o) in ops.iter().enumerate() {
        events.push((o.call, i, true));
        if let (Some(done), Some(_)) = (o.done, &o.ret) {
            events.push((done, i, false));
        }
    }
    events.sort_unstable();
    let mut t = LinearizabilityTester::new(spec);
    for (_, i, call) in events {
        let o = &ops[i];
        let fed = match call {
            true => t.on_invoke(o.client, o.op.clone()).map(|_| ()),
            false => t.on_return(o.client, o.ret.clone()?).map(|_| ()),
        };
        fed.ok()?;
    }
    Some(t.is_consistent())
}

/// The register as stateright's sequential spec.
#[derive(Clone)]
struct RegisterSpec(Option<i64>);

impl SequentialSpec for RegisterSpec {
    type Op = RegisterOp;
    type Ret = RegisterRet;
    fn invoke(&mut self, op: &RegisterOp) -> RegisterRet {
        match *op {
            RegisterOp::Read => RegisterRet::Read(self.0),
            RegisterOp::Write(v) => {
                self.0 = Some(v);
                RegisterRet::Written
            }
            RegisterOp::Cas(from, to) => {
                let ok = self.0 == Some(from);
                if ok {
                    self.0 = Some(to);
                }
                RegisterRet::Cas(ok)
            }
        }
    }
}

/// The bucket of the generated KV histories (puts and entries) as stateright's spec.
#[derive(Clone, Default)]
struct KvSpec {
    rev: u64,
    keys: BTreeMap<String, Entry>,
}

impl SequentialSpec for KvSpec {
    type Op = KvOp;
    type Ret = KvRet;
    fn invoke(&mut self, op: &KvOp) -> KvRet {
        match op {
            KvOp::Put { key, value } => {
                self.rev += 1;
                let entry = Entry {
                    value: value.clone(),
                    rev: self.rev,
                };
                self.keys.insert(key.clone(), entry);
                KvRet::Written(self.rev)
            }
            KvOp::Entry { key } => KvRet::Entry(self.keys.get(key).cloned()),
            other => unreachable!("generated histories hold no {other}"),
        }
    }
}

/// An operation of a generated history: its interval and the instant it takes effect.
struct Slot<O> {
    client: u32,
    op: O,
    call: u64,
    at: u64,
    done: u64,
}

/// `n` operations by `clients` clients, each client's one after another, each interval
/// long enough to overlap its neighbours'; `op` picks what each does.
fn slots<O>(
    seed: u64,
    n: usize,
    clients: u32,
    mut op: impl FnMut(&mut ChaCha8Rng) -> O,
) -> Vec<Slot<O>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut free = vec![0u64; clients as usize];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let c = rng.random_range(0..clients);
        let call = free[c as usize] + rng.random_range(0..50);
        let at = call + rng.random_range(1..100);
        let done = at + rng.random_range(1..100);
        free[c as usize] = done + 1;
        let op = op(&mut rng);
        out.push(Slot {
            client: c + 1,
            op,
            call,
            at,
            done,
        });
    }
    out
}

/// Runs `slots` against `apply` in the order they take effect and numbers the events:
/// the operations in invocation order.
fn history<O, R>(mut slots: Vec<Slot<O>>, mut apply: impl FnMut(&O) -> R) -> Vec<Operation<O, R>> {
    slots.sort_by_key(|s| s.at);
    let rets: Vec<R> = slots.iter().map(|s| apply(&s.op)).collect();
    // Event indices: calls before returns at the same instant, so intervals stay closed.
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * slots.len());
    for (i, s) in slots.iter().enumerate() {
        events.push((s.call, false, i));
        events.push((s.done, true, i));
    }
    events.sort_unstable();
    let mut index = vec![(0, 0); slots.len()];
    for (e, &(_, done, i)) in events.iter().enumerate() {
        if done {
            index[i].1 = e;
        } else {
            index[i].0 = e;
        }
    }
    let mut ops: Vec<Operation<O, R>> = slots
        .into_iter()
        .zip(rets)
        .zip(index)
        .map(|((s, ret), (call, done))| Operation {
            id: 0,
            client: s.client,
            op: s.op,
            ret: Some(ret),
            call,
            done: Some(done),
        })
        .collect();
    ops.sort_by_key(|o| o.call);
    for (id, o) in ops.iter_mut().enumerate() {
        o.id = id as u64 + 1;
    }
    ops
}

/// Puts and entries on `keys` keys.
pub fn kv_history(seed: u64, n: usize, clients: u32, keys: usize) -> Vec<Operation<KvOp, KvRet>> {
    let mut value = 0u64;
    let slots = slots(seed, n, clients, |rng| {
        let key = format!("k{}", rng.random_range(0..keys));
        if rng.random_bool(0.5) {
            value += 1;
            KvOp::put(&key, &format!("v{value}"))
        } else {
            KvOp::entry(&key)
        }
    });
    let mut bucket = KvSpec::default();
    history(slots, |op| bucket.invoke(op))
}

/// Reads, writes and compare-and-sets of five values on one register: few values and
/// sixteen clients always busy make many orders look alike to the search.
pub fn register_history(
    seed: u64,
    n: usize,
    clients: u32,
) -> Vec<Operation<RegisterOp, RegisterRet>> {
    let slots = slots(seed, n, clients, |rng| match rng.random_range(0..4) {
        0 => RegisterOp::Read,
        1 => RegisterOp::Cas(rng.random_range(0..5), rng.random_range(0..5)),
        _ => RegisterOp::Write(rng.random_range(0..5)),
    });
    let mut register = RegisterSpec(None);
    history(slots, |op| register.invoke(op))
}

/// One measurement: what it took and what it said.
struct Timed {
    took: Duration,
    verdict: String,
}

/// What `f` took in CPU time of this thread: the machine may be shared, and wall time
/// would count the time other processes had the core.
fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = cpu();
    let out = f();
    (cpu().saturating_sub(start), out)
}

/// What `f` took in CPU time of the whole process: porcupine-rs checks partitions on
/// threads of its own, and a run of `sweep::run` has a thread of its own.
fn time_all<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = clock(libc::CLOCK_PROCESS_CPUTIME_ID);
    let out = f();
    (
        clock(libc::CLOCK_PROCESS_CPUTIME_ID).saturating_sub(start),
        out,
    )
}

fn cpu() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn clock(id: libc::clockid_t) -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write to; these clocks exist on Linux.
    unsafe { libc::clock_gettime(id, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Stateright on one input in a child process (`squall bench --stateright --only NAME`), killed
/// at the budget. The child reports its own time, so process start-up is not counted.
fn stateright(name: &str) -> Timed {
    let over = Timed {
        took: BUDGET,
        verdict: "over budget".into(),
    };
    let Ok(exe) = std::env::current_exe() else {
        return over;
    };
    let Ok(mut child) = Command::new(exe)
        .args(["bench", "--stateright", "--only", name])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        return over;
    };
    let start = Instant::now();
    // The budget is CPU time; a busy machine gives the child less than its wall time.
    while start.elapsed() < BUDGET * 3 {
        if let Ok(Some(_)) = child.try_wait() {
            let out = std::io::read_to_string(child.stdout.take().unwrap()).unwrap_or_default();
            let mut words = out.split_whitespace();
            if let (Some(micros), Some(verdict)) = (words.next(), words.next()) {
                let took = Duration::from_micros(micros.parse().unwrap_or(u64::MAX / 2));
                if took <= BUDGET {
                    return Timed {
                        took,
                        verdict: verdict.into(),
                    };
                }
            }
            return over;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
    over
}

/// One checker on one input, printing `MICROS VERDICT`: the child's side of [`stateright`]
/// (`stateright: true`), and a way to profile squall's checker on one input.
pub fn one(name: &str, stateright: bool) -> Result<(), String> {
    let input = Input::load(name)?;
    let (took, verdict) = time(|| match stateright {
        true => input.stateright(),
        false => input.squall(),
    });
    println!("{} {verdict}", took.as_micros());
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// A row comparing squall with porcupine-rs and stateright on some inputs.
fn checker_row(what: &str, names: &[String], goal: &str) {
    let mut ours = Duration::ZERO;
    let mut worst = (Duration::ZERO, String::new());
    let mut verdicts = BTreeMap::<String, usize>::new();
    let mut ops = 0;
    let (mut porc, mut state) = (Other::default(), Other::default());
    for name in names {
        let input = match Input::load(name) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("{e}");
                continue;
            }
        };
        ops += input.len();
        let (took, verdict) = time(|| input.squall());
        *verdicts.entry(verdict.to_string()).or_default() += 1;
        ours += took;
        if took > worst.0 {
            worst = (took, name.clone());
        }
        let (p_took, p_verdict) = time_all(|| input.porcupine());
        porc.add(name, verdict, p_took.min(BUDGET), p_verdict);
        let s = stateright(name);
        state.add(name, verdict, s.took, &s.verdict);
    }
    let verdicts: Vec<String> = verdicts.iter().map(|(v, n)| format!("{n} {v}")).collect();
    println!(
        "| {what} | {} | {ops} | {} | {} (slowest {}) | {} | {} | {goal} |",
        names.len(),
        verdicts.join(", "),
        ms(ours),
        ms(worst.0),
        porc.cell(ours, names.len()),
        state.cell(ours, names.len()),
    );
}

/// Another checker's figures over a row's inputs.
#[derive(Default)]
struct Other {
    took: Duration,
    over: usize,
    /// Inputs both decided, differently from squall.
    disagree: Vec<String>,
}

impl Other {
    fn add(&mut self, name: &str, ours: &str, took: Duration, verdict: &str) {
        self.took += took;
        match verdict {
            "over budget" => self.over += 1,
            v if ours != "unknown" && v != ours => self.disagree.push(format!("{name}: {v}")),
            _ => {}
        }
    }

    fn cell(&self, ours: Duration, count: usize) -> String {
        let ratio = self.took.as_secs_f64() / ours.as_secs_f64().max(1e-9);
        let mut cell = match self.over {
            0 => format!("{} ({ratio:.0}x squall)", ms(self.took)),
            over => format!(
                "≥ {} ({over} of {count} over the {}s budget; ≥ {ratio:.0}x squall)",
                ms(self.took),
                BUDGET.as_secs()
            ),
        };
        if !self.disagree.is_empty() {
            cell += &format!("; verdicts differ on {}", self.disagree.join(", "));
        }
        cell
    }
}

/// A bare turmoil request/response loop shaped like `scenario`'s KV clients: each client
/// sends `ops_per_client` 64-byte requests to `server-1` with the scenario's think times
/// and latency, and waits for each echo. The operations it completed.
fn raw_loop(scenario: &Scenario, seed: u64) -> usize {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .tick_duration(crate::time::TICK)
        .min_message_latency(scenario.latency.0)
        .max_message_latency(scenario.latency.1)
        .simulation_duration(scenario.duration + Duration::from_secs(3600))
        .build();
    sim.host("server-1", || async {
        let listener = turmoil::net::TcpListener::bind(("0.0.0.0", crate::world::PORT)).await?;
        loop {
            let (mut s, _) = listener.accept().await?;
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while s.read_exact(&mut buf).await.is_ok() {
                    if s.write_all(&buf).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let done = Rc::new(std::cell::Cell::new(0usize));
    let (min, max) = (scenario.workload.think.0, scenario.workload.think.1);
    for c in 0..scenario.clients {
        let done = done.clone();
        let n = scenario.workload.ops_per_client;
        let mut rng = crate::time::stream(seed, &format!("raw/{c}"));
        sim.client(format!("client-{}", c + 1), async move {
            let mut s = turmoil::net::TcpStream::connect(("server-1", crate::world::PORT)).await?;
            let mut buf = [0u8; 64];
            for _ in 0..n {
                tokio::time::sleep(rng.random_range(min..=max)).await;
                s.write_all(&buf).await?;
                s.read_exact(&mut buf).await?;
                done.set(done.get() + 1);
            }
            Ok(())
        });
    }
    sim.run().expect("the raw loop runs");
    done.get()
}

/// Operations per wall second of `runs` seeds, each run by `f` (which says how many
/// operations it recorded).
/// Operations per second of CPU time of the process: a run has a thread of its own.
fn throughput(seeds: std::ops::Range<u64>, mut f: impl FnMut(u64) -> usize) -> f64 {
    let (took, ops) = time_all(|| seeds.map(&mut f).sum::<usize>());
    ops as f64 / took.as_secs_f64()
}

/// Simulated seconds per wall second over `seeds` runs of `scenario` on its backend, and
/// seeds per minute on one thread. Simulated time is taken as that of each history's last
/// event, so idle time after the last client stopped is not counted.
fn compression(scenario: &Scenario, seeds: std::ops::Range<u64>) -> (f64, f64) {
    let registry = Registry::shipped();
    let backend = registry
        .get(&scenario.backend)
        .expect("a loaded scenario's backend");
    let n = seeds.end - seeds.start;
    let mut simulated = 0.0;
    let (took, ()) = time_all(|| {
        for seed in seeds {
            let run = sweep::run(scenario, backend, seed);
            assert_eq!(run.verdict, crate::report::Outcome::Ok, "seed {seed} holds");
            simulated += last_time(&run.history);
        }
    });
    let wall = took.as_secs_f64();
    (simulated / wall, n as f64 * 60.0 / wall)
}

/// The time of a history text's last event, in seconds.
fn last_time(history: &str) -> f64 {
    history
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .next()?
                .strip_suffix('s')?
                .parse::<f64>()
                .ok()
        })
        .fold(0.0, f64::max)
}

/// A KV scenario with 50 hosts: 5 servers, 45 clients.
const FIFTY_HOSTS: &str = r#"
name = "bench-50-hosts"
protocol = "kv"
duration = "30s"
timeout = "500ms"
[topology]
servers = 5
clients = 45
[workload]
keys = 20
ops_per_client = 40
mix = { get = 3, entry = 2, put = 2, create = 1, update = 3, delete = 1, purge = 1 }
think = { min = "10ms", max = "60ms" }
[network]
latency = { min = "1ms", max = "10ms" }
[[fault]]
at = "300ms"
partition = [["server-3"], ["server-1", "server-2", "server-4", "server-5", "client-*"]]
heal_after = "1s"
"#;

/// Prints every table of BENCHMARKS.md. Run from the repository root.
pub fn run() -> Result<(), String> {
    let root = PathBuf::from(".");
    let registry = Registry::shipped();
    let load = |p: &str| registry.load(&root.join(p)).map_err(|e| e.to_string());
    println!("## Checkers\n");
    println!(
        "Times are CPU time. porcupine-rs runs in this process with a timeout of {}s (its CPU time is the whole process's: it checks partitions on threads); stateright runs each history in a child process with {}s of CPU time (killed after {}s of wall time).\n",
        BUDGET.as_secs(),
        BUDGET.as_secs(),
        (BUDGET * 3).as_secs()
    );
    println!("| histories | count | operations | squall verdicts | squall | porcupine-rs | stateright | goal |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut etcd: Vec<String> = std::fs::read_dir(root.join(CORPUS))
        .map_err(|e| format!("{CORPUS}: {e} (run from the repository root)"))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.ends_with(".log"))
        .map(|f| format!("etcd/{f}"))
        .collect();
    etcd.sort();
    checker_row("Jepsen etcd corpus", &etcd, "≤ 150 ms, none over 40 ms");
    checker_row(
        "KV 10k ops / 16 clients / 100 keys",
        &["kv-10k".into()],
        "≤ 5 ms",
    );
    checker_row(
        "KV 100k ops / 64 clients / 1k keys",
        &["kv-100k".into()],
        "≤ 100 ms",
    );
    checker_row(
        "one register, 2k ops / 16 clients",
        &["register-2k".into()],
        "≤ 1 s or unknown",
    );

    println!("\n## Harness\n");
    let no_faults = load("scenarios/kv/no-faults.toml")?;
    let seeds = 0..20;
    let reference = registry.get("kv/reference").expect("shipped").clone();
    let raw = throughput(seeds.clone(), |s| raw_loop(&no_faults, s));
    let ours = throughput(seeds.clone(), |s| sweep::run(&no_faults, &reference, s).ops);
    println!("| measure | figure | goal |");
    println!("|---|---|---|");
    println!(
        "| kv/reference on kv/no-faults.toml vs a bare turmoil request/response loop (20 seeds each) | {ours:.0} vs {raw:.0} ops/s: {:.0}% | ≥ 70% |",
        100.0 * ours / raw
    );
    let partition = load("scenarios/kv/partition.toml")?;
    let (x, per_minute) = compression(&partition, 0..20);
    println!("| time compression, kv/partition.toml (20 seeds, one thread) | {x:.0}x | ≥ 100x |");
    let fifty = Scenario::parse(Path::new("bench/50-hosts.toml"), FIFTY_HOSTS, &registry)
        .map_err(|e| e.to_string())?;
    let (x50, _) = compression(&fifty, 0..5);
    println!("| time compression, 50 hosts (5 servers, 45 clients, 5 seeds) | {x50:.0}x | ≥ 20x |");
    println!(
        "| seeds per minute, kv/partition.toml, one thread (`--jobs 2` doubles it on two idle cores) | {per_minute:.0} | ≥ 600 with `--jobs 2` |"
    );
    Ok(())
}

//! What squall needs to know of a protocol to run and check it, and of a backend to run it.

use async_trait::async_trait;
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use squall_models::{Answer, Model};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt::{self, Debug, Display};

use crate::check::Verdict;
use crate::history::History;
use crate::plan::Plan;
use crate::scenario::{self, Scenario, Section};
use crate::world::host::{Node, Software};

/// A protocol: its operations, how a workload draws them, and how a history of them is
/// checked.
pub trait Protocol: 'static {
    /// The protocol's name in scenario files, e.g. `kv`.
    const NAME: &'static str;
    type Op: Clone + Debug + Display + PartialEq + Serialize + DeserializeOwned + 'static;
    type Ret: Clone + Debug + Display + Answer + Serialize + DeserializeOwned + 'static;
    type Model: Model<Op = Self::Op, Ret = Self::Ret> + Default;
    /// An operation as a plan holds it, before the client fills in what only the run can
    /// tell (the revision a compare-and-swap expects, say).
    /// Its serde form is a `[[client.op]]` table of a scenario file.
    type Intent: Clone + Debug + Display + Serialize + DeserializeOwned;
    /// What a client remembers between its operations.
    type Memory: Default;
    /// What it reads from its own section of a scenario file, named after it (`[spark]`);
    /// `()` for a protocol that takes none.
    type Settings: Clone + Debug + Default + Send + Sync + 'static;

    /// Read the protocol's section of a scenario file. By default it takes none.
    fn settings(section: &Section) -> Result<Self::Settings, scenario::Error> {
        Err(section.refuse(format!(
            "a {} scenario takes no [{}] section",
            Self::NAME,
            Self::NAME
        )))
    }

    /// Draw intent `n` of client `client` (1-based) of the scenario's workload.
    fn draw(scenario: &Scenario, client: usize, n: usize, rng: &mut ChaCha8Rng) -> Self::Intent;
    /// An intent read from a scenario file, completed with what its serde form leaves out
    /// (the scenario's parameters). As it is by default.
    fn adopt(_scenario: &Scenario, intent: Self::Intent) -> Self::Intent {
        intent
    }
    /// The operation a client sends for `intent`, given what it remembers.
    fn op(memory: &Self::Memory, intent: &Self::Intent) -> Self::Op;
    /// Remember what an answer taught the client.
    fn learn(memory: &mut Self::Memory, op: &Self::Op, ret: &Self::Ret);
    /// Hold a history of `scenario` against the protocol's model and checkers.
    fn check(scenario: &Scenario, history: &History<Self::Op, Self::Ret>) -> Verdict;

    /// Every answer the model can give, as `(operation, answer)`, each error its own: what
    /// answer coverage counts (`squall coverage`).
    fn answers() -> Vec<(&'static str, &'static str)>;
    /// What one answered operation reached, named as [`Protocol::answers`] names them: one
    /// answer, or one a call of an operation of several calls; none for an answer that is no
    /// protocol's (a request that was never sent).
    fn answered(op: &Self::Op, ret: &Self::Ret) -> Vec<(&'static str, String)>;

    /// The operation names its workload takes in a scenario's `mix`.
    fn operations() -> Vec<&'static str>;

    /// Whether `ret` is an answer the backend gave: false for one saying the request was
    /// never sent (no connection), which `expect.answered` counts as no answer.
    fn sent(_ret: &Self::Ret) -> bool {
        true
    }

    /// What a backend must support for `scenario` to say anything about it. By default what
    /// its faults need: crashes need durability, clock jumps a backend that reads
    /// `node.clock`.
    fn needs(scenario: &Scenario) -> BTreeSet<Capability> {
        Capability::of_faults(scenario)
    }

    /// The plan of `scenario` for `seed`: its scripted steps, or every client's drawn ones.
    fn plan(scenario: &Scenario, seed: u64) -> Plan<Self::Intent> {
        Plan::draw(
            scenario,
            seed,
            |intent| Self::adopt(scenario, intent),
            |client, n, rng| Self::draw(scenario, client, n, rng),
        )
    }

    /// Intents a last client runs once the others are done and `duration` has passed (faults
    /// healed, as the scenario must arrange): a final read of the state, say. None by
    /// default.
    fn finale(_scenario: &Scenario) -> Vec<Self::Intent> {
        Vec::new()
    }
}

/// `P`'s settings of `scenario`, as `P` read them from its section ([`Protocol::settings`]);
/// the defaults for a scenario of another protocol.
pub fn settings<P: Protocol>(scenario: &Scenario) -> Cow<'_, P::Settings> {
    match scenario.settings.get::<P::Settings>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(P::Settings::default()),
    }
}

/// Something a scenario may need of a backend that not every backend has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Capability {
    /// Acknowledged state survives a crash and restart of its host.
    Durable,
    /// The time of day comes from `node.clock` (simulated), so expiry and clock faults are
    /// under the scenario's control.
    SimulatedTime,
    /// Hosts talk over squall's message transport ([`crate::world::frame`]), where
    /// message faults strike.
    Frames,
}

impl Capability {
    /// What the faults of `scenario` need.
    pub fn of_faults(scenario: &Scenario) -> BTreeSet<Capability> {
        use crate::faults::Fault;
        let mut needs = BTreeSet::new();
        for (_, fault) in scenario.faults.iter() {
            match fault {
                Fault::Crash { .. } => needs.insert(Capability::Durable),
                Fault::Clock { .. } => needs.insert(Capability::SimulatedTime),
                Fault::Messages { .. } => needs.insert(Capability::Frames),
                _ => false,
            };
        }
        // What a swarm may draw, so that every seed of it is applicable or none is.
        for kind in scenario.swarm.iter().flat_map(|s| &s.kinds) {
            match kind.as_str() {
                "crash" => needs.insert(Capability::Durable),
                "clock" => needs.insert(Capability::SimulatedTime),
                "messages" => needs.insert(Capability::Frames),
                _ => false,
            };
        }
        needs
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Capability::Durable => "crash durability",
            Capability::SimulatedTime => "simulated time",
            Capability::Frames => "squall's message transport",
        })
    }
}

/// A backend as the world runs it: server software and clients.
pub trait System<P: Protocol> {
    /// The software of a server host; called again each time the host restarts.
    fn serve(&self, node: Node) -> Software;
    /// A client for a client host.
    fn client(&self, node: Node) -> Box<dyn Caller<P>>;
    /// The capabilities it lacks, each with why; none by default.
    fn lacks(&self) -> Vec<(Capability, &'static str)> {
        Vec::new()
    }
}

/// Why `system` cannot run `scenario`: the first capability the scenario needs that it lacks.
pub fn not_applicable<P: Protocol>(scenario: &Scenario, system: &dyn System<P>) -> Option<String> {
    let needs = P::needs(scenario);
    system
        .lacks()
        .into_iter()
        .find(|(c, _)| needs.contains(c))
        .map(|(c, why)| format!("needs {c}: {why}"))
}

/// A client as the world drives it: one operation at a time.
#[async_trait(?Send)]
pub trait Caller<P: Protocol> {
    /// The answer, or why its outcome is unknown.
    async fn call(&mut self, op: &P::Op) -> Result<P::Ret, String>;
    /// `op` as the backend ran it, after an answer, if it knows better than the caller did
    /// when it sent it (the millisecond a real server applied it); `None`, the default: as
    /// sent.
    fn ran(&mut self, _op: &P::Op) -> Option<P::Op> {
        None
    }
    /// An earlier operation whose outcome was unknown, as sent and as it ran, once the
    /// backend has learned during a later call that it did run (the millisecond a real
    /// server applied it); asked after every call. `None`, the default: unknown as sent.
    fn settled(&mut self) -> Option<(P::Op, P::Op)> {
        None
    }
}

//! A plan: everything a run will do, drawn from the scenario and the seed before the world
//! starts. The run of a plan is deterministic, so a plan can be shrunk and replayed.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;

use crate::faults::{Schedule, Spec};
use crate::scenario::Scenario;
pub use crate::scenario::Step;
use crate::time::stream;

#[derive(Clone, Debug)]
pub struct Plan<I> {
    pub seed: u64,
    /// One list of steps a client, `clients[0]` for `client-1`.
    pub clients: Vec<Vec<Step<I>>>,
    /// The faults, as the scenario's `[[fault]]` entries.
    pub specs: Vec<Spec>,
    /// The schedule of `specs`.
    pub faults: Schedule,
}

impl<I: Serialize + DeserializeOwned> Plan<I> {
    /// The plan of `scenario` for `seed`: its `[[client]]` steps if it scripts them, each
    /// completed by `adopt`, else drawn by `draw(client, n, rng)` (client 1-based, `n` the
    /// client's operation). Each client draws from its own RNG stream, so adding a client
    /// changes no other client's operations.
    pub fn draw(
        scenario: &Scenario,
        seed: u64,
        adopt: impl Fn(I) -> I,
        mut draw: impl FnMut(usize, usize, &mut ChaCha8Rng) -> I,
    ) -> Plan<I> {
        let w = &scenario.workload;
        let clients = match &scenario.script {
            Some(script) => script
                .iter()
                .map(|steps| {
                    let steps = steps.iter().map(|s| Step {
                        think: s.think,
                        intent: adopt(
                            intent(&s.intent).expect("scenario validation checked intents"),
                        ),
                    });
                    steps.collect()
                })
                .collect(),
            None => (0..scenario.clients)
                .map(|c| {
                    let mut rng = stream(seed, &format!("client-{}/workload", c + 1));
                    (0..w.ops_per_client)
                        .map(|n| Step {
                            think: rng.random_range(w.think.0..=w.think.1),
                            intent: draw(c + 1, n, &mut rng),
                        })
                        .collect()
                })
                .collect(),
        };
        Plan::new(seed, clients, scenario.specs.clone())
    }
}

impl<I> Plan<I> {
    pub fn new(seed: u64, clients: Vec<Vec<Step<I>>>, specs: Vec<Spec>) -> Plan<I> {
        Plan {
            seed,
            clients,
            faults: Spec::schedule(&specs),
            specs,
        }
    }

    /// Operations of the busiest client.
    pub fn widest(&self) -> usize {
        self.clients.iter().map(Vec::len).max().unwrap_or(0)
    }
}

impl<I: Serialize> Plan<I> {
    /// The steps as `[[client]]` tables of a scenario file, each op `think` and the intent.
    pub fn script(&self) -> Vec<toml::Table> {
        self.clients
            .iter()
            .map(|steps| {
                let ops = steps
                    .iter()
                    .map(|s| {
                        let mut t = toml::Table::new();
                        let think = humantime::format_duration(s.think).to_string();
                        t.insert("think".into(), think.into());
                        match toml::Value::try_from(&s.intent) {
                            Ok(toml::Value::Table(intent)) => t.extend(intent),
                            other => unreachable!("an intent is a table: {other:?}"),
                        }
                        toml::Value::Table(t)
                    })
                    .collect();
                let mut client = toml::Table::new();
                client.insert("op".into(), toml::Value::Array(ops));
                client
            })
            .collect()
    }
}

/// The intent a `[[client.op]]` table (less its `think`) stands for. Serde passes over
/// fields a tagged enum does not know, so a field that does not come back when the intent
/// is written out again is named as unknown.
pub fn intent<I: Serialize + DeserializeOwned>(table: &toml::Table) -> Result<I, String> {
    let intent: I = toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| e.message().trim().to_string())?;
    if let Ok(toml::Value::Table(back)) = toml::Value::try_from(&intent) {
        if let Some(k) = table.keys().find(|k| !back.contains_key(*k)) {
            return Err(format!("unknown field {k:?}"));
        }
    }
    Ok(intent)
}

/// A name from `mix`, drawn with the weights given (in name order, so the draw is stable).
pub fn pick<'a, R: Rng>(mix: &'a BTreeMap<String, u32>, rng: &mut R) -> &'a str {
    let total: u32 = mix.values().sum();
    let mut n = rng.random_range(0..total);
    for (name, &w) in mix {
        if n < w {
            return name;
        }
        n -= w;
    }
    unreachable!("a validated mix has a positive total weight")
}

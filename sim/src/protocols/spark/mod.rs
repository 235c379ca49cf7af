//! The spark workload: clients run flares on the edge nodes.
//!
//! Each operation is an invocation on a random edge node (a `server-*` host) of 1 to
//! `[spark] calls` calls drawn from the mix: `get`, `set`, `delete`, `list`, and `pull` of
//! one or two keys from another node. Keys are `k0`, `k1`, ... (`[workload] keys`); every
//! written value is unique (`c<client>.<n>.<call>`), so a read names the write it saw. TTLs
//! are drawn from `0..=[spark] ttl` seconds. At low weight the workload asks for what the host
//! must refuse, to exercise every error code: invalid and reserved keys, values around the
//! size cap, TTLs out of range, an origin that is not another node, and flares without
//! `WritesSparkKV`.
//!
//! The checker fills in each invocation's node-local time window ([`crate::check::clock`])
//! and checks linearizability per node against [`squall_models::spark`].

pub mod backends;
pub mod settings;

// What a spark backend implements, at the protocol's door.
pub use backends::{HostRet, SparkBackend, SparkClient};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use squall_models::spark::{
    Call, CallRet, Invocation, SparkError, SparkModel as Model, SparkRet, Value,
};

use crate::check::{clock::Clocks, linearizable, Verdict};
use crate::history::History;
use crate::protocol::{settings, Protocol};
use crate::scenario::{self, server_names, Scenario, Section};
use settings::SparkSettings;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The spark edge TTL store protocol.
pub struct Spark;

/// How often a drawn thing is one the host must refuse.
const ODD: f64 = 0.04;

/// Keys the host must refuse: empty, bad characters, reserved prefixes, too long.
const BAD_KEYS: [&str; 5] = ["", "k 0", "k/0", "__flaron:k0", "__sys:k0"];

impl Protocol for Spark {
    const NAME: &'static str = "spark";
    type Op = Invocation;
    type Ret = SparkRet;
    type Model = Model;
    /// The invocation itself.
    type Intent = Invocation;
    /// Nothing: an invocation does not depend on earlier answers.
    type Memory = ();
    /// The `[spark]` section.
    type Settings = SparkSettings;

    fn settings(section: &Section) -> Result<SparkSettings, scenario::Error> {
        settings::read(section)
    }

    fn draw(scenario: &Scenario, client: usize, n: usize, rng: &mut ChaCha8Rng) -> Invocation {
        let spark = settings::<Spark>(scenario);
        let draw = Draw {
            scenario,
            spark,
            rng,
        };
        draw.invocation(client, n)
    }

    fn op(_: &(), intent: &Invocation) -> Invocation {
        intent.clone()
    }

    fn learn(_: &mut (), _: &Invocation, _: &SparkRet) {}

    /// Linearizability per node, each invocation given the window of its node's clock.
    fn check(scenario: &Scenario, history: &History<Invocation, SparkRet>) -> Verdict {
        let clocks = Clocks::new(&scenario.faults);
        let at = |i: usize| history.events[i].at();
        // An operation that never answered may take effect until the run ends.
        let end = history.events.len().checked_sub(1).map_or(0, at);
        let mut ops = history.operations();
        for o in &mut ops {
            let to = o.done.map_or(end, at);
            o.op.window = Some(clocks.window(&o.op.node, at(o.call), to));
        }
        // Every value set anywhere, for judging what pulls copy.
        let mut written: BTreeMap<String, Vec<(Value, i32)>> = BTreeMap::new();
        for o in &ops {
            for call in &o.op.calls {
                if let Call::Set { key, value, ttl } = call {
                    let sets = written.entry(key.clone()).or_default();
                    sets.push((value.clone(), *ttl));
                }
            }
        }
        let model = Model {
            params: settings::<Spark>(scenario).params.clone(),
            nodes: server_names(scenario.servers).into_iter().collect(),
            written: Some(written),
        };
        linearizable(&model, &ops, &Default::default())
    }

    fn answers() -> Vec<(&'static str, &'static str)> {
        let mut all = vec![
            ("get", "entry"),
            ("get", "entry_forever"),
            ("get", "none"),
            ("set", "ok"),
            ("delete", "deleted"),
            ("list", "keys"),
            ("list", "empty"),
            ("pull", "pulled"),
            ("pull", "pulled_none"),
        ];
        let set = [
            SparkError::InvalidTtl,
            SparkError::TooLarge,
            SparkError::WriteLimit,
            SparkError::QuotaExceeded,
            SparkError::NotAvailable,
            SparkError::Internal,
            SparkError::BadKey,
            SparkError::NoCapability,
        ];
        all.extend(set.map(|e| ("set", error_name(e))));
        let pull = [
            SparkError::WriteLimit,
            SparkError::NotAvailable,
            SparkError::Internal,
            SparkError::BadKey,
            SparkError::NoCapability,
        ];
        all.extend(pull.map(|e| ("pull", error_name(e))));
        all
    }

    /// One answer a call.
    fn answered(inv: &Invocation, ret: &SparkRet) -> Vec<(&'static str, String)> {
        let SparkRet::Done(results) = ret else {
            return Vec::new();
        };
        let answer = |call: &Call, ret: &CallRet| -> (&'static str, &'static str) {
            let name = match call {
                Call::Get { .. } => "get",
                Call::Set { .. } => "set",
                Call::Delete { .. } => "delete",
                Call::List => "list",
                Call::Pull { .. } => "pull",
            };
            let answer = match ret {
                CallRet::Got(Some(e)) if e.ttl == 0 => "entry_forever",
                CallRet::Got(Some(_)) => "entry",
                CallRet::Got(None) => "none",
                CallRet::Set(Ok(())) => "ok",
                CallRet::Deleted => "deleted",
                CallRet::Listed(keys) if keys.is_empty() => "empty",
                CallRet::Listed(_) => "keys",
                CallRet::Pulled(Ok(0)) => "pulled_none",
                CallRet::Pulled(Ok(_)) => "pulled",
                CallRet::Set(Err(e)) | CallRet::Pulled(Err(e)) => error_name(*e),
            };
            (name, answer)
        };
        (inv.calls.iter().zip(results))
            .map(|(call, ret)| answer(call, ret))
            .map(|(op, answer)| (op, answer.to_string()))
            .collect()
    }

    fn operations() -> Vec<&'static str> {
        vec!["get", "set", "delete", "list", "pull"]
    }

    fn sent(ret: &SparkRet) -> bool {
        *ret != SparkRet::NotConnected
    }
}

/// A spark error as answer coverage names it.
fn error_name(e: SparkError) -> &'static str {
    match e {
        SparkError::InvalidTtl => "invalid_ttl",
        SparkError::TooLarge => "too_large",
        SparkError::WriteLimit => "write_limit",
        SparkError::QuotaExceeded => "quota_exceeded",
        SparkError::NotAvailable => "not_available",
        SparkError::Internal => "internal",
        SparkError::ReadLimit => "read_limit",
        SparkError::BadKey => "bad_key",
        SparkError::NoCapability => "no_capability",
        SparkError::Unknown(_) => "unknown_code",
    }
}

struct Draw<'a> {
    scenario: &'a Scenario,
    spark: Cow<'a, SparkSettings>,
    rng: &'a mut ChaCha8Rng,
}

impl Draw<'_> {
    fn invocation(mut self, client: usize, n: usize) -> Invocation {
        let s = self.scenario;
        let node = format!("server-{}", self.rng.random_range(1..=s.servers));
        let writes = !self.rng.random_bool(ODD);
        let calls = (0..self.rng.random_range(1..=self.spark.calls))
            .map(|i| self.call(&node, format!("c{client}.{n}.{i}")))
            .collect();
        Invocation {
            node,
            writes,
            calls,
            window: None,
        }
    }

    fn call(&mut self, node: &str, text: String) -> Call {
        let s = self.scenario;
        match crate::plan::pick(&s.workload.mix, self.rng) {
            "get" => Call::Get { key: self.key() },
            "set" => Call::Set {
                key: self.key(),
                value: self.value(text),
                ttl: self.ttl(),
            },
            "delete" => Call::Delete { key: self.key() },
            "list" => Call::List,
            "pull" => Call::Pull {
                origin: self.origin(node),
                keys: (0..self.rng.random_range(1..=2))
                    .map(|_| self.key())
                    .collect(),
            },
            other => unreachable!("scenario validation admits no spark operation {other:?}"),
        }
    }

    fn key(&mut self) -> String {
        if self.rng.random_bool(ODD) {
            let i = self.rng.random_range(0..=BAD_KEYS.len());
            // The last one is a key of 257 characters.
            BAD_KEYS
                .get(i)
                .map_or_else(|| "k".repeat(257), |k| k.to_string())
        } else {
            format!("k{}", self.rng.random_range(0..self.scenario.workload.keys))
        }
    }

    /// Mostly short; now and then one byte either side of the size cap, or on it.
    fn value(&mut self, text: String) -> Value {
        if !self.rng.random_bool(ODD) {
            return Value { text, pad: 0 };
        }
        let len = self.spark.params.value_cap + self.rng.random_range(0..=2) - 1;
        let pad = len.saturating_sub(text.len());
        Value { text, pad }
    }

    fn ttl(&mut self) -> i32 {
        let cap = self.spark.params.ttl_cap;
        if self.rng.random_bool(ODD) {
            [-1, cap.saturating_add(1), i32::MIN][self.rng.random_range(0..3)]
        } else {
            self.rng.random_range(0..=self.spark.ttl)
        }
    }

    /// Another node; now and then this one, or no node at all.
    fn origin(&mut self, node: &str) -> String {
        let others: Vec<String> = server_names(self.scenario.servers)
            .into_iter()
            .filter(|n| n != node)
            .collect();
        if others.is_empty() || self.rng.random_bool(ODD) {
            ["", "server-0", node][self.rng.random_range(0..3)].to_string()
        } else {
            others[self.rng.random_range(0..others.len())].clone()
        }
    }
}

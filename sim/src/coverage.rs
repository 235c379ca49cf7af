//! Answer coverage: of every answer a protocol's model can give (each error its own,
//! [`Protocol::answers`]), how often a campaign's runs reached it. A clean verdict over
//! scenarios that never reach an answer says nothing about it; this says which.
//!
//! [`UNREACHABLE`] is the one list of answers the shipped scenarios leave unreached on
//! purpose, each with why.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::backend::Backend;
use crate::campaign::{self, Seeds, Sink};
use crate::protocol::Protocol;
use crate::protocols::{self, Visit};
use crate::report::{Run, Tally};
use crate::scenario::Scenario;
use crate::sweep::Sweep;

/// Answers no shipped scenario reaches on the reference backends, as `(protocol,
/// operation, answer, why)`.
pub const UNREACHABLE: &[(&str, &str, &str, &str)] = &[
    (
        "kv",
        "keys_prefix",
        "some",
        "kv's keys (k0, k1, ...) have no dot, and a prefix lists only at a token boundary (NATS subject semantics); the watch workload's dotted keys reach it",
    ),
    (
        "kv",
        "scan_prefix",
        "some",
        "as keys_prefix: the watch workload reaches it",
    ),
    (
        "spark",
        "set",
        "not_available",
        "the reference host never runs out of resources, and no fault makes it say so",
    ),
    (
        "spark",
        "set",
        "internal",
        "the reference host never fails inside, and no fault makes it say so",
    ),
    (
        "spark",
        "pull",
        "not_available",
        "the reference host never runs out of resources, and no fault makes it say so",
    ),
    (
        "suspension",
        "suspend",
        "already_suspended",
        "the Lua's defensive check: a suspension closes whenever its execution leaves the suspended phase, so an active execution never has an open one",
    ),
    (
        "suspension",
        "expire_suspension",
        "no_active_suspension_cleaned",
        "the Lua's defensive check: an execution never stays suspended once its suspension closes",
    ),
    (
        "suspension",
        "reclaim",
        "max_retries_exhausted",
        "needs 100 reclaims of one execution (the Lua's default max_reclaims), more than any scenario makes",
    ),
];

/// What a campaign reached.
#[derive(Debug, Default)]
pub struct Coverage {
    /// Per protocol, every `(operation, answer)` its model can give, and any other a
    /// backend gave, with how many times the runs reached it.
    pub reached: BTreeMap<String, BTreeMap<(String, String), u64>>,
    /// The answers the models can give, as `(protocol, operation, answer)`.
    pub listed: BTreeSet<(String, String, String)>,
    /// The runs' verdicts.
    pub tally: Tally,
}

impl Coverage {
    /// Start counting for `protocol`: every answer its model can give, at zero.
    pub fn expect(&mut self, protocol: &str) {
        struct Answers;
        impl Visit for Answers {
            type Out = Vec<(&'static str, &'static str)>;
            fn visit<P: Protocol>(self) -> Self::Out {
                P::answers()
            }
        }
        let answers = protocols::visit(protocol, Answers).unwrap_or_default();
        let reached = self.reached.entry(protocol.to_string()).or_default();
        for (op, answer) in answers {
            reached.entry((op.into(), answer.into())).or_default();
            let listed = (protocol.to_string(), op.to_string(), answer.to_string());
            self.listed.insert(listed);
        }
    }

    /// Run `seeds` of every scenario on its backend ([`campaign::run`]), counting what the
    /// runs reach; `progress` hears of each run.
    pub fn measure(
        &mut self,
        scenarios: &[(Scenario, Backend)],
        seeds: &Seeds,
        sweep: &Sweep,
        progress: &mut (dyn Sink + Send),
    ) {
        for (s, _) in scenarios {
            self.expect(&s.protocol);
        }
        let mut counting = Counting {
            reached: &mut self.reached,
            progress,
        };
        let tally = campaign::run(scenarios, seeds, sweep, false, &mut counting);
        self.tally.extend(tally);
    }

    /// The answers never reached that [`UNREACHABLE`] does not excuse, as `(protocol,
    /// operation, answer)`.
    pub fn missing(&self) -> Vec<(String, String, String)> {
        let mut missing = Vec::new();
        for (protocol, reached) in &self.reached {
            for ((op, answer), n) in reached {
                if *n == 0 && why_unreachable(protocol, op, answer).is_none() {
                    missing.push((protocol.clone(), op.clone(), answer.clone()));
                }
            }
        }
        missing
    }

    /// The answers reached that no model lists, as `(protocol, operation, answer)`: a
    /// backend's answer the protocol does not have, or a model's list to complete.
    pub fn unlisted(&self) -> Vec<(String, String, String)> {
        let mut unlisted = Vec::new();
        for (protocol, reached) in &self.reached {
            for (op, answer) in reached.keys() {
                let class = (protocol.clone(), op.clone(), answer.clone());
                if !self.listed.contains(&class) {
                    unlisted.push(class);
                }
            }
        }
        unlisted
    }

    /// The table: a line an answer, `PROTOCOL OPERATION ANSWER COUNT`, with why an answer
    /// listed as unreachable is, `NOT REACHED` on one that should have been, and `UNLISTED`
    /// on one reached that the model does not list.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for (protocol, reached) in &self.reached {
            for ((op, answer), n) in reached {
                let class = (protocol.clone(), op.clone(), answer.clone());
                let note = match (n, why_unreachable(protocol, op, answer)) {
                    _ if !self.listed.contains(&class) => "  UNLISTED".to_string(),
                    (0, Some(why)) => format!("  unreachable: {why}"),
                    (0, None) => "  NOT REACHED".to_string(),
                    _ => String::new(),
                };
                let _ = writeln!(out, "{protocol:<11} {op:<20} {answer:<32} {n:>8}{note}");
            }
        }
        out
    }
}

/// A campaign's sink that counts each run's answers on the way.
struct Counting<'a> {
    reached: &'a mut BTreeMap<String, BTreeMap<(String, String), u64>>,
    progress: &'a mut (dyn Sink + Send),
}

impl Sink for Counting<'_> {
    fn print(&mut self, text: &str) {
        self.progress.print(text);
    }

    fn tick(&mut self, failed: bool) {
        self.progress.tick(failed);
    }

    fn ran(&mut self, scenario: &Scenario, run: &Run) {
        let reached = self.reached.entry(scenario.protocol.clone()).or_default();
        for (class, n) in &run.answers {
            *reached.entry(class.clone()).or_default() += n;
        }
    }

    fn finish(&mut self) {
        self.progress.finish();
    }
}

fn why_unreachable(protocol: &str, op: &str, answer: &str) -> Option<&'static str> {
    UNREACHABLE
        .iter()
        .find(|u| (u.0, u.1, u.2) == (protocol, op, answer))
        .map(|u| u.3)
}

//! The KV watch workload: writers and watchers in one history.
//!
//! Keys are `a.0`, `b.0`, `c.0`, `a.1`, ...: key `i` is in group `a`, `b` or `c` by `i % 3`,
//! so the prefixes `a.`, `b.` and `c.` end at a token boundary, as NATS subject filters
//! need. A client draws the KV operations of the mix as the KV workload does (same names,
//! same memory), and watches:
//!
//! - `watch_all`, `watch_prefix` (one group), `watch_prefixes` (two groups): a state sync,
//!   then live updates;
//! - `watch_all_from`, `watch_prefix_from`, `watch_prefixes_from`: the same scopes, from the
//!   last revision the client's watches delivered, as a watcher that persists its cursor
//!   does; with no cursor (it never watched, or its cursor expired) a state sync instead.
//!
//! - `watch_from_past`, `watch_from_ahead`: a scope of any shape, from a cursor the client
//!   did not get from a watch: a revision between the first and the latest it has seen
//!   (before, at or past what retention keeps), or one to four past the latest (writes up
//!   to the cursor must not come, later ones must);
//! - `watch_no_prefixes`: a watch of an empty prefix list, which delivers nothing
//!   (slipstream returns at once; never an unfiltered watch).
//!
//! A watch listens for between half and three quarters of the scenario's `timeout`, so it
//! answers before the harness stops waiting for it.

pub mod check;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use squall_models::kv::{KvOp, KvRet, Rev};
use squall_models::watch::{End, Scope, Watch, WatchModel, WatchOp, WatchRet};
use std::collections::BTreeMap;
use std::fmt;

use crate::check::clock::Clocks;
use crate::check::Verdict;
use crate::history::{History, Operation};
use crate::protocol::Protocol;
use crate::protocols::kv::{self, Kv, KvIntent};
use crate::protocols::watch::check::Ages;
use crate::scenario::Scenario;

/// The mix names of watches; the KV ones are the KV workload's.
pub const WATCHES: &[&str] = &[
    "watch_all",
    "watch_all_from",
    "watch_prefix",
    "watch_prefix_from",
    "watch_prefixes",
    "watch_prefixes_from",
    "watch_from_past",
    "watch_from_ahead",
    "watch_no_prefixes",
];

/// The key groups, each a prefix.
const GROUPS: [&str; 3] = ["a.", "b.", "c."];

/// The KV watch protocol.
pub struct Watches;

/// A KV operation, or a watch that may resume from the client's cursor or from one it
/// aims at. In a scenario file a KV operation's table (`op = "put"`, ...) or a watch's
/// (`scope = "all"`, `resume`, `listen_ms`, optionally `aim`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Intent {
    Kv(KvIntent),
    Watch {
        scope: Scope,
        resume: bool,
        listen_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        aim: Option<Aim>,
    },
}

/// A cursor a watch resumes from that no watch gave the client, relative to the latest
/// revision it has seen (its memory holds no absolute revision at draw time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aim {
    /// This percentage of the latest revision seen, at least 1.
    Past(u64),
    /// This many revisions past the latest seen.
    Ahead(u64),
}

/// What a client remembers: the KV workload's revisions, and its watches' cursor.
#[derive(Default)]
pub struct Memory {
    revs: BTreeMap<String, Rev>,
    cursor: Option<Rev>,
}

impl Protocol for Watches {
    const NAME: &'static str = "watch";
    type Op = WatchOp;
    type Ret = WatchRet;
    type Model = WatchModel;
    type Intent = Intent;
    type Memory = Memory;
    /// None: no `[watch]` section.
    type Settings = ();

    fn draw(scenario: &Scenario, client: usize, n: usize, rng: &mut ChaCha8Rng) -> Intent {
        let w = &scenario.workload;
        let i = rng.random_range(0..w.keys);
        let key = format!("{}{}", GROUPS[i % 3], i / 3);
        let value = format!("c{client}.{n}");
        let name = crate::plan::pick(&w.mix, rng);
        // A group's prefix, a key's own subtree (empty), and one past every key.
        let prefixes = [
            GROUPS[i % 3].to_string(),
            format!("{}{}.", GROUPS[i % 3], i / 3),
            "z.".to_string(),
        ];
        if let Some(op) = kv::named(name, key, value, &prefixes, rng) {
            return Intent::Kv(op);
        }
        const SHAPES: [&str; 3] = ["watch_all", "watch_prefix", "watch_prefixes"];
        let (shape, aim) = match name {
            "watch_from_past" => (
                SHAPES[rng.random_range(0..3)],
                Some(Aim::Past(rng.random_range(0..=100))),
            ),
            "watch_from_ahead" => (
                SHAPES[rng.random_range(0..3)],
                Some(Aim::Ahead(rng.random_range(1..=4))),
            ),
            name => (name.trim_end_matches("_from"), None),
        };
        let group = rng.random_range(0..GROUPS.len());
        let scope = match shape {
            "watch_all" => Scope::All,
            "watch_prefix" => Scope::Prefix(GROUPS[group].into()),
            "watch_prefixes" => {
                let others = GROUPS.iter().enumerate().filter(|&(g, _)| g != group);
                Scope::Prefixes(others.map(|(_, p)| p.to_string()).collect())
            }
            "watch_no_prefixes" => Scope::Prefixes(Vec::new()),
            other => unreachable!("scenario validation admits no watch operation {other:?}"),
        };
        let timeout = scenario.timeout.as_millis() as u64;
        Intent::Watch {
            scope,
            resume: name.ends_with("_from"),
            listen_ms: rng.random_range(timeout / 2..=timeout * 3 / 4),
            aim,
        }
    }

    fn op(memory: &Memory, intent: &Intent) -> WatchOp {
        match intent {
            Intent::Kv(op) => WatchOp::Kv(Kv::op(&memory.revs, op)),
            Intent::Watch {
                scope,
                resume,
                listen_ms,
                aim,
            } => {
                let latest = memory.revs.values().copied().chain(memory.cursor).max();
                let from = match aim {
                    None => memory.cursor.filter(|_| *resume),
                    Some(Aim::Past(pct)) => latest.map(|l| (l * pct / 100).max(1)),
                    Some(Aim::Ahead(n)) => Some(latest.unwrap_or(0) + n),
                };
                WatchOp::Watch(Watch {
                    scope: scope.clone(),
                    from,
                    listen_ms: *listen_ms,
                })
            }
        }
    }

    fn learn(memory: &mut Memory, op: &WatchOp, ret: &WatchRet) {
        match (op, ret) {
            (WatchOp::Kv(op), WatchRet::Kv(ret)) => Kv::learn(&mut memory.revs, op, ret),
            (WatchOp::Watch(_), WatchRet::Watched(w)) if w.end == End::CursorExpired => {
                memory.cursor = None;
            }
            (WatchOp::Watch(_), WatchRet::Watched(w)) => {
                if let Some(last) = w.updates.last() {
                    memory.cursor = Some(last.rev());
                }
            }
            _ => {}
        }
    }

    /// The watches against the writes first (they name the operations at fault), then the
    /// KV operations alone as the KV protocol checks them.
    fn check(scenario: &Scenario, history: &History<WatchOp, WatchRet>) -> Verdict {
        let ops = history.operations();
        let ages = scenario
            .bucket
            .max_age
            .map(|age| ages(scenario, history, &ops, age));
        if let Err(v) = check::watches(&ops, scenario.bucket, ages.as_ref()) {
            return Verdict::Violation(v);
        }
        let kv: Vec<Operation<KvOp, KvRet>> = ops.iter().filter_map(kv_only).collect();
        kv::check_ops(&kv)
    }

    fn answers() -> Vec<(&'static str, &'static str)> {
        let watches = [
            ("watch", "listened"),
            // A watch that lost its connection resumes after what it delivered.
            ("watch", "cursor_expired"),
            ("watch_from", "listened"),
            ("watch_from", "cursor_expired"),
        ];
        [kv::ANSWERS, &watches].concat()
    }

    fn answered(op: &WatchOp, ret: &WatchRet) -> Vec<(&'static str, String)> {
        let answer = match (op, ret) {
            (WatchOp::Kv(op), WatchRet::Kv(ret)) => kv::answered(op, ret),
            (WatchOp::Watch(w), WatchRet::Watched(watched)) => {
                let name = if w.from.is_some() {
                    "watch_from"
                } else {
                    "watch"
                };
                let end = match &watched.end {
                    End::Listened => "listened",
                    End::CursorExpired => "cursor_expired",
                    End::Failed(_) => "failed",
                };
                Some((name, end.to_string()))
            }
            _ => Some(("mismatched", "answer".to_string())),
        };
        answer.into_iter().collect()
    }

    /// A watch history has writers too.
    fn operations() -> Vec<&'static str> {
        [kv::OPERATIONS, WATCHES].concat()
    }

    fn sent(ret: &WatchRet) -> bool {
        !matches!(ret, WatchRet::Kv(r) if !Kv::sent(r))
    }
}

/// The window of `server-1`'s clock (the host that stamps writes) over each operation; one
/// that never answered may take effect until the run ends.
fn ages(
    scenario: &Scenario,
    history: &History<WatchOp, WatchRet>,
    ops: &[Operation<WatchOp, WatchRet>],
    max_age: std::time::Duration,
) -> Ages {
    let clocks = Clocks::new(&scenario.faults);
    let at = |i: usize| history.events[i].at();
    let end = history.events.len().checked_sub(1).map_or(0, at);
    let windows = (ops.iter())
        .map(|o| {
            (
                o.id,
                clocks.window("server-1", at(o.call), o.done.map_or(end, at)),
            )
        })
        .collect();
    Ages {
        max_age: max_age.as_nanos() as i64,
        windows,
    }
}

/// A KV operation of a watch history, as the KV checks take it.
fn kv_only(o: &Operation<WatchOp, WatchRet>) -> Option<Operation<KvOp, KvRet>> {
    let WatchOp::Kv(op) = &o.op else {
        return None;
    };
    let ret = match &o.ret {
        Some(WatchRet::Kv(ret)) => Some(ret.clone()),
        _ => None,
    };
    Some(Operation {
        id: o.id,
        client: o.client,
        op: op.clone(),
        ret,
        call: o.call,
        done: o.done,
    })
}

impl fmt::Display for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Intent::Kv(op) => op.fmt(f),
            Intent::Watch {
                scope,
                resume,
                listen_ms,
                aim,
            } => {
                let from = match aim {
                    None if *resume => " from cursor".to_string(),
                    None => String::new(),
                    Some(Aim::Past(pct)) => format!(" from {pct}% of the latest seen"),
                    Some(Aim::Ahead(n)) => format!(" from {n} past the latest seen"),
                };
                write!(f, "watch {scope}{from} for {listen_ms}ms")
            }
        }
    }
}

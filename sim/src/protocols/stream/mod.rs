//! The Durable Streams workload.
//!
//! Streams are `s0`, `s1`, ...; odd ones are JSON (`application/json`), even ones bytes.
//! Every client is an idempotent producer `c<client>` on each stream and remembers, per
//! stream, its epoch and next sequence number, which it advances only on an answer: an
//! append whose outcome is unknown is retried by the next `produce` with the same
//! `(id, epoch, seq)` and the same data, as a real idempotent producer retries. Data is
//! derived from the tuple (`c1e0s3;`, or `["c1e0s3.0", "c1e0s3.1"]` on a JSON stream), so a
//! retry carries the same bytes and every message names the append that made it.
//!
//! Operation names in `mix`:
//! - `create`; `create_ttl` (every create of the scenario then carries `Stream-TTL: 2`);
//! - `append`: a plain append; `seq`: a plain append with a `Stream-Seq` drawn from 0..20,
//!   written in decimal so bytewise and numeric order disagree (`"10"` < `"9"`);
//! - `produce`: the producer's next append (or its retry); `bump`: a new epoch, from
//!   seq 0 (a producer restart, fencing the old epoch); `zombie`: an append with the
//!   previous epoch, as a fenced instance would send; `seal`: `produce` and close;
//!   `produce_odd`: what a broken producer sends: a sequence gap, a step back, an epoch
//!   jump, a new epoch that does not start at 0; `produce_garbled`: producer headers that
//!   break the rules (one or two of the three, an empty id, a number with a leading zero,
//!   a sign or a fraction, or past 2^53 - 1), which must earn a 400 and change nothing;
//! - `close`; `read` (catch-up from the start or from the last offset seen); `poll`
//!   (long-poll from the last offset seen); `head`; `delete`;
//! - `mismatch`: an append of the other content type (plain, or the producer's next);
//!   `empty`: an empty append;
//!   `append_close`: a plain append that closes the stream.
//!
//! A client that has not seen a stream exist creates it first. After `duration`, once the
//! other clients are done, a last client reads every stream from the start: what the
//! exactly-once check judges.

pub mod backends;
pub mod check;

// What a stream backend implements, at the protocol's door.
pub use backends::StreamBackend;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use squall_models::stream::{
    Anytime, Producer, StreamError, StreamModel as Model, StreamOp, StreamRet,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::check::{linearizable, Verdict};
use crate::history::History;
use crate::protocol::{Capability, Protocol};
use crate::scenario::Scenario;

/// The Durable Streams protocol.
pub struct Streams;

/// The TTL of every create in a scenario whose mix has `create_ttl`, in seconds.
const TTL: u64 = 2;

/// Every answer of the Durable Streams model, by operation (an append by its headers, a
/// read by whether it long-polls).
const ANSWERS: &[(&str, &str)] = &[
    ("create", "created"),
    ("create", "exists_same"),
    ("create", "409 already-exists"),
    ("append", "appended"),
    ("append", "appended_closing"),
    ("append", "404 not-found"),
    ("append", "409 content-type-mismatch"),
    ("append", "409 stream-closed"),
    ("append", "400 empty-body"),
    ("append", "400 empty-array"),
    ("append_seq", "appended"),
    ("append_seq", "seq_order"),
    ("append_seq", "409 stream-closed"),
    ("append_seq", "404 not-found"),
    ("append_producer", "appended"),
    ("append_producer", "appended_closing"),
    ("append_producer", "duplicate"),
    ("append_producer", "seq_gap"),
    ("append_producer", "403 producer-epoch-fenced"),
    ("append_producer", "409 stream-closed"),
    ("append_producer", "404 not-found"),
    ("append_producer", "400 bad-request"),
    ("append_producer", "409 content-type-mismatch"),
    ("append_garbled", "400 bad-request"),
    ("close", "closed"),
    ("close", "404 not-found"),
    ("read", "data"),
    ("read", "no_data"),
    ("read", "closed_at_end"),
    ("read", "404 not-found"),
    ("poll", "data"),
    ("poll", "no_data"),
    ("poll", "closed_at_end"),
    ("poll", "404 not-found"),
    ("head", "meta"),
    ("head", "meta_closed"),
    ("head", "404 not-found"),
    ("delete", "deleted"),
    ("delete", "404 not-found"),
];

/// The operation names of the mix.
pub const OPERATIONS: &[&str] = &[
    "create",
    "create_ttl",
    "append",
    "seq",
    "produce",
    "bump",
    "zombie",
    "seal",
    "produce_odd",
    "produce_garbled",
    "close",
    "append_close",
    "read",
    "poll",
    "head",
    "delete",
    "mismatch",
    "empty",
];

/// One drawn operation, before the client's memory fills in offsets and producer tuples.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    /// A name from [`OPERATIONS`], or `final` for the finale's reads.
    #[serde(deserialize_with = "kind")]
    pub kind: String,
    pub client: usize,
    pub stream: usize,
    /// Its number among the client's intents.
    pub n: usize,
    /// A random number for what the kind draws (a `Stream-Seq`, a read's start).
    pub pick: u32,
    pub ttl: Option<u64>,
}

/// A kind's name as [`OPERATIONS`] (or the finale) spells it.
fn kind<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    if OPERATIONS.iter().chain(&["final"]).any(|o| *o == name) {
        return Ok(name);
    }
    Err(serde::de::Error::custom(format!(
        "unknown stream operation {name:?}; known: {}",
        OPERATIONS.join(", ")
    )))
}

/// What a client remembers.
#[derive(Default)]
pub struct Memory {
    /// Streams it has seen exist.
    known: BTreeSet<String>,
    /// Per stream: its producer's epoch and next sequence number.
    producers: BTreeMap<String, (u64, u64)>,
    /// Per stream: the last next-offset seen.
    tails: BTreeMap<String, String>,
}

impl Protocol for Streams {
    const NAME: &'static str = "stream";
    type Op = StreamOp;
    type Ret = StreamRet;
    /// The history records no times; [`Protocol::check`] gives the model them.
    type Model = Anytime;
    type Intent = Intent;
    type Memory = Memory;
    /// None: no `[stream]` section.
    type Settings = ();

    fn draw(scenario: &Scenario, client: usize, n: usize, rng: &mut ChaCha8Rng) -> Intent {
        let w = &scenario.workload;
        let stream = rng.random_range(0..w.keys);
        let name = crate::plan::pick(&w.mix, rng);
        let kind = OPERATIONS
            .iter()
            .find(|o| **o == name)
            .expect("scenario validation admits only stream operations");
        Intent {
            kind: kind.to_string(),
            client,
            stream,
            n,
            pick: rng.random_range(0..1000),
            ttl: ttl(scenario),
        }
    }

    fn op(memory: &Memory, i: &Intent) -> StreamOp {
        let stream = format!("s{}", i.stream);
        let json = i.stream % 2 == 1;
        let create = || StreamOp::Create {
            stream: stream.clone(),
            json,
            ttl: i.ttl,
        };
        let append = |json: bool, data, seq, producer, close| StreamOp::Append {
            stream: stream.clone(),
            json,
            data,
            seq,
            producer,
            close,
        };
        let plain = |json| payload(json, &format!("c{}n{}", i.client, i.n), 1);
        let tail = memory.tails.get(&stream).cloned();
        let fresh = !memory.known.contains(&stream);
        // The client's producer id, and the `(epoch, seq)` of its next append here.
        let id = format!("c{}", i.client);
        let (epoch, seq) = memory.producers.get(&stream).copied().unwrap_or((0, 0));
        match i.kind.as_str() {
            "final" => StreamOp::Read {
                stream,
                from: None,
                wait: false,
            },
            "create" | "create_ttl" => create(),
            "delete" => StreamOp::Delete { stream },
            _ if fresh => create(),
            "append" => append(json, plain(json), None, None, false),
            "append_close" => append(json, plain(json), None, None, true),
            "seq" => append(
                json,
                plain(json),
                Some((i.pick % 20).to_string()),
                None,
                false,
            ),
            // The other content type; with an odd pick, from the producer's next tuple.
            "mismatch" => {
                let producer = (i.pick % 2 == 1).then_some(Producer { id, epoch, seq });
                append(!json, plain(!json), None, producer, false)
            }
            "empty" => append(json, Vec::new(), None, None, false),
            "produce" | "bump" | "zombie" | "seal" | "produce_odd" => {
                let (epoch, seq) = match i.kind.as_str() {
                    "bump" => (epoch + 1, 0),
                    "zombie" if epoch > 0 => (epoch - 1, 0),
                    // A gap, a step back, an epoch jump, a new epoch not from 0.
                    "produce_odd" => match i.pick % 4 {
                        0 => (epoch, seq + 1 + u64::from(i.pick % 3)),
                        1 => (epoch, seq.saturating_sub(2)),
                        2 => (epoch + 2, 0),
                        _ => (epoch + 1, 1 + u64::from(i.pick % 3)),
                    },
                    _ => (epoch, seq),
                };
                let data = payload(json, &format!("{id}e{epoch}s{seq}"), 1 + seq as usize % 2);
                let producer = Producer { id, epoch, seq };
                append(json, data, None, Some(producer), i.kind == "seal")
            }
            "produce_garbled" => StreamOp::Garbled {
                headers: garbled(&id, epoch, seq, i.pick),
                stream,
                json,
            },
            "close" => StreamOp::Close { stream },
            "read" => StreamOp::Read {
                stream,
                from: tail.filter(|_| i.pick % 2 == 1),
                wait: false,
            },
            "poll" => StreamOp::Read {
                stream,
                from: tail,
                wait: true,
            },
            "head" => StreamOp::Head { stream },
            other => unreachable!("no stream operation {other:?}"),
        }
    }

    fn learn(memory: &mut Memory, op: &StreamOp, ret: &StreamRet) {
        let stream = op.stream().to_string();
        match ret {
            StreamRet::Err(StreamError::NotFound) | StreamRet::Deleted => {
                memory.known.remove(&stream);
                memory.tails.remove(&stream);
            }
            _ => {
                memory.known.insert(stream.clone());
            }
        }
        if let Some(next) = next(ret) {
            memory.tails.insert(stream.clone(), next.to_string());
        }
        let StreamOp::Append {
            producer: Some(p), ..
        } = op
        else {
            return;
        };
        let mine = memory.producers.entry(stream).or_insert((0, 0));
        if p.epoch < mine.0 {
            return; // a zombie's answer teaches the live producer nothing
        }
        match ret {
            StreamRet::Appended {
                producer: Some((epoch, seq)),
                ..
            }
            | StreamRet::Duplicate { epoch, seq, .. } => *mine = (*epoch, seq + 1),
            // Fenced: claim the epoch after the current one (the spec's auto-claim).
            StreamRet::Err(StreamError::Fenced { current }) => *mine = (current + 1, 0),
            StreamRet::Err(StreamError::Gap { expected, .. }) => *mine = (p.epoch, *expected),
            _ => {}
        }
    }

    /// Exactly-once first (it names the appends at fault), then linearizability per stream.
    fn check(scenario: &Scenario, history: &History<StreamOp, StreamRet>) -> Verdict {
        let ops = history.operations();
        let finale = scenario.clients as u32 + 1;
        let never = match check::exactly_once(&ops, finale) {
            Ok(never) => never,
            Err(verdict) => return verdict,
        };
        let mut timed = check::timed(history, &ops);
        timed.retain(|o| !never.contains(&o.id));
        linearizable(&Model, &timed, &Default::default())
    }

    fn answers() -> Vec<(&'static str, &'static str)> {
        ANSWERS.to_vec()
    }

    fn answered(op: &StreamOp, ret: &StreamRet) -> Vec<(&'static str, String)> {
        let name = match op {
            StreamOp::Create { .. } => "create",
            StreamOp::Append {
                producer: Some(_), ..
            } => "append_producer",
            StreamOp::Append { seq: Some(_), .. } => "append_seq",
            StreamOp::Append { .. } => "append",
            StreamOp::Garbled { .. } => "append_garbled",
            StreamOp::Close { .. } => "close",
            StreamOp::Read { wait: true, .. } => "poll",
            StreamOp::Read { .. } => "read",
            StreamOp::Head { .. } => "head",
            StreamOp::Delete { .. } => "delete",
        };
        let answer = match ret {
            StreamRet::Created { new: true, .. } => "created".to_string(),
            StreamRet::Created { new: false, .. } => "exists_same".to_string(),
            StreamRet::Appended { closed: true, .. } => "appended_closing".to_string(),
            StreamRet::Appended { .. } => "appended".to_string(),
            StreamRet::Duplicate { .. } => "duplicate".to_string(),
            StreamRet::Closed { .. } => "closed".to_string(),
            StreamRet::Read { data, closed, .. } => match (data.is_empty(), closed) {
                (false, _) => "data",
                (true, true) => "closed_at_end",
                (true, false) => "no_data",
            }
            .to_string(),
            StreamRet::Meta { closed: true, .. } => "meta_closed".to_string(),
            StreamRet::Meta { .. } => "meta".to_string(),
            StreamRet::Deleted => "deleted".to_string(),
            StreamRet::Err(e) => match e {
                StreamError::Gap { .. } => "seq_gap".to_string(),
                StreamError::SeqOrder => "seq_order".to_string(),
                e => format!("{} {}", e.status(), e.kind()),
            },
        };
        vec![(name, answer)]
    }

    fn operations() -> Vec<&'static str> {
        OPERATIONS.to_vec()
    }

    /// The faults' needs, and simulated time when streams expire.
    fn needs(scenario: &Scenario) -> BTreeSet<Capability> {
        let mut needs = Capability::of_faults(scenario);
        if ttl(scenario).is_some() {
            needs.insert(Capability::SimulatedTime);
        }
        needs
    }

    fn finale(scenario: &Scenario) -> Vec<Intent> {
        (0..scenario.workload.keys)
            .map(|stream| Intent {
                kind: "final".into(),
                client: scenario.clients + 1,
                stream,
                n: 0,
                pick: 0,
                ttl: None,
            })
            .collect()
    }
}

/// The TTL creates carry in `scenario`.
fn ttl(scenario: &Scenario) -> Option<u64> {
    let weight = scenario
        .workload
        .mix
        .get("create_ttl")
        .copied()
        .unwrap_or(0);
    (weight > 0).then_some(TTL)
}

/// The next offset an answer shows.
fn next(ret: &StreamRet) -> Option<&str> {
    match ret {
        StreamRet::Created { next, .. }
        | StreamRet::Appended { next, .. }
        | StreamRet::Duplicate { next, .. }
        | StreamRet::Closed { next }
        | StreamRet::Read { next, .. }
        | StreamRet::Meta { next, .. }
        | StreamRet::Err(StreamError::StreamClosed { next }) => Some(next),
        _ => None,
    }
}

/// The producer headers of a garbled append by producer `id` whose next append would be
/// `(epoch, seq)`: row `pick % 10` of the rules it breaks.
fn garbled(id: &str, epoch: u64, seq: u64, pick: u32) -> Vec<(String, String)> {
    use backends::http::{PRODUCER_EPOCH, PRODUCER_ID, PRODUCER_SEQ};
    // The largest integer the spec admits (JavaScript's Number.MAX_SAFE_INTEGER).
    const SAFE: u64 = (1 << 53) - 1;
    let (e, s) = (epoch.to_string(), seq.to_string());
    let (id, e, s) = match pick % 10 {
        0 => (Some(id.to_string()), None, None),
        1 => (Some(id.to_string()), Some(e), None),
        2 => (None, Some(e), Some(s)),
        3 => (Some(id.to_string()), None, Some(s)),
        4 => (Some(String::new()), Some(e), Some(s)),
        5 => (Some(id.to_string()), Some(format!("0{e}")), Some(s)),
        6 => (Some(id.to_string()), Some(e), Some(format!("+{s}"))),
        7 => (Some(id.to_string()), Some((SAFE + 1).to_string()), Some(s)),
        8 => (
            Some(id.to_string()),
            Some(e),
            Some((SAFE + 1 + seq).to_string()),
        ),
        _ => (Some(id.to_string()), Some(e), Some(format!("{s}.0"))),
    };
    [(PRODUCER_ID, id), (PRODUCER_EPOCH, e), (PRODUCER_SEQ, s)]
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_string(), value?)))
        .collect()
}

/// The messages of an append named `id`: `id;` on a bytes stream (`;` ends a message, since
/// a read returns bytes streams as one string), `id.0`, `id.1`, ... on a JSON one.
pub fn payload(json: bool, id: &str, count: usize) -> Vec<String> {
    if json {
        (0..count).map(|k| format!("{id}.{k}")).collect()
    } else {
        vec![format!("{id};")]
    }
}

impl fmt::Display for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} s{}", self.kind, self.stream)
    }
}

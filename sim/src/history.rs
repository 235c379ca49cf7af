//! What a run records: client operations as invoke / return / unknown events, and faults.
//!
//! A history holds simulated time only, never a wall-clock value, so the same seed gives
//! the same bytes. Its text form (one line an event) is what snapshots store and what the
//! history hash is taken of.

use serde::{Deserialize, Serialize};
use squall_models::Answer;
use std::fmt::{self, Display, Write as _};
use std::time::Duration;

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Event<O, R> {
    /// A client called `op`; `id` names the operation across the history.
    Invoke {
        at: Nanos,
        client: u32,
        id: u64,
        op: O,
    },
    /// The operation answered, successfully or with a protocol error.
    Return {
        at: Nanos,
        client: u32,
        id: u64,
        ret: R,
    },
    /// The client cannot know whether the operation took effect (timeout, lost connection).
    Unknown {
        at: Nanos,
        client: u32,
        id: u64,
        why: String,
    },
    /// A fault the world applied.
    Fault { at: Nanos, what: String },
}

impl<O, R> Event<O, R> {
    /// When it happened.
    pub fn at(&self) -> Nanos {
        match self {
            Event::Invoke { at, .. }
            | Event::Return { at, .. }
            | Event::Unknown { at, .. }
            | Event::Fault { at, .. } => *at,
        }
    }
}

/// Simulated time since the start of the run, in nanoseconds.
pub type Nanos = u64;

/// A run's events in the order they happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct History<O, R> {
    pub events: Vec<Event<O, R>>,
}

/// An operation of a history: its invocation paired with its outcome. `call` and `done`
/// are event indices, which order events exactly even within one simulated instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<O, R> {
    pub id: u64,
    pub client: u32,
    pub op: O,
    /// `None`: the outcome is unknown (it may have taken effect at any point after `call`).
    pub ret: Option<R>,
    pub call: usize,
    /// `None` for an unknown outcome: the operation never completes.
    pub done: Option<usize>,
}

impl<O, R> Default for History<O, R> {
    fn default() -> Self {
        History { events: Vec::new() }
    }
}

impl<O: Clone, R: Clone> History<O, R> {
    /// The operations, in invocation order. An operation still open at the end of the
    /// history counts as unknown.
    pub fn operations(&self) -> Vec<Operation<O, R>> {
        let mut ops: Vec<Operation<O, R>> = Vec::new();
        let mut open = std::collections::BTreeMap::new();
        for (i, e) in self.events.iter().enumerate() {
            match e {
                Event::Invoke { client, id, op, .. } => {
                    open.insert(*id, ops.len());
                    ops.push(Operation {
                        id: *id,
                        client: *client,
                        op: op.clone(),
                        ret: None,
                        call: i,
                        done: None,
                    });
                }
                Event::Return { id, ret, .. } => {
                    if let Some(j) = open.remove(id) {
                        ops[j].ret = Some(ret.clone());
                        ops[j].done = Some(i);
                    }
                }
                Event::Unknown { id, .. } => {
                    open.remove(id);
                }
                Event::Fault { .. } => {}
            }
        }
        ops
    }
}

impl<O: Display, R: Display + Answer> History<O, R> {
    /// The stable text form: one line an event.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for e in &self.events {
            let _ = writeln!(out, "{e}");
        }
        out
    }

    /// A hash of the text form, as 16 hex digits.
    pub fn hash(&self) -> String {
        blake3::hash(self.text().as_bytes()).to_hex()[..16].to_string()
    }
}

impl<O: Serialize, R: Serialize> History<O, R> {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a history always serializes")
    }
}

/// Simulated time as seconds with millisecond digits, e.g. `12.345s`.
pub struct At(pub Nanos);

impl Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = Duration::from_nanos(self.0);
        write!(f, "{:>4}.{:06}s", d.as_secs(), d.subsec_micros())
    }
}

impl<O: Display, R: Display + Answer> Display for Event<O, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Invoke { at, client, id, op } => {
                write!(f, "{} c{client:<2} #{id:<4} invoke  {op}", At(*at))
            }
            Event::Return {
                at,
                client,
                id,
                ret,
            } => {
                let kind = if ret.is_ok() { "ok     " } else { "fail   " };
                write!(f, "{} c{client:<2} #{id:<4} {kind} {ret}", At(*at))
            }
            Event::Unknown {
                at,
                client,
                id,
                why,
            } => write!(f, "{} c{client:<2} #{id:<4} unknown {why}", At(*at)),
            Event::Fault { at, what } => write!(f, "{} ---      fault   {what}", At(*at)),
        }
    }
}

//! Flaron `spark`: a per-node edge key-value store with TTLs, as `flaron-sdk` 1.1.0 and its
//! sibling SDKs document the host ABI (`flaron/v1`).
//!
//! Every edge node keeps its own store; nothing is replicated. A flare runs as an
//! *invocation* on one node: a short list of spark calls sharing per-invocation limits. So an
//! operation is an [`Invocation`] on a node, its answer the list of the calls' results
//! ([`SparkRet`]), and the model is split by node ([`Model::part`]).
//!
//! # Calls
//!
//! - `get(key)`: the value with its *remaining* TTL in whole seconds (the 4-byte
//!   little-endian prefix of the host's payload), 0 for no expiry; `None` for a missing,
//!   expired or invalid key and once the read limit is reached.
//! - `set(key, value, ttl)`: 0 or an error code 1..9 ([`SparkError`]); `ttl = 0` never
//!   expires. `get` and `list` count against the read limit, `set` and `delete` against the
//!   write limit (a failed `set` does not count).
//! - `delete(key)`: answers nothing; without `WritesSparkKV`, with a bad key or past the write
//!   limit it silently does nothing.
//! - `list()`: the live keys, in any order; `[]` past the read limit.
//! - `pull(origin, keys)`: copy `keys` from node `origin` into this node's store; the count
//!   copied (at most the distinct keys named) or a negative code. One pull per invocation
//!   by default, then `-3`. Copied values are unknown to this node's model (they come from
//!   another part), so a pull that may have copied anything makes its keys
//!   [`Slot::Unknown`] until the next observation or write; an `Internal` (-6) answer (an
//!   origin that did not answer, say) may have copied some.
//!
//! Validation order is UNKNOWN: when several errors apply, any of them is accepted.
//!
//! # Time
//!
//! The model has no clock. Each invocation carries the [`Window`] of node-local times (the
//! node's own clock, skew and jumps included) it ran in: the checker derives it from the
//! invocation's call and return instants and the node's clock faults. An answer is accepted
//! if it is right at *some* instant of the window, each call on its own. A `set` with TTL `t`
//! run at an instant of `[from, to]` expires at some instant of `[from + t, to + t]`; the
//! state keeps these bounds and narrows them with what later reads show (a remaining TTL, an
//! absence), so that a run of reads cannot each pick a convenient instant.
//!
//! An invocation whose answer was never seen may have run at any time after its call: its
//! window has no end.
//!
//! Expired entries may be purged (eagerly or lazily, UNKNOWN) once the node's clock may have
//! reached their deadline ([`Window::peak`]); after that an absence is always accepted. A
//! lazy host shows an expired entry again after its clock is set back; that is accepted too,
//! as long as the entry is live at the instant read.
//!
//! # Parameters
//!
//! What the digest leaves UNKNOWN is a field of [`Params`], with a default.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::{Answer, Model};

/// Node-local time in nanoseconds since the run started.
pub type Instant = i64;
/// One second, in [`Instant`] units.
pub const SECOND: Instant = 1_000_000_000;

/// How a remaining TTL is rounded to whole seconds (UNKNOWN).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rounding {
    /// Up: 0.2s left reads 1; a live entry never reads 0.
    #[default]
    Ceil,
    /// Down: 1.8s left reads 1.
    Floor,
    /// To the nearest second, halves up.
    Nearest,
}

/// Whether an entry is still live at its deadline (UNKNOWN).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expiry {
    /// Expired once `now >= deadline`.
    #[default]
    AtDeadline,
    /// Expired once `now > deadline`.
    AfterDeadline,
}

/// The host's limits and the choices the digest leaves UNKNOWN.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Params {
    /// `max_kv_value_bytes`; the documented default, 64 KiB.
    pub value_cap: usize,
    /// Whether a value of exactly `value_cap` bytes is too large (`>=`); default `>`.
    pub cap_inclusive: bool,
    /// Reads (`get`, `list`) per invocation; assumed 16.
    pub reads: u32,
    /// Writes (`set`, `delete`) per invocation; assumed 8.
    pub writes: u32,
    /// Pulls per invocation; the documented `max_spark_pull_per_invocation`, 1.
    pub pulls: u32,
    /// Whether a pull that fails (other than by the pull limit) uses up the allowance;
    /// assumed yes.
    pub failed_pull_consumes: bool,
    /// The largest TTL a `set` takes, in seconds; assumed a day.
    pub ttl_cap: i32,
    /// The node's store quota in bytes (keys plus values of live entries); assumed 1 MiB.
    pub quota: u64,
    pub rounding: Rounding,
    pub expiry: Expiry,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            value_cap: 64 * 1024,
            cap_inclusive: false,
            reads: 16,
            writes: 8,
            pulls: 1,
            failed_pull_consumes: true,
            ttl_cap: 86_400,
            quota: 1 << 20,
            rounding: Rounding::Ceil,
            expiry: Expiry::AtDeadline,
        }
    }
}

impl Params {
    /// The fewest nanoseconds before its deadline at which an entry is live.
    fn live_min(&self) -> Instant {
        match self.expiry {
            Expiry::AtDeadline => 1,
            Expiry::AfterDeadline => 0,
        }
    }

    pub fn too_large(&self, len: usize) -> bool {
        len > self.value_cap || (self.cap_inclusive && len == self.value_cap)
    }

    pub fn bad_ttl(&self, ttl: i32) -> bool {
        ttl < 0 || ttl > self.ttl_cap
    }

    /// The whole seconds a remaining `left` nanoseconds (positive, or 0 at the deadline)
    /// reads as.
    pub fn round(&self, left: Instant) -> u32 {
        let secs = match self.rounding {
            Rounding::Ceil => (left + SECOND - 1).div_euclid(SECOND),
            Rounding::Floor => left.div_euclid(SECOND),
            Rounding::Nearest => (left + SECOND / 2).div_euclid(SECOND),
        };
        secs.clamp(0, u32::MAX as Instant) as u32
    }

    /// The remaining times (nanoseconds, inclusive) of a live entry that read as `r`.
    fn reads_as(&self, r: u32) -> (Instant, Instant) {
        let r = r as Instant * SECOND;
        let (lo, hi) = match self.rounding {
            Rounding::Ceil => (r - SECOND + 1, r),
            Rounding::Floor => (r, r + SECOND - 1),
            Rounding::Nearest => (r - SECOND / 2, r + SECOND / 2 - 1),
        };
        (lo.max(self.live_min()), hi)
    }
}

/// Whether `key` is one the host stores: `^[a-zA-Z0-9:._-]{1,256}$`, not under a reserved
/// prefix.
pub fn valid_key(key: &str) -> bool {
    (1..=256).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":._-".contains(&b))
        && !key.starts_with("__flaron:")
        && !key.starts_with("__sys:")
}

/// The node-local times an invocation may have run at: every call ran at an instant of
/// `[from, to]`, and the node's clock had read at most `peak` by the time it ended (more
/// than `to` after the clock was set back).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window {
    pub from: Instant,
    pub to: Instant,
    pub peak: Instant,
}

impl Window {
    /// No knowledge of the time.
    pub const ANY: Window = Window {
        from: 0,
        to: Instant::MAX / 4,
        peak: Instant::MAX / 4,
    };
}

/// A value: `text` followed by `pad` bytes of `#`, so a history can show a 64 KiB value
/// in a few characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Value {
    pub text: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pad: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Value {
    pub fn len(&self) -> usize {
        self.text.len() + self.pad
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut b = self.text.as_bytes().to_vec();
        b.resize(self.len(), b'#');
        b
    }

    /// The value whose [`Value::bytes`] are `bytes`: the text up to a tail of `#`.
    pub fn from_bytes(bytes: &[u8]) -> Value {
        let text = bytes.iter().position(|&b| b == b'#').unwrap_or(bytes.len());
        let pad = bytes.len() - text;
        if bytes[text..].iter().all(|&b| b == b'#') {
            Value {
                text: String::from_utf8_lossy(&bytes[..text]).into_owned(),
                pad,
            }
        } else {
            Value {
                text: String::from_utf8_lossy(bytes).into_owned(),
                pad: 0,
            }
        }
    }
}

/// One spark call of an invocation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "call")]
pub enum Call {
    Get { key: String },
    Set { key: String, value: Value, ttl: i32 },
    Delete { key: String },
    List,
    Pull { origin: String, keys: Vec<String> },
}

/// A flare run on one edge node: its calls, in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Invocation {
    pub node: String,
    /// Whether the flare has the `WritesSparkKV` capability.
    pub writes: bool,
    pub calls: Vec<Call>,
    /// When it ran, node-locally; `None` (as a history records it) is any time. The checker
    /// fills it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
}

/// A spark error code, as `SparkError::from_code` reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SparkError {
    InvalidTtl,
    TooLarge,
    WriteLimit,
    QuotaExceeded,
    NotAvailable,
    Internal,
    ReadLimit,
    BadKey,
    NoCapability,
    Unknown(i32),
}

impl SparkError {
    pub fn code(self) -> i32 {
        match self {
            SparkError::InvalidTtl => 1,
            SparkError::TooLarge => 2,
            SparkError::WriteLimit => 3,
            SparkError::QuotaExceeded => 4,
            SparkError::NotAvailable => 5,
            SparkError::Internal => 6,
            SparkError::ReadLimit => 7,
            SparkError::BadKey => 8,
            SparkError::NoCapability => 9,
            SparkError::Unknown(n) => n,
        }
    }

    pub fn from_code(code: i32) -> SparkError {
        match code {
            1 => SparkError::InvalidTtl,
            2 => SparkError::TooLarge,
            3 => SparkError::WriteLimit,
            4 => SparkError::QuotaExceeded,
            5 => SparkError::NotAvailable,
            6 => SparkError::Internal,
            7 => SparkError::ReadLimit,
            8 => SparkError::BadKey,
            9 => SparkError::NoCapability,
            n => SparkError::Unknown(n),
        }
    }

    /// How `pull` reads a negative answer: `SparkPullError` knows 3, 5, 6, 8 and 9 only.
    pub fn from_pull(n: i32) -> SparkError {
        match SparkError::from_code(-n) {
            e @ (SparkError::WriteLimit
            | SparkError::NotAvailable
            | SparkError::Internal
            | SparkError::BadKey
            | SparkError::NoCapability) => e,
            _ => SparkError::Unknown(n),
        }
    }
}

/// What `get` returns: `SparkEntry`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    pub value: Value,
    /// Remaining TTL in whole seconds; 0 for no expiry.
    pub ttl: u32,
}

impl Entry {
    /// The SDK's reading of a payload: `None` when shorter than the prefix.
    pub fn from_payload(p: &[u8]) -> Option<Entry> {
        let (ttl, value) = p.split_first_chunk::<4>()?;
        Some(Entry {
            ttl: u32::from_le_bytes(*ttl),
            value: Value::from_bytes(value),
        })
    }
}

/// The result of one call.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "ret", content = "of")]
pub enum CallRet {
    Got(Option<Entry>),
    Set(Result<(), SparkError>),
    Deleted,
    Listed(Vec<String>),
    Pulled(Result<u32, SparkError>),
}

/// What an invocation answered.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SparkRet {
    /// The results of its calls, in order.
    Done(Vec<CallRet>),
    /// It never reached the node (the connection was refused): no effect.
    NotConnected,
}

/// What the model knows of a stored key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    Known(Stored),
    /// Anything: absent, or any value with any deadline (a pull may have copied it).
    Unknown,
}

/// A key's value and what is known of its deadline.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Stored {
    pub value: Value,
    /// The deadline lies in `[lo, hi]`; `None`: no expiry.
    pub deadline: Option<(Instant, Instant)>,
    /// The node's clock may have passed the deadline, so the entry may have been purged.
    pub purgeable: bool,
}

/// One node's store; absent keys are not in it.
pub type Store = BTreeMap<String, Slot>;

/// The spark model: every node's store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SparkModel {
    pub params: Params,
    /// The edge nodes, to tell a valid pull origin; empty: any well-formed name may be one.
    pub nodes: BTreeSet<String>,
    /// Every value set for each key anywhere, with the TTL it was set with, if known (a
    /// checker holding the whole history knows). An entry the model knows nothing of (one a
    /// pull copied) must then be one of its key's, and expire if and only if it was set to.
    pub written: Option<BTreeMap<String, Vec<(Value, i32)>>>,
}

/// Per-invocation counters, as ranges: a call whose answer is unknown may or may not count.
#[derive(Clone, Copy, Default)]
struct Used {
    reads: u32,
    writes: (u32, u32),
    pulls: (u32, u32),
}

fn bump((lo, hi): (u32, u32), certain: bool) -> (u32, u32) {
    (if certain { lo + 1 } else { lo }, hi + 1)
}

impl Model for SparkModel {
    type State = BTreeMap<String, Store>;
    type Op = Invocation;
    type Ret = SparkRet;

    fn init(&self) -> Self::State {
        BTreeMap::new()
    }

    fn step(
        &self,
        state: &Self::State,
        op: &Invocation,
        ret: Option<&SparkRet>,
    ) -> Option<Self::State> {
        let rets = match ret {
            Some(SparkRet::NotConnected) => return Some(state.clone()),
            Some(SparkRet::Done(r)) if r.len() != op.calls.len() => return None,
            Some(SparkRet::Done(r)) => Some(r),
            None => None,
        };
        let mut w = op.window.unwrap_or(Window::ANY);
        let mut store = state.get(&op.node).cloned().unwrap_or_default();
        if rets.is_some() {
            let live_min = self.params.live_min();
            for slot in store.values_mut() {
                if let Slot::Known(Stored {
                    deadline: Some((lo, _)),
                    purgeable,
                    ..
                }) = slot
                {
                    *purgeable |= *lo - w.peak < live_min;
                }
            }
        } else {
            // Never answered: it may have run at any time after its call. Nothing it read
            // is judged, so what its clock had read before does not matter.
            w.to = Window::ANY.to;
        }
        let mut used = Used::default();
        for (i, call) in op.calls.iter().enumerate() {
            let ret = rets.map(|r| &r[i]);
            self.call(&mut store, &mut used, op, &w, call, ret)?;
        }
        let mut next = state.clone();
        if store.is_empty() {
            next.remove(&op.node);
        } else {
            next.insert(op.node.clone(), store);
        }
        Some(next)
    }

    fn part(&self, op: &Invocation) -> Option<String> {
        Some(op.node.clone())
    }
}

impl SparkModel {
    /// Whether `e`, read of `key` where the model knows nothing, can be a value set for the
    /// key somewhere, with the expiry it was set with (pulls copy both): `None` if not, else
    /// the TTL it was set with, if the model knows the values set.
    fn provenance(&self, key: &str, e: &Entry) -> Option<Option<i32>> {
        let Some(written) = &self.written else {
            return Some(None);
        };
        let (_, ttl) = written.get(key)?.iter().find(|(v, _)| *v == e.value)?;
        let (lo, hi) = self.params.reads_as(0);
        // Unless rounding can make a live entry read 0, 0 means no expiry.
        let forever = e.ttl == 0 && lo > hi;
        match (*ttl, e.ttl) {
            (0, 0) => Some(Some(0)),
            (0, _) => None,
            _ if forever => None,
            (ttl, _) => Some(Some(ttl)),
        }
    }

    /// Judge one call's answer (`None`: unknown), updating the store and the counters.
    fn call(
        &self,
        store: &mut Store,
        used: &mut Used,
        op: &Invocation,
        w: &Window,
        call: &Call,
        ret: Option<&CallRet>,
    ) -> Option<()> {
        let p = &self.params;
        match call {
            Call::Get { key } => {
                let over = used.reads >= p.reads;
                used.reads += 1;
                match ret {
                    None => Some(()),
                    Some(CallRet::Got(None)) if over || !valid_key(key) => Some(()),
                    Some(CallRet::Got(_)) if over || !valid_key(key) => None,
                    Some(CallRet::Got(got)) => self.get(store, key, w, got.as_ref()),
                    Some(_) => None,
                }
            }
            Call::List => {
                let over = used.reads >= p.reads;
                used.reads += 1;
                match ret {
                    None => Some(()),
                    Some(CallRet::Listed(keys)) if over => keys.is_empty().then_some(()),
                    Some(CallRet::Listed(keys)) => self.list(store, w, keys),
                    Some(_) => None,
                }
            }
            Call::Set { key, value, ttl } => {
                let ok = match ret {
                    None => None,
                    Some(CallRet::Set(r)) => Some(r),
                    Some(_) => return None,
                };
                self.set(store, used, op, w, key, value, *ttl, ok)
            }
            Call::Delete { key } => {
                if !matches!(ret, None | Some(CallRet::Deleted)) {
                    return None;
                }
                if op.writes && valid_key(key) && used.writes.0 < p.writes {
                    let certain = used.writes.1 < p.writes;
                    used.writes = bump(used.writes, certain);
                    if certain {
                        store.remove(key);
                    } else {
                        store.insert(key.clone(), Slot::Unknown);
                    }
                }
                Some(())
            }
            Call::Pull { origin, keys } => {
                let got = match ret {
                    None => None,
                    Some(CallRet::Pulled(r)) => Some(r),
                    Some(_) => return None,
                };
                self.pull(store, used, op, origin, keys, got)
            }
        }
    }

    fn get(&self, store: &mut Store, key: &str, w: &Window, got: Option<&Entry>) -> Option<()> {
        let p = &self.params;
        match (store.get_mut(key), got) {
            (None, None) | (Some(Slot::Unknown), None) => Some(()),
            (None, Some(_)) => None,
            (Some(slot @ Slot::Unknown), Some(e)) => {
                let set = self.provenance(key, e)?;
                let (dlo, dhi) = p.reads_as(e.ttl);
                let pinned = match (e.ttl, set) {
                    // Set to expire: a 0 is its last second.
                    (0, Some(ttl)) if ttl > 0 => Some(Some((w.from + dlo, w.to + dhi))),
                    // Unless rounding can make a live entry read 0, 0 means no expiry.
                    (0, _) if dlo <= dhi && set.is_none() => None,
                    (0, _) => Some(None),
                    _ => Some(Some((w.from + dlo, w.to + dhi))),
                };
                if let Some(deadline) = pinned {
                    *slot = Slot::Known(Stored {
                        value: e.value.clone(),
                        deadline,
                        purgeable: false,
                    });
                }
                Some(())
            }
            (Some(Slot::Known(s)), None) => match s.deadline {
                _ if s.purgeable => Some(()),
                None => None,
                Some(d) => {
                    s.deadline = Some(self.dead(d, w)?);
                    Some(())
                }
            },
            (Some(Slot::Known(s)), Some(e)) => {
                if s.value != e.value {
                    return None;
                }
                match s.deadline {
                    None => (e.ttl == 0).then_some(()),
                    Some((lo, hi)) => {
                        let (dlo, dhi) = p.reads_as(e.ttl);
                        s.deadline = Some(narrow(lo.max(w.from + dlo), hi.min(w.to + dhi))?);
                        Some(())
                    }
                }
            }
        }
    }

    /// The deadline bounds if the entry can be expired at some instant of `w`.
    fn dead(&self, (lo, hi): (Instant, Instant), w: &Window) -> Option<(Instant, Instant)> {
        narrow(lo, hi.min(w.to + self.params.live_min() - 1))
    }

    fn list(&self, store: &mut Store, w: &Window, listed: &[String]) -> Option<()> {
        let keys: BTreeSet<&String> = listed.iter().collect();
        if keys.len() != listed.len() || keys.iter().any(|k| !store.contains_key(*k)) {
            return None;
        }
        let live_min = self.params.live_min();
        for (key, slot) in store.iter_mut() {
            let Slot::Known(s) = slot else { continue };
            let shown = keys.contains(key);
            s.deadline = match (s.deadline, shown) {
                (None, true) => None,
                (None, false) => return None,
                (Some((lo, hi)), true) => Some(narrow(lo.max(w.from + live_min), hi)?),
                (Some(_), false) if s.purgeable => s.deadline,
                (Some(d), false) => Some(self.dead(d, w)?),
            };
        }
        Some(())
    }

    #[allow(clippy::too_many_arguments)]
    fn set(
        &self,
        store: &mut Store,
        used: &mut Used,
        op: &Invocation,
        w: &Window,
        key: &str,
        value: &Value,
        ttl: i32,
        ret: Option<&Result<(), SparkError>>,
    ) -> Option<()> {
        let p = &self.params;
        let mut certain = BTreeSet::new();
        let checks = [
            (!valid_key(key), SparkError::BadKey),
            (p.bad_ttl(ttl), SparkError::InvalidTtl),
            (p.too_large(value.len()), SparkError::TooLarge),
            (!op.writes, SparkError::NoCapability),
            (used.writes.0 >= p.writes, SparkError::WriteLimit),
        ];
        certain.extend(checks.iter().filter(|(c, _)| *c).map(|(_, e)| *e));
        let size = (key.len() + value.len()) as u64;
        let (least, most) = self.usage(store, key, w);
        if least + size > p.quota {
            certain.insert(SparkError::QuotaExceeded);
        }
        let mut possible = certain.clone();
        if used.writes.1 >= p.writes {
            possible.insert(SparkError::WriteLimit);
        }
        if most + size > p.quota {
            possible.insert(SparkError::QuotaExceeded);
        }
        let stored = Slot::Known(Stored {
            value: value.clone(),
            deadline: (ttl != 0).then(|| {
                (
                    w.from + ttl as Instant * SECOND,
                    w.to + ttl as Instant * SECOND,
                )
            }),
            purgeable: false,
        });
        match ret {
            Some(Err(e)) => possible.contains(e).then_some(()),
            Some(Ok(())) if !certain.is_empty() => None,
            Some(Ok(())) => {
                used.writes = (
                    used.writes.0 + 1,
                    used.writes.1.min(p.writes.saturating_sub(1)) + 1,
                );
                store.insert(key.to_string(), stored);
                Some(())
            }
            None if !certain.is_empty() => Some(()),
            None => {
                let sure = possible.is_empty();
                used.writes = bump(used.writes, sure);
                store.insert(key.to_string(), if sure { stored } else { Slot::Unknown });
                Some(())
            }
        }
    }

    /// The least and the most bytes the store's live entries can hold when `key` is
    /// written: the least leaves out `key` and whatever may be expired or purged, the most
    /// counts everything that may be there.
    fn usage(&self, store: &Store, key: &str, w: &Window) -> (u64, u64) {
        let p = &self.params;
        let (mut least, mut most) = (0, 0);
        for (k, slot) in store {
            let (size, sure) = match slot {
                Slot::Unknown => (k.len() + p.value_cap, false),
                Slot::Known(s) => {
                    let alive = s.deadline.is_none_or(|(lo, _)| lo - w.to >= p.live_min());
                    (k.len() + s.value.len(), alive && !s.purgeable && k != key)
                }
            };
            most += size as u64;
            if sure {
                least += size as u64;
            }
        }
        (least, most)
    }

    fn pull(
        &self,
        store: &mut Store,
        used: &mut Used,
        op: &Invocation,
        origin: &str,
        keys: &[String],
        ret: Option<&Result<u32, SparkError>>,
    ) -> Option<()> {
        let p = &self.params;
        let known = self.nodes.contains(origin);
        let bad_origin =
            !valid_key(origin) || origin == op.node || (!self.nodes.is_empty() && !known);
        let mut certain = BTreeSet::new();
        let checks = [
            (!op.writes, SparkError::NoCapability),
            (
                bad_origin || !keys.iter().all(|k| valid_key(k)),
                SparkError::BadKey,
            ),
            (used.pulls.0 >= p.pulls, SparkError::WriteLimit),
        ];
        certain.extend(checks.iter().filter(|(c, _)| *c).map(|(_, e)| *e));
        let mut possible = certain.clone();
        if used.pulls.1 >= p.pulls {
            possible.insert(SparkError::WriteLimit);
        }
        if self.nodes.is_empty() {
            possible.insert(SparkError::BadKey);
        }
        if certain.is_empty() {
            possible.insert(SparkError::Internal);
        }
        let distinct: BTreeSet<&String> = keys.iter().collect();
        let mut havoc = || {
            for k in &distinct {
                store.insert(k.to_string(), Slot::Unknown);
            }
        };
        match ret {
            Some(Ok(n)) => {
                if !certain.is_empty() || *n as usize > distinct.len() {
                    return None;
                }
                if *n > 0 {
                    havoc();
                }
                used.pulls = (
                    used.pulls.0 + 1,
                    used.pulls.1.min(p.pulls.saturating_sub(1)) + 1,
                );
            }
            Some(Err(e)) => {
                if !possible.contains(e) {
                    return None;
                }
                if *e == SparkError::Internal {
                    havoc();
                }
                if *e != SparkError::WriteLimit && p.failed_pull_consumes {
                    used.pulls = bump(used.pulls, true);
                }
            }
            None => {
                if certain.is_empty() {
                    havoc();
                }
                used.pulls = bump(used.pulls, certain.is_empty() || p.failed_pull_consumes);
            }
        }
        Some(())
    }
}

/// `[lo, hi]`, if not empty.
fn narrow(lo: Instant, hi: Instant) -> Option<(Instant, Instant)> {
    (lo <= hi).then_some((lo, hi))
}

impl Answer for SparkRet {
    /// Whether it ran and no call answered an error code.
    fn is_ok(&self) -> bool {
        let failed = |r: &CallRet| matches!(r, CallRet::Set(Err(_)) | CallRet::Pulled(Err(_)));
        matches!(self, SparkRet::Done(r) if !r.iter().any(failed))
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pad {
            0 => write!(f, "{:?}", self.text),
            pad => write!(f, "{:?}+{pad}#", self.text),
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::Get { key } => write!(f, "get {key:?}"),
            Call::Set { key, value, ttl } => write!(f, "set {key:?}={value} ttl={ttl}"),
            Call::Delete { key } => write!(f, "delete {key:?}"),
            Call::List => f.write_str("list"),
            Call::Pull { origin, keys } => write!(f, "pull {origin:?} {keys:?}"),
        }
    }
}

impl fmt::Display for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.node)?;
        if !self.writes {
            f.write_str(" (read-only)")?;
        }
        write!(f, " {}", Listing(&self.calls))
    }
}

impl fmt::Display for SparkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SparkError::Unknown(n) => write!(f, "Unknown({n})"),
            e => write!(f, "{e:?}({})", e.code()),
        }
    }
}

impl fmt::Display for CallRet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallRet::Got(None) => f.write_str("none"),
            CallRet::Got(Some(e)) => write!(f, "{} ttl={}", e.value, e.ttl),
            CallRet::Set(Ok(())) => f.write_str("ok"),
            CallRet::Set(Err(e)) | CallRet::Pulled(Err(e)) => write!(f, "{e}"),
            CallRet::Deleted => f.write_str("-"),
            CallRet::Listed(keys) => write!(f, "{keys:?}"),
            CallRet::Pulled(Ok(n)) => write!(f, "pulled {n}"),
        }
    }
}

impl fmt::Display for SparkRet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SparkRet::Done(r) => Listing(r).fmt(f),
            SparkRet::NotConnected => f.write_str("not connected"),
        }
    }
}

/// `[a; b; c]`.
struct Listing<'a, T>(&'a [T]);

impl<T: fmt::Display> fmt::Display for Listing<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, x) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { "; " };
            write!(f, "{sep}{x}")?;
        }
        f.write_str("]")
    }
}

//! FlowFabric's suspension protocol (`ff-script` 0.2.0, Lua library v6): executions and
//! their leases, waitpoints with HMAC tokens, signals, suspension timeouts, and worker
//! registration as `ff-sdk`'s connect preamble does it.
//!
//! Answers are the Lua's own: `{1, "OK", ...}`, `{1, "ALREADY_SATISFIED", ...}`,
//! `{1, "DUPLICATE", ...}` or `{0, code, detail...}` ([`SuspRet`]), with its error codes and
//! its order of checks (`ff_deliver_signal`: the HMAC check first, then the target's state,
//! then the condition, then idempotency).
//!
//! # Time
//!
//! The Lua reads the server's `TIME`; here time is an argument: every operation carries the
//! millisecond it runs at (`now`), and expiry is judged against it — a lease is expired once
//! `lease_expires_at <= now`, a retired HMAC key valid while `expires_at >= now`, an
//! idempotency record and a worker's `alive` key live while `now <= set_at + ttl` (Redis
//! expires a key once `now > when`). Scanners are operations too: [`SuspOp::MarkExpired`]
//! (`ff_mark_lease_expired_if_due`), [`SuspOp::ExpireSuspension`] (`ff_expire_suspension`)
//! and [`SuspOp::CloseWaitpoint`] with reason `never_committed` (the pending-waitpoint
//! scanner).
//!
//! # Parts
//!
//! Execution `eN` lives in partition `{p:N}` with its own HMAC keystore (FlowFabric keeps one
//! per partition and fans a rotation out over them), so every operation touches one
//! execution's part; worker registration is a part of its own.
//!
//! # What is abstracted
//!
//! - Claims: [`SuspOp::Claim`] is `ff_issue_claim_grant` then `ff_claim_execution`, or
//!   `ff_claim_resumed_execution` when the Lua answers `use_claim_resumed_execution`;
//!   [`SuspOp::Reclaim`] is `ff_issue_reclaim_grant` then `ff_reclaim_execution`. A grant is
//!   consumed by the call after it, so grants are not state. The attempt id is the lease id
//!   of the claim that started the attempt.
//! - Tokens are opaque: an answer's token must be `<current kid>:<40 lowercase hex>`; the
//!   model keeps the token it saw and the secret it was minted under, and takes a presented
//!   token as valid iff it is that token and its kid's secret is still that secret. A token
//!   whose minting answer was lost is known to nobody, so every presented token fails there.
//! - `ff_list_waitpoint_hmac_kids` lists kids in hash order; answers list them sorted.
//! - The per-execution signal cap (10,000) and stream trimming are never reached.
//!
//! # Parameters ([`Params`])
//!
//! What the sources leave open, with defaults: the idempotency window `dedup_ttl`
//! (the Lua's default `86400000`), `max_reclaims` (the Lua's default 100 when the policy
//! sets none), and the worker-registration rules that live in `ff-sdk` 0.14.0, not in the v6
//! Lua: at most `caps_max_tokens` (256) capability tokens in at most `caps_max_bytes` (4096)
//! bytes of CSV — the Lua's `CAPS_MAX_*` ceilings, which the SDK mirrors — each token
//! non-empty with no `,` or whitespace (UNKNOWN: the SDK's exact token grammar).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

use crate::{Answer, Model};

/// Milliseconds.
pub type Ms = u64;

/// A lease as its holder presents it: `(lease_id, lease_epoch, attempt_index, attempt_id)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fence {
    pub lease: String,
    pub epoch: u64,
    pub attempt: u64,
    pub attempt_id: String,
}

/// How a resume condition counts its matched signals (`signal_match_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Any,
    All,
    /// At least this many (`minimum_signal_count`).
    Count(u32),
}

/// A resume condition: signal names (empty: one wildcard matcher) and a mode.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Condition {
    pub names: Vec<String>,
    pub mode: Mode,
}

/// What `ff_expire_suspension` does once a suspension's timeout is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behavior {
    Fail,
    Cancel,
    Expire,
    AutoResume,
    Escalate,
}

impl Behavior {
    pub fn wire(self) -> &'static str {
        match self {
            Behavior::Fail => "fail",
            Behavior::Cancel => "cancel",
            Behavior::Expire => "expire",
            Behavior::AutoResume => "auto_resume",
            Behavior::Escalate => "escalate",
        }
    }
}

/// A signal as `ff_deliver_signal` / `ff_buffer_signal_for_pending_waitpoint` take it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signal {
    pub eid: String,
    pub wp: String,
    pub token: String,
    pub name: String,
    /// The signal id, the caller's.
    pub sig: String,
    /// The idempotency key; empty: none.
    pub idem: String,
    pub now: Ms,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum SuspOp {
    Claim {
        eid: String,
        worker: String,
        lease: String,
        ttl: Ms,
        now: Ms,
    },
    Reclaim {
        eid: String,
        worker: String,
        lease: String,
        ttl: Ms,
        now: Ms,
    },
    Renew {
        eid: String,
        fence: Fence,
        ttl: Ms,
        now: Ms,
    },
    /// The lease-expiry scanner's call for one execution.
    MarkExpired {
        eid: String,
        now: Ms,
    },
    CreatePending {
        eid: String,
        attempt: u64,
        wp: String,
        expires_at: Ms,
        now: Ms,
    },
    Suspend {
        eid: String,
        fence: Fence,
        susp: String,
        wp: String,
        /// `use_pending_waitpoint`: activate the pending waitpoint `wp`.
        pending: bool,
        condition: Condition,
        timeout_at: Option<Ms>,
        behavior: Behavior,
        now: Ms,
    },
    Deliver(Signal),
    Buffer(Signal),
    /// `ff_resume_execution` by an operator, on the execution's current waitpoint.
    Resume {
        eid: String,
        now: Ms,
    },
    /// The suspension-timeout scanner's call for one execution.
    ExpireSuspension {
        eid: String,
        now: Ms,
    },
    CloseWaitpoint {
        eid: String,
        wp: String,
        reason: String,
        now: Ms,
    },
    /// `ff_rotate_waitpoint_hmac_secret` on execution `eid`'s partition.
    Rotate {
        eid: String,
        kid: String,
        secret: String,
        grace: Ms,
        now: Ms,
    },
    ListKids {
        eid: String,
        now: Ms,
    },
    /// ff-sdk's connect preamble: `SET alive NX PX ttl`, then the capability hash.
    Register {
        instance: String,
        worker: String,
        caps: Vec<String>,
        ttl: Ms,
        now: Ms,
    },
    /// What a worker instance advertises: `alive` or `gone`, then its capabilities.
    Caps {
        instance: String,
        now: Ms,
    },
}

/// An answer, as the Lua returns it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuspRet {
    /// `{1, "OK", fields...}`
    Ok(Vec<String>),
    /// `{1, "ALREADY_SATISFIED", fields...}`
    AlreadySatisfied(Vec<String>),
    /// `{1, "DUPLICATE", fields...}`
    Duplicate(Vec<String>),
    /// `{0, code, detail...}`
    Err(String, Vec<String>),
    /// The script raised a Lua error (a Redis error reply, not a result).
    ScriptError,
    /// Never the Lua's: a live client could not connect, so it sent nothing. No effect.
    NotConnected,
}

impl SuspRet {
    fn ok<const N: usize>(fields: [&str; N]) -> SuspRet {
        SuspRet::Ok(fields.iter().map(|s| s.to_string()).collect())
    }
    fn err(code: &str) -> SuspRet {
        SuspRet::Err(code.into(), vec![])
    }
    fn fields(&self) -> &[String] {
        match self {
            SuspRet::Ok(f) | SuspRet::AlreadySatisfied(f) | SuspRet::Duplicate(f) => f,
            SuspRet::Err(_, f) => f,
            SuspRet::ScriptError | SuspRet::NotConnected => &[],
        }
    }
}

/// The model's parameters; see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Executions `e0..`, each created runnable in its own partition.
    pub executions: usize,
    pub dedup_ttl: Ms,
    pub max_reclaims: u32,
    pub caps_max_tokens: usize,
    pub caps_max_bytes: usize,
    /// How many milliseconds after the time an operation records it may have read its
    /// clock: 0 in a simulation; a real server's clock is read around a call, not in it.
    pub slack: Ms,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            executions: 3,
            dedup_ttl: 86_400_000,
            max_reclaims: 100,
            caps_max_tokens: 256,
            caps_max_bytes: 4096,
            slack: 0,
        }
    }
}

/// The model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SuspensionModel {
    pub params: Params,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    Runnable,
    Active,
    Suspended,
    /// With its outcome: `failed`, `cancelled` or `expired`.
    Terminal(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Own {
    Unowned,
    Leased,
    Expired,
}

/// An execution's core.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Exec {
    pub phase: Phase,
    pub own: Own,
    /// `attempt_state == attempt_interrupted`: the next claim is `ff_claim_resumed_execution`.
    pub interrupted: bool,
    pub epoch: u64,
    /// `total_attempt_count`.
    pub attempts: u64,
    /// The current attempt's index and id, once there is one.
    pub attempt: Option<(u64, String)>,
    pub lease: String,
    pub expires: Ms,
    pub reclaims: u32,
    /// `suspension:current`, if any.
    pub susp: Option<Susp>,
    /// `current_waitpoint_id`.
    pub wp: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Susp {
    pub id: String,
    pub wp: String,
    pub timeout_at: Option<Ms>,
    /// `None` once escalated (the Lua clears it).
    pub behavior: Option<Behavior>,
    pub open: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WpState {
    Pending,
    Active,
    Closed,
}

/// A waitpoint, its `:condition` hash and its `:signals` stream.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Wp {
    pub attempt: u64,
    pub state: WpState,
    /// The token, once an answer showed it; `None`: minted, never seen.
    pub token: Option<String>,
    /// The secret it was minted under.
    pub secret: String,
    pub expires_at: Option<Ms>,
    pub cond: Option<Cond>,
    /// Names of the signals on its stream, in order.
    pub stream: Vec<String>,
}

/// A condition: `(name, satisfied)` matchers; `""` matches any name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cond {
    pub matchers: Vec<(String, bool)>,
    pub mode: Mode,
    pub closed: bool,
}

impl Cond {
    fn new(c: &Condition) -> Cond {
        let names = if c.names.is_empty() {
            vec![String::new()]
        } else {
            c.names.clone()
        };
        Cond {
            matchers: names.into_iter().map(|n| (n, false)).collect(),
            mode: c.mode,
            closed: false,
        }
    }

    /// Mark the first unsatisfied matcher `name` matches; whether one did.
    fn offer(&mut self, name: &str) -> bool {
        let m = self
            .matchers
            .iter_mut()
            .find(|(n, sat)| !*sat && (n.is_empty() || n == name));
        m.map(|m| m.1 = true).is_some()
    }

    fn satisfied(&self) -> bool {
        let count = self.matchers.iter().filter(|m| m.1).count();
        match self.mode {
            Mode::Any => count >= 1,
            Mode::All => count >= self.matchers.len(),
            Mode::Count(n) => count >= n as usize,
        }
    }
}

/// A partition's `ff:sec:{p}:waitpoint_hmac` hash.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Keys {
    pub current: Option<String>,
    pub secrets: BTreeMap<String, String>,
    pub expires: BTreeMap<String, Ms>,
}

/// One execution's partition.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Part {
    pub exec: Exec,
    pub wps: BTreeMap<String, Wp>,
    pub keys: Keys,
    /// `ff:sigdedup:{p}:<wp>:<idem>` → (signal id, set at).
    pub dedup: BTreeMap<(String, String), (String, Ms)>,
}

/// A worker instance's `alive` key and capability hash.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Worker {
    pub alive_until: Ms,
    pub caps: Vec<String>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct State {
    pub parts: BTreeMap<String, Part>,
    pub workers: BTreeMap<String, Worker>,
}

impl fmt::Debug for State {
    /// Only what differs from a fresh execution, to keep counterexamples short.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (eid, p) in &self.parts {
            let e = &p.exec;
            write!(f, "{eid}: {:?}/{:?} epoch={}", e.phase, e.own, e.epoch)?;
            if e.own == Own::Leased {
                write!(f, " lease={} until={}", e.lease, e.expires)?;
            }
            if let Some(s) = &e.susp {
                write!(
                    f,
                    " susp={}@{}{}",
                    s.id,
                    s.wp,
                    if s.open { "" } else { "(closed)" }
                )?;
            }
            for (id, wp) in &p.wps {
                write!(f, " {id}={:?}", wp.state)?;
            }
            if let Some(k) = &p.keys.current {
                write!(f, " kid={k} retired={:?}", p.keys.expires)?;
            }
            f.write_str("; ")?;
        }
        for (i, w) in &self.workers {
            write!(f, "{i}: until={} caps={:?}; ", w.alive_until, w.caps)?;
        }
        Ok(())
    }
}

/// The name of execution `n` and the Redis hash tag of its partition.
pub fn execution(n: usize) -> (String, String) {
    (format!("e{n}"), format!("{{p:{n}}}"))
}

/// The waitpoint key FlowFabric binds into a token; ours is derived from the waitpoint id.
pub fn waitpoint_key(wp: &str) -> String {
    format!("key-{wp}")
}

/// Mints a token: `(kid, secret, waitpoint id, waitpoint key, created_at)` → token. The
/// model mints none (tokens are opaque to it); a backend brings its own.
pub type Mint<'a> = &'a dyn Fn(&str, &str, &str, &str, Ms) -> String;

/// The placeholder the model answers where a token goes, before it sees the real one.
fn unseen(kid: &str) -> String {
    format!("{kid}:?")
}

impl SuspOp {
    /// The execution an operation touches; `None` for worker registration.
    pub fn eid(&self) -> Option<&str> {
        match self {
            SuspOp::Claim { eid, .. }
            | SuspOp::Reclaim { eid, .. }
            | SuspOp::Renew { eid, .. }
            | SuspOp::MarkExpired { eid, .. }
            | SuspOp::CreatePending { eid, .. }
            | SuspOp::Suspend { eid, .. }
            | SuspOp::Resume { eid, .. }
            | SuspOp::ExpireSuspension { eid, .. }
            | SuspOp::CloseWaitpoint { eid, .. }
            | SuspOp::Rotate { eid, .. }
            | SuspOp::ListKids { eid, .. } => Some(eid),
            SuspOp::Deliver(s) | SuspOp::Buffer(s) => Some(&s.eid),
            SuspOp::Register { .. } | SuspOp::Caps { .. } => None,
        }
    }

    /// The millisecond it runs at; setting it alone leaves the deadlines it sets as sent
    /// (a live backend learns when a real server applied it).
    pub fn now_mut(&mut self) -> &mut Ms {
        match self {
            SuspOp::Claim { now, .. }
            | SuspOp::Reclaim { now, .. }
            | SuspOp::Renew { now, .. }
            | SuspOp::MarkExpired { now, .. }
            | SuspOp::CreatePending { now, .. }
            | SuspOp::Suspend { now, .. }
            | SuspOp::Resume { now, .. }
            | SuspOp::ExpireSuspension { now, .. }
            | SuspOp::CloseWaitpoint { now, .. }
            | SuspOp::Rotate { now, .. }
            | SuspOp::ListKids { now, .. }
            | SuspOp::Register { now, .. }
            | SuspOp::Caps { now, .. } => now,
            SuspOp::Deliver(s) | SuspOp::Buffer(s) => &mut s.now,
        }
    }
}

impl SuspensionModel {
    pub fn new(params: Params) -> SuspensionModel {
        SuspensionModel { params }
    }

    /// The protocol as a function: the state after `op` and its answer. Tokens are minted
    /// with `mint`; without one they are left unseen for [`Model::step`] to fill in.
    pub fn apply(&self, state: &State, op: &SuspOp, mint: Option<Mint>) -> (State, SuspRet) {
        let mut next = state.clone();
        let ret = match op.eid() {
            Some(eid) => match next.parts.get_mut(eid) {
                Some(part) => self.on_part(part, op, mint),
                None => SuspRet::err("execution_not_found"),
            },
            None => self.on_workers(&mut next.workers, op),
        };
        (next, ret)
    }

    fn on_part(&self, p: &mut Part, op: &SuspOp, mint: Option<Mint>) -> SuspRet {
        match op {
            SuspOp::Claim {
                lease, ttl, now, ..
            } => claim(p, lease, *ttl, *now),
            SuspOp::Reclaim {
                lease, ttl, now, ..
            } => self.reclaim(p, lease, *ttl, *now),
            SuspOp::Renew {
                fence, ttl, now, ..
            } => renew(p, fence, *ttl, *now),
            SuspOp::MarkExpired { now, .. } => mark_if_due(&mut p.exec, *now),
            SuspOp::CreatePending {
                attempt,
                wp,
                expires_at,
                now,
                ..
            } => create_pending(p, *attempt, wp, *expires_at, *now, mint),
            SuspOp::Suspend { .. } => suspend(p, op, mint),
            SuspOp::Deliver(s) => self.deliver(p, s),
            SuspOp::Buffer(s) => self.buffer(p, s),
            SuspOp::Resume { .. } => resume(p),
            SuspOp::ExpireSuspension { now, .. } => expire(p, *now),
            SuspOp::CloseWaitpoint { wp, .. } => match p.wps.get_mut(wp) {
                None => SuspRet::err("waitpoint_not_found"),
                Some(w) if w.state == WpState::Closed => SuspRet::ok(["already_closed"]),
                Some(w) => {
                    w.state = WpState::Closed;
                    SuspRet::Ok(vec![])
                }
            },
            SuspOp::Rotate {
                kid,
                secret,
                grace,
                now,
                ..
            } => rotate(&mut p.keys, kid, secret, *grace, *now),
            SuspOp::ListKids { now, .. } => {
                let live: Vec<(&String, &Ms)> = p
                    .keys
                    .expires
                    .iter()
                    .filter(|(_, &e)| e >= *now && e > 0)
                    .collect();
                let mut out = vec![
                    p.keys.current.clone().unwrap_or_default(),
                    live.len().to_string(),
                ];
                for (kid, exp) in live {
                    out.extend([kid.clone(), exp.to_string()]);
                }
                SuspRet::Ok(out)
            }
            SuspOp::Register { .. } | SuspOp::Caps { .. } => unreachable!("a worker operation"),
        }
    }

    fn reclaim(&self, p: &mut Part, lease: &str, ttl: Ms, now: Ms) -> SuspRet {
        let e = &mut p.exec;
        if e.phase != Phase::Active || e.own != Own::Expired {
            return SuspRet::err("execution_not_reclaimable");
        }
        if e.reclaims >= self.params.max_reclaims {
            e.phase = Phase::Terminal("failed");
            e.own = Own::Unowned;
            e.interrupted = false;
            return SuspRet::err("max_retries_exhausted");
        }
        e.reclaims += 1;
        start(e, lease, lease, e.attempts, ttl, now, "reclaim")
    }

    fn deliver(&self, p: &mut Part, s: &Signal) -> SuspRet {
        let Some(wp) = p.wps.get(&s.wp) else {
            return SuspRet::err("invalid_token");
        };
        if let Some(code) = check_token(&p.keys, wp, &s.token, s.now) {
            return SuspRet::err(code);
        }
        let phase = p.exec.phase;
        match phase {
            Phase::Terminal(_) => return SuspRet::err("target_not_signalable"),
            Phase::Active | Phase::Runnable => match wp.state {
                WpState::Pending => return SuspRet::err("waitpoint_pending_use_buffer_script"),
                WpState::Closed => return SuspRet::err("target_not_signalable"),
                WpState::Active => {}
            },
            Phase::Suspended => {}
        }
        match &wp.cond {
            None => return SuspRet::err("waitpoint_not_found"),
            Some(c) if c.closed => return SuspRet::err("waitpoint_closed"),
            Some(_) => {}
        }
        if let Some(dup) = self.dedup(p, s) {
            return dup;
        }
        let wp = p.wps.get_mut(&s.wp).expect("checked above");
        wp.stream.push(s.name.clone());
        let cond = wp.cond.as_mut().expect("checked above");
        if !cond.offer(&s.name) {
            return SuspRet::ok([&s.sig, "no_op"]);
        }
        if !cond.satisfied() {
            return SuspRet::ok([&s.sig, "appended_to_waitpoint"]);
        }
        cond.closed = true;
        wp.state = WpState::Closed;
        let e = &mut p.exec;
        if phase == Phase::Suspended {
            to_runnable(e);
        }
        if let Some(susp) = &mut e.susp {
            susp.open = false;
        }
        SuspRet::ok([&s.sig, "resume_condition_satisfied"])
    }

    fn buffer(&self, p: &mut Part, s: &Signal) -> SuspRet {
        let Some(wp) = p.wps.get(&s.wp) else {
            return SuspRet::err("waitpoint_not_found");
        };
        if let Some(code) = check_token(&p.keys, wp, &s.token, s.now) {
            return SuspRet::err(code);
        }
        if wp.state == WpState::Closed {
            return SuspRet::err("waitpoint_closed");
        }
        if let Some(dup) = self.dedup(p, s) {
            return dup;
        }
        let wp = p.wps.get_mut(&s.wp).expect("checked above");
        wp.stream.push(s.name.clone());
        SuspRet::ok([&s.sig, "buffered_for_pending_waitpoint"])
    }

    /// `DUPLICATE <first signal id>` for an idempotency key seen within the window; else
    /// records it.
    fn dedup(&self, p: &mut Part, s: &Signal) -> Option<SuspRet> {
        if s.idem.is_empty() || self.params.dedup_ttl == 0 {
            return None;
        }
        let key = (s.wp.clone(), s.idem.clone());
        match p.dedup.get(&key) {
            Some((first, at)) if s.now <= at + self.params.dedup_ttl => {
                Some(SuspRet::Duplicate(vec![first.clone()]))
            }
            _ => {
                p.dedup.insert(key, (s.sig.clone(), s.now));
                None
            }
        }
    }

    fn on_workers(&self, workers: &mut BTreeMap<String, Worker>, op: &SuspOp) -> SuspRet {
        match op {
            SuspOp::Register {
                instance,
                caps,
                ttl,
                now,
                ..
            } => {
                if let Some(why) = self.bad_caps(caps) {
                    return SuspRet::Err("invalid_capabilities".into(), vec![why.into()]);
                }
                if workers.get(instance).is_some_and(|w| *now <= w.alive_until) {
                    return SuspRet::err("duplicate_instance");
                }
                let mut caps = caps.clone();
                caps.sort();
                caps.dedup();
                let alive_until = now + ttl;
                workers.insert(instance.clone(), Worker { alive_until, caps });
                SuspRet::ok(["registered"])
            }
            SuspOp::Caps { instance, now } => match workers.get(instance) {
                None => SuspRet::ok(["gone"]),
                Some(w) => {
                    let alive = if *now <= w.alive_until {
                        "alive"
                    } else {
                        "gone"
                    };
                    let mut out = vec![alive.to_string()];
                    out.extend(w.caps.iter().cloned());
                    SuspRet::Ok(out)
                }
            },
            _ => unreachable!("an execution operation"),
        }
    }

    /// Why a capability list is refused, if it is.
    pub fn bad_caps(&self, caps: &[String]) -> Option<&'static str> {
        if caps.len() > self.params.caps_max_tokens {
            return Some("too_many_tokens");
        }
        if caps.join(",").len() > self.params.caps_max_bytes {
            return Some("too_many_bytes");
        }
        let bad =
            |c: &String| c.is_empty() || c.contains(|ch: char| ch == ',' || ch.is_whitespace());
        caps.iter().any(bad).then_some("bad_token")
    }
}

fn claim(p: &mut Part, lease: &str, ttl: Ms, now: Ms) -> SuspRet {
    let e = &mut p.exec;
    if e.phase != Phase::Runnable {
        return SuspRet::err("execution_not_eligible");
    }
    if e.interrupted {
        // ff_claim_resumed_execution: the same attempt, a new lease.
        let (index, id) = e.attempt.clone().unwrap_or_default();
        let attempts = e.attempts;
        let ret = start(e, lease, &id, index, ttl, now, "resumed");
        e.attempts = attempts;
        return ret;
    }
    start(e, lease, lease, e.attempts, ttl, now, "initial")
}

/// A new lease on attempt `index` (`id`); the epoch moves up by one.
fn start(e: &mut Exec, lease: &str, id: &str, index: u64, ttl: Ms, now: Ms, kind: &str) -> SuspRet {
    e.phase = Phase::Active;
    e.own = Own::Leased;
    e.interrupted = false;
    e.epoch += 1;
    e.attempts = index + 1;
    e.attempt = Some((index, id.to_string()));
    e.lease = lease.to_string();
    e.expires = now + ttl;
    let (epoch, expires, index) = (
        e.epoch.to_string(),
        e.expires.to_string(),
        index.to_string(),
    );
    SuspRet::ok([lease, &epoch, &expires, id, &index, kind])
}

fn not_active(e: &Exec) -> SuspRet {
    let outcome = match e.phase {
        Phase::Terminal(o) => o,
        _ => "none",
    };
    SuspRet::Err(
        "execution_not_active".into(),
        vec![outcome.into(), e.epoch.to_string()],
    )
}

/// `mark_expired`: idempotent.
fn mark(e: &mut Exec) {
    e.own = Own::Expired;
    e.interrupted = true;
}

fn renew(p: &mut Part, f: &Fence, ttl: Ms, now: Ms) -> SuspRet {
    let e = &mut p.exec;
    if e.phase != Phase::Active {
        return not_active(e);
    }
    if e.expires <= now {
        mark(e);
        return SuspRet::err("lease_expired");
    }
    if !holds(e, f) {
        return SuspRet::err("stale_lease");
    }
    e.expires = now + ttl;
    SuspRet::Ok(vec![e.expires.to_string()])
}

fn holds(e: &Exec, f: &Fence) -> bool {
    e.attempt.as_ref() == Some(&(f.attempt, f.attempt_id.clone()))
        && e.lease == f.lease
        && e.epoch == f.epoch
}

fn mark_if_due(e: &mut Exec, now: Ms) -> SuspRet {
    let already = |why: &str| SuspRet::AlreadySatisfied(vec![why.into()]);
    match (e.phase, e.own) {
        (Phase::Active, Own::Expired) => already("already_expired"),
        (Phase::Active, Own::Unowned) => already("unowned"),
        (Phase::Active, Own::Leased) if e.expires > now => already("not_yet_expired"),
        (Phase::Active, Own::Leased) => {
            mark(e);
            SuspRet::ok(["marked_expired"])
        }
        _ => already("not_active"),
    }
}

/// The current kid and its secret, or why no token can be minted.
fn minting(keys: &Keys) -> Result<(String, String), &'static str> {
    let kid = keys.current.as_ref().ok_or("hmac_secret_not_initialized")?;
    let secret = keys.secrets.get(kid).ok_or("hmac_secret_not_initialized")?;
    Ok((kid.clone(), secret.clone()))
}

/// A new token, for the answer and for the waitpoint: minted with `mint`, or left for
/// [`Model::step`] to learn.
fn token(
    kid: &str,
    secret: &str,
    wp: &str,
    now: Ms,
    mint: Option<Mint>,
) -> (String, Option<String>) {
    match mint {
        Some(mint) => {
            let t = mint(kid, secret, wp, &waitpoint_key(wp), now);
            (t.clone(), Some(t))
        }
        None => (unseen(kid), None),
    }
}

fn create_pending(
    p: &mut Part,
    attempt: u64,
    wp: &str,
    expires_at: Ms,
    now: Ms,
    mint: Option<Mint>,
) -> SuspRet {
    let e = &p.exec;
    if e.phase != Phase::Active {
        return not_active(e);
    }
    if e.own != Own::Leased {
        return SuspRet::err("no_active_lease");
    }
    if e.attempt.as_ref().map(|a| a.0) != Some(attempt) {
        return SuspRet::err("stale_lease");
    }
    if p.wps.get(wp).is_some_and(|w| w.state != WpState::Closed) {
        return SuspRet::err("waitpoint_already_exists");
    }
    let (kid, secret) = match minting(&p.keys) {
        Ok(k) => k,
        Err(code) => return SuspRet::err(code),
    };
    let (t, token) = token(&kid, &secret, wp, now, mint);
    let w = Wp {
        attempt,
        state: WpState::Pending,
        token,
        secret,
        expires_at: Some(expires_at),
        cond: None,
        stream: vec![],
    };
    p.wps.insert(wp.to_string(), w);
    SuspRet::Ok(vec![wp.to_string(), waitpoint_key(wp), t])
}

fn suspend(p: &mut Part, op: &SuspOp, mint: Option<Mint>) -> SuspRet {
    let SuspOp::Suspend {
        fence,
        susp,
        wp,
        pending,
        condition,
        timeout_at,
        behavior,
        now,
        ..
    } = op
    else {
        unreachable!()
    };
    let e = &mut p.exec;
    if e.phase != Phase::Active {
        return not_active(e);
    }
    if e.expires <= *now {
        mark(e);
        return SuspRet::err("lease_expired");
    }
    if e.lease != fence.lease
        || e.epoch != fence.epoch
        || e.attempt.as_ref().map(|a| &a.1) != Some(&fence.attempt_id)
    {
        return SuspRet::err("stale_lease");
    }
    if e.attempt.as_ref().map(|a| a.0) != Some(fence.attempt) {
        return SuspRet::err("invalid_lease_for_suspend");
    }
    if e.susp.as_ref().is_some_and(|s| s.open) {
        return SuspRet::err("already_suspended");
    }
    e.susp = None;
    let token = if *pending {
        let w = match p.wps.get_mut(wp) {
            None => return SuspRet::err("waitpoint_not_found"),
            Some(w) if w.state != WpState::Pending => return SuspRet::err("waitpoint_not_pending"),
            Some(w) if w.attempt != fence.attempt => {
                return SuspRet::err("invalid_waitpoint_for_execution")
            }
            Some(w) if w.expires_at.is_some_and(|x| x <= *now) => {
                return SuspRet::err("pending_waitpoint_expired")
            }
            Some(w) => w,
        };
        let token = w.token.clone().unwrap_or_else(|| unseen(""));
        w.state = WpState::Active;
        w.expires_at = *timeout_at;
        let mut cond = Cond::new(condition);
        for name in &w.stream {
            cond.offer(name);
        }
        let done = !w.stream.is_empty() && cond.satisfied();
        w.cond = Some(cond);
        if done {
            w.state = WpState::Closed;
            return SuspRet::AlreadySatisfied(vec![
                susp.clone(),
                wp.clone(),
                waitpoint_key(wp),
                token,
            ]);
        }
        token
    } else {
        let (kid, secret) = match minting(&p.keys) {
            Ok(k) => k,
            Err(code) => return SuspRet::err(code),
        };
        let (t, token) = token(&kid, &secret, wp, *now, mint);
        let w = Wp {
            attempt: fence.attempt,
            state: WpState::Active,
            token,
            secret,
            expires_at: *timeout_at,
            cond: Some(Cond::new(condition)),
            stream: vec![],
        };
        p.wps.insert(wp.clone(), w);
        t
    };
    let e = &mut p.exec;
    e.phase = Phase::Suspended;
    e.own = Own::Unowned;
    e.interrupted = true;
    e.lease = String::new();
    e.wp = wp.clone();
    e.susp = Some(Susp {
        id: susp.clone(),
        wp: wp.clone(),
        timeout_at: *timeout_at,
        behavior: Some(*behavior),
        open: true,
    });
    SuspRet::Ok(vec![susp.clone(), wp.clone(), waitpoint_key(wp), token])
}

/// Suspended → runnable, eligible now, the same attempt interrupted.
fn to_runnable(e: &mut Exec) {
    e.phase = Phase::Runnable;
    e.own = Own::Unowned;
    e.interrupted = true;
    e.wp = String::new();
}

fn open_susp(e: &Exec) -> Option<&Susp> {
    e.susp.as_ref().filter(|s| s.open)
}

fn resume(p: &mut Part) -> SuspRet {
    let e = &mut p.exec;
    if e.phase != Phase::Suspended || open_susp(e).is_none() {
        return SuspRet::err("execution_not_suspended");
    }
    if let Some(w) = p.wps.get_mut(&e.wp) {
        w.state = WpState::Closed;
    }
    to_runnable(e);
    e.susp.as_mut().expect("open").open = false;
    SuspRet::ok(["waiting"])
}

fn expire(p: &mut Part, now: Ms) -> SuspRet {
    let e = &mut p.exec;
    if e.phase != Phase::Suspended {
        return SuspRet::ok(["not_suspended_cleaned"]);
    }
    let Some(s) = open_susp(e).cloned() else {
        return SuspRet::ok(["no_active_suspension_cleaned"]);
    };
    // The Lua compares `tonumber("")` (nil) with a number when no timeout is set, and
    // raises.
    let Some(at) = s.timeout_at else {
        return SuspRet::ScriptError;
    };
    if at > now {
        return SuspRet::ok(["not_yet_due"]);
    }
    let close = |p: &mut Part| {
        if let Some(w) = p.wps.get_mut(&s.wp) {
            w.state = WpState::Closed;
            if let Some(c) = &mut w.cond {
                c.closed = true;
            }
        }
        p.exec.susp.as_mut().expect("open").open = false;
    };
    let behavior = s.behavior.unwrap_or(Behavior::Fail);
    let outcome = match behavior {
        Behavior::AutoResume => {
            to_runnable(e);
            close(p);
            return SuspRet::ok(["auto_resume", "waiting"]);
        }
        Behavior::Escalate => {
            let s = e.susp.as_mut().expect("open");
            s.timeout_at = None;
            s.behavior = None;
            return SuspRet::ok(["escalate", "suspended"]);
        }
        Behavior::Cancel => "cancelled",
        Behavior::Expire => "expired",
        Behavior::Fail => "failed",
    };
    e.phase = Phase::Terminal(outcome);
    e.interrupted = false;
    e.wp = String::new();
    close(p);
    SuspRet::ok([behavior.wire(), outcome])
}

fn rotate(k: &mut Keys, kid: &str, secret: &str, grace: Ms, now: Ms) -> SuspRet {
    if kid.is_empty() || kid.contains(':') {
        return SuspRet::err("invalid_kid");
    }
    if secret.is_empty() || secret.len() & 1 != 0 || !secret.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return SuspRet::err("invalid_secret_hex");
    }
    if grace > (1 << 53) - 1 {
        return SuspRet::err("invalid_grace_ms");
    }
    if k.current.as_deref() == Some(kid) {
        return match k.secrets.get(kid) {
            Some(s) if s != secret => SuspRet::Err("rotation_conflict".into(), vec![kid.into()]),
            _ => {
                k.secrets.insert(kid.into(), secret.into());
                SuspRet::ok(["noop", kid])
            }
        };
    }
    let gone: Vec<String> = k
        .expires
        .iter()
        .filter(|(_, &exp)| exp == 0 || exp < now)
        .map(|(kid, _)| kid.clone())
        .collect();
    for g in &gone {
        k.expires.remove(g);
        k.secrets.remove(g);
    }
    let prev = k.current.replace(kid.to_string());
    if let Some(prev) = &prev {
        k.expires.insert(prev.clone(), now + grace);
    }
    k.secrets.insert(kid.into(), secret.into());
    SuspRet::ok([
        "rotated",
        prev.as_deref().unwrap_or(""),
        kid,
        &gone.len().to_string(),
    ])
}

/// `validate_waitpoint_token`'s answer: `None` when the token is good.
fn check_token(keys: &Keys, wp: &Wp, token: &str, now: Ms) -> Option<&'static str> {
    if token.is_empty() {
        return Some("missing_token");
    }
    let (kid, digest) = match token.split_once(':') {
        Some((kid, digest)) if !kid.is_empty() && !digest.is_empty() => (kid, digest),
        _ => return Some("invalid_token"),
    };
    if digest.len() != 40 {
        return Some("invalid_token");
    }
    let Some(current) = keys.current.as_deref() else {
        return Some("hmac_secret_not_initialized");
    };
    let secret = if kid == current {
        keys.secrets.get(kid)
    } else {
        match (keys.secrets.get(kid), keys.expires.get(kid)) {
            (None, _) => return Some("invalid_token"),
            (Some(s), Some(&exp)) if exp > 0 && exp >= now => Some(s),
            (Some(_), _) => return Some("token_expired"),
        }
    };
    match (&wp.token, secret) {
        (Some(minted), Some(secret)) if minted == token && *secret == wp.secret => None,
        _ => Some("invalid_token"),
    }
}

/// Where an answer carries a freshly minted token.
fn token_at(op: &SuspOp, ret: &SuspRet) -> Option<usize> {
    match (op, ret) {
        (SuspOp::CreatePending { .. }, SuspRet::Ok(_)) => Some(2),
        (SuspOp::Suspend { .. }, SuspRet::Ok(_) | SuspRet::AlreadySatisfied(_)) => Some(3),
        _ => None,
    }
}

/// Whether `got` is a token the model's answer `want` allows: `want` itself, or for a
/// placeholder `<kid>:?`, `<kid>:<40 lowercase hex>` (any kid for `:?`).
fn fits(want: &str, got: &str) -> bool {
    let Some(kid) = want.strip_suffix(":?") else {
        return want == got;
    };
    got.split_once(':').is_some_and(|(k, d)| {
        (kid.is_empty() || k == kid)
            && d.len() == 40
            && d.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl Model for SuspensionModel {
    type State = State;
    type Op = SuspOp;
    type Ret = SuspRet;

    fn init(&self) -> State {
        let exec = Exec {
            phase: Phase::Runnable,
            own: Own::Unowned,
            interrupted: false,
            epoch: 0,
            attempts: 0,
            attempt: None,
            lease: String::new(),
            expires: 0,
            reclaims: 0,
            susp: None,
            wp: String::new(),
        };
        let part = Part {
            exec,
            wps: BTreeMap::new(),
            keys: Keys::default(),
            dedup: BTreeMap::new(),
        };
        State {
            parts: (0..self.params.executions)
                .map(|n| (execution(n).0, part.clone()))
                .collect(),
            workers: BTreeMap::new(),
        }
    }

    /// `op` at its time, or failing that at each millisecond of the slack after it: the
    /// call judged its deadlines at one of them.
    fn step(&self, state: &State, op: &SuspOp, ret: Option<&SuspRet>) -> Option<State> {
        (0..=self.params.slack).find_map(|late| {
            let mut op = op.clone();
            *op.now_mut() += late;
            self.step_at(state, &op, ret)
        })
    }

    fn part(&self, op: &SuspOp) -> Option<String> {
        Some(op.eid().unwrap_or("workers").to_string())
    }
}

impl SuspensionModel {
    fn step_at(&self, state: &State, op: &SuspOp, ret: Option<&SuspRet>) -> Option<State> {
        if ret == Some(&SuspRet::NotConnected) {
            return Some(state.clone());
        }
        let (mut next, want) = self.apply(state, op, None);
        let at = token_at(op, &want);
        let learned = match (ret, at) {
            (None, _) => None,
            (Some(got), Some(i)) => {
                let (w, g) = (want.fields(), got.fields());
                let same = std::mem::discriminant(&want) == std::mem::discriminant(got)
                    && g.len() == w.len()
                    && (0..w.len()).all(|j| {
                        if j == i {
                            fits(&w[j], &g[j])
                        } else {
                            w[j] == g[j]
                        }
                    });
                if !same {
                    return None;
                }
                Some(g[i].clone())
            }
            (Some(got), None) => {
                if *got != want {
                    return None;
                }
                None
            }
        };
        if at.is_some() {
            // Keep the token the answer showed; a lost answer's token is known to nobody.
            let wp = match op {
                SuspOp::CreatePending { wp, .. } | SuspOp::Suspend { wp, .. } => wp,
                _ => unreachable!(),
            };
            let part = next
                .parts
                .get_mut(op.eid().expect("an execution operation"))?;
            if let Some(w) = part.wps.get_mut(wp) {
                w.token = w.token.take().or(learned);
            }
        }
        Some(next)
    }
}

impl Answer for SuspRet {
    fn is_ok(&self) -> bool {
        matches!(
            self,
            SuspRet::Ok(_) | SuspRet::AlreadySatisfied(_) | SuspRet::Duplicate(_)
        )
    }
}

impl fmt::Display for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}/a{}", self.lease, self.epoch, self.attempt)
    }
}

impl fmt::Display for SuspOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SuspOp::Claim {
                eid,
                worker,
                lease,
                ttl,
                now,
            } => {
                write!(f, "claim {eid} {worker} {lease} ttl={ttl} @{now}")
            }
            SuspOp::Reclaim {
                eid,
                worker,
                lease,
                ttl,
                now,
            } => {
                write!(f, "reclaim {eid} {worker} {lease} ttl={ttl} @{now}")
            }
            SuspOp::Renew {
                eid,
                fence,
                ttl,
                now,
            } => write!(f, "renew {eid} {fence} ttl={ttl} @{now}"),
            SuspOp::MarkExpired { eid, now } => write!(f, "mark-expired {eid} @{now}"),
            SuspOp::CreatePending {
                eid,
                attempt,
                wp,
                expires_at,
                now,
            } => {
                write!(
                    f,
                    "create-pending {eid} a{attempt} {wp} until={expires_at} @{now}"
                )
            }
            SuspOp::Suspend {
                eid,
                fence,
                susp,
                wp,
                pending,
                condition,
                timeout_at,
                behavior,
                now,
            } => {
                write!(
                    f,
                    "suspend {eid} {fence} {susp} {wp}{} {:?}{:?}",
                    if *pending { "(pending)" } else { "" },
                    condition.mode,
                    condition.names
                )?;
                if let Some(t) = timeout_at {
                    write!(f, " timeout={t}/{}", behavior.wire())?;
                }
                write!(f, " @{now}")
            }
            SuspOp::Deliver(s) => write!(f, "deliver {s}"),
            SuspOp::Buffer(s) => write!(f, "buffer {s}"),
            SuspOp::Resume { eid, now } => write!(f, "resume {eid} @{now}"),
            SuspOp::ExpireSuspension { eid, now } => write!(f, "expire-suspension {eid} @{now}"),
            SuspOp::CloseWaitpoint {
                eid,
                wp,
                reason,
                now,
            } => write!(f, "close {eid} {wp} {reason} @{now}"),
            SuspOp::Rotate {
                eid,
                kid,
                grace,
                now,
                ..
            } => write!(f, "rotate {eid} {kid} grace={grace} @{now}"),
            SuspOp::ListKids { eid, now } => write!(f, "list-kids {eid} @{now}"),
            SuspOp::Register {
                instance,
                worker,
                caps,
                ttl,
                now,
            } => {
                write!(f, "register {instance} {worker} {caps:?} ttl={ttl} @{now}")
            }
            SuspOp::Caps { instance, now } => write!(f, "caps {instance} @{now}"),
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = match self.token.split_once(':') {
            Some((kid, d)) => format!("{kid}:{}", d.get(..6).unwrap_or(d)),
            None => format!("{:?}", self.token),
        };
        write!(
            f,
            "{} {} {} {} token={token}",
            self.eid, self.wp, self.sig, self.name
        )?;
        if !self.idem.is_empty() {
            write!(f, " idem={}", self.idem)?;
        }
        write!(f, " @{}", self.now)
    }
}

impl fmt::Display for SuspRet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (head, fields) = match self {
            SuspRet::Ok(x) => ("OK", x),
            SuspRet::AlreadySatisfied(x) => ("ALREADY_SATISFIED", x),
            SuspRet::Duplicate(x) => ("DUPLICATE", x),
            SuspRet::Err(code, x) => (code.as_str(), x),
            SuspRet::ScriptError => return f.write_str("script-error"),
            SuspRet::NotConnected => return f.write_str("not-connected"),
        };
        f.write_str(head)?;
        for x in fields {
            // Tokens are long; their kid and a few digits say which.
            match x.split_once(':') {
                Some((kid, d)) if d.len() == 40 => write!(f, " {kid}:{}", &d[..6])?,
                _ => write!(f, " {x}")?,
            }
        }
        Ok(())
    }
}

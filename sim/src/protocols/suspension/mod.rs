//! The suspension workload: workers claim executions, renew their leases, park them on
//! waitpoints and get fenced; signallers deliver signals with good, forged and missing
//! tokens and retry idempotency keys; a scanner expires leases and suspensions and closes
//! pending waitpoints; operators resume executions and rotate HMAC keys; worker instances
//! register with their capabilities. Every client draws from the same mix, so each plays
//! every part, with what it has learned: the leases it holds (stale ones included), the
//! waitpoints and tokens its answers showed, the signals it sent.
//!
//! Executions are `e0..` (`workload.keys` of them). The `[suspension]` section sets the
//! lease TTL, the key-rotation grace, the suspension and pending-waitpoint timeouts and the
//! resolution of the callers' clocks (a coarse clock makes operations meet deadlines to the
//! millisecond, where off-by-one bugs live).
//!
//! An operation carries the time it runs at: its caller stamps it from the simulated clock
//! when it sends it, and backends apply it at that time.

pub mod backends;
pub mod check;
pub mod settings;

// What a suspension backend implements, at the protocol's door.
pub use backends::{SuspBackend, SuspClient};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use squall_models::suspension::{
    execution, Behavior, Condition, Fence, Mode, Params, Signal, SuspOp, SuspRet,
    SuspensionModel as Model,
};
use std::collections::BTreeMap;
use std::fmt;

use crate::check::{linearizable, Verdict};
use crate::history::History;
use crate::protocol::{settings, Protocol};
use crate::scenario::{self, Scenario, Section};
use settings::SuspensionTimes;

/// The suspension protocol.
pub struct Suspension;

/// What a client means to do, drawn before the run; [`Protocol::op`] makes it an operation
/// with what the client knows then. The scenario's times are not part of its serde form.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    pub client: usize,
    pub n: usize,
    pub what: What,
    #[serde(skip)]
    times: Times,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum What {
    Claim(usize),
    Reclaim(usize),
    Renew(usize),
    MarkExpired(usize),
    CreatePending(usize),
    Suspend {
        exec: usize,
        pending: bool,
        condition: Condition,
        timeout: Option<Behavior>,
    },
    Deliver(Send),
    Buffer(Send),
    Resume(usize),
    ExpireSuspension(usize),
    Close(usize),
    Rotate(usize),
    /// What a broken caller sends: `rotate_odd` and `suspend_odd` in a mix.
    Odd {
        exec: usize,
        odd: Odd,
    },
    ListKids(usize),
    Register {
        instance: usize,
        caps: Vec<String>,
    },
    Caps(usize),
}

/// A signal to send: to the known waitpoint `pick` (modulo how many), or a retry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Send {
    pub pick: usize,
    pub name: String,
    pub token: Token,
    pub idem: bool,
    pub retry: bool,
}

/// How a broken caller goes wrong.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Odd {
    /// A suspend fenced with the right lease and attempt id but another attempt index.
    WrongAttempt,
    /// A suspend onto a pending waitpoint that was never created.
    GhostWaitpoint,
    /// The client's pending waitpoint created again.
    PendingAgain,
    /// The client's last rotation again, kid and secret: a no-op while it is current.
    Repeat,
    /// The client's last kid with another secret: a conflict while it is current.
    Conflict,
    /// A kid with a `:` in it.
    BadKid,
    /// A secret that is not hex.
    BadSecret,
    /// A grace past 2^53 - 1 milliseconds.
    BadGrace,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Token {
    Good,
    Forged,
    Missing,
}

/// What a client learned from its answers.
#[derive(Clone, Debug, Default)]
pub struct Memory {
    leases: BTreeMap<String, Fence>,
    pending: BTreeMap<String, String>,
    /// Waitpoints with their tokens: (execution, waitpoint, token), the latest last.
    tokens: Vec<(String, String, String)>,
    /// Signals sent with an idempotency key, the latest last.
    sent: Vec<Signal>,
    /// Per execution, the last kid and secret this client rotated in.
    kids: BTreeMap<String, (String, String)>,
}

/// How many waitpoints and signals a client keeps in mind.
const RECALL: usize = 6;

/// The workload's times, from the scenario's `[suspension]` section, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
struct Times {
    lease_ttl: u64,
    grace: u64,
    timeout: u64,
    clock: u64,
}

fn times(scenario: &Scenario) -> Times {
    let s = settings::<Suspension>(scenario);
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    Times {
        lease_ttl: ms(s.lease_ttl),
        grace: ms(s.grace),
        timeout: ms(s.timeout),
        clock: ms(s.clock).max(1),
    }
}

/// The model's parameters for `scenario`.
pub fn params(scenario: &Scenario) -> Params {
    Params {
        executions: scenario.workload.keys,
        slack: scenario.slack.as_millis() as u64,
        ..Params::default()
    }
}

impl Protocol for Suspension {
    const NAME: &'static str = "suspension";
    type Op = SuspOp;
    type Ret = SuspRet;
    type Model = Model;
    type Intent = Intent;
    type Memory = Memory;
    /// The `[suspension]` section.
    type Settings = SuspensionTimes;

    fn settings(section: &Section) -> Result<SuspensionTimes, scenario::Error> {
        settings::read(section)
    }

    fn draw(scenario: &Scenario, client: usize, n: usize, rng: &mut ChaCha8Rng) -> Intent {
        let w = &scenario.workload;
        let exec = rng.random_range(0..w.keys);
        let name = ["a", "b"][rng.random_range(0..2)].to_string();
        let send = |rng: &mut ChaCha8Rng| Send {
            pick: rng.random_range(0..RECALL),
            name: name.clone(),
            token: match rng.random_range(0..6) {
                0 => Token::Forged,
                1 => Token::Missing,
                _ => Token::Good,
            },
            idem: rng.random_bool(0.7),
            retry: rng.random_bool(0.3),
        };
        let what = match crate::plan::pick(&w.mix, rng) {
            "claim" => What::Claim(exec),
            "reclaim" => What::Reclaim(exec),
            "renew" => What::Renew(exec),
            "mark_expired" => What::MarkExpired(exec),
            "create_pending" => What::CreatePending(exec),
            "suspend" => What::Suspend {
                exec,
                pending: rng.random_bool(0.4),
                condition: Condition {
                    names: [vec![], vec!["a".into()], vec!["a".into(), "b".into()]]
                        [rng.random_range(0..3)]
                    .clone(),
                    mode: [Mode::Any, Mode::All, Mode::Count(2)][rng.random_range(0..3)],
                },
                timeout: [
                    None,
                    Some(Behavior::Fail),
                    Some(Behavior::AutoResume),
                    Some(Behavior::Escalate),
                    Some(Behavior::Cancel),
                    Some(Behavior::Expire),
                ][rng.random_range(0..6)],
            },
            "deliver" => What::Deliver(send(rng)),
            "buffer" => What::Buffer(send(rng)),
            "resume" => What::Resume(exec),
            "expire_suspension" => What::ExpireSuspension(exec),
            "close_waitpoint" => What::Close(rng.random_range(0..RECALL)),
            "rotate" => What::Rotate(exec),
            "rotate_odd" => What::Odd {
                exec,
                odd: [
                    Odd::Repeat,
                    Odd::Conflict,
                    Odd::BadKid,
                    Odd::BadSecret,
                    Odd::BadGrace,
                ][rng.random_range(0..5)],
            },
            "suspend_odd" => What::Odd {
                exec,
                odd: [Odd::WrongAttempt, Odd::GhostWaitpoint, Odd::PendingAgain]
                    [rng.random_range(0..3)],
            },
            "list_kids" => What::ListKids(exec),
            "register" => What::Register {
                instance: rng.random_range(0..2),
                caps: [
                    vec!["gpu".into()],
                    vec!["gpu".into(), "cpu".into()],
                    vec!["bad cap".into()],
                ][rng.random_range(0..3)]
                .clone(),
            },
            "caps" => What::Caps(rng.random_range(0..2)),
            other => unreachable!("scenario validation admits no suspension operation {other:?}"),
        };
        Intent {
            client,
            n,
            what,
            times: times(scenario),
        }
    }

    fn adopt(scenario: &Scenario, intent: Intent) -> Intent {
        Intent {
            times: times(scenario),
            ..intent
        }
    }

    fn op(memory: &Memory, intent: &Intent) -> SuspOp {
        let t = &intent.times;
        let now = match turmoil::sim_elapsed() {
            Some(sim) => sim.as_millis() as u64 / t.clock * t.clock,
            // Live mode: the machine's clock, which a server on loopback reads too; the
            // backend tells the history when the server applied the operation.
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64,
        };
        build(memory, intent, now)
    }

    fn learn(memory: &mut Memory, op: &SuspOp, ret: &SuspRet) {
        learn(memory, op, ret)
    }

    /// Fencing first (near-linear), then linearizability per execution against the model.
    fn check(scenario: &Scenario, history: &History<SuspOp, SuspRet>) -> Verdict {
        let ops = history.operations();
        if let Err(v) = check::fences(&ops) {
            return Verdict::Violation(v);
        }
        linearizable(&Model::new(params(scenario)), &ops, &Default::default())
    }

    fn answers() -> Vec<(&'static str, &'static str)> {
        ANSWERS.to_vec()
    }

    /// An OK answer by the status word among its fields (`resumed`, `noop`, ...), if any.
    fn answered(op: &SuspOp, ret: &SuspRet) -> Vec<(&'static str, String)> {
        let name = OPERATION_NAMES
            .iter()
            .find(|n| op.to_string().split(' ').next() == Some(n.1))
            .map_or("unnamed", |n| n.0);
        let answer = match ret {
            SuspRet::Ok(fields) => fields
                .iter()
                .find(|f| STATUS.contains(&f.as_str()))
                .map_or("ok".to_string(), |f| f.clone()),
            SuspRet::AlreadySatisfied(_) => "already_satisfied".into(),
            SuspRet::Duplicate(_) => "duplicate".into(),
            SuspRet::Err(code, _) => code.clone(),
            SuspRet::ScriptError => "script_error".into(),
            SuspRet::NotConnected => return Vec::new(),
        };
        vec![(name, answer)]
    }

    fn operations() -> Vec<&'static str> {
        vec![
            "claim",
            "reclaim",
            "renew",
            "mark_expired",
            "create_pending",
            "suspend",
            "deliver",
            "buffer",
            "resume",
            "expire_suspension",
            "close_waitpoint",
            "rotate",
            "rotate_odd",
            "suspend_odd",
            "list_kids",
            "register",
            "caps",
        ]
    }
}

/// Each operation's name, and the first word of its text form.
const OPERATION_NAMES: &[(&str, &str)] = &[
    ("claim", "claim"),
    ("reclaim", "reclaim"),
    ("renew", "renew"),
    ("mark_expired", "mark-expired"),
    ("create_pending", "create-pending"),
    ("suspend", "suspend"),
    ("deliver", "deliver"),
    ("buffer", "buffer"),
    ("resume", "resume"),
    ("expire_suspension", "expire-suspension"),
    ("close_waitpoint", "close"),
    ("rotate", "rotate"),
    ("list_kids", "list-kids"),
    ("register", "register"),
    ("caps", "caps"),
];

/// The status words of OK answers, which tell one outcome from another.
const STATUS: &[&str] = &[
    "initial",
    "resumed",
    "reclaim",
    "already_closed",
    "no_op",
    "appended_to_waitpoint",
    "resume_condition_satisfied",
    "buffered_for_pending_waitpoint",
    "registered",
    "gone",
    "marked_expired",
    "waiting",
    "not_suspended_cleaned",
    "no_active_suspension_cleaned",
    "not_yet_due",
    "auto_resume",
    "escalate",
    "cancel",
    "expire",
    "fail",
    "noop",
    "rotated",
];

/// Every answer of the suspension model (the Lua's), by operation.
const ANSWERS: &[(&str, &str)] = &[
    ("claim", "initial"),
    ("claim", "resumed"),
    ("claim", "execution_not_eligible"),
    ("reclaim", "reclaim"),
    ("reclaim", "execution_not_reclaimable"),
    ("reclaim", "max_retries_exhausted"),
    ("renew", "ok"),
    ("renew", "lease_expired"),
    ("renew", "stale_lease"),
    ("renew", "execution_not_active"),
    ("mark_expired", "marked_expired"),
    ("mark_expired", "already_satisfied"),
    ("create_pending", "ok"),
    ("create_pending", "no_active_lease"),
    ("create_pending", "stale_lease"),
    ("create_pending", "waitpoint_already_exists"),
    ("create_pending", "execution_not_active"),
    ("create_pending", "hmac_secret_not_initialized"),
    ("suspend", "ok"),
    ("suspend", "already_satisfied"),
    ("suspend", "already_suspended"),
    ("suspend", "invalid_lease_for_suspend"),
    ("suspend", "invalid_waitpoint_for_execution"),
    ("suspend", "lease_expired"),
    ("suspend", "pending_waitpoint_expired"),
    ("suspend", "stale_lease"),
    ("suspend", "waitpoint_not_found"),
    ("suspend", "waitpoint_not_pending"),
    ("suspend", "execution_not_active"),
    ("suspend", "hmac_secret_not_initialized"),
    ("deliver", "no_op"),
    ("deliver", "appended_to_waitpoint"),
    ("deliver", "resume_condition_satisfied"),
    ("deliver", "duplicate"),
    ("deliver", "invalid_token"),
    ("deliver", "target_not_signalable"),
    ("deliver", "waitpoint_closed"),
    ("deliver", "waitpoint_not_found"),
    ("deliver", "waitpoint_pending_use_buffer_script"),
    ("deliver", "missing_token"),
    ("deliver", "token_expired"),
    ("buffer", "buffered_for_pending_waitpoint"),
    ("buffer", "duplicate"),
    ("buffer", "waitpoint_closed"),
    ("buffer", "waitpoint_not_found"),
    ("buffer", "invalid_token"),
    ("buffer", "missing_token"),
    ("buffer", "token_expired"),
    ("resume", "waiting"),
    ("resume", "execution_not_suspended"),
    ("expire_suspension", "not_suspended_cleaned"),
    ("expire_suspension", "no_active_suspension_cleaned"),
    ("expire_suspension", "not_yet_due"),
    ("expire_suspension", "auto_resume"),
    ("expire_suspension", "escalate"),
    ("expire_suspension", "cancel"),
    ("expire_suspension", "expire"),
    ("expire_suspension", "fail"),
    ("expire_suspension", "script_error"),
    ("close_waitpoint", "ok"),
    ("close_waitpoint", "already_closed"),
    ("close_waitpoint", "waitpoint_not_found"),
    ("rotate", "rotated"),
    ("rotate", "noop"),
    ("rotate", "rotation_conflict"),
    ("rotate", "invalid_kid"),
    ("rotate", "invalid_secret_hex"),
    ("rotate", "invalid_grace_ms"),
    ("list_kids", "ok"),
    ("register", "registered"),
    ("register", "duplicate_instance"),
    ("register", "invalid_capabilities"),
    ("caps", "ok"),
    ("caps", "gone"),
];

/// The fence the client holds of execution `eid`, or one that fences nothing.
fn fence_of(memory: &Memory, eid: &String) -> Fence {
    memory.leases.get(eid).cloned().unwrap_or(Fence {
        lease: "none".into(),
        epoch: 0,
        attempt: 0,
        attempt_id: "none".into(),
    })
}

/// What a broken caller sends for `odd` on execution `exec`.
fn odd_op(memory: &Memory, intent: &Intent, exec: usize, odd: Odd, now: u64) -> SuspOp {
    let (c, n, t) = (intent.client, intent.n, &intent.times);
    let fresh = |prefix: &str| format!("{prefix}{c}.{n}");
    let eid = execution(exec).0;
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    let rotate = |kid: String, secret: String, grace: u64| SuspOp::Rotate {
        eid: eid.clone(),
        kid,
        secret,
        grace,
        now,
    };
    let suspend = |fence: Fence, wp: String, pending: bool| SuspOp::Suspend {
        fence,
        susp: fresh("S"),
        wp,
        pending,
        condition: Condition {
            names: vec!["a".into()],
            mode: Mode::All,
        },
        timeout_at: None,
        behavior: Behavior::Fail,
        eid: eid.clone(),
        now,
    };
    let kid = fresh("k");
    let (last_kid, last_secret) =
        (memory.kids.get(&eid).cloned()).unwrap_or_else(|| (kid.clone(), hex(&kid)));
    match odd {
        Odd::WrongAttempt => {
            let fence = fence_of(memory, &eid);
            let attempt = fence.attempt + 1;
            suspend(Fence { attempt, ..fence }, fresh("W"), false)
        }
        Odd::GhostWaitpoint => suspend(fence_of(memory, &eid), fresh("W-ghost"), true),
        Odd::PendingAgain => SuspOp::CreatePending {
            attempt: fence_of(memory, &eid).attempt,
            wp: (memory.pending.get(&eid).cloned()).unwrap_or_else(|| fresh("W")),
            expires_at: now + t.timeout,
            eid,
            now,
        },
        Odd::Repeat => rotate(last_kid, last_secret, t.grace),
        Odd::Conflict => rotate(last_kid, hex("other"), t.grace),
        Odd::BadKid => rotate(format!("{kid}:x"), hex(&kid), t.grace),
        Odd::BadSecret => rotate(kid, "not-hex".into(), t.grace),
        Odd::BadGrace => rotate(kid.clone(), hex(&kid), 1 << 53),
    }
}

/// The operation `intent` makes at time `now`, given `memory`.
fn build(memory: &Memory, intent: &Intent, now: u64) -> SuspOp {
    let (c, n, t) = (intent.client, intent.n, &intent.times);
    let id = |prefix: &str| format!("{prefix}{c}.{n}");
    let eid = |e: usize| execution(e).0;
    let worker = format!("w{c}");
    let fence = |e: &String| fence_of(memory, e);
    match &intent.what {
        What::Claim(e) => SuspOp::Claim {
            eid: eid(*e),
            worker,
            lease: id("L"),
            ttl: t.lease_ttl,
            now,
        },
        What::Reclaim(e) => SuspOp::Reclaim {
            eid: eid(*e),
            worker,
            lease: id("L"),
            ttl: t.lease_ttl,
            now,
        },
        What::Renew(e) => SuspOp::Renew {
            fence: fence(&eid(*e)),
            eid: eid(*e),
            ttl: t.lease_ttl,
            now,
        },
        What::MarkExpired(e) => SuspOp::MarkExpired { eid: eid(*e), now },
        What::CreatePending(e) => SuspOp::CreatePending {
            attempt: fence(&eid(*e)).attempt,
            eid: eid(*e),
            wp: id("W"),
            expires_at: now + t.timeout,
            now,
        },
        What::Suspend {
            exec,
            pending,
            condition,
            timeout,
        } => {
            let e = eid(*exec);
            let parked = memory.pending.get(&e).filter(|_| *pending);
            SuspOp::Suspend {
                fence: fence(&e),
                susp: id("S"),
                wp: parked.cloned().unwrap_or_else(|| id("W")),
                pending: parked.is_some(),
                condition: condition.clone(),
                timeout_at: timeout.map(|_| now + t.timeout),
                behavior: timeout.unwrap_or(Behavior::Fail),
                eid: e,
                now,
            }
        }
        What::Deliver(s) => SuspOp::Deliver(signal(memory, s, &id, now)),
        What::Buffer(s) => SuspOp::Buffer(signal(memory, s, &id, now)),
        What::Resume(e) => SuspOp::Resume { eid: eid(*e), now },
        What::ExpireSuspension(e) => SuspOp::ExpireSuspension { eid: eid(*e), now },
        What::Close(pick) => match memory.tokens.get(pick % memory.tokens.len().max(1)) {
            Some((e, wp, _)) => {
                let pending = memory.pending.values().any(|p| p == wp);
                let reason = if pending {
                    "never_committed"
                } else {
                    "proactive_close"
                };
                SuspOp::CloseWaitpoint {
                    eid: e.clone(),
                    wp: wp.clone(),
                    reason: reason.into(),
                    now,
                }
            }
            None => SuspOp::CloseWaitpoint {
                eid: eid(0),
                wp: "W-none".into(),
                reason: "proactive_close".into(),
                now,
            },
        },
        What::Rotate(e) => {
            let kid = id("k");
            let secret = kid.bytes().map(|b| format!("{b:02x}")).collect();
            SuspOp::Rotate {
                eid: eid(*e),
                kid,
                secret,
                grace: t.grace,
                now,
            }
        }
        What::Odd { exec, odd } => odd_op(memory, intent, *exec, *odd, now),
        What::ListKids(e) => SuspOp::ListKids { eid: eid(*e), now },
        What::Register { instance, caps } => SuspOp::Register {
            instance: format!("i{instance}"),
            worker,
            caps: caps.clone(),
            ttl: (2 * t.lease_ttl).max(1000),
            now,
        },
        What::Caps(instance) => SuspOp::Caps {
            instance: format!("i{instance}"),
            now,
        },
    }
}

/// A signal: a retry of one sent before (a new signal id, the same idempotency key), or a
/// new one to a waitpoint the client knows, with its token good, forged or missing.
fn signal(memory: &Memory, s: &Send, id: &dyn Fn(&str) -> String, now: u64) -> Signal {
    if let Some(first) = memory
        .sent
        .get(s.pick % memory.sent.len().max(1))
        .filter(|_| s.retry)
    {
        return Signal {
            sig: id("G"),
            now,
            ..first.clone()
        };
    }
    let (eid, wp, good) = memory
        .tokens
        .get(s.pick % memory.tokens.len().max(1))
        .cloned()
        .unwrap_or_else(|| {
            (
                execution(0).0,
                "W-none".into(),
                format!("k:{}", "0".repeat(40)),
            )
        });
    let token = match s.token {
        Token::Good => good,
        Token::Forged => format!(
            "{}:{}",
            good.split(':').next().unwrap_or("k"),
            "0".repeat(40)
        ),
        Token::Missing => String::new(),
    };
    Signal {
        eid,
        wp,
        token,
        name: s.name.clone(),
        sig: id("G"),
        idem: if s.idem { id("I") } else { String::new() },
        now,
    }
}

fn learn(memory: &mut Memory, op: &SuspOp, ret: &SuspRet) {
    match (op, ret) {
        (SuspOp::Claim { eid, .. } | SuspOp::Reclaim { eid, .. }, SuspRet::Ok(f))
            if f.len() >= 5 =>
        {
            let fence = Fence {
                lease: f[0].clone(),
                epoch: f[1].parse().unwrap_or(0),
                attempt_id: f[3].clone(),
                attempt: f[4].parse().unwrap_or(0),
            };
            memory.leases.insert(eid.clone(), fence);
        }
        (SuspOp::CreatePending { eid, wp, .. }, SuspRet::Ok(f)) if f.len() >= 3 => {
            memory.pending.insert(eid.clone(), wp.clone());
            memory.tokens.push((eid.clone(), wp.clone(), f[2].clone()));
        }
        (
            SuspOp::Suspend {
                eid, wp, pending, ..
            },
            SuspRet::Ok(f) | SuspRet::AlreadySatisfied(f),
        ) if f.len() >= 4 => {
            if *pending {
                memory.pending.remove(eid);
            } else {
                memory.tokens.push((eid.clone(), wp.clone(), f[3].clone()));
            }
        }
        (
            SuspOp::Rotate {
                eid, kid, secret, ..
            },
            SuspRet::Ok(f),
        ) if f.first().is_some_and(|w| w == "rotated") => {
            memory
                .kids
                .insert(eid.clone(), (kid.clone(), secret.clone()));
        }
        (SuspOp::Deliver(s) | SuspOp::Buffer(s), _) if !s.idem.is_empty() => {
            memory.sent.push(s.clone())
        }
        _ => {}
    }
    keep(&mut memory.tokens);
    keep(&mut memory.sent);
}

/// The latest [`RECALL`] only.
fn keep<T>(v: &mut Vec<T>) {
    let extra = v.len().saturating_sub(RECALL);
    v.drain(..extra);
}

impl fmt::Display for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}#{} {:?}", self.client, self.n, self.what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_keeps_the_key_and_takes_a_new_id() {
        let mut memory = Memory::default();
        let t = Times {
            lease_ttl: 100,
            grace: 50,
            timeout: 200,
            clock: 1,
        };
        let send = Send {
            pick: 0,
            name: "a".into(),
            token: Token::Good,
            idem: true,
            retry: false,
        };
        let first = Intent {
            client: 1,
            n: 1,
            what: What::Deliver(send.clone()),
            times: t,
        };
        let op = build(&memory, &first, 5);
        learn(
            &mut memory,
            &op,
            &SuspRet::Err("invalid_token".into(), vec![]),
        );
        let again = Intent {
            client: 1,
            n: 2,
            what: What::Deliver(Send {
                retry: true,
                ..send
            }),
            times: t,
        };
        let (SuspOp::Deliver(a), SuspOp::Deliver(b)) = (op, build(&memory, &again, 9)) else {
            panic!("signals")
        };
        assert_eq!((a.idem, a.wp), (b.idem, b.wp));
        assert_ne!(a.sig, b.sig);
        assert_eq!(b.now, 9);
    }
}

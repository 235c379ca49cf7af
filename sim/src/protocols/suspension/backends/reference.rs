//! `suspension/reference`: the suspension protocol as one server in the simulation, and its
//! mutants.
//!
//! # Design
//!
//! One server, `servers[0]`, holds every execution's partition and applies each operation
//! with the protocol's function ([`SuspensionModel::apply`]), at the time the operation carries
//! (its caller stamped it from the simulated clock; FlowFabric's Lua reads the server's
//! `TIME` instead). Tokens are minted as `<kid>:<40 hex>`, a keyed BLAKE3 digest of
//! `waitpoint_id|waitpoint_key|created_at` (FlowFabric: HMAC-SHA1).
//!
//! Every operation that changes the state is appended to an operation log on `node.disk`
//! and synced before it is answered; a restarted server replays the log. Requests carry the
//! client's name and a sequence number; the client resends an unanswered request on a fresh
//! connection with the same number, and a table of each client's last answer (rebuilt from
//! the log) answers a retry instead of applying it again.
//!
//! # Mutants
//!
//! [`Bug`] plants one bug; [`super::all`] registers each as a backend under its name.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use squall_models::suspension::{Fence, Params, Phase, State, SuspOp, SuspRet, SuspensionModel};
use squall_models::{Answer, Model};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::spawn_local;
// tokio's Instant: inside a simulation turmoil drives it, so it reads simulated time.
use tokio::time::{sleep, timeout, timeout_at, Instant};
use turmoil::net::TcpListener;

use super::SuspClient;
use crate::world::frame;
use crate::world::{Node, PORT};

/// A planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// Renew and suspend take any fence for the current lease's.
    FenceSkipped,
    /// Reclaim leaves the lease epoch where it was.
    EpochNotBumped,
    /// A signal with a bad token takes effect as if its token were good, then is refused.
    SignalBeforeHmac,
    /// A signal's effect is synced first, its idempotency record (and the request's answer)
    /// a moment later.
    DedupAfterEffect,
    /// The suspension-timeout scan takes a suspension its timeout closed for an open one.
    ExpiryNotIdempotent,
    /// A retired key's token is refused at `expires_at` itself.
    GraceOffByOne,
    /// Rotating the current kid in with another secret replaces the secret (a no-op answer)
    /// instead of refusing with `rotation_conflict`: tokens already minted stop validating.
    RotationOverwrite,
    /// A rotation's grace is not checked against 2^53 - 1: it is taken as sent.
    GraceUnchecked,
}

impl Bug {
    pub const ALL: [Bug; 8] = [
        Bug::FenceSkipped,
        Bug::EpochNotBumped,
        Bug::SignalBeforeHmac,
        Bug::DedupAfterEffect,
        Bug::ExpiryNotIdempotent,
        Bug::GraceOffByOne,
        Bug::RotationOverwrite,
        Bug::GraceUnchecked,
    ];

    /// The backend's name on the command line, and its bug in one line.
    fn named(self) -> (&'static str, &'static str) {
        match self {
            Bug::FenceSkipped => (
                "suspension/mutant-fence-skipped",
                "renew and suspend skip the lease id / epoch fence check",
            ),
            Bug::EpochNotBumped => (
                "suspension/mutant-epoch-not-bumped",
                "reclaim keeps the old lease epoch instead of incrementing it",
            ),
            Bug::SignalBeforeHmac => (
                "suspension/mutant-signal-before-hmac",
                "a signal takes effect before its HMAC token is checked",
            ),
            Bug::DedupAfterEffect => (
                "suspension/mutant-dedup-after-effect",
                "a signal's idempotency record is synced after its effect; a crash between loses it",
            ),
            Bug::ExpiryNotIdempotent => (
                "suspension/mutant-expiry-not-idempotent",
                "a repeated suspension-timeout scan applies the timeout behaviour again",
            ),
            Bug::GraceOffByOne => (
                "suspension/mutant-grace-off-by-one",
                "a retired HMAC key stops validating one millisecond early (at expires_at)",
            ),
            Bug::RotationOverwrite => (
                "suspension/mutant-rotation-overwrite",
                "rotating the current kid with another secret replaces it instead of refusing",
            ),
            Bug::GraceUnchecked => (
                "suspension/mutant-grace-unchecked",
                "a rotation's grace is taken as sent, past 2^53 - 1 too",
            ),
        }
    }

    /// The backend's name on the command line.
    pub fn backend(self) -> &'static str {
        self.named().0
    }

    /// The bug, in one line.
    pub fn about(self) -> &'static str {
        self.named().1
    }
}

/// The reference backend, or with `bug` one of its mutants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reference {
    pub bug: Option<Bug>,
    pub params: Params,
}

/// The log's file: one JSON record a line.
const LOG: &str = "log";
/// How long the dedup-after-effect mutant takes between its two syncs.
const WINDOW: Duration = Duration::from_millis(100);

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "msg")]
enum Msg {
    Request {
        client: String,
        seq: u64,
        op: SuspOp,
    },
    Reply {
        seq: u64,
        ret: SuspRet,
    },
}

/// A logged operation: applied on replay as it was applied live. `client` and `seq` name
/// the request it answered, if it answered one.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Record {
    op: SuspOp,
    how: How,
    client: Option<String>,
    seq: u64,
    ret: SuspRet,
}

/// How a record applies; the dedup-after-effect mutant splits a signal in two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum How {
    Whole,
    /// The effect, without the idempotency record.
    Effect,
    /// The idempotency record alone.
    Dedup,
}

struct Server {
    node: Node,
    backend: Reference,
    model: SuspensionModel,
    state: RefCell<State>,
    /// Each client's last request and its answer.
    done: RefCell<BTreeMap<String, (u64, SuspRet)>>,
}

/// Serve as `node` until the host crashes.
pub async fn serve(node: Node, backend: Reference) -> turmoil::Result {
    let model = SuspensionModel::new(backend.params.clone());
    let server = Rc::new(Server {
        state: RefCell::new(model.init()),
        done: RefCell::new(BTreeMap::new()),
        node,
        backend,
        model,
    });
    server.recover()?;
    let listener = TcpListener::bind(("0.0.0.0", PORT)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        spawn_local(server.clone().session(frame::Conn::new(stream)));
    }
}

/// A token: `<kid>:` and 40 hex digits of a BLAKE3 digest keyed by the secret.
fn mint(kid: &str, secret: &str, wp: &str, key: &str, at: u64) -> String {
    let key32 = *blake3::hash(secret.as_bytes()).as_bytes();
    let digest = blake3::keyed_hash(&key32, format!("{wp}|{key}|{at}").as_bytes());
    format!("{kid}:{}", &digest.to_hex()[..40])
}

impl Server {
    fn recover(&self) -> turmoil::Result {
        for record in self.node.disk.records(LOG)? {
            let r: Record = serde_json::from_slice(&record)?;
            self.replay(&r.op, r.how);
            if let Some(client) = r.client {
                self.done.borrow_mut().insert(client, (r.seq, r.ret));
            }
        }
        Ok(())
    }

    /// Serve one connection. Requests are handled side by side, as they arrive (a repeated
    /// one may come while the first is still under way), and each reply is sent when ready.
    async fn session(self: Rc<Self>, mut conn: frame::Conn<Msg>) {
        let (tx, mut replies) = mpsc::unbounded_channel();
        loop {
            tokio::select! {
                msg = conn.recv() => {
                    let Some(Msg::Request { client, seq, op }) = msg else {
                        return;
                    };
                    spawn_local(self.clone().answer(client, seq, op, tx.clone()));
                }
                Some(reply) = replies.recv() => {
                    let sent = timeout(self.node.timeout / 4, conn.send(&reply)).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        return;
                    }
                }
            }
        }
    }

    /// Answer request `seq` of `client` into `replies`; nothing for a request older than
    /// the client's last.
    async fn answer(
        self: Rc<Self>,
        client: String,
        seq: u64,
        op: SuspOp,
        replies: mpsc::UnboundedSender<Msg>,
    ) {
        let prior = self.done.borrow().get(&client).cloned();
        let ret = match prior {
            Some((s, _)) if s > seq => return,
            Some((s, ret)) if s == seq => ret,
            _ => self.request(&client, seq, &op).await,
        };
        // BUGGIFY: a slow reply; the client may resend, and dedup answers it.
        if self.node.buggify("suspension/delay-reply") {
            sleep(self.node.timeout / 2).await;
        }
        let _ = replies.send(Msg::Reply { seq, ret });
    }

    /// Apply a client's request, durably, and remember its answer.
    async fn request(&self, client: &str, seq: u64, op: &SuspOp) -> SuspRet {
        let op = match self.backend.bug {
            Some(bug) => bug.rewrite(&self.state.borrow(), op),
            None => op.clone(),
        };
        let ret = match self.backend.bug.filter(|b| b.splits(&op)) {
            Some(_) => Bug::apply_split(self, client, seq, &op).await,
            None => {
                let before = self.state.borrow().clone();
                let ret = self.apply(&op);
                if *self.state.borrow() != before {
                    self.log(&op, How::Whole, Some((client, seq)), &ret);
                }
                ret
            }
        };
        self.done
            .borrow_mut()
            .insert(client.into(), (seq, ret.clone()));
        ret
    }

    fn log(&self, op: &SuspOp, how: How, request: Option<(&str, u64)>, ret: &SuspRet) {
        let record = Record {
            op: op.clone(),
            how,
            client: request.map(|r| r.0.to_string()),
            seq: request.map_or(0, |r| r.1),
            ret: ret.clone(),
        };
        let line = serde_json::to_vec(&record).expect("a record serialises");
        self.node.disk.append_record(LOG, &line);
        self.node.disk.sync();
    }

    /// Apply a record to the state; the operation's answer.
    fn replay(&self, op: &SuspOp, how: How) -> SuspRet {
        match how {
            How::Whole => self.apply(op),
            half => Bug::replay_half(self, op, half),
        }
    }

    /// Apply `op` to the state with the protocol's function, bug included; its answer.
    fn apply(&self, op: &SuspOp) -> SuspRet {
        let before = self.state.borrow().clone();
        let (after, ret) = match self.backend.bug {
            Some(bug) => bug.apply(&self.model, &before, op),
            None => self.model.apply(&before, op, Some(&mint)),
        };
        *self.state.borrow_mut() = after;
        ret
    }
}

/// The planted bugs' own code: what each changes in the reference's way of applying an
/// operation. Kept apart, so that what the reference does is the code outside.
impl Bug {
    /// The operation the server applies: the fence-skipped mutant's takes the current
    /// lease's fence for the one sent.
    fn rewrite(self, state: &State, op: &SuspOp) -> SuspOp {
        let mut op = op.clone();
        if self != Bug::FenceSkipped {
            return op;
        }
        if let SuspOp::Renew { eid, fence, .. } | SuspOp::Suspend { eid, fence, .. } = &mut op {
            let current = state.parts.get(eid.as_str()).and_then(|p| {
                let e = &p.exec;
                let (attempt, attempt_id) = e.attempt.clone()?;
                Some(Fence {
                    lease: e.lease.clone(),
                    epoch: e.epoch,
                    attempt,
                    attempt_id,
                })
            });
            if let Some(f) = current {
                *fence = f;
            }
        }
        op
    }

    /// Whether the bug syncs `op`'s effect and its idempotency record apart: a signal with
    /// an idempotency key, under `DedupAfterEffect`.
    fn splits(self, op: &SuspOp) -> bool {
        let idem = match op {
            SuspOp::Deliver(s) | SuspOp::Buffer(s) => !s.idem.is_empty(),
            _ => false,
        };
        self == Bug::DedupAfterEffect && idem
    }

    /// The dedup-after-effect mutant's request: the effect synced, then the idempotency
    /// record; whatever arrives between the two sees no record.
    async fn apply_split(server: &Server, client: &str, seq: u64, op: &SuspOp) -> SuspRet {
        let before = server.state.borrow().clone();
        let ret = Bug::replay_half(server, op, How::Effect);
        if *server.state.borrow() != before {
            server.log(op, How::Effect, None, &ret);
            sleep(WINDOW).await;
            Bug::replay_half(server, op, How::Dedup);
            server.log(op, How::Dedup, Some((client, seq)), &ret);
        }
        ret
    }

    /// Half of a split signal: its effect without its idempotency record, or the record.
    fn replay_half(server: &Server, op: &SuspOp, how: How) -> SuspRet {
        let (SuspOp::Deliver(s) | SuspOp::Buffer(s)) = op else {
            return server.apply(op);
        };
        let dedup = (s.wp.clone(), s.idem.clone());
        let known =
            |state: &State| (state.parts.get(&s.eid)).is_some_and(|p| p.dedup.contains_key(&dedup));
        if how == How::Dedup {
            if let Some(p) = server.state.borrow_mut().parts.get_mut(&s.eid) {
                p.dedup.entry(dedup).or_insert((s.sig.clone(), s.now));
            }
            return SuspRet::Ok(vec![]);
        }
        let was = known(&server.state.borrow());
        let ret = server.apply(op);
        if !was {
            if let Some(p) = server.state.borrow_mut().parts.get_mut(&s.eid) {
                p.dedup.remove(&dedup);
            }
        }
        ret
    }

    /// `op` applied to `before` by the protocol's function, with the bug.
    fn apply(self, model: &SuspensionModel, before: &State, op: &SuspOp) -> (State, SuspRet) {
        let mut prior = before.clone();
        if let (Bug::ExpiryNotIdempotent, SuspOp::ExpireSuspension { eid, now }) = (self, op) {
            Bug::reopen(&mut prior, eid, *now);
        }
        let (mut after, mut ret) = model.apply(&prior, op, Some(&mint));
        match (self, op) {
            (Bug::EpochNotBumped, SuspOp::Reclaim { eid, .. }) => {
                if let (SuspRet::Ok(f), Some(p)) = (&mut ret, after.parts.get_mut(eid)) {
                    p.exec.epoch -= 1;
                    f[1] = p.exec.epoch.to_string();
                }
            }
            (Bug::SignalBeforeHmac, SuspOp::Deliver(s) | SuspOp::Buffer(s)) => {
                if let SuspRet::Err(code, _) = &ret {
                    if code.contains("token") {
                        // The signal goes through with the waitpoint's own token; the
                        // answer is still the refusal.
                        let good = before
                            .parts
                            .get(&s.eid)
                            .and_then(|p| p.wps.get(&s.wp)?.token.clone());
                        if let Some(token) = good {
                            let mut forged = op.clone();
                            if let SuspOp::Deliver(f) | SuspOp::Buffer(f) = &mut forged {
                                f.token = token;
                            }
                            after = model.apply(before, &forged, Some(&mint)).0;
                        }
                    }
                }
            }
            (Bug::GraceOffByOne, SuspOp::Deliver(s) | SuspOp::Buffer(s)) => {
                let kid = s.token.split(':').next().unwrap_or("");
                let keys = before.parts.get(&s.eid).map(|p| &p.keys);
                let retired_now = keys.is_some_and(|k| {
                    k.current.as_deref() != Some(kid) && k.expires.get(kid) == Some(&s.now)
                });
                if retired_now && ret.is_ok() {
                    after = before.clone();
                    ret = SuspRet::Err("token_expired".into(), vec![]);
                }
            }
            (
                Bug::RotationOverwrite,
                SuspOp::Rotate {
                    eid, kid, secret, ..
                },
            ) if matches!(&ret, SuspRet::Err(code, _) if code == "rotation_conflict") => {
                if let Some(p) = after.parts.get_mut(eid) {
                    p.keys.secrets.insert(kid.clone(), secret.clone());
                }
                ret = SuspRet::Ok(vec!["noop".into(), kid.clone()]);
            }
            (
                Bug::GraceUnchecked,
                SuspOp::Rotate {
                    eid, grace, now, ..
                },
            ) if matches!(&ret, SuspRet::Err(code, _) if code == "invalid_grace_ms") => {
                // The rotation as if its grace passed the check, then that grace kept.
                let mut lax = op.clone();
                if let SuspOp::Rotate { grace: g, .. } = &mut lax {
                    *g = 0;
                }
                (after, ret) = model.apply(&prior, &lax, Some(&mint));
                let retired = match &ret {
                    SuspRet::Ok(f) => f.get(1).filter(|k| !k.is_empty()).cloned(),
                    _ => None,
                };
                if let (Some(p), Some(retired)) = (after.parts.get_mut(eid), retired) {
                    p.keys.expires.insert(retired, now.saturating_add(*grace));
                }
            }
            _ => {}
        }
        (after, ret)
    }

    /// The expiry-not-idempotent mutant: a suspension whose timeout has passed counts as
    /// open again, with its execution suspended.
    fn reopen(state: &mut State, eid: &str, now: u64) {
        let Some(p) = state.parts.get_mut(eid) else {
            return;
        };
        let e = &mut p.exec;
        let Some(s) = &mut e.susp else { return };
        if !s.open && s.behavior.is_some() && s.timeout_at.is_some_and(|t| t <= now) {
            s.open = true;
            e.wp = s.wp.clone();
            e.phase = Phase::Suspended;
        }
    }
}

/// A client: one request at a time, resent with the same sequence number until answered.
pub struct Client {
    node: Node,
    seq: u64,
    conn: Option<frame::Conn<Msg>>,
}

impl Client {
    pub fn new(node: Node) -> Client {
        Client {
            node,
            seq: 0,
            conn: None,
        }
    }
}

#[async_trait(?Send)]
impl SuspClient for Client {
    async fn call(&mut self, op: &SuspOp) -> Result<SuspRet, String> {
        self.seq += 1;
        let seq = self.seq;
        let retry = self.node.timeout / 4;
        let server = self.node.servers[0].clone();
        let request = Msg::Request {
            client: self.node.name.clone(),
            seq,
            op: op.clone(),
        };
        loop {
            // Out of `self` while in use: a call cancelled mid-write drops its connection.
            let conn = match self.conn.take() {
                Some(c) => Some(c),
                None => timeout(retry, frame::Conn::connect(&server))
                    .await
                    .ok()
                    .and_then(Result::ok),
            };
            let Some(mut conn) = conn else {
                sleep(retry).await;
                continue;
            };
            if !matches!(timeout(retry, conn.send(&request)).await, Ok(Ok(()))) {
                continue;
            }
            let deadline = Instant::now() + retry;
            while let Ok(Some(msg)) = timeout_at(deadline, conn.recv()).await {
                if let Msg::Reply { seq: s, ret } = msg {
                    if s == seq {
                        self.conn = Some(conn);
                        return Ok(ret);
                    }
                }
            }
        }
    }
}

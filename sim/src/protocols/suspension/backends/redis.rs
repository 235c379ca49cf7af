//! `suspension/flowfabric-redis`: FlowFabric's own Lua library (`ff-script` 0.2.0, v6) in a
//! real Redis or Valkey, reached with `FCALL` over a socket. Live mode only.
//!
//! Each operation is the FCALLs FlowFabric's engine and SDK make for it, with the KEYS and
//! ARGV layouts of the Lua's headers (`ff-script`'s own wrapper for
//! `ff_create_pending_waitpoint` passes three KEYS where the Lua reads four, the HMAC
//! keystore last; this client passes four). Execution `eN` lives in partition
//! `{<namespace>:p:N}`, lane `default`: the run's namespace is in every hash tag, and the
//! Lua builds the keys it does not take as KEYS from the hash tag of the execution's core
//! key, so every key a run reads or writes names its namespace. Worker registration is
//! ff-sdk's connect preamble, done with plain commands under the tag `{<namespace>:w}` (v6
//! has no registration function). Answers are the Lua's, except that the kid listing is
//! sorted by kid (the Lua lists it in hash order).
//!
//! Time is the server's (`TIME` inside each function): each FCALL runs in a `MULTI` between
//! two `TIME`s, and the history gets the millisecond of the first (claims and renewals tell
//! it exactly: their answer is `now + ttl`). An operation whose answer was lost may still
//! have run, later than its caller stamped it: every transaction also adds an entry to a
//! stream of the client's own under the namespace (`XADD ... *` just before the FCALLs,
//! whose entry id is the server's millisecond), naming the operation; on its next call the
//! client reads it back, and if the lost operation ran, the history gets the millisecond
//! it ran at ([`Caller::settled`]).
//!
//! The library itself ([`Library`]) is global on a server: squall loads it only if it is
//! absent, uses it if it is byte for byte `ff-script` 0.2.0's, refuses a different library
//! of that name, and removes it at the end only if it loaded it.

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::Value;
use squall_models::suspension::{
    execution, waitpoint_key, Condition, Fence, Mode, Ms, Params, Signal, SuspOp, SuspRet,
    SuspensionModel,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::SuspClient;
use crate::live;
use crate::protocol::Caller;
use crate::protocols::suspension::{params, Suspension};
use crate::scenario::Scenario;

const LANE: &str = "default";
/// How long a claim grant lives; a grant is consumed by the call right after it.
const GRANT_TTL: &str = "60000";
/// The library's name, as its source's first line says (`#!lua name=flowfabric`).
const LIBRARY: &str = "flowfabric";

/// A client of a server holding the library, its keys in one namespace. It connects on its
/// first call, and again after a lost connection.
pub struct Redis {
    url: String,
    timeout: Duration,
    conn: Option<MultiplexedConnection>,
    model: SuspensionModel,
    ns: String,
    /// The server's millisecond at the operation's last FCALL, once known.
    at: Option<u64>,
    /// The stream each transaction leaves its operation's number in, at the server's
    /// millisecond.
    record: String,
    /// Operations this client has begun; the latest one's number.
    begun: u64,
    /// The latest operation sent and not (yet) answered, with its number.
    open: Option<(u64, SuspOp)>,
    /// An operation whose outcome was lost, until the record tells whether it ran.
    lost: Option<(u64, SuspOp)>,
    /// The lost operation as sent and as it ran, learned during the latest call.
    settled: Option<(SuspOp, SuspOp)>,
}

/// Keys of execution `eid` in partition `tag`, as `ff-core`'s `keys.rs` names them.
struct Keys {
    eid: String,
    tag: String,
}

impl Keys {
    /// Execution `eid`'s keys in namespace `ns`: its partition tag `{p:N}` becomes
    /// `{<ns>:p:N}`.
    fn of(eid: &str, ns: &str) -> Keys {
        let n: usize = eid.trim_start_matches('e').parse().unwrap_or(usize::MAX);
        let tag = execution(n).1;
        Keys {
            eid: eid.to_string(),
            tag: format!("{{{ns}:{}", tag.trim_start_matches('{')),
        }
    }
    fn exec(&self, what: &str) -> String {
        format!("ff:exec:{}:{}:{what}", self.tag, self.eid)
    }
    fn idx(&self, what: &str) -> String {
        format!("ff:idx:{}:{what}", self.tag)
    }
    fn lane(&self, what: &str) -> String {
        self.idx(&format!("lane:{LANE}:{what}"))
    }
    fn wp(&self, wp: &str, what: &str) -> String {
        format!("ff:wp:{}:{wp}{what}", self.tag)
    }
    fn attempt(&self, index: &str) -> String {
        format!("ff:attempt:{}:{}:{index}", self.tag, self.eid)
    }
    fn stream_meta(&self, index: &str) -> String {
        format!("ff:stream:{}:{}:{index}:meta", self.tag, self.eid)
    }
    fn hmac(&self) -> String {
        format!("ff:sec:{}:waitpoint_hmac", self.tag)
    }
    fn workers(&self) -> String {
        self.idx(&format!("worker:{}:leases", self.eid))
    }
    /// The keys a claim and a resumed claim both pass: the five before the attempt's, then
    /// `attempt`, then the five after.
    fn claim(&self, attempt: &[String]) -> Vec<String> {
        let mut keys = vec![
            self.exec("core"),
            self.exec("claim_grant"),
            self.lane("eligible"),
            self.idx("lease_expiry"),
            self.workers(),
        ];
        keys.extend_from_slice(attempt);
        keys.extend([self.exec("lease:current"), self.exec("lease:history")]);
        keys.extend(self.tail());
        keys
    }
    /// The last three keys of every claim and reclaim.
    fn tail(&self) -> [String; 3] {
        [
            self.lane("active"),
            self.idx("attempt_timeout"),
            self.idx("execution_deadline"),
        ]
    }
    /// The keys `ff_suspend_execution` takes, for attempt `index` and waitpoint `wp`.
    fn suspension(&self, index: &str, wp: &str) -> [String; 17] {
        [
            self.exec("core"),
            self.attempt(index),
            self.exec("lease:current"),
            self.exec("lease:history"),
            self.idx("lease_expiry"),
            self.workers(),
            self.exec("suspension:current"),
            self.wp(wp, ""),
            self.wp(wp, ":signals"),
            self.idx("suspension_timeout"),
            self.idx("pending_waitpoint_expiry"),
            self.lane("active"),
            self.lane("suspended"),
            self.exec("waitpoints"),
            self.wp(wp, ":condition"),
            self.idx("attempt_timeout"),
            self.hmac(),
        ]
    }
}

/// The key pattern of namespace `ns`: every key with a hash tag `{<ns>:...}`.
fn pattern(ns: &str) -> String {
    format!("*{{{ns}:*")
}

impl Redis {
    /// A client of the library on the server at `url`, its keys in namespace `ns`; it
    /// connects on its first call, within `timeout`.
    pub fn new(url: &str, ns: &str, params: Params, timeout: Duration) -> Redis {
        Redis {
            url: url.to_string(),
            timeout,
            conn: None,
            model: SuspensionModel::new(params),
            ns: ns.to_string(),
            at: None,
            // One proxy a client: its URL names the client.
            record: format!("squall:ran:{{{ns}:c}}:{url}"),
            begun: 0,
            open: None,
            lost: None,
            settled: None,
        }
    }

    /// Remove the namespace's keys, then create the executions anew, runnable.
    pub async fn reset(&mut self) -> Result<(), String> {
        self.remove(&pattern(&self.ns.clone())).await?;
        for n in 0..self.model.params.executions {
            let k = Keys::of(&execution(n).0, &self.ns);
            let keys = [
                k.exec("core"),
                k.exec("payload"),
                k.exec("policy"),
                k.exec("tags"),
                k.lane("eligible"),
                format!("ff:noop:{}", k.tag),
                k.idx("execution_deadline"),
                k.idx("all_executions"),
            ];
            let args = [
                &k.eid,
                "squall",
                LANE,
                "task",
                "0",
                "squall",
                "",
                "",
                "",
                "",
                "",
                "",
                &n.to_string(),
            ];
            match self.fcall("ff_create_execution", &keys, &args).await? {
                SuspRet::Ok(_) => {}
                other => return Err(format!("ff_create_execution {}: {other}", k.eid)),
            }
        }
        Ok(())
    }

    /// Delete every key matching `pattern`; how many there were.
    async fn remove(&mut self, pattern: &str) -> Result<usize, String> {
        let keys = self.scan(pattern).await?;
        for key in &keys {
            self.cmd(redis::cmd("DEL").arg(key)).await?;
        }
        Ok(keys.len())
    }

    /// The keys matching `pattern`.
    async fn scan(&mut self, pattern: &str) -> Result<BTreeSet<String>, String> {
        let mut keys = BTreeSet::new();
        let mut cursor = "0".to_string();
        loop {
            let v = self
                .cmd(redis::cmd("SCAN").arg(&cursor).arg("MATCH").arg(pattern))
                .await?;
            let Value::Array(parts) = v else {
                return Err(format!("SCAN answered {v:?}"));
            };
            cursor = parts.first().map(text).unwrap_or_default();
            keys.extend(parts.get(1).map(strings).unwrap_or_default());
            if cursor == "0" {
                return Ok(keys);
            }
        }
    }

    /// Remove the namespaces runs on this machine left when their process died
    /// ([`live::leftover`]); no other key is touched.
    async fn remove_leftovers(&mut self) -> Result<(), String> {
        let namespaces: BTreeSet<String> = self
            .scan("*{squall_*")
            .await?
            .iter()
            .filter_map(|k| {
                k.split_once('{')?
                    .1
                    .split_once(':')
                    .map(|(ns, _)| ns.to_string())
            })
            .filter(|ns| live::leftover(ns))
            .collect();
        for ns in namespaces {
            self.remove(&pattern(&ns)).await?;
        }
        Ok(())
    }

    /// The server's time, in milliseconds.
    pub async fn time(&mut self) -> Result<u64, String> {
        let v = self.cmd(&mut redis::cmd("TIME")).await?;
        Ok(millis(&v))
    }

    /// The connection, made if there is none.
    async fn conn(&mut self) -> Result<&mut MultiplexedConnection, String> {
        if self.conn.is_none() {
            let client = redis::Client::open(self.url.as_str()).map_err(|e| e.to_string())?;
            let conn =
                tokio::time::timeout(self.timeout, client.get_multiplexed_async_connection())
                    .await
                    .map_err(|_| {
                        format!("no connection to {} within {:?}", self.url, self.timeout)
                    })?
                    .map_err(|e| e.to_string())?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    /// Send `query` (a command or a transaction); a lost connection is dropped, to be made
    /// again by the next call.
    async fn send<Q: Query>(&mut self, query: &Q) -> Result<Value, redis::RedisError> {
        let conn = match self.conn().await {
            Ok(conn) => conn,
            Err(e) => {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "connect",
                    e,
                )))
            }
        };
        let sent = query.send(conn).await;
        if let Err(e) = &sent {
            if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() {
                self.conn = None;
            }
        }
        sent
    }

    async fn cmd(&mut self, cmd: &mut redis::Cmd) -> Result<Value, String> {
        self.send(cmd).await.map_err(|e| e.to_string())
    }

    /// `calls` in one transaction, timed: their answers, a Lua error as
    /// [`SuspRet::ScriptError`]; `None` if a watched key changed (the transaction did
    /// nothing); a failed connection `Err`. `then`, if given, runs after them; its answer
    /// comes back too.
    ///
    /// The time kept is the server's millisecond the Lua read: the execution's
    /// `last_mutation_at` if the calls changed it (every mutation sets it to the Lua's
    /// `now`), else a `TIME` read just before them (the calls run within microseconds of
    /// it, but may have read the next millisecond: a live run is judged with a millisecond
    /// of slack, [`Scenario::judged_live`]).
    async fn transaction(
        &mut self,
        calls: &[Call],
        then: Option<redis::Cmd>,
    ) -> Result<(Option<Vec<SuspRet>>, Option<Value>), String> {
        let probe = || {
            let mut hget = redis::cmd("HGET");
            hget.arg(&calls[0].keys[0]).arg("last_mutation_at");
            hget
        };
        let mut pipe = redis::pipe();
        // The record's entry before the calls: its millisecond is at most the Lua's.
        pipe.atomic()
            .ignore_errors()
            .cmd("TIME")
            .add_command(self.mark())
            .ignore()
            .add_command(probe());
        for c in calls {
            let mut fcall = redis::cmd("FCALL");
            fcall
                .arg(c.function)
                .arg(c.keys.len())
                .arg(&c.keys)
                .arg(&c.args);
            pipe.add_command(fcall);
        }
        pipe.add_command(probe());
        let extra = then.is_some() as usize;
        if let Some(then) = then {
            pipe.add_command(then);
        }
        let parts = match self.send(&pipe).await.map_err(|e| e.to_string())? {
            Value::Nil => return Ok((None, None)),
            Value::Array(parts) if parts.len() == calls.len() + 3 + extra => parts,
            v => return Err(format!("MULTI answered {v:?}")),
        };
        let n = calls.len();
        let (before, after) = (text(&parts[1]), text(&parts[n + 2]));
        self.at = match after.parse() {
            Ok(at) if after != before => Some(at),
            _ => Some(millis(&parts[0])),
        };
        let ret = |v: &Value| match v {
            Value::ServerError(_) => SuspRet::ScriptError,
            v => answer(v),
        };
        let rets = parts[2..n + 2].iter().map(ret).collect();
        Ok((Some(rets), parts.get(n + 3).cloned()))
    }

    /// One FCALL, timed.
    async fn fcall(
        &mut self,
        function: &'static str,
        keys: &[String],
        args: &[&str],
    ) -> Result<SuspRet, String> {
        let call = Call::new(function, keys, args);
        let (rets, _) = self.transaction(&[call], None).await?;
        Ok(rets
            .and_then(|r| r.into_iter().next())
            .expect("one answer, unwatched"))
    }

    /// Read the hash fields `reads` under `WATCH` of their keys, then run in one
    /// transaction the calls `build` makes of what was read; again if a read key changed
    /// in between, so that the calls see what was read. The answers.
    async fn watched(
        &mut self,
        reads: &[(String, &str)],
        build: impl Fn(&[String]) -> Vec<Call>,
    ) -> Result<Vec<SuspRet>, String> {
        for _ in 0..100 {
            let mut watch = redis::cmd("WATCH");
            for (key, _) in reads {
                watch.arg(key);
            }
            self.cmd(&mut watch).await?;
            let mut read = Vec::new();
            for (key, field) in reads {
                let v = self.cmd(redis::cmd("HGET").arg(key).arg(field)).await?;
                read.push(text(&v));
            }
            if let (Some(rets), _) = self.transaction(&build(&read), None).await? {
                return Ok(rets);
            }
        }
        Err("the execution changed under each of 100 tries".into())
    }

    /// The grant FCALL `function` issues for a claim (or reclaim) by `worker`.
    fn grant(function: &'static str, k: &Keys, worker: &str) -> Call {
        let third = if function == "ff_issue_claim_grant" {
            k.lane("eligible")
        } else {
            k.idx("lease_expiry")
        };
        let keys = [k.exec("core"), k.exec("claim_grant"), third];
        let args = [&k.eid, worker, worker, LANE, "", GRANT_TTL, "", "", ""];
        Call::new(function, &keys, &args)
    }

    /// A claim as the engine makes it, in one transaction so that no other client sees
    /// the grant between: `ff_issue_claim_grant`, `ff_claim_execution`, and
    /// `ff_claim_resumed_execution` on the current attempt, which takes the grant where the
    /// claim answered `use_claim_resumed_execution` and is refused (doing nothing)
    /// elsewhere. The first refusal of the grant or the claim that counts.
    async fn claim(
        &mut self,
        k: &Keys,
        worker: &str,
        lease: &str,
        ttl: u64,
    ) -> Result<SuspRet, String> {
        let ttl = ttl.to_string();
        let renew_before = (ttl.parse::<u64>().unwrap_or(0) * 2 / 3).to_string();
        let head = [&k.eid, worker, worker, LANE, "", lease, &ttl];
        let claim = {
            let keys = k.claim(&[
                k.attempt("0"),
                k.attempt("0:usage"),
                k.attempt("0:policy"),
                k.exec("attempts"),
            ]);
            let mut args = head.to_vec();
            args.extend([renew_before.as_str(), lease, "", "", ""]);
            Call::new("ff_claim_execution", &keys, &args)
        };
        let mut resumed_args = head.to_vec();
        resumed_args.push("");
        let reads = [(k.exec("core"), "current_attempt_index")];
        let rets = self
            .watched(&reads, |read| {
                let keys = k.claim(&[k.attempt(&read[0])]);
                vec![
                    Redis::grant("ff_issue_claim_grant", k, worker),
                    claim.clone(),
                    Call::new("ff_claim_resumed_execution", &keys, &resumed_args),
                ]
            })
            .await?;
        Ok(match &rets[..] {
            [grant, ..] if !matches!(grant, SuspRet::Ok(_)) => grant.clone(),
            [_, SuspRet::Err(code, _), resumed] if code == "use_claim_resumed_execution" => {
                resumed.clone()
            }
            [_, claimed, _] => claimed.clone(),
            _ => unreachable!("three calls, three answers"),
        })
    }

    /// `ff_issue_reclaim_grant` then `ff_reclaim_execution`, in one transaction.
    async fn reclaim(
        &mut self,
        k: &Keys,
        worker: &str,
        lease: &str,
        ttl: u64,
    ) -> Result<SuspRet, String> {
        let ttl = ttl.to_string();
        let args = [&k.eid, worker, worker, LANE, lease, &ttl, lease, ""];
        let reads = [(k.exec("core"), "current_attempt_index")];
        let rets = self
            .watched(&reads, |read| {
                let index = &read[0];
                let mut keys = vec![
                    k.exec("core"),
                    k.exec("claim_grant"),
                    k.attempt(index),
                    k.stream_meta(index),
                    k.attempt("0"),
                    k.attempt("0:usage"),
                    k.exec("attempts"),
                    k.exec("lease:current"),
                    k.exec("lease:history"),
                    k.idx("lease_expiry"),
                    k.workers(),
                ];
                keys.extend(k.tail());
                vec![
                    Redis::grant("ff_issue_reclaim_grant", k, worker),
                    Call::new("ff_reclaim_execution", &keys, &args),
                ]
            })
            .await?;
        Ok(match &rets[..] {
            [grant, _] if !matches!(grant, SuspRet::Ok(_)) => grant.clone(),
            [_, reclaimed] => reclaimed.clone(),
            _ => unreachable!("two calls, two answers"),
        })
    }

    async fn signal(&mut self, s: &Signal, buffer: bool) -> Result<SuspRet, String> {
        let k = Keys::of(&s.eid, &self.ns);
        let idem = if s.idem.is_empty() {
            format!("ff:noop:{}", k.tag)
        } else {
            format!("ff:sigdedup:{}:{}:{}", k.tag, s.wp, s.idem)
        };
        let dedup = self.model.params.dedup_ttl.to_string();
        let args = [
            &s.sig,
            &s.eid,
            &s.wp,
            &s.name,
            "external",
            "squall",
            "squall",
            "",
            "json",
            &s.idem,
            "",
            "waitpoint",
            "",
            &dedup,
            "0",
            "1000",
            "10000",
            &s.token,
        ];
        let signal = format!("ff:signal:{}:{}", k.tag, s.sig);
        let mut keys = vec![
            k.exec("core"),
            k.wp(&s.wp, ":condition"),
            k.wp(&s.wp, ":signals"),
            k.exec("signals"),
            signal.clone(),
            format!("{signal}:payload"),
            idem,
            k.wp(&s.wp, ""),
        ];
        if buffer {
            keys.push(k.hmac());
            return self
                .fcall("ff_buffer_signal_for_pending_waitpoint", &keys, &args)
                .await;
        }
        keys.extend([
            k.exec("suspension:current"),
            k.lane("eligible"),
            k.lane("suspended"),
            k.lane("delayed"),
            k.idx("suspension_timeout"),
            k.hmac(),
        ]);
        self.fcall("ff_deliver_signal", &keys, &args).await
    }

    /// The worker keys of `instance`: `alive` and `caps`.
    fn worker(&self, instance: &str, what: &str) -> String {
        format!("ff:worker:{{{}:w}}:{instance}:{what}", self.ns)
    }

    /// ff-sdk's preamble, `SET alive NX PX` then the capability hash and the worker index,
    /// made atomic (a crash between them would leave a live worker with stale
    /// capabilities, which the model, treating registration as one step, cannot show):
    /// `WATCH alive`, then either `duplicate_instance` or all three in one transaction.
    async fn register(
        &mut self,
        instance: &str,
        worker: &str,
        caps: &[String],
        ttl: u64,
    ) -> Result<SuspRet, String> {
        if let Some(why) = self.model.bad_caps(caps) {
            return Ok(SuspRet::Err(
                "invalid_capabilities".into(),
                vec![why.into()],
            ));
        }
        let mut caps = caps.to_vec();
        caps.sort();
        caps.dedup();
        let alive = self.worker(instance, "alive");
        let index = format!("ff:idx:{{{}:w}}:workers", self.ns);
        for _ in 0..100 {
            self.cmd(redis::cmd("WATCH").arg(&alive)).await?;
            let mut check = redis::pipe();
            check.cmd("TIME").cmd("EXISTS").arg(&alive);
            let v = self.send(&check).await.map_err(|e| e.to_string())?;
            let [time, exists] = parts(v)?;
            if exists == Value::Int(1) {
                self.cmd(&mut redis::cmd("UNWATCH")).await?;
                self.at = Some(millis(&time));
                return Ok(SuspRet::Err("duplicate_instance".into(), vec![]));
            }
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("TIME")
                .add_command(self.mark())
                .ignore()
                .cmd("SET")
                .arg(&alive)
                .arg(worker)
                .arg("PX")
                .arg(ttl)
                .cmd("HSET")
                .arg(self.worker(instance, "caps"))
                .arg("caps")
                .arg(caps.join(","))
                .cmd("SADD")
                .arg(&index)
                .arg(instance);
            if let Value::Array(parts) = self.send(&pipe).await.map_err(|e| e.to_string())? {
                self.at = parts.first().map(millis);
                return Ok(SuspRet::Ok(vec!["registered".into()]));
            }
        }
        Err(format!("{alive} changed under each of 100 tries"))
    }

    async fn caps(&mut self, instance: &str) -> Result<SuspRet, String> {
        let (alive, key) = (
            self.worker(instance, "alive"),
            self.worker(instance, "caps"),
        );
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("TIME")
            .cmd("EXISTS")
            .arg(&alive)
            .cmd("HGET")
            .arg(&key)
            .arg("caps");
        let v = self.send(&pipe).await.map_err(|e| e.to_string())?;
        let [time, live, caps] = parts(v)?;
        self.at = Some(millis(&time));
        let mut out = vec![if live == Value::Int(1) {
            "alive"
        } else {
            "gone"
        }
        .to_string()];
        if caps != Value::Nil {
            out.extend(
                text(&caps)
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(String::from),
            );
        }
        Ok(SuspRet::Ok(out))
    }
}

/// One FCALL: a function of the library, its KEYS and its ARGV.
#[derive(Clone)]
struct Call {
    function: &'static str,
    keys: Vec<String>,
    args: Vec<String>,
}

impl Call {
    fn new(function: &'static str, keys: &[String], args: &[&str]) -> Call {
        Call {
            function,
            keys: keys.to_vec(),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }
}

/// A command or a transaction, sent on a connection.
trait Query {
    async fn send(&self, conn: &mut MultiplexedConnection) -> Result<Value, redis::RedisError>;
}

impl Query for redis::Cmd {
    async fn send(&self, conn: &mut MultiplexedConnection) -> Result<Value, redis::RedisError> {
        self.query_async(conn).await
    }
}

impl Query for redis::Pipeline {
    async fn send(&self, conn: &mut MultiplexedConnection) -> Result<Value, redis::RedisError> {
        self.query_async(conn).await
    }
}

#[async_trait(?Send)]
impl SuspClient for Redis {
    async fn call(&mut self, op: &SuspOp) -> Result<SuspRet, String> {
        self.at = None;
        self.settled = None;
        if let Some(lost) = self.open.take() {
            self.lost = Some(lost);
        }
        // Nothing was sent if either fails.
        if self.conn().await.is_err() || self.settle().await.is_err() {
            return Ok(SuspRet::NotConnected);
        }
        self.begun += 1;
        self.open = Some((self.begun, op.clone()));
        let ret = self.run(op).await?;
        self.open = None;
        // A claim's or renewal's answer is the server's `now + ttl`.
        let expires = match (op, &ret) {
            (SuspOp::Claim { ttl, .. } | SuspOp::Reclaim { ttl, .. }, SuspRet::Ok(f)) => {
                f.get(2).zip(Some(ttl))
            }
            (SuspOp::Renew { ttl, .. }, SuspRet::Ok(f)) => f.first().zip(Some(ttl)),
            _ => None,
        };
        if let Some((Ok(at), ttl)) = expires.map(|(e, ttl)| (e.parse::<u64>(), ttl)) {
            self.at = Some(at.saturating_sub(*ttl));
        }
        Ok(ret)
    }

    fn ran(&mut self, op: &SuspOp) -> Option<SuspOp> {
        let mut op = op.clone();
        *op.now_mut() = self.at.take()?;
        Some(op)
    }

    fn settled(&mut self) -> Option<(SuspOp, SuspOp)> {
        self.settled.take()
    }
}

impl Redis {
    /// The entry a transaction adds to the record: the current operation's number, at the
    /// server's millisecond (the entry's id).
    fn mark(&self) -> redis::Cmd {
        let mut xadd = redis::cmd("XADD");
        xadd.arg(&self.record)
            .arg("MAXLEN")
            .arg(1)
            .arg("*")
            .arg("op")
            .arg(self.begun);
        xadd
    }

    /// Whether the lost operation ran, from the record: `settled` set if it did. `Err` if
    /// the connection failed, to be tried again on the next call; any other answer ends
    /// the question.
    async fn settle(&mut self) -> Result<(), String> {
        let Some((n, op)) = self.lost.clone() else {
            return Ok(());
        };
        let read = self
            .cmd(
                redis::cmd("XREVRANGE")
                    .arg(&self.record)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1),
            )
            .await;
        if read.is_err() && self.conn.is_none() {
            return read.map(drop);
        }
        self.lost = None;
        let Ok(v) = read else {
            return Ok(());
        };
        // `[[id, ["op", number]]]`, or `[]` if no transaction of this client ran yet.
        let latest = flat(&v);
        if let [id, _, number] = latest.as_slice() {
            let at = id.split('-').next().and_then(|ms| ms.parse().ok());
            if let (Some(at), true) = (at, *number == n.to_string()) {
                let mut ran = op.clone();
                *ran.now_mut() = at;
                self.settled = Some((op, ran));
            }
        }
        Ok(())
    }

    /// The FCALLs (or commands) of `op`.
    async fn run(&mut self, op: &SuspOp) -> Result<SuspRet, String> {
        let k = Keys::of(op.eid().unwrap_or("e0"), &self.ns);
        match op {
            SuspOp::Claim {
                worker, lease, ttl, ..
            } => self.claim(&k, worker, lease, *ttl).await,
            SuspOp::Reclaim {
                worker, lease, ttl, ..
            } => self.reclaim(&k, worker, lease, *ttl).await,
            SuspOp::Renew { fence, ttl, .. } => self.renew(&k, fence, *ttl).await,
            SuspOp::MarkExpired { .. } => {
                let keys = [
                    k.exec("core"),
                    k.exec("lease:current"),
                    k.idx("lease_expiry"),
                    k.exec("lease:history"),
                ];
                self.fcall("ff_mark_lease_expired_if_due", &keys, &[&k.eid])
                    .await
            }
            SuspOp::CreatePending {
                attempt,
                wp,
                expires_at,
                ..
            } => self.create_pending(&k, *attempt, wp, *expires_at).await,
            SuspOp::Suspend {
                fence,
                susp,
                wp,
                pending,
                condition,
                timeout_at,
                behavior,
                ..
            } => {
                let index = fence.attempt.to_string();
                let keys = k.suspension(&index, wp);
                let cond = signal_set(condition);
                let epoch = fence.epoch.to_string();
                let timeout = timeout_at.map(|t| t.to_string()).unwrap_or_default();
                let key = waitpoint_key(wp);
                let args = [
                    k.eid.as_str(),
                    &index,
                    &fence.attempt_id,
                    &fence.lease,
                    &epoch,
                    susp,
                    wp,
                    &key,
                    "waiting_for_signal",
                    "squall",
                    &timeout,
                    &cond,
                    "{}",
                    "",
                    if *pending { "1" } else { "" },
                    behavior.wire(),
                    "1000",
                ];
                self.fcall("ff_suspend_execution", &keys, &args).await
            }
            SuspOp::Deliver(s) => self.signal(s, false).await,
            SuspOp::Buffer(s) => self.signal(s, true).await,
            SuspOp::Resume { .. } => self.resume(&k).await,
            SuspOp::ExpireSuspension { .. } => self.expire_suspension(&k).await,
            SuspOp::CloseWaitpoint { wp, reason, .. } => {
                let keys = [
                    k.exec("core"),
                    k.wp(wp, ""),
                    k.idx("pending_waitpoint_expiry"),
                ];
                self.fcall("ff_close_waitpoint", &keys, &[wp, reason]).await
            }
            SuspOp::Rotate {
                kid, secret, grace, ..
            } => self.rotate(&k, kid, secret, *grace).await,
            SuspOp::ListKids { .. } => {
                let ret = self
                    .fcall("ff_list_waitpoint_hmac_kids", &[k.hmac()], &[])
                    .await?;
                Ok(sort_kids(ret))
            }
            SuspOp::Register {
                instance,
                worker,
                caps,
                ttl,
                ..
            } => self.register(instance, worker, caps, *ttl).await,
            SuspOp::Caps { instance, .. } => self.caps(instance).await,
        }
    }

    /// `ff_renew_lease` under `fence`, for `ttl` more.
    async fn renew(&mut self, k: &Keys, fence: &Fence, ttl: Ms) -> Result<SuspRet, String> {
        let keys = [
            k.exec("core"),
            k.exec("lease:current"),
            k.exec("lease:history"),
            k.idx("lease_expiry"),
        ];
        let (index, epoch, ttl) = (
            fence.attempt.to_string(),
            fence.epoch.to_string(),
            ttl.to_string(),
        );
        let args = [
            &k.eid,
            &index,
            &fence.attempt_id,
            &fence.lease,
            &epoch,
            &ttl,
            "5000",
        ];
        self.fcall("ff_renew_lease", &keys, &args).await
    }

    /// `ff_create_pending_waitpoint` `wp` of attempt `attempt`, expiring at `expires_at`.
    async fn create_pending(
        &mut self,
        k: &Keys,
        attempt: u64,
        wp: &str,
        expires_at: Ms,
    ) -> Result<SuspRet, String> {
        let keys = [
            k.exec("core"),
            k.wp(wp, ""),
            k.idx("pending_waitpoint_expiry"),
            k.hmac(),
        ];
        let (attempt, expires) = (attempt.to_string(), expires_at.to_string());
        let key = waitpoint_key(wp);
        let args = [k.eid.as_str(), &attempt, wp, &key, &expires];
        self.fcall("ff_create_pending_waitpoint", &keys, &args)
            .await
    }

    /// `ff_resume_execution` by an operator, on the waitpoint current when it runs.
    async fn resume(&mut self, k: &Keys) -> Result<SuspRet, String> {
        let reads = [(k.exec("core"), "current_waitpoint_id")];
        let rets = self
            .watched(&reads, |read| {
                let wp = &read[0];
                let keys = [
                    k.exec("core"),
                    k.exec("suspension:current"),
                    k.wp(wp, ""),
                    k.wp(wp, ":signals"),
                    k.idx("suspension_timeout"),
                    k.lane("eligible"),
                    k.lane("delayed"),
                    k.lane("suspended"),
                ];
                let args = [&k.eid, "operator", "0"];
                vec![Call::new("ff_resume_execution", &keys, &args)]
            })
            .await?;
        Ok(rets[0].clone())
    }

    /// `ff_expire_suspension` on the suspension and attempt current when it runs.
    async fn expire_suspension(&mut self, k: &Keys) -> Result<SuspRet, String> {
        let reads = [
            (k.exec("suspension:current"), "waitpoint_id"),
            (k.exec("core"), "current_attempt_index"),
        ];
        let rets = self
            .watched(&reads, |read| {
                let (wp, index) = (&read[0], &read[1]);
                let keys = [
                    k.exec("core"),
                    k.exec("suspension:current"),
                    k.wp(wp, ""),
                    k.wp(wp, ":condition"),
                    k.attempt(index),
                    k.stream_meta(index),
                    k.idx("suspension_timeout"),
                    k.lane("suspended"),
                    k.lane("terminal"),
                    k.lane("eligible"),
                    k.lane("delayed"),
                    k.exec("lease:history"),
                ];
                vec![Call::new("ff_expire_suspension", &keys, &[&k.eid])]
            })
            .await?;
        Ok(rets[0].clone())
    }

    /// `ff_rotate_waitpoint_hmac_secret` to `kid`, the retired kid valid for `grace` more;
    /// the time kept is when the rotation ran, read off the retired kid's expiry.
    async fn rotate(
        &mut self,
        k: &Keys,
        kid: &str,
        secret: &str,
        grace: Ms,
    ) -> Result<SuspRet, String> {
        let ms = grace.to_string();
        let args = [kid, secret, &ms];
        let rotate = Call::new("ff_rotate_waitpoint_hmac_secret", &[k.hmac()], &args);
        let mut keystore = redis::cmd("HGETALL");
        keystore.arg(k.hmac());
        let (rets, keystore) = self.transaction(&[rotate], Some(keystore)).await?;
        let ret = rets.expect("unwatched").remove(0);
        // The retired kid expires at the server's `now + grace`.
        if let SuspRet::Ok(f) = &ret {
            let fields = strings(&keystore.unwrap_or(Value::Nil));
            let retired = f.get(1).map(|prev| format!("expires_at:{prev}"));
            let at = fields.chunks(2).find(|p| Some(&p[0]) == retired.as_ref());
            if let Some(Ok(expires)) = at.map(|p| p[1].parse::<u64>()) {
                self.at = Some(expires.saturating_sub(grace));
            }
        }
        Ok(ret)
    }
}

/// A resume condition as `ff_suspend_execution` takes it: a `signal_set` JSON object.
fn signal_set(condition: &Condition) -> String {
    let (mode, min) = match condition.mode {
        Mode::Any => ("any", 1),
        Mode::All => ("all", 1),
        Mode::Count(n) => ("count", n),
    };
    let names = serde_json::to_string(&condition.names).expect("names serialise");
    format!(
        r#"{{"condition_type":"signal_set","required_signal_names":{names},"signal_match_mode":"{mode}","minimum_signal_count":{min}}}"#
    )
}

/// FlowFabric's function library on a server, as the runs of this process use it: loaded
/// only if absent, used if identical to `ff-script` 0.2.0's, refused if different, removed
/// when the last run using it ends only if this process loaded it.
pub struct Library;

/// Per server URL: runs of this process using the library, and whether this process
/// loaded it.
static USERS: tokio::sync::Mutex<BTreeMap<String, (usize, bool)>> =
    tokio::sync::Mutex::const_new(BTreeMap::new());

impl Library {
    /// Make sure the library is on the server `redis` reaches, and count a user.
    pub async fn acquire(redis: &mut Redis) -> Result<(), String> {
        let mut users = USERS.lock().await;
        let (count, loaded) = users.get(&redis.url).copied().unwrap_or_default();
        let loaded = match count {
            0 => Library::load(redis).await?,
            _ => loaded,
        };
        users.insert(redis.url.clone(), (count + 1, loaded));
        Ok(())
    }

    /// Count a user out; the last one out removes the library if this process loaded it.
    pub async fn release(redis: &mut Redis) -> Result<(), String> {
        let mut users = USERS.lock().await;
        let Some((count, loaded)) = users.get(&redis.url).copied() else {
            return Ok(());
        };
        if count > 1 {
            users.insert(redis.url.clone(), (count - 1, loaded));
            return Ok(());
        }
        users.remove(&redis.url);
        if loaded {
            redis
                .cmd(redis::cmd("FUNCTION").arg("DELETE").arg(LIBRARY))
                .await?;
        }
        Ok(())
    }

    /// The code of the library called `flowfabric` on the server, if there is one.
    pub async fn code(redis: &mut Redis) -> Result<Option<String>, String> {
        let mut list = redis::cmd("FUNCTION");
        list.arg("LIST")
            .arg("LIBRARYNAME")
            .arg(LIBRARY)
            .arg("WITHCODE");
        let v = redis.cmd(&mut list).await?;
        // Each library is a map (a flat array in RESP2); LIBRARYNAME is a pattern.
        let fields = |lib: &Value| -> BTreeMap<String, String> {
            match lib {
                Value::Array(kv) => kv.chunks(2).map(|p| (text(&p[0]), text(&p[1]))).collect(),
                Value::Map(kv) => kv.iter().map(|(k, v)| (text(k), text(v))).collect(),
                _ => BTreeMap::new(),
            }
        };
        let Value::Array(libs) = v else {
            return Ok(None);
        };
        Ok(libs
            .iter()
            .map(fields)
            .find(|f| f.get("library_name").map(String::as_str) == Some(LIBRARY))
            .and_then(|mut f| f.remove("library_code")))
    }

    /// Load the library if absent (whether it did), check it if present.
    async fn load(redis: &mut Redis) -> Result<bool, String> {
        let url = redis.url.clone();
        match Library::code(redis).await? {
            Some(code) if code == ff_script::LIBRARY_SOURCE => Ok(false),
            Some(_) => Err(format!(
                "{url} already has a function library {LIBRARY:?} that is not ff-script 0.2.0's; \
                 squall will not replace it (FUNCTION names are global): remove it \
                 (FUNCTION DELETE {LIBRARY}) or name another server"
            )),
            None => {
                let mut load = redis::cmd("FUNCTION");
                load.arg("LOAD").arg(ff_script::LIBRARY_SOURCE);
                redis
                    .cmd(&mut load)
                    .await
                    .map_err(|e| format!("cannot load FlowFabric's library into {url}: {e}"))?;
                Ok(true)
            }
        }
    }
}

/// The live backend: a run's namespace of executions.
pub struct FlowFabric {
    params: Params,
    /// The server's URL, the namespace and the time to connect, once open.
    run: Option<(String, String, Duration)>,
}

impl FlowFabric {
    pub fn new(scenario: &Scenario) -> FlowFabric {
        FlowFabric {
            params: params(scenario),
            run: None,
        }
    }

    /// A client straight to the server, for setting up and cleaning up.
    fn admin(&self) -> Option<Redis> {
        let (url, ns, timeout) = self.run.as_ref()?;
        Some(Redis::new(url, ns, self.params.clone(), *timeout))
    }
}

#[async_trait(?Send)]
impl live::Backend<Suspension> for FlowFabric {
    fn flavor(&self) -> live::Flavor {
        live::Flavor::Redis
    }

    async fn open(&mut self, url: &str, namespace: &str, timeout: Duration) -> Result<(), String> {
        self.run = Some((url.to_string(), namespace.to_string(), timeout));
        let mut admin = self.admin().expect("just set");
        admin.remove_leftovers().await?;
        Library::acquire(&mut admin).await?;
        admin.reset().await
    }

    fn client(&self, url: &str) -> Box<dyn Caller<Suspension>> {
        let (_, ns, timeout) = self.run.clone().unwrap_or_default();
        // Half the operation's time to connect, so a failed connect is known as such.
        Box::new(Redis::new(url, &ns, self.params.clone(), timeout / 2))
    }

    /// Remove the namespace and let the library go, over a fresh connection (a crash may
    /// have broken the one that opened the run).
    async fn close(&mut self) -> Result<(), String> {
        let Some(mut admin) = self.admin() else {
            return Ok(());
        };
        self.run = None;
        let ns = pattern(&admin.ns);
        admin.remove(&ns).await?;
        Library::release(&mut admin).await?;
        match admin.scan(&ns).await?.len() {
            0 => Ok(()),
            n => Err(format!(
                "{n} keys of {ns} are still there after removing them"
            )),
        }
    }
}

/// The kid listing `OK current n kid exp ...`, its pairs sorted by kid.
fn sort_kids(ret: SuspRet) -> SuspRet {
    match ret {
        SuspRet::Ok(mut f) if f.len() >= 2 => {
            let mut pairs: Vec<(String, String)> = f
                .split_off(2)
                .chunks(2)
                .map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or_default()))
                .collect();
            pairs.sort();
            f.extend(pairs.into_iter().flat_map(|(k, e)| [k, e]));
            SuspRet::Ok(f)
        }
        other => other,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(n) => n.to_string(),
        Value::Okay => "OK".into(),
        _ => String::new(),
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().map(text).collect(),
        _ => vec![],
    }
}

/// The strings of a nested array, depth first.
fn flat(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().flat_map(flat).collect(),
        v => vec![text(v)],
    }
}

/// A FlowFabric result array as an answer.
fn answer(v: &Value) -> SuspRet {
    let f = strings(v);
    match (f.first().map(String::as_str), f.get(1).map(String::as_str)) {
        (Some("1"), Some("OK")) => SuspRet::Ok(f[2..].to_vec()),
        (Some("1"), Some("ALREADY_SATISFIED")) => SuspRet::AlreadySatisfied(f[2..].to_vec()),
        (Some("1"), Some("DUPLICATE")) => SuspRet::Duplicate(f[2..].to_vec()),
        (Some("0"), Some(code)) => SuspRet::Err(code.to_string(), f[2..].to_vec()),
        _ => SuspRet::Err(format!("unparsed answer {v:?}"), vec![]),
    }
}

/// The `N` answers of a pipeline or transaction.
fn parts<const N: usize>(v: Value) -> Result<[Value; N], String> {
    let parts = match v {
        Value::Array(parts) => parts,
        v => vec![v],
    };
    <[Value; N]>::try_from(parts).map_err(|v| format!("{N} answers expected, got {v:?}"))
}

/// A `TIME` answer in milliseconds.
fn millis(v: &Value) -> u64 {
    let parts = strings(v);
    let n = |i: usize| {
        parts
            .get(i)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    n(0) * 1000 + n(1) / 1000
}

//! `suspension/flowfabric-redis`: FlowFabric's own Lua library (`ff-script` 0.2.0, v6) in a
//! real Redis or Valkey, reached with `FCALL` over a socket.
//!
//! Each operation is the FCALLs FlowFabric's engine and SDK make for it, with the KEYS and
//! ARGV layouts of the Lua's headers (`ff-script`'s own wrapper for
//! `ff_create_pending_waitpoint` passes three KEYS where the Lua reads four, the HMAC
//! keystore last; this client passes four). Execution `eN` lives in partition `{p:N}`, lane
//! `default`. Worker registration is ff-sdk's connect preamble, done with plain commands
//! (v6 has no registration function). Answers are the Lua's, except that the kid listing is
//! sorted by kid (the Lua lists it in hash order).
//!
//! Time is the server's (`TIME` inside each function): operations' `now` is not sent.

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::Value;
use squall_models::suspension::{
    execution, waitpoint_key, Mode, Params, Signal, SuspOp, SuspRet, Suspension,
};

use super::SuspClient;

const LANE: &str = "default";
/// How long a claim grant lives; a grant is consumed by the call right after it.
const GRANT_TTL: &str = "60000";

/// A connection to a server holding the library.
pub struct Redis {
    conn: MultiplexedConnection,
    model: Suspension,
}

/// Keys of execution `eid` in partition `tag`, as `ff-core`'s `keys.rs` names them.
struct Keys {
    eid: String,
    tag: String,
}

impl Keys {
    fn of(eid: &str) -> Keys {
        let n: usize = eid.trim_start_matches('e').parse().unwrap_or(usize::MAX);
        Keys {
            eid: eid.to_string(),
            tag: execution(n).1,
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
}

impl Redis {
    /// Connect to `url`, load `library` (`FUNCTION LOAD REPLACE`), empty the server and
    /// create the executions of `params`, runnable.
    pub async fn start(url: &str, library: &str, params: Params) -> Result<Redis, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let mut r = Redis {
            conn,
            model: Suspension::new(params),
        };
        r.cmd(
            redis::cmd("FUNCTION")
                .arg("LOAD")
                .arg("REPLACE")
                .arg(library),
        )
        .await?;
        r.reset().await?;
        Ok(r)
    }

    /// Empty the server and create the executions anew.
    pub async fn reset(&mut self) -> Result<(), String> {
        self.cmd(&mut redis::cmd("FLUSHALL")).await?;
        for n in 0..self.model.params.executions {
            let k = Keys::of(&execution(n).0);
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

    /// The server's time, in milliseconds.
    pub async fn time(&mut self) -> Result<u64, String> {
        let v = self.cmd(&mut redis::cmd("TIME")).await?;
        let parts = strings(&v);
        let n = |i: usize| {
            parts
                .get(i)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(n(0) * 1000 + n(1) / 1000)
    }

    async fn cmd(&mut self, cmd: &mut redis::Cmd) -> Result<Value, String> {
        cmd.query_async(&mut self.conn)
            .await
            .map_err(|e| e.to_string())
    }

    /// One FCALL; a Lua error is [`SuspRet::ScriptError`], a failed connection `Err`.
    async fn fcall(
        &mut self,
        function: &str,
        keys: &[String],
        args: &[&str],
    ) -> Result<SuspRet, String> {
        let mut cmd = redis::cmd("FCALL");
        cmd.arg(function).arg(keys.len()).arg(keys).arg(args);
        match cmd.query_async::<Value>(&mut self.conn).await {
            Ok(v) => Ok(answer(&v)),
            Err(e)
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) =>
            {
                Ok(SuspRet::ScriptError)
            }
            Err(e) if e.is_io_error() || e.is_connection_dropped() => Err(e.to_string()),
            Err(_) => Ok(SuspRet::ScriptError),
        }
    }

    async fn hget(&mut self, key: &str, field: &str) -> Result<String, String> {
        let v = self.cmd(redis::cmd("HGET").arg(key).arg(field)).await?;
        Ok(text(&v))
    }

    async fn grant(&mut self, function: &str, k: &Keys, worker: &str) -> Result<SuspRet, String> {
        let third = if function == "ff_issue_claim_grant" {
            k.lane("eligible")
        } else {
            k.idx("lease_expiry")
        };
        let keys = [k.exec("core"), k.exec("claim_grant"), third];
        let args = [&k.eid, worker, worker, LANE, "", GRANT_TTL, "", "", ""];
        self.fcall(function, &keys, &args).await
    }

    /// `ff_claim_execution`, or `ff_claim_resumed_execution` where the Lua asks for it,
    /// once the grant is issued.
    async fn claim(
        &mut self,
        k: &Keys,
        worker: &str,
        lease: &str,
        ttl: u64,
    ) -> Result<SuspRet, String> {
        let ttl = ttl.to_string();
        let renew_before = (ttl.parse::<u64>().unwrap_or(0) * 2 / 3).to_string();
        let keys = [
            k.exec("core"),
            k.exec("claim_grant"),
            k.lane("eligible"),
            k.idx("lease_expiry"),
            k.workers(),
            k.attempt("0"),
            k.attempt("0:usage"),
            k.attempt("0:policy"),
            k.exec("attempts"),
            k.exec("lease:current"),
            k.exec("lease:history"),
            k.lane("active"),
            k.idx("attempt_timeout"),
            k.idx("execution_deadline"),
        ];
        let args = [
            &k.eid,
            worker,
            worker,
            LANE,
            "",
            lease,
            &ttl,
            &renew_before,
            lease,
            "",
            "",
            "",
        ];
        let claimed = self.fcall("ff_claim_execution", &keys, &args).await?;
        if !matches!(&claimed, SuspRet::Err(code, _) if code == "use_claim_resumed_execution") {
            return Ok(claimed);
        }
        let index = self.hget(&k.exec("core"), "current_attempt_index").await?;
        let keys = [
            k.exec("core"),
            k.exec("claim_grant"),
            k.lane("eligible"),
            k.idx("lease_expiry"),
            k.workers(),
            k.attempt(&index),
            k.exec("lease:current"),
            k.exec("lease:history"),
            k.lane("active"),
            k.idx("attempt_timeout"),
            k.idx("execution_deadline"),
        ];
        let args = [&k.eid, worker, worker, LANE, "", lease, &ttl, ""];
        self.fcall("ff_claim_resumed_execution", &keys, &args).await
    }

    /// `ff_reclaim_execution`, once the grant is issued.
    async fn reclaim(
        &mut self,
        k: &Keys,
        worker: &str,
        lease: &str,
        ttl: u64,
    ) -> Result<SuspRet, String> {
        let index = self.hget(&k.exec("core"), "current_attempt_index").await?;
        let keys = [
            k.exec("core"),
            k.exec("claim_grant"),
            k.attempt(&index),
            k.stream_meta(&index),
            k.attempt("0"),
            k.attempt("0:usage"),
            k.exec("attempts"),
            k.exec("lease:current"),
            k.exec("lease:history"),
            k.idx("lease_expiry"),
            k.workers(),
            k.lane("active"),
            k.idx("attempt_timeout"),
            k.idx("execution_deadline"),
        ];
        let ttl = ttl.to_string();
        let args = [&k.eid, worker, worker, LANE, lease, &ttl, lease, ""];
        self.fcall("ff_reclaim_execution", &keys, &args).await
    }

    async fn signal(&mut self, s: &Signal, buffer: bool) -> Result<SuspRet, String> {
        let k = Keys::of(&s.eid);
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
        let alive = format!("ff:worker:{{squall}}:{instance}:alive");
        if self
            .cmd(
                redis::cmd("SET")
                    .arg(&alive)
                    .arg(worker)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl),
            )
            .await?
            == Value::Nil
        {
            return Ok(SuspRet::Err("duplicate_instance".into(), vec![]));
        }
        let mut caps = caps.to_vec();
        caps.sort();
        caps.dedup();
        let key = format!("ff:worker:{{squall}}:{instance}:caps");
        self.cmd(redis::cmd("HSET").arg(&key).arg("caps").arg(caps.join(",")))
            .await?;
        self.cmd(
            redis::cmd("SADD")
                .arg("ff:idx:{squall}:workers")
                .arg(instance),
        )
        .await?;
        Ok(SuspRet::Ok(vec!["registered".into()]))
    }

    async fn caps(&mut self, instance: &str) -> Result<SuspRet, String> {
        let alive = format!("ff:worker:{{squall}}:{instance}:alive");
        let live = self.cmd(redis::cmd("EXISTS").arg(&alive)).await? == Value::Int(1);
        let key = format!("ff:worker:{{squall}}:{instance}:caps");
        let caps = self.cmd(redis::cmd("HGET").arg(&key).arg("caps")).await?;
        let mut out = vec![if live { "alive" } else { "gone" }.to_string()];
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

#[async_trait(?Send)]
impl SuspClient for Redis {
    async fn call(&mut self, op: &SuspOp) -> Result<SuspRet, String> {
        let k = Keys::of(op.eid().unwrap_or("e0"));
        match op {
            SuspOp::Claim {
                worker, lease, ttl, ..
            }
            | SuspOp::Reclaim {
                worker, lease, ttl, ..
            } => {
                let reclaim = matches!(op, SuspOp::Reclaim { .. });
                let grant = if reclaim {
                    "ff_issue_reclaim_grant"
                } else {
                    "ff_issue_claim_grant"
                };
                match self.grant(grant, &k, worker).await? {
                    SuspRet::Ok(_) if reclaim => self.reclaim(&k, worker, lease, *ttl).await,
                    SuspRet::Ok(_) => self.claim(&k, worker, lease, *ttl).await,
                    refused => Ok(refused),
                }
            }
            SuspOp::Renew { fence, ttl, .. } => {
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
            } => {
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
                let keys = [
                    k.exec("core"),
                    k.attempt(&index),
                    k.exec("lease:current"),
                    k.exec("lease:history"),
                    k.idx("lease_expiry"),
                    k.workers(),
                    k.exec("suspension:current"),
                    k.wp(wp, ""),
                    k.wp(wp, ":signals"),
                    k.idx("suspension_timeout"),
                    k.idx("pending_waitpoint_expiry"),
                    k.lane("active"),
                    k.lane("suspended"),
                    k.exec("waitpoints"),
                    k.wp(wp, ":condition"),
                    k.idx("attempt_timeout"),
                    k.hmac(),
                ];
                let (mode, min) = match condition.mode {
                    Mode::Any => ("any", 1),
                    Mode::All => ("all", 1),
                    Mode::Count(n) => ("count", n),
                };
                let names = serde_json::to_string(&condition.names).expect("names serialise");
                let cond = format!(
                    r#"{{"condition_type":"signal_set","required_signal_names":{names},"signal_match_mode":"{mode}","minimum_signal_count":{min}}}"#
                );
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
            SuspOp::Resume { .. } => {
                let wp = self.hget(&k.exec("core"), "current_waitpoint_id").await?;
                let keys = [
                    k.exec("core"),
                    k.exec("suspension:current"),
                    k.wp(&wp, ""),
                    k.wp(&wp, ":signals"),
                    k.idx("suspension_timeout"),
                    k.lane("eligible"),
                    k.lane("delayed"),
                    k.lane("suspended"),
                ];
                self.fcall("ff_resume_execution", &keys, &[&k.eid, "operator", "0"])
                    .await
            }
            SuspOp::ExpireSuspension { .. } => {
                let wp = self
                    .hget(&k.exec("suspension:current"), "waitpoint_id")
                    .await?;
                let index = self.hget(&k.exec("core"), "current_attempt_index").await?;
                let keys = [
                    k.exec("core"),
                    k.exec("suspension:current"),
                    k.wp(&wp, ""),
                    k.wp(&wp, ":condition"),
                    k.attempt(&index),
                    k.stream_meta(&index),
                    k.idx("suspension_timeout"),
                    k.lane("suspended"),
                    k.lane("terminal"),
                    k.lane("eligible"),
                    k.lane("delayed"),
                    k.exec("lease:history"),
                ];
                self.fcall("ff_expire_suspension", &keys, &[&k.eid]).await
            }
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
            } => {
                let grace = grace.to_string();
                self.fcall(
                    "ff_rotate_waitpoint_hmac_secret",
                    &[k.hmac()],
                    &[kid, secret, &grace],
                )
                .await
            }
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

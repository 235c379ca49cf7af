//! The client: one request at a time, retried with the same sequence number until it is
//! answered or the caller stops waiting.
//!
//! Servers know a client by its host's name and order its requests by sequence number, so a
//! client host holds one client per run: a second one would start again at 1 and have its
//! first requests taken for old ones.
//!
//! A watch has a connection of its own to the primary. When the stream goes silent for a
//! retry period (the primary beats twice as often) or the connection breaks, the client
//! connects again and resumes from the last revision it delivered, or from the state sync's
//! revision, so the caller sees one unbroken stream or `CursorExpired`.

use async_trait::async_trait;
use rand::Rng;
use squall_models::kv::{Entry, KvError, KvOp, KvRet, Rev};
use squall_models::watch::{Scope, Update};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
// tokio's Instant: inside a simulation turmoil drives it, so it reads simulated time.
use tokio::time::{sleep, timeout, timeout_at, Instant};

use super::wire::{Conn, Msg, Watched};
use super::Bug;
use crate::protocols::kv::backends::{KvPurge, KvReader, KvWatcher, KvWriter};
use crate::world::Node;

pub struct Client {
    node: Node,
    bug: Option<Bug>,
    retry: Duration,
    /// The sequence number of the latest request.
    seq: u64,
    /// Open connections by server.
    conns: BTreeMap<String, Conn>,
}

impl Client {
    pub fn new(node: Node, bug: Option<Bug>) -> Client {
        Client {
            retry: super::retry(&node),
            seq: 0,
            conns: BTreeMap::new(),
            node,
            bug,
        }
    }

    /// Which server to ask: the primary, unless the stale-read mutant spreads reads.
    fn server(&self, op: &KvOp) -> String {
        let servers = &self.node.servers;
        let i = if self.bug == Some(Bug::StaleRead) && !op.is_write() {
            // Drawn for this read and the time it is asked, not from one stream of the
            // client's: a shrinker's cut of another read leaves this pick alone.
            let now = turmoil::sim_elapsed().unwrap_or_default().as_nanos();
            let mut pick = self.node.rng(&format!("read {op} at {now}"));
            pick.random_range(0..servers.len())
        } else {
            0
        };
        servers[i].clone()
    }

    /// Send `op` until its answer comes. `NotConnected` only while the request has never
    /// left: then it cannot have taken effect.
    async fn call(&mut self, op: KvOp) -> Result<KvRet, KvError> {
        self.seq += 1;
        let seq = self.seq;
        let server = self.server(&op);
        let client = self.node.name.clone();
        let request = Msg::Request { client, seq, op };
        let mut sent = false;
        loop {
            // The connection stays out of `conns` while in use: if the caller cancels this
            // call mid-write, the connection is dropped rather than left with half a frame.
            let conn = match self.conns.remove(&server) {
                Some(conn) => Some(conn),
                None => timeout(self.retry, Conn::connect(&server))
                    .await
                    .ok()
                    .and_then(Result::ok),
            };
            let Some(mut conn) = conn else {
                if !sent {
                    return Err(KvError::NotConnected);
                }
                sleep(self.retry).await;
                continue;
            };
            if !matches!(timeout(self.retry, conn.send(&request)).await, Ok(Ok(()))) {
                continue;
            }
            sent = true;
            let deadline = Instant::now() + self.retry;
            while let Ok(Some(msg)) = timeout_at(deadline, conn.recv()).await {
                match msg {
                    Msg::Reply { seq: s, ret } if s == seq => {
                        self.conns.insert(server, conn);
                        return match ret {
                            KvRet::Err(e) => Err(e),
                            ret => Ok(ret),
                        };
                    }
                    // The answer to a request a cancelled call gave up on.
                    _ => continue,
                }
            }
            // No answer in time: the connection may have lost bytes for good (turmoil TCP
            // does not retransmit), so resend on a fresh one.
        }
    }
}

fn unexpected(ret: KvRet) -> KvError {
    KvError::Failed(format!("unexpected answer {ret}"))
}

#[async_trait(?Send)]
impl KvReader for Client {
    async fn get(&mut self, key: &str) -> Result<Option<String>, KvError> {
        match self.call(KvOp::Get { key: key.into() }).await? {
            KvRet::Value(v) => Ok(v),
            ret => Err(unexpected(ret)),
        }
    }

    async fn entry(&mut self, key: &str) -> Result<Option<Entry>, KvError> {
        match self.call(KvOp::Entry { key: key.into() }).await? {
            KvRet::Entry(e) => Ok(e),
            ret => Err(unexpected(ret)),
        }
    }

    async fn keys(&mut self, prefix: &str) -> Result<Vec<String>, KvError> {
        let prefix = prefix.into();
        match self.call(KvOp::Keys { prefix }).await? {
            KvRet::Keys(keys) => Ok(keys),
            ret => Err(unexpected(ret)),
        }
    }

    async fn scan(&mut self, prefix: &str) -> Result<Vec<(String, Entry)>, KvError> {
        let prefix = prefix.into();
        match self.call(KvOp::Scan { prefix }).await? {
            KvRet::Scan(entries) => Ok(entries),
            ret => Err(unexpected(ret)),
        }
    }
}

impl Client {
    async fn write(&mut self, op: KvOp) -> Result<Rev, KvError> {
        match self.call(op).await? {
            KvRet::Written(rev) => Ok(rev),
            ret => Err(unexpected(ret)),
        }
    }

    async fn delete_op(&mut self, op: KvOp) -> Result<bool, KvError> {
        match self.call(op).await? {
            KvRet::Deleted(deleted) => Ok(deleted),
            ret => Err(unexpected(ret)),
        }
    }
}

#[async_trait(?Send)]
impl KvWriter for Client {
    async fn put(&mut self, key: &str, value: &str) -> Result<Rev, KvError> {
        let (key, value) = (key.into(), value.into());
        self.write(KvOp::Put { key, value }).await
    }

    async fn create(&mut self, key: &str, value: &str) -> Result<Rev, KvError> {
        let (key, value) = (key.into(), value.into());
        self.write(KvOp::Create { key, value }).await
    }

    async fn update(&mut self, key: &str, value: &str, expected: Rev) -> Result<Rev, KvError> {
        let (key, value) = (key.into(), value.into());
        self.write(KvOp::Update {
            key,
            value,
            expected,
        })
        .await
    }

    async fn delete(&mut self, key: &str) -> Result<bool, KvError> {
        self.delete_op(KvOp::Delete { key: key.into() }).await
    }

    async fn delete_with_version(&mut self, key: &str, expected: Rev) -> Result<bool, KvError> {
        let key = key.into();
        self.delete_op(KvOp::DeleteWithVersion { key, expected })
            .await
    }
}

#[async_trait(?Send)]
impl KvPurge for Client {
    async fn purge(&mut self, key: &str) -> Result<(), KvError> {
        match self.call(KvOp::Purge { key: key.into() }).await? {
            KvRet::Purged => Ok(()),
            ret => Err(unexpected(ret)),
        }
    }
}

#[async_trait(?Send)]
impl KvWatcher for Client {
    async fn watch(
        &mut self,
        scope: &Scope,
        from: Option<Rev>,
        tx: UnboundedSender<Update>,
    ) -> Result<(), KvError> {
        let primary = self.node.servers[0].clone();
        let mut cursor = from;
        let mut reconnected = false;
        loop {
            if let Ok(Ok(mut conn)) = timeout(self.retry, Conn::connect(&primary)).await {
                let from = cursor;
                let request = Msg::Watch {
                    scope: scope.clone(),
                    from,
                };
                let sent = matches!(timeout(self.retry, conn.send(&request)).await, Ok(Ok(())));
                let mut lose = sent && reconnected && self.bug == Some(Bug::DropOnReconnect);
                let mut next = 0;
                while let Ok(Some(msg)) = timeout(self.retry, conn.recv()).await {
                    let Msg::Watched { n, watched } = msg else {
                        break;
                    };
                    if self.bug == Some(Bug::TrustStream) {
                        next = n;
                    }
                    if n < next {
                        // A repeat, or one that came late: delivered already.
                        continue;
                    }
                    if n > next {
                        // One went missing: resume from the cursor on a fresh stream.
                        break;
                    }
                    next += 1;
                    let updates = match watched {
                        Watched::Sync { updates, rev } => {
                            cursor = Some(rev);
                            updates
                        }
                        Watched::Updates { updates } => updates,
                        Watched::Beat => continue,
                        Watched::Expired => return Err(KvError::CursorExpired),
                    };
                    for u in updates {
                        cursor = cursor.max(Some(u.rev()));
                        if std::mem::take(&mut lose) {
                            continue;
                        }
                        if tx.send(u).is_err() {
                            return Ok(());
                        }
                    }
                }
            }
            // Broken, silent or out of turn: start afresh.
            reconnected = true;
            sleep(self.retry).await;
        }
    }
}

//! An edge node: runs invocations one at a time against its store, and lends entries to
//! the nodes that pull them.

use squall_models::spark::{valid_key, Call, Expiry, Invocation, Params, SparkError};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::task::spawn_local;
use tokio::time::{sleep, timeout};
use turmoil::net::TcpListener;

use super::store::{self, Item, Items};
use super::wire::{Conn, Migrant, Msg};
use super::Bug;
use crate::protocols::spark::backends::HostRet;
use crate::world::{Node, PORT};

/// The store's file.
const STORE: &str = "spark";
/// How often the lost-write mutant syncs its disk.
const FLUSH: Duration = Duration::from_secs(1);

/// Serve as `node` until the host crashes.
pub async fn serve(node: Node, params: Params, bug: Option<Bug>) -> turmoil::Result {
    let edge = Rc::new(Edge::recover(node, params, bug)?);
    let listener = TcpListener::bind(("0.0.0.0", PORT)).await?;
    if bug.is_some_and(Bug::flushes) {
        spawn_local(edge.clone().flush());
    }
    loop {
        let (stream, _) = listener.accept().await?;
        spawn_local(edge.clone().session(Conn::new(stream)));
    }
}

struct Edge {
    node: Node,
    params: Params,
    bug: Option<Bug>,
    /// The store as of the last invocation that finished.
    items: RefCell<Items>,
    /// Held while an invocation runs, so invocations do not interleave.
    turn: Mutex<()>,
    /// The write counter the write-limit mutant keeps across invocations.
    writes: Cell<u32>,
}

/// One invocation under way: its copy of the store and its counters.
struct Run {
    items: Items,
    reads: u32,
    writes: u32,
    pulls: u32,
    changed: bool,
}

impl Edge {
    fn recover(node: Node, params: Params, bug: Option<Bug>) -> turmoil::Result<Edge> {
        let bytes = node.disk.read(STORE).unwrap_or_default();
        let items = store::decode(&bytes).ok_or("the store on disk is garbled")?;
        Ok(Edge {
            node,
            params,
            bug,
            items: RefCell::new(items),
            turn: Mutex::new(()),
            writes: Cell::new(0),
        })
    }

    async fn session(self: Rc<Self>, mut conn: Conn) {
        // A client sends its invocations in order, each once: one at or below the last seen
        // is a message repeated or held back on the way, and must not run again.
        let mut last = 0;
        while let Some(msg) = conn.recv().await {
            let reply = match msg {
                Msg::Invoke { seq, .. } if seq <= last => continue,
                Msg::Invoke { seq, invocation } => {
                    last = seq;
                    Msg::Results {
                        seq,
                        results: self.invoke(&invocation).await,
                    }
                }
                Msg::Fetch { keys } => Msg::Fetched {
                    entries: self.lend(&keys),
                },
                Msg::Results { .. } | Msg::Fetched { .. } => return,
            };
            if conn.send(&reply).await.is_err() {
                return;
            }
        }
    }

    async fn invoke(&self, inv: &Invocation) -> Vec<HostRet> {
        let _turn = self.turn.lock().await;
        let carried = self.bug == Some(Bug::WriteLimitNotReset);
        let mut run = Run {
            items: self.items.borrow().clone(),
            reads: 0,
            writes: if carried { self.writes.get() } else { 0 },
            pulls: 0,
            changed: false,
        };
        let mut results = Vec::new();
        for call in &inv.calls {
            results.push(self.call(&mut run, inv, call).await);
        }
        if carried {
            self.writes.set(run.writes);
        }
        if run.changed {
            self.node.disk.write(STORE, &store::encode(&run.items));
            if self.bug != Some(Bug::LostWrite) {
                self.node.disk.sync();
            }
            *self.items.borrow_mut() = run.items;
        }
        results
    }

    async fn call(&self, run: &mut Run, inv: &Invocation, call: &Call) -> HostRet {
        let p = &self.params;
        let now = self.node.clock.now();
        match call {
            Call::Get { key } => {
                run.reads += 1;
                let item = run.items.get(key).filter(|i| self.live(i, now));
                match item {
                    Some(item) if run.reads <= p.reads && valid_key(key) => {
                        let mut payload = self.left(item, now).to_le_bytes().to_vec();
                        payload.extend(&item.value);
                        HostRet::Get(payload)
                    }
                    _ => HostRet::Get(Vec::new()),
                }
            }
            Call::List => {
                run.reads += 1;
                let keys: Vec<&String> = run
                    .items
                    .iter()
                    .filter(|(_, i)| self.live(i, now))
                    .map(|(k, _)| k)
                    .collect();
                let json = serde_json::to_vec(&keys).expect("keys serialise");
                HostRet::List(if run.reads <= p.reads {
                    json
                } else {
                    Vec::new()
                })
            }
            Call::Set { key, value, ttl } => {
                let value = value.bytes();
                let err = if !valid_key(key) {
                    Some(SparkError::BadKey)
                } else if p.bad_ttl(*ttl) {
                    Some(SparkError::InvalidTtl)
                } else if p.too_large(value.len()) {
                    Some(SparkError::TooLarge)
                } else if !inv.writes {
                    Some(SparkError::NoCapability)
                } else if run.writes >= p.writes {
                    Some(SparkError::WriteLimit)
                } else if self.usage(&run.items, key, now) + (key.len() + value.len()) as u64
                    > p.quota
                {
                    Some(SparkError::QuotaExceeded)
                } else {
                    None
                };
                if let Some(e) = err {
                    return HostRet::Set(e.code());
                }
                let ttl = *ttl as u32;
                let deadline = (ttl > 0).then(|| self.deadline(now, ttl));
                run.items.insert(
                    key.clone(),
                    Item {
                        value,
                        deadline,
                        ttl,
                    },
                );
                run.writes += 1;
                run.changed = true;
                HostRet::Set(0)
            }
            Call::Delete { key } => {
                if inv.writes && valid_key(key) && run.writes < p.writes {
                    run.writes += 1;
                    run.changed |= run.items.remove(key).is_some();
                }
                HostRet::Delete
            }
            Call::Pull { origin, keys } => {
                let limit = self.bug.map_or(p.pulls, |b| b.pull_limit(p.pulls));
                if run.pulls >= limit {
                    return HostRet::Pull(-SparkError::WriteLimit.code());
                }
                let pulled = self.pull(run, inv, origin, keys).await;
                if pulled.is_ok() || p.failed_pull_consumes {
                    run.pulls += 1;
                }
                HostRet::Pull(pulled.map_or_else(|e| -e.code(), |n| n as i32))
            }
        }
    }

    async fn pull(
        &self,
        run: &mut Run,
        inv: &Invocation,
        origin: &str,
        keys: &[String],
    ) -> Result<u32, SparkError> {
        let known = self.node.servers.iter().any(|s| s == origin);
        if !inv.writes {
            return Err(SparkError::NoCapability);
        }
        if !known || origin == self.node.name || !keys.iter().all(|k| valid_key(k)) {
            return Err(SparkError::BadKey);
        }
        let entries = self.fetch(origin, keys).await.ok_or(SparkError::Internal)?;
        let now = self.node.clock.now();
        for m in &entries {
            let deadline = match self.bug {
                Some(Bug::PullForever) => None,
                _ => m.left.map(|left| now + Duration::from_nanos(left)),
            };
            let item = Item {
                value: m.value.clone(),
                deadline,
                ttl: m.ttl,
            };
            let shifted = self.bug.and_then(|b| b.pull_key(keys, &m.key));
            let key = shifted.unwrap_or_else(|| m.key.clone());
            run.items.insert(key, item);
        }
        run.changed |= !entries.is_empty();
        Ok(entries.len() as u32)
    }

    /// Ask `origin` for the live entries of `keys`; `None` if it does not answer in time.
    async fn fetch(&self, origin: &str, keys: &[String]) -> Option<Vec<Migrant>> {
        let wait = self.node.timeout / 4;
        let mut conn = timeout(wait, Conn::connect(origin)).await.ok()?.ok()?;
        let keys = keys.to_vec();
        timeout(wait, conn.send(&Msg::Fetch { keys }))
            .await
            .ok()?
            .ok()?;
        match timeout(wait, conn.recv()).await.ok()?? {
            Msg::Fetched { entries } => Some(entries),
            _ => None,
        }
    }

    /// The live entries of `keys`, for a node that pulls them.
    fn lend(&self, keys: &[String]) -> Vec<Migrant> {
        let now = self.node.clock.now();
        let items = self.items.borrow();
        let mut keys: Vec<&String> = keys.iter().collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter_map(|k| Some((k, items.get(k).filter(|i| self.live(i, now))?)))
            .map(|(key, item)| Migrant {
                key: key.clone(),
                value: item.value.clone(),
                left: item
                    .deadline
                    .map(|d| d.saturating_sub(now).as_nanos() as u64),
                ttl: item.ttl,
            })
            .collect()
    }

    fn deadline(&self, now: Duration, ttl: u32) -> Duration {
        let mutant = self.bug.and_then(|b| b.deadline(now, ttl));
        mutant.unwrap_or(now + Duration::from_secs(ttl as u64))
    }

    fn live(&self, item: &Item, now: Duration) -> bool {
        let Some(deadline) = item.deadline else {
            return true;
        };
        if let Some(live) = self.bug.and_then(|b| b.live(now, deadline)) {
            return live;
        }
        match self.params.expiry {
            Expiry::AtDeadline => now < deadline,
            Expiry::AfterDeadline => now <= deadline,
        }
    }

    /// The remaining TTL `get` reports, in whole seconds.
    fn left(&self, item: &Item, now: Duration) -> u32 {
        let Some(deadline) = item.deadline else {
            return 0;
        };
        if let Some(left) = self.bug.and_then(|b| b.left(item.ttl, now, deadline)) {
            return left;
        }
        let left = deadline.as_nanos() as i64 - now.as_nanos() as i64;
        self.params.round(left)
    }

    /// Bytes of keys and values the live entries other than `key` hold.
    fn usage(&self, items: &Items, key: &str, now: Duration) -> u64 {
        items
            .iter()
            .filter(|(k, i)| *k != key && self.live(i, now))
            .map(|(k, i)| (k.len() + i.value.len()) as u64)
            .sum()
    }

    async fn flush(self: Rc<Self>) {
        loop {
            sleep(FLUSH).await;
            self.node.disk.sync();
        }
    }
}

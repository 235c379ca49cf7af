//! A server host. The primary (`servers[0]`) orders writes into its log, makes each durable
//! and waits for a majority before it answers; the backups hold copies of the log. Every
//! server answers reads from the bucket its log builds; only the primary takes writes.
//!
//! The primary also streams its log to watchers, one connection a watch: a state sync from
//! the bucket or a resume from a cursor, then each write as it lands in the log, with a beat
//! when idle so that a watcher can tell a dead connection. Retention is a view of the log:
//! a record counts as dropped once its key has `history` later records or a later purge,
//! and a resume that needs a dropped record answers `Expired`.

use squall_models::kv::{KvError, KvOp, KvRet, Rev};
use squall_models::watch::{Retention, Scope, Update};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::spawn_local;
use tokio::time::{sleep, timeout};
use turmoil::net::TcpListener;

use super::bucket::{answer, update, Bucket, Write};
use super::wire::{Conn, Msg, Record, Watched};
use super::Bug;
use crate::world::{Node, PORT};

/// The log's file: one JSON record a line, each with its checksum.
const LOG: &str = "log";
/// At most this many records in one append, so a backup far behind catches up in steps.
const BATCH: usize = 256;
/// How often the lost-write mutant syncs its disk, as an fsync-every-second setting does.
const FLUSH: Duration = Duration::from_secs(1);

/// Serve as `node` until the host crashes.
pub async fn serve(node: Node, bug: Option<Bug>, retention: Retention) -> turmoil::Result {
    let replica = Rc::new(Replica::recover(node, bug, retention)?);
    let listener = TcpListener::bind(("0.0.0.0", PORT)).await?;
    if replica.is_primary() {
        for backup in &replica.node.servers[1..] {
            spawn_local(replica.clone().replicate(backup.clone()));
        }
        if bug == Some(Bug::LostWrite) {
            spawn_local(replica.clone().flush());
        }
    }
    loop {
        let (stream, _) = listener.accept().await?;
        spawn_local(replica.clone().session(Conn::new(stream)));
    }
}

struct Replica {
    node: Node,
    bug: Option<Bug>,
    retention: Retention,
    /// How long to wait for a peer before trying again.
    retry: Duration,
    state: RefCell<State>,
    /// The log's length: wakes the replicators.
    len: watch::Sender<usize>,
    /// How much of the log a majority holds: wakes the writes waiting to answer.
    commit: watch::Sender<usize>,
}

#[derive(Default)]
struct State {
    log: Vec<Record>,
    bucket: Bucket,
    /// Each client's latest write: a retry of it gets the same answer.
    done: BTreeMap<String, Done>,
    /// How much of the log each backup holds, as it last acknowledged.
    held: BTreeMap<String, usize>,
}

struct Done {
    seq: u64,
    /// The index of the record it wrote, or why it was refused.
    outcome: Result<usize, KvError>,
}

impl State {
    fn push(&mut self, record: Record) {
        self.bucket
            .apply(&record.key, &record.write, record.rev, record.at);
        let done = Done {
            seq: record.seq,
            outcome: Ok(self.log.len()),
        };
        self.done.insert(record.client.clone(), done);
        self.log.push(record);
    }

    /// Where a watch of `scope` starts at time `now`: its first message (a state sync, or
    /// `Expired` when retention dropped a record the cursor `from` needs) and the log index
    /// it streams from.
    fn start(
        &self,
        scope: &Scope,
        from: Option<Rev>,
        bug: Option<Bug>,
        retention: Retention,
        now: u64,
    ) -> (Watched, usize) {
        let aged = aged(retention, now).filter(|_| bug != Some(Bug::IgnoreMaxAge));
        let Some(cursor) = from else {
            let mut updates = self.bucket.sync(scope, aged);
            if bug == Some(Bug::RelistNoMarkers) {
                updates.retain(|u| matches!(u, Update::Put { .. }));
            }
            let rev = self.bucket.rev();
            return (Watched::Sync { updates, rev }, self.log.len());
        };
        let after = match bug {
            Some(Bug::ResumeAtCursor) => cursor.saturating_sub(1),
            _ => cursor,
        };
        let start = self.log.partition_point(|r| r.rev <= after);
        let records = &self.log[start..];
        let dropped = dropped(records, retention.history, aged);
        let needed = |(r, d): (&Record, &bool)| *d && scope.covers(&r.key);
        if !records.iter().zip(&dropped).any(needed) {
            return (Watched::Beat, start);
        }
        if bug != Some(Bug::SkipCompacted) {
            return (Watched::Expired, start);
        }
        let updates = (records.iter().zip(&dropped))
            .filter(|&(r, d)| !d && scope.covers(&r.key))
            .map(|(r, _)| update(&r.key, &r.write, r.rev))
            .collect();
        (Watched::Updates { updates }, self.log.len())
    }

    /// The records in `scope` from log index `next` on, as updates; `next` moves past them.
    fn updates(&self, scope: &Scope, next: &mut usize) -> Vec<Update> {
        let records = self.log.get(*next..).unwrap_or_default();
        *next += records.len();
        (records.iter())
            .filter(|r| scope.covers(&r.key))
            .map(|r| update(&r.key, &r.write, r.rev))
            .collect()
    }

    /// Whether the records retention keeps at `now`, with `record` added, fit in `max_bytes`
    /// (a key and its value count).
    fn fits(&self, record: &Record, retention: Retention, now: u64) -> bool {
        let Some(max) = retention.max_bytes else {
            return true;
        };
        let log = [&self.log[..], std::slice::from_ref(record)].concat();
        let dropped = dropped(&log, retention.history, aged(retention, now));
        let size = |r: &Record| match &r.write {
            Write::Put(value) => r.key.len() + value.len(),
            Write::Delete | Write::Purge => r.key.len(),
        };
        let kept = (log.iter().zip(dropped)).filter(|(_, d)| !d);
        kept.map(|(r, _)| size(r) as u64).sum::<u64>() <= max
    }

    /// Keep the first `len` records, and rebuild what the rest built.
    fn truncate(&mut self, len: usize) {
        let mut log = std::mem::take(&mut self.log);
        log.truncate(len);
        self.bucket = Bucket::default();
        self.done.clear();
        log.into_iter().for_each(|r| self.push(r));
    }
}

impl Replica {
    /// The replica as the host's synced disk left it.
    fn recover(node: Node, bug: Option<Bug>, retention: Retention) -> turmoil::Result<Replica> {
        let mut state = State::default();
        for record in node.disk.records(LOG)? {
            state.push(serde_json::from_slice(&record)?);
        }
        if bug == Some(Bug::RevisionReset) {
            state.bucket.forget_dead_revisions();
        }
        for backup in &node.servers[1..] {
            state.held.insert(backup.clone(), 0);
        }
        Ok(Replica {
            retry: super::retry(&node),
            len: watch::Sender::new(state.log.len()),
            commit: watch::Sender::new(0),
            state: RefCell::new(state),
            node,
            bug,
            retention,
        })
    }

    fn is_primary(&self) -> bool {
        self.node.servers.first() == Some(&self.node.name)
    }

    async fn session(self: Rc<Self>, mut conn: Conn) {
        while let Some(msg) = conn.recv().await {
            let reply = match msg {
                // BUGGIFY: the connection breaks as a request arrives; the client resends.
                Msg::Request { .. } if self.node.buggify("kv/drop-connection") => return,
                Msg::Request { client, seq, op } => match self.request(&client, seq, &op).await {
                    Some(ret) => Msg::Reply { seq, ret },
                    None => continue,
                },
                Msg::Append { start, entries } => Msg::Ack {
                    len: self.append_from(start, entries),
                },
                Msg::Watch { scope, from } => return self.watch(conn, scope, from).await,
                Msg::Reply { .. } | Msg::Ack { .. } | Msg::Watched { .. } => return,
            };
            // BUGGIFY: a slow reply, past the client's retry.
            if self.node.buggify("kv/delay-reply") {
                sleep(self.retry * 2).await;
            }
            if !matches!(timeout(self.retry, conn.send(&reply)).await, Ok(Ok(()))) {
                return;
            }
        }
    }

    /// The answer to a client's request; `None` for one its client has given up on.
    async fn request(&self, client: &str, seq: u64, op: &KvOp) -> Option<KvRet> {
        if !op.is_write() {
            return Some(self.state.borrow().bucket.read(op));
        }
        if !self.is_primary() {
            let why = format!("{} is not the primary", self.node.name);
            return Some(KvRet::Err(KvError::Failed(why)));
        }
        let index = {
            let mut state = self.state.borrow_mut();
            let dedup = self.bug != Some(Bug::DoubleApply);
            let prior = state.done.get(client).filter(|_| dedup);
            match prior.map(|done| (done.seq, done.outcome.clone())) {
                Some((done, _)) if done > seq => return None,
                Some((done, outcome)) if done == seq => match outcome {
                    Ok(index) => index,
                    Err(e) => return Some(KvRet::Err(e)),
                },
                _ => match state.bucket.decide(op, self.bug) {
                    Err(e) => {
                        // Remembered but not logged: a late copy of this request must not
                        // apply once the refusal is out. A restart closes every connection
                        // that could still carry one.
                        let done = Done {
                            seq,
                            outcome: Err(e.clone()),
                        };
                        state.done.insert(client.to_string(), done);
                        return Some(KvRet::Err(e));
                    }
                    Ok((key, write)) => {
                        let rev = state.bucket.next_rev();
                        let ret = answer(op, rev);
                        let client = client.to_string();
                        let now = self.node.clock.now().as_nanos() as u64;
                        let record = Record {
                            rev,
                            key,
                            write,
                            client,
                            seq,
                            ret,
                            at: now,
                        };
                        if !state.fits(&record, self.retention, now) {
                            // As a NATS bucket that discards new writes: refused, so the
                            // caller cannot tell it from a lost answer.
                            let e = KvError::Failed("maximum bytes exceeded".into());
                            let done = Done {
                                seq,
                                outcome: Err(e.clone()),
                            };
                            state.done.insert(record.client, done);
                            return Some(KvRet::Err(e));
                        }
                        self.append(&mut state, record)
                    }
                },
            }
        };
        if self.bug != Some(Bug::LostWrite) {
            let mut commit = self.commit.subscribe();
            commit.wait_for(|&c| c > index).await.ok()?;
        }
        Some(self.state.borrow().log[index].ret.clone())
    }

    /// Append a write to the primary's log; its index.
    fn append(&self, state: &mut State, record: Record) -> usize {
        self.node.disk.append(LOG, &line(&record));
        if self.bug != Some(Bug::LostWrite) {
            // Durable before any backup or client hears of it: a restarted primary then
            // never forgets what it sent.
            self.node.disk.sync();
        }
        state.push(record);
        self.len.send_replace(state.log.len());
        self.advance(state);
        state.log.len() - 1
    }

    /// A backup takes the primary's log from index `start` on; how much of it it now holds.
    fn append_from(&self, start: usize, entries: Vec<Record>) -> usize {
        let mut state = self.state.borrow_mut();
        if start > state.log.len() {
            return state.log.len();
        }
        let end = start + entries.len();
        let mut rewrite = false;
        for (at, record) in (start..).zip(entries) {
            if state.log.get(at) == Some(&record) {
                continue;
            }
            if at < state.log.len() {
                // Only a primary that lost writes it had sent makes a log diverge.
                state.truncate(at);
                rewrite = true;
            }
            if !rewrite {
                self.node.disk.append(LOG, &line(&record));
            }
            state.push(record);
        }
        if rewrite {
            let log: Vec<u8> = state.log.iter().flat_map(line).collect();
            self.node.disk.write(LOG, &log);
        }
        self.node.disk.sync();
        end
    }

    /// Keep backup `backup` up to date, reconnecting whenever it stops answering.
    async fn replicate(self: Rc<Self>, backup: String) {
        let mut grown = self.len.subscribe();
        loop {
            if let Ok(Ok(mut conn)) = timeout(self.retry, Conn::connect(&backup)).await {
                // Probe at our end of the log; the backup answers where it holds up to.
                let mut next = self.state.borrow().log.len();
                while let Some(held) = self.ship(&mut conn, next).await {
                    next = held;
                    self.held(&backup, held);
                    if next >= *grown.borrow_and_update() {
                        // Idle: an empty append after a while doubles as a heartbeat.
                        let _ = timeout(self.retry, grown.changed()).await;
                    }
                }
            }
            sleep(self.retry).await;
        }
    }

    /// Send the log from `start` on; how much of it the backup acknowledges holding.
    async fn ship(&self, conn: &mut Conn, start: usize) -> Option<usize> {
        let entries = {
            let state = self.state.borrow();
            let end = state.log.len().min(start + BATCH);
            state.log.get(start..end).unwrap_or_default().to_vec()
        };
        let append = Msg::Append { start, entries };
        timeout(self.retry, conn.send(&append)).await.ok()?.ok()?;
        match timeout(self.retry, conn.recv()).await.ok()?? {
            Msg::Ack { len } => Some(len),
            _ => None,
        }
    }

    fn held(&self, backup: &str, len: usize) {
        let mut state = self.state.borrow_mut();
        state.held.insert(backup.to_string(), len);
        self.advance(&mut state);
    }

    /// Move the commit point to what a majority, the primary included, holds.
    fn advance(&self, state: &mut State) {
        let mut lens: Vec<usize> = state.held.values().copied().collect();
        lens.push(state.log.len());
        lens.sort_unstable_by(|a, b| b.cmp(a));
        let committed = lens[self.node.servers.len() / 2];
        self.commit.send_if_modified(|c| {
            let grew = committed > *c;
            *c = (*c).max(committed);
            grew
        });
    }

    /// Stream the writes in `scope` to a watcher until it hangs up or stops taking them.
    async fn watch(self: Rc<Self>, mut conn: Conn, scope: Scope, from: Option<Rev>) {
        let scope = match scope {
            Scope::Prefixes(ps) if ps.is_empty() && self.bug == Some(Bug::EmptyWatchesAll) => {
                Scope::All
            }
            scope => scope,
        };
        // A cursor may be past the last revision: what comes before it is not the watch's.
        let after = from.filter(|_| self.bug != Some(Bug::FutureCursor));
        let mut grown = self.len.subscribe();
        let now = self.node.clock.now().as_nanos() as u64;
        let (mut msg, mut next) =
            (self.state.borrow()).start(&scope, from, self.bug, self.retention, now);
        for n in 0.. {
            let expired = matches!(msg, Watched::Expired);
            let watched = Msg::Watched { n, watched: msg };
            let sent = matches!(timeout(self.retry, conn.send(&watched)).await, Ok(Ok(())));
            if !sent || expired {
                return;
            }
            msg = loop {
                grown.borrow_and_update();
                let mut updates = self.state.borrow().updates(&scope, &mut next);
                updates.retain(|u| after.is_none_or(|c| u.rev() > c));
                if !updates.is_empty() {
                    break Watched::Updates { updates };
                }
                tokio::select! {
                    biased;
                    // A watcher sends nothing after its request: this is it hanging up.
                    _ = conn.recv() => return,
                    _ = grown.changed() => {}
                    () = sleep(self.retry / 2) => break Watched::Beat,
                }
            };
        }
    }

    async fn flush(self: Rc<Self>) {
        loop {
            sleep(FLUSH).await;
            self.node.disk.sync();
        }
    }
}

/// A record as the log holds it: checksummed, so that recovery cuts off a torn one.
fn line(record: &Record) -> Vec<u8> {
    crate::world::disk::frame(&serde_json::to_vec(record).expect("a record serialises"))
}

/// The newest write time that `retention` has aged out at `now`, if it ages writes.
fn aged(retention: Retention, now: u64) -> Option<u64> {
    let age = retention.max_age?.as_nanos() as u64;
    now.checked_sub(age)
}

/// Which of `records` retention dropped: those whose key has `history` records or a purge
/// after them, and those written at or before `aged`.
fn dropped(records: &[Record], history: usize, aged: Option<u64>) -> Vec<bool> {
    let mut later: BTreeMap<&str, (usize, bool)> = BTreeMap::new();
    let mut dropped: Vec<bool> = (records.iter().rev())
        .map(|r| {
            let (count, purged) = later.entry(&r.key).or_default();
            let gone = *count >= history || *purged || aged.is_some_and(|a| r.at <= a);
            *count += 1;
            *purged |= r.write == Write::Purge;
            gone
        })
        .collect();
    dropped.reverse();
    dropped
}

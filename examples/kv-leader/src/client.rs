//! The client, as squall's KV client traits have it: one call at a time to the leader,
//! retried until answered or out of time, and watches that survive lost connections.

use async_trait::async_trait;
use squall::protocols::kv::{KvPurge, KvReader, KvWatcher, KvWriter};
use squall::world::Node;
use squall_models::kv::{Entry, KvError};
use squall_models::watch::{Scope, Update};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
// tokio's clock: turmoil simulates it.
use tokio::time::{sleep, sleep_until, timeout, timeout_at, Instant};

use crate::wire::{Answer, Cmd, Conn, Event, Refusal, Request, Response, Rev, What};

/// A client of the leader. Its id is its host's name: the leader tells clients apart by
/// it, so a host holds one client at a time.
pub struct Client {
    node: Node,
    patience: Duration,
    /// The sequence number of the latest call.
    seq: u64,
    /// The connection to the leader between calls. A call takes it out while it uses it,
    /// so a call cancelled mid-way drops it rather than leave half a line on it.
    conn: Option<Conn>,
}

/// Why a watch's stream stopped.
enum Stop {
    /// Broken or silent: resume on a fresh one.
    Lost,
    /// The caller stopped listening.
    Closed,
    Expired,
}

impl Client {
    pub fn new(node: Node) -> Client {
        Client {
            patience: crate::patience(&node),
            node,
            seq: 0,
            conn: None,
        }
    }

    fn leader(&self) -> &str {
        &self.node.servers[0]
    }

    /// Send `cmd` until its answer comes or `node.timeout` has passed, each try on a fresh
    /// connection, waiting longer each time.
    async fn call(&mut self, cmd: Cmd) -> Result<Answer, KvError> {
        self.seq += 1;
        let seq = self.seq;
        let request = Request::Call {
            client: self.node.name.clone(),
            seq,
            cmd,
        };
        let give_up = Instant::now() + self.node.timeout;
        let mut wait = self.patience;
        let mut sent = false;
        loop {
            let now = Instant::now();
            if now >= give_up {
                let why = format!(
                    "no answer from {} in {:?}",
                    self.leader(),
                    self.node.timeout
                );
                return Err(KvError::Failed(why));
            }
            let until = (now + wait).min(give_up);
            wait = (wait * 2).min(self.node.timeout);
            let conn = match self.conn.take() {
                Some(conn) => Some(conn),
                None => (timeout_at(until, Conn::connect(self.leader())).await)
                    .ok()
                    .and_then(Result::ok),
            };
            let Some(mut conn) = conn else {
                if !sent {
                    return Err(KvError::NotConnected);
                }
                sleep_until(until).await;
                continue;
            };
            if !matches!(timeout_at(until, conn.send(&request)).await, Ok(Ok(()))) {
                sleep_until(until).await;
                continue;
            }
            sent = true;
            // Until the try's time is up; a reply to another call is skipped.
            while let Ok(Ok(Some(response))) = timeout_at(until, conn.recv()).await {
                if let Response::Reply { seq: s, answer } = response {
                    if s == seq {
                        self.conn = Some(conn);
                        return Ok(answer);
                    }
                }
            }
        }
    }

    /// Follow one watch stream of `prefixes` from `cursor`, moving `cursor` past what it
    /// delivers to `tx`, until it stops.
    async fn follow(
        &self,
        prefixes: &[String],
        cursor: &mut Option<Rev>,
        tx: &UnboundedSender<Update>,
    ) -> Stop {
        let Ok(Ok(mut conn)) = timeout(self.patience, Conn::connect(self.leader())).await else {
            return Stop::Lost;
        };
        let request = Request::Watch {
            prefixes: prefixes.to_vec(),
            after: *cursor,
        };
        if !matches!(
            timeout(self.patience, conn.send(&request)).await,
            Ok(Ok(()))
        ) {
            return Stop::Lost;
        }
        loop {
            // The leader beats twice as often as this: silence means a stalled connection.
            let Ok(Ok(Some(response))) = timeout(self.patience, conn.recv()).await else {
                return Stop::Lost;
            };
            let (events, upto) = match response {
                Response::Start { events, rev } => (events, Some(rev)),
                Response::Event(event) => (vec![event], None),
                Response::Beat => continue,
                Response::Expired => return Stop::Expired,
                Response::Reply { .. } => return Stop::Lost,
            };
            for event in events {
                *cursor = Some(event.rev);
                if tx.send(update(event)).is_err() {
                    return Stop::Closed;
                }
            }
            // A start brings the watch up to the bucket's revision, past the last event.
            *cursor = upto.or(*cursor);
        }
    }
}

/// A write as squall's watches see it: a tombstone is a delete.
fn update(Event { key, rev, what }: Event) -> Update {
    match what {
        What::Put(value) if !value.is_empty() => Update::Put { key, value, rev },
        What::Put(_) | What::Delete => Update::Delete { key, rev },
        What::Purge => Update::Purge { key, rev },
    }
}

/// The error an answer that is not the one asked for stands for.
fn error(answer: Answer) -> KvError {
    match answer {
        Answer::Refused(Refusal::Exists) => KvError::AlreadyExists,
        Answer::Refused(Refusal::WrongRevision) => KvError::RevisionMismatch,
        // Refused, but the models have no word for it: as good as unknown to a caller.
        Answer::Refused(Refusal::Full) => KvError::Failed("the bucket is full".into()),
        other => KvError::Failed(format!("unexpected answer {other:?}")),
    }
}

impl Client {
    async fn write(&mut self, cmd: Cmd) -> Result<Rev, KvError> {
        match self.call(cmd).await? {
            Answer::Wrote(rev) => Ok(rev),
            other => Err(error(other)),
        }
    }
}

#[async_trait(?Send)]
impl KvReader for Client {
    async fn get(&mut self, key: &str) -> Result<Option<String>, KvError> {
        match self.call(Cmd::Get { key: key.into() }).await? {
            Answer::Value(value) => Ok(value),
            other => Err(error(other)),
        }
    }

    async fn entry(&mut self, key: &str) -> Result<Option<Entry>, KvError> {
        match self.call(Cmd::Entry { key: key.into() }).await? {
            Answer::Entry(entry) => Ok(entry.map(|(value, rev)| Entry { value, rev })),
            other => Err(error(other)),
        }
    }

    async fn keys(&mut self, prefix: &str) -> Result<Vec<String>, KvError> {
        let prefix = prefix.into();
        match self.call(Cmd::Keys { prefix }).await? {
            Answer::Keys(keys) => Ok(keys),
            other => Err(error(other)),
        }
    }

    async fn scan(&mut self, prefix: &str) -> Result<Vec<(String, Entry)>, KvError> {
        let prefix = prefix.into();
        match self.call(Cmd::Scan { prefix }).await? {
            Answer::Entries(entries) => Ok(entries
                .into_iter()
                .map(|(key, value, rev)| (key, Entry { value, rev }))
                .collect()),
            other => Err(error(other)),
        }
    }
}

#[async_trait(?Send)]
impl KvWriter for Client {
    async fn put(&mut self, key: &str, value: &str) -> Result<Rev, KvError> {
        let (key, value) = (key.into(), value.into());
        self.write(Cmd::Put { key, value }).await
    }

    async fn create(&mut self, key: &str, value: &str) -> Result<Rev, KvError> {
        let (key, value) = (key.into(), value.into());
        self.write(Cmd::Create { key, value }).await
    }

    async fn update(&mut self, key: &str, value: &str, expected: Rev) -> Result<Rev, KvError> {
        let (key, value) = (key.into(), value.into());
        let rev = expected;
        self.write(Cmd::Update { key, value, rev }).await
    }

    /// Always `true`: a delete writes its marker whatever the key held, as NATS does.
    async fn delete(&mut self, key: &str) -> Result<bool, KvError> {
        self.write(Cmd::Delete { key: key.into() })
            .await
            .map(|_| true)
    }

    async fn delete_with_version(&mut self, key: &str, expected: Rev) -> Result<bool, KvError> {
        let (key, rev) = (key.into(), expected);
        self.write(Cmd::DeleteIf { key, rev }).await.map(|_| true)
    }
}

#[async_trait(?Send)]
impl KvPurge for Client {
    async fn purge(&mut self, key: &str) -> Result<(), KvError> {
        self.write(Cmd::Purge { key: key.into() }).await.map(|_| ())
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
        let prefixes = match scope {
            Scope::All => vec![String::new()],
            Scope::Prefix(prefix) => vec![prefix.clone()],
            Scope::Prefixes(prefixes) => prefixes.clone(),
        };
        let mut cursor = from;
        loop {
            match self.follow(&prefixes, &mut cursor, &tx).await {
                Stop::Lost => sleep(self.patience / 2).await,
                Stop::Closed => return Ok(()),
                Stop::Expired => return Err(KvError::CursorExpired),
            }
        }
    }
}

//! `kv/nats`: NATS JetStream KV through async-nats, mapped as slipstream's `src/nats.rs`
//! maps it (`beyond-slipstream` 0.8.6). Live mode only: it needs a real nats-server.
//!
//! Each run gets a fresh bucket (history 1, 10 MiB, as slipstream's `get_or_create_bucket`),
//! made and deleted over a connection of its own, straight to the server; clients reach
//! the server through their proxies.
//!
//! | operation | async-nats call | errors |
//! |---|---|---|
//! | `put` | `kv.put` | |
//! | `delete` | `kv.delete` (DEL marker); always `true` | |
//! | `create` | `kv.create`: update at 0, else over a DEL/PURGE marker | `AlreadyExists` |
//! | `update` | `kv.update` | `RevisionMismatch` on a wrong last revision |
//! | `delete_with_version` | `kv.update(key, "", expected)`: an empty-value tombstone | same |
//! | `purge` | `kv.purge` | |
//! | `entry`, `get` | `kv.entry`; markers hide, `get` also hides empty values | |
//! | `keys`, `scan` | a last-per-subject push consumer drained of its `num_pending` | |
//!
//! Any other error, a timeout or a lost connection is an unknown outcome
//! (`KvError::Failed`); a client that cannot connect at all has sent nothing
//! (`KvError::NotConnected`).
//!
//! Watches, on async-nats ordered push consumers, which recreate themselves after a lost
//! connection from the last sequence they delivered:
//!
//! | watch | async-nats call |
//! |---|---|
//! | `watch_all`, `watch_prefix` | `kv.watch_with_history("{p}>")` (last per subject, then live) |
//! | `watch_prefixes` | `kv.watch_many_with_history(["{p}>", ...])`: one multi-filter consumer |
//! | `watch_all_from`, `watch_prefix_from` | `kv.watch_from_revision("{p}>", cursor + 1)` |
//! | `watch_prefixes_from` | an ordered consumer of its own, `filter_subjects`, by start sequence |
//!
//! A `_from` watch checks the resume window before and after making its consumer: the
//! stream's first sequence must be at most `cursor + 1`, else `CursorExpired` (a server
//! starts a consumer below its first sequence at the first message it has, silently). Only
//! `watch_all_from` keeps guarding its floor while it streams: a revision past the next
//! one makes it read the first sequence again. An empty-value put is delivered as `Delete`.

use async_nats::jetstream::consumer::{push, AckPolicy, DeliverPolicy};
use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use async_nats::jetstream::{self, Context};
use async_trait::async_trait;
use futures_util::stream::LocalBoxStream;
use futures_util::StreamExt;
use squall_models::kv::{Entry, KvError, Rev};
use squall_models::watch::{Retention, Scope, Update};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

use super::{KvPurge, KvReader, KvWatcher, KvWriter};
use crate::live;
use crate::protocol::{Caller, Protocol};
use crate::protocols::kv::Kv;
use crate::protocols::watch::Watches;

/// slipstream's default bucket size cap.
const MAX_BYTES: i64 = 10 * 1024 * 1024;

/// The backend: what its buckets keep, and the run's bucket, once made.
#[derive(Default)]
pub struct Nats {
    retention: Retention,
    admin: Option<(Context, String)>,
    timeout: Duration,
}

impl Nats {
    /// A backend whose buckets keep `retention` (`[bucket]`).
    pub fn new(retention: Retention) -> Nats {
        Nats {
            retention,
            ..Nats::default()
        }
    }
}

/// Serves any protocol whose callers a [`Client`] makes: `kv` and `watch`.
#[async_trait(?Send)]
impl<P: Protocol> live::Backend<P> for Nats
where
    Box<dyn Caller<P>>: From<Client>,
{
    fn flavor(&self) -> live::Flavor {
        live::Flavor::Nats
    }

    async fn open(&mut self, url: &str, namespace: &str, timeout: Duration) -> Result<(), String> {
        let js = connect(url, timeout)
            .await
            .map_err(|e| format!("cannot reach nats-server at {url}: {e}"))?;
        remove_leftovers(&js).await?;
        js.create_key_value(kv::Config {
            bucket: namespace.to_string(),
            history: self.retention.history as i64,
            max_bytes: self.retention.max_bytes.map_or(MAX_BYTES, |b| b as i64),
            max_age: self.retention.max_age.unwrap_or_default(),
            ..Default::default()
        })
        .await
        .map_err(|e| format!("cannot create bucket {namespace}: {e}"))?;
        self.admin = Some((js, namespace.to_string()));
        self.timeout = timeout;
        Ok(())
    }

    fn client(&self, url: &str) -> Box<dyn Caller<P>> {
        let bucket = self
            .admin
            .as_ref()
            .map(|(_, b)| b.clone())
            .unwrap_or_default();
        Box::from(Client {
            url: url.to_string(),
            bucket,
            timeout: self.timeout,
            conn: None,
        })
    }

    async fn close(&mut self) -> Result<(), String> {
        let Some((js, bucket)) = self.admin.take() else {
            return Ok(());
        };
        js.delete_key_value(&bucket)
            .await
            .map_err(|e| format!("cannot delete bucket {bucket}: {e}"))?;
        match js.get_key_value(&bucket).await {
            Err(_) => Ok(()),
            Ok(_) => Err(format!("bucket {bucket} is still there after deleting it")),
        }
    }
}

/// Delete the buckets of runs on this machine whose process died ([`live::leftover`]); no
/// other bucket is touched.
async fn remove_leftovers(js: &Context) -> Result<(), String> {
    let names: Vec<String> = js
        .stream_names()
        .filter_map(|n| async { n.ok() })
        .collect()
        .await;
    for bucket in names.iter().filter_map(|n| n.strip_prefix("KV_")) {
        if live::leftover(bucket) {
            js.delete_key_value(bucket)
                .await
                .map_err(|e| format!("cannot delete leftover bucket {bucket}: {e}"))?;
        }
    }
    Ok(())
}

impl From<Client> for Box<dyn Caller<Kv>> {
    fn from(c: Client) -> Self {
        Box::new(Box::new(c) as Box<dyn super::KvClient>)
    }
}

impl From<Client> for Box<dyn Caller<Watches>> {
    fn from(c: Client) -> Self {
        Box::new(Box::new(c) as Box<dyn super::KvWatchClient>)
    }
}

/// A JetStream context on a fresh connection to `url`. Requests time out after `timeout`,
/// so an answer lost to a fault ends as an error rather than a hang; reconnects are quick,
/// so a healed link is used again soon.
async fn connect(url: &str, timeout: Duration) -> Result<Context, async_nats::ConnectError> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(timeout)
        .request_timeout(Some(timeout))
        .reconnect_delay_callback(|attempts| Duration::from_millis(20 * attempts.min(10) as u64))
        .connect(url)
        .await?;
    Ok(jetstream::ContextBuilder::new()
        .timeout(timeout)
        .build(client))
}

/// One client: its own connection, made on its first call.
pub struct Client {
    url: String,
    bucket: String,
    timeout: Duration,
    conn: Option<Conn>,
}

struct Conn {
    core: async_nats::Client,
    kv: kv::Store,
}

impl Client {
    /// The bucket, connecting first if need be. Until this succeeds nothing was sent.
    async fn kv(&mut self) -> Result<&Conn, KvError> {
        if self.conn.is_none() {
            // Half the operation's time to connect, so a failed connect is known as such
            // before the caller gives up on the operation.
            let js = connect(&self.url, self.timeout / 2)
                .await
                .map_err(|_| KvError::NotConnected)?;
            let kv = js
                .get_key_value(&self.bucket)
                .await
                .map_err(|_| KvError::NotConnected)?;
            self.conn = Some(Conn {
                core: js.client(),
                kv,
            });
        }
        Ok(self.conn.as_ref().expect("connected above"))
    }
}

fn failed(e: impl std::fmt::Display) -> KvError {
    KvError::Failed(e.to_string())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn update_error(e: kv::UpdateError) -> KvError {
    match e.kind() {
        UpdateErrorKind::WrongLastRevision => KvError::RevisionMismatch,
        _ => failed(e),
    }
}

#[async_trait(?Send)]
impl KvReader for Client {
    async fn get(&mut self, key: &str) -> Result<Option<String>, KvError> {
        Ok(self
            .entry(key)
            .await?
            .map(|e| e.value)
            .filter(|v| !v.is_empty()))
    }

    async fn entry(&mut self, key: &str) -> Result<Option<Entry>, KvError> {
        match self.kv().await?.kv.entry(key).await.map_err(failed)? {
            Some(e) if e.operation == Operation::Put => Ok(Some(Entry {
                value: text(&e.value),
                rev: e.revision,
            })),
            _ => Ok(None),
        }
    }

    async fn keys(&mut self, prefix: &str) -> Result<Vec<String>, KvError> {
        let entries = self.last_per_subject(prefix, true).await?;
        Ok(entries.into_iter().map(|(key, _)| key).collect())
    }

    async fn scan(&mut self, prefix: &str) -> Result<Vec<(String, Entry)>, KvError> {
        self.last_per_subject(prefix, false).await
    }
}

impl Client {
    /// What slipstream's `consume_last_per_subject` reads: the last message of every key
    /// under `prefix` as the consumer is made (exactly its `num_pending` messages), less
    /// markers and empty values, sorted by key. With `headers_only` the values come back
    /// empty and `Nats-Msg-Size` tells an empty value.
    async fn last_per_subject(
        &mut self,
        prefix: &str,
        headers_only: bool,
    ) -> Result<Vec<(String, Entry)>, KvError> {
        let bucket = self.bucket.clone();
        let conn = self.kv().await?;
        // Subscribe before the consumer exists, so no delivery can come before it.
        let inbox = conn.core.new_inbox();
        let mut sub = conn.core.subscribe(inbox.clone()).await.map_err(failed)?;
        let consumer = conn
            .kv
            .stream
            .create_consumer(push::Config {
                deliver_subject: inbox,
                deliver_policy: DeliverPolicy::LastPerSubject,
                filter_subject: format!("$KV.{bucket}.{prefix}>"),
                headers_only,
                ack_policy: AckPolicy::None,
                inactive_threshold: Duration::from_secs(300),
                ..Default::default()
            })
            .await
            .map_err(failed)?;
        let pending = consumer.cached_info().num_pending;
        let name = consumer.cached_info().name.clone();
        let keys = format!("$KV.{bucket}.");
        let mut out = Vec::new();
        for _ in 0..pending {
            let Some(msg) = sub.next().await else {
                return Err(failed("subscription closed"));
            };
            let headers = msg.headers.as_ref();
            let header = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str());
            let empty = if headers_only {
                header("Nats-Msg-Size") == Some("0")
            } else {
                msg.payload.is_empty()
            };
            if header("KV-Operation").is_some() || empty {
                continue;
            }
            let key = msg.subject.strip_prefix(&keys).unwrap_or(&msg.subject);
            let rev = msg.reply.as_deref().and_then(stream_sequence).unwrap_or(0);
            let entry = Entry {
                value: text(&msg.payload),
                rev,
            };
            out.push((key.to_string(), entry));
        }
        // Best effort, as slipstream: the server reaps a consumer left behind anyway.
        let _ = conn.kv.stream.delete_consumer(&name).await;
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

/// The stream sequence in a JetStream ACK subject:
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<seq>...` (9 tokens), or with
/// `<domain>.<account>` after `ACK` (11 or 12).
fn stream_sequence(reply: &str) -> Option<u64> {
    let tokens: Vec<&str> = reply.split('.').collect();
    if tokens.len() < 9 || tokens[0] != "$JS" || tokens[1] != "ACK" {
        return None;
    }
    let at = if tokens.len() == 9 { 5 } else { 7 };
    tokens[at].parse().ok()
}

#[async_trait(?Send)]
impl KvWriter for Client {
    async fn put(&mut self, key: &str, value: &str) -> Result<Rev, KvError> {
        let value = value.to_string().into();
        self.kv().await?.kv.put(key, value).await.map_err(failed)
    }

    async fn create(&mut self, key: &str, value: &str) -> Result<Rev, KvError> {
        let value = value.to_string().into();
        match self.kv().await?.kv.create(key, value).await {
            Ok(rev) => Ok(rev),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Err(KvError::AlreadyExists),
            Err(e) => Err(failed(e)),
        }
    }

    async fn update(&mut self, key: &str, value: &str, expected: Rev) -> Result<Rev, KvError> {
        let value = value.to_string().into();
        let kv = &self.kv().await?.kv;
        kv.update(key, value, expected).await.map_err(update_error)
    }

    async fn delete(&mut self, key: &str) -> Result<bool, KvError> {
        self.kv().await?.kv.delete(key).await.map_err(failed)?;
        Ok(true)
    }

    async fn delete_with_version(&mut self, key: &str, expected: Rev) -> Result<bool, KvError> {
        let kv = &self.kv().await?.kv;
        kv.update(key, Default::default(), expected)
            .await
            .map_err(update_error)?;
        Ok(true)
    }
}

#[async_trait(?Send)]
impl KvPurge for Client {
    async fn purge(&mut self, key: &str) -> Result<(), KvError> {
        self.kv().await?.kv.purge(key).await.map_err(failed)
    }
}

/// A watch's updates as they come, or why the stream broke.
type Updates = LocalBoxStream<'static, Result<Update, String>>;

/// What a watch delivers for one message of the bucket's stream.
fn update(key: String, value: &[u8], op: Operation, rev: Rev) -> Update {
    match op {
        Operation::Put if !value.is_empty() => Update::Put {
            key,
            value: text(value),
            rev,
        },
        Operation::Put | Operation::Delete => Update::Delete { key, rev },
        Operation::Purge => Update::Purge { key, rev },
    }
}

fn entries(w: kv::Watch) -> Updates {
    w.map(|e| {
        let e = e.map_err(|e| e.to_string())?;
        Ok(update(e.key, &e.value, e.operation, e.revision))
    })
    .boxed_local()
}

/// A consumer-create error that says the start sequence is gone, as slipstream reads them.
fn expired(why: &str) -> bool {
    let why = why.to_lowercase();
    [
        "start sequence",
        "first sequence",
        "sequence not found",
        "too old",
    ]
    .iter()
    .any(|s| why.contains(s))
}

fn resume_error(e: impl std::fmt::Display) -> KvError {
    let why = e.to_string();
    match expired(&why) {
        true => KvError::CursorExpired,
        false => KvError::Failed(why),
    }
}

/// `CursorExpired` unless the stream still holds the revision after `cursor`.
async fn window(stream: &jetstream::stream::Stream, cursor: Rev) -> Result<(), KvError> {
    let first = stream
        .get_info()
        .await
        .map_err(failed)?
        .state
        .first_sequence;
    match first <= cursor.saturating_add(1) {
        true => Ok(()),
        false => Err(KvError::CursorExpired),
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
        if *scope == Scope::Prefixes(Vec::new()) {
            // As slipstream: an empty filter list would make an unfiltered consumer.
            return Ok(());
        }
        let bucket = self.bucket.clone();
        let conn = self.kv().await?;
        let kv = &conn.kv;
        let filters: Vec<String> = match scope {
            Scope::All => vec![">".into()],
            Scope::Prefix(p) => vec![format!("{p}>")],
            Scope::Prefixes(ps) => ps.iter().map(|p| format!("{p}>")).collect(),
        };
        let Some(cursor) = from.filter(|&c| c > 0) else {
            let w = match scope {
                Scope::Prefixes(_) => kv.watch_many_with_history(filters).await,
                _ => kv.watch_with_history(&filters[0]).await,
            };
            return forward(entries(w.map_err(failed)?), tx, None, 0).await;
        };
        let start = cursor
            .checked_add(1)
            .ok_or_else(|| failed("cursor at the last revision there is"))?;
        window(&kv.stream, cursor).await?;
        let updates = match scope {
            Scope::Prefixes(_) => {
                let prefix = format!("$KV.{bucket}.");
                let consumer = kv
                    .stream
                    .create_consumer(push::OrderedConfig {
                        deliver_subject: conn.core.new_inbox(),
                        filter_subjects: filters.iter().map(|f| format!("{prefix}{f}")).collect(),
                        deliver_policy: DeliverPolicy::ByStartSequence {
                            start_sequence: start,
                        },
                        ..Default::default()
                    })
                    .await
                    .map_err(resume_error)?;
                let messages = consumer.messages().await.map_err(resume_error)?;
                messages
                    .map(move |m| {
                        let m = m.map_err(|e| e.to_string())?;
                        let rev = m.info().map_err(|e| e.to_string())?.stream_sequence;
                        let header = m.headers.as_ref().and_then(|h| h.get("KV-Operation"));
                        let op = header.map_or(Ok(Operation::Put), |h| h.as_str().parse());
                        let op = op.map_err(|e| e.to_string())?;
                        let key = m.subject.strip_prefix(&prefix).unwrap_or(&m.subject);
                        Ok(update(key.to_string(), &m.payload, op, rev))
                    })
                    .boxed_local()
            }
            _ => entries((kv.watch_from_revision(&filters[0], start).await).map_err(resume_error)?),
        };
        window(&kv.stream, cursor).await?;
        let guard = matches!(scope, Scope::All).then_some(&kv.stream);
        forward(updates, tx, guard, cursor).await
    }
}

/// Send `updates` into `tx` until either ends. With a `floor` stream to guard, a revision
/// past the one after `frontier` (the last delivered) is a gap: superseded history of a
/// key is benign, but if the stream's first sequence moved past the frontier, retention
/// dropped what came next, and the watch ends with `CursorExpired` instead.
async fn forward(
    mut updates: Updates,
    tx: UnboundedSender<Update>,
    floor: Option<&jetstream::stream::Stream>,
    mut frontier: Rev,
) -> Result<(), KvError> {
    while let Some(u) = updates.next().await {
        let u = u.map_err(KvError::Failed)?;
        if let Some(stream) = floor.filter(|_| u.rev() > frontier + 1) {
            window(stream, frontier).await?;
        }
        frontier = u.rev();
        if tx.send(u).is_err() {
            return Ok(());
        }
    }
    Err(failed("the watch's consumer ended"))
}

#[cfg(test)]
mod tests {
    use super::stream_sequence;

    #[test]
    fn ack_subjects() {
        assert_eq!(stream_sequence("$JS.ACK.KV_b.c.1.42.7.1700.0"), Some(42));
        assert_eq!(
            stream_sequence("$JS.ACK.dom.acc.KV_b.c.1.42.7.1700.0.tok"),
            Some(42)
        );
        assert_eq!(stream_sequence("_INBOX.x"), None);
    }
}

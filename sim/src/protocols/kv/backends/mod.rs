//! KV compare-and-swap backends, reached through a client of slipstream's
//! `KvReader` / `KvWriter` / `KvPurge` shape, and `KvWatcher` for those that serve watches.

use async_trait::async_trait;
use squall_models::kv::{Entry, KvError, KvOp, KvRet, Rev};
use squall_models::watch::{End, Scope, Update, Watch, WatchOp, WatchRet, Watched};
use std::time::Duration;
use tokio::sync::mpsc;

use crate::backend::Backend;
use crate::protocol::{Caller, Capability, System};
use crate::protocols::kv::Kv;
use crate::protocols::watch::Watches;
use crate::world::Node;

pub mod misbehave;
#[cfg(feature = "nats")]
pub mod nats;
pub mod reference;

/// Reads, as slipstream's `KvReader`.
#[async_trait(?Send)]
pub trait KvReader {
    /// The value, or `None` for absent keys, delete markers and empty-value tombstones.
    async fn get(&mut self, key: &str) -> Result<Option<String>, KvError>;
    /// The value with its revision; empty-value tombstones show, markers do not.
    async fn entry(&mut self, key: &str) -> Result<Option<Entry>, KvError>;
    /// Keys under `prefix` that hold a value, sorted.
    async fn keys(&mut self, prefix: &str) -> Result<Vec<String>, KvError>;
    /// Entries under `prefix` that hold a value, sorted by key.
    async fn scan(&mut self, prefix: &str) -> Result<Vec<(String, Entry)>, KvError>;
}

/// Writes, as slipstream's `KvWriter`. Each returns the revision it took where slipstream
/// returns a `VersionToken`.
#[async_trait(?Send)]
pub trait KvWriter {
    async fn put(&mut self, key: &str, value: &str) -> Result<Rev, KvError>;
    async fn create(&mut self, key: &str, value: &str) -> Result<Rev, KvError>;
    async fn update(&mut self, key: &str, value: &str, expected: Rev) -> Result<Rev, KvError>;
    async fn delete(&mut self, key: &str) -> Result<bool, KvError>;
    async fn delete_with_version(&mut self, key: &str, expected: Rev) -> Result<bool, KvError>;
}

/// Purge, as slipstream's `KvPurge`.
#[async_trait(?Send)]
pub trait KvPurge {
    async fn purge(&mut self, key: &str) -> Result<(), KvError>;
}

/// Watches, as slipstream's `KvWatcher`: its `watch_all` / `watch_prefix` /
/// `watch_prefixes` and their `_from` variants are one method with a [`Scope`] here.
#[async_trait(?Send)]
pub trait KvWatcher {
    /// Send the writes in `scope` into `tx` until `tx` closes: without a cursor, the last
    /// write of every key in scope (markers included) and then each new one; from cursor
    /// `from`, exactly the writes after it, or `Err(CursorExpired)` once retention dropped
    /// one. Survives lost connections on its own.
    async fn watch(
        &mut self,
        scope: &Scope,
        from: Option<Rev>,
        tx: mpsc::UnboundedSender<Update>,
    ) -> Result<(), KvError>;
}

/// A client of a KV backend, as one client host holds it.
pub trait KvClient: KvReader + KvWriter + KvPurge {}
impl<T: KvReader + KvWriter + KvPurge> KvClient for T {}

/// A client of a KV backend that serves watches.
pub trait KvWatchClient: KvClient + KvWatcher {}
impl<T: KvClient + KvWatcher> KvWatchClient for T {}

/// A KV backend that runs inside the simulation.
pub trait KvBackend {
    /// The software of server host `node`. Called again each time the host restarts after a
    /// crash; what it kept on `node.disk` (synced) is still there.
    fn serve(&self, node: Node) -> crate::world::Software;
    /// A client for client host `node`. It connects lazily, on its first call.
    fn client(&self, node: Node) -> Box<dyn KvClient>;
    /// The capabilities it lacks, each with why ([`System::lacks`]); none by default.
    fn lacks(&self) -> Vec<(Capability, &'static str)> {
        Vec::new()
    }
}

/// A KV backend that serves watches too.
pub trait KvWatchBackend: KvBackend {
    /// A client for client host `node`, watches included.
    fn watch_client(&self, node: Node) -> Box<dyn KvWatchClient>;
}

/// Call `op` on `client`. Answers the model judges (protocol errors included) come back as
/// `Ok`; `Err` carries why the outcome is unknown.
pub async fn call<C: KvClient + ?Sized>(client: &mut C, op: &KvOp) -> Result<KvRet, String> {
    let ret = match op {
        KvOp::Get { key } => client.get(key).await.map(KvRet::Value),
        KvOp::Entry { key } => client.entry(key).await.map(KvRet::Entry),
        KvOp::Put { key, value } => client.put(key, value).await.map(KvRet::Written),
        KvOp::Create { key, value } => client.create(key, value).await.map(KvRet::Written),
        KvOp::Update {
            key,
            value,
            expected,
        } => client
            .update(key, value, *expected)
            .await
            .map(KvRet::Written),
        KvOp::Delete { key } => client.delete(key).await.map(KvRet::Deleted),
        KvOp::DeleteWithVersion { key, expected } => client
            .delete_with_version(key, *expected)
            .await
            .map(KvRet::Deleted),
        KvOp::Purge { key } => client.purge(key).await.map(|()| KvRet::Purged),
        KvOp::Keys { prefix } => client.keys(prefix).await.map(KvRet::Keys),
        KvOp::Scan { prefix } => client.scan(prefix).await.map(KvRet::Scan),
    };
    match ret {
        Ok(ret) => Ok(ret),
        Err(KvError::Failed(why)) => Err(why),
        Err(e) => Ok(KvRet::Err(e)),
    }
}

/// squall's KV backends: the reference and its mutants, the live NATS one (feature
/// `nats`), and the misbehaving ones.
pub fn all() -> Vec<Backend> {
    let mut all = vec![reference::Reference::default().backend()];
    all.extend(reference::Bug::ALL.map(|bug| reference::Reference::from(bug).backend()));
    #[cfg(feature = "nats")]
    all.push(
        Backend::new(
            "kv/nats",
            crate::backend::Kind::RealLive,
            "NATS JetStream KV through async-nats, as slipstream maps it; live mode",
        )
        .serves_live::<Kv>(|s| Box::new(nats::Nats::new(s.bucket)))
        .serves_live::<Watches>(|s| Box::new(nats::Nats::new(s.bucket))),
    );
    all.extend(misbehave::How::ALL.map(misbehave::How::backend));
    all
}

/// Watch `w` for its listening time: what it delivered, and how it ended.
pub async fn listen<C: KvWatcher + ?Sized>(client: &mut C, w: &Watch) -> Watched {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let end = tokio::select! {
        biased;
        ended = client.watch(&w.scope, w.from, tx) => match ended {
            Err(KvError::CursorExpired) => End::CursorExpired,
            Err(e) => End::Failed(e.to_string()),
            // slipstream's watch of an empty prefix list returns at once: it has nothing to
            // deliver, and must never become an unfiltered watch.
            Ok(()) if w.scope == Scope::Prefixes(Vec::new()) => End::Listened,
            Ok(()) => End::Failed("the watch stopped before its time".into()),
        },
        () = tokio::time::sleep(Duration::from_millis(w.listen_ms)) => End::Listened,
    };
    let mut updates = Vec::new();
    while let Ok(u) = rx.try_recv() {
        updates.push(u);
    }
    Watched { updates, end }
}

impl<B: KvBackend> System<Kv> for B {
    fn serve(&self, node: Node) -> crate::world::Software {
        KvBackend::serve(self, node)
    }

    fn client(&self, node: Node) -> Box<dyn Caller<Kv>> {
        Box::new(KvBackend::client(self, node))
    }

    fn lacks(&self) -> Vec<(Capability, &'static str)> {
        KvBackend::lacks(self)
    }
}

#[async_trait(?Send)]
impl Caller<Kv> for Box<dyn KvClient> {
    async fn call(&mut self, op: &KvOp) -> Result<KvRet, String> {
        call(self.as_mut(), op).await
    }
}

impl<B: KvWatchBackend> System<Watches> for B {
    fn serve(&self, node: Node) -> crate::world::Software {
        KvBackend::serve(self, node)
    }

    fn client(&self, node: Node) -> Box<dyn Caller<Watches>> {
        Box::new(self.watch_client(node))
    }

    fn lacks(&self) -> Vec<(Capability, &'static str)> {
        KvBackend::lacks(self)
    }
}

#[async_trait(?Send)]
impl Caller<Watches> for Box<dyn KvWatchClient> {
    async fn call(&mut self, op: &WatchOp) -> Result<WatchRet, String> {
        match op {
            WatchOp::Kv(op) => call(self.as_mut(), op).await.map(WatchRet::Kv),
            WatchOp::Watch(w) => Ok(WatchRet::Watched(listen(self.as_mut(), w).await)),
        }
    }
}

//! Scenarios on a turmoil simulation of three servers and a client: the semantics through
//! the client, crashes, partitions, retries, and one scenario per mutant showing its bug.

use squall_models::kv::KvOp;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};
use turmoil::{Builder, Sim};

use super::{Bug, Reference};
use crate::protocols::kv::backends::{call, KvBackend, KvClient};
use crate::world::{Disk, Node};

const TIMEOUT: Duration = Duration::from_secs(2);
const SEED: u64 = 7;

/// What the clients saw: (client, simulated ms, "op -> outcome").
type Seen = Rc<RefCell<Vec<(String, u128, String)>>>;

struct Cluster {
    sim: Sim<'static>,
    disks: BTreeMap<String, Disk>,
    servers: Vec<String>,
    seen: Seen,
    backend: Reference,
    seed: u64,
}

/// A client host's view: the backend's client, recording every outcome.
struct Session {
    name: String,
    client: Box<dyn KvClient>,
    seen: Seen,
}

impl Session {
    /// Call `op` as the harness does, under `TIMEOUT`; its outcome as text.
    async fn op(&mut self, op: KvOp) -> String {
        let outcome = match tokio::time::timeout(TIMEOUT, call(&mut *self.client, &op)).await {
            Ok(Ok(ret)) => ret.to_string(),
            Ok(Err(why)) => format!("unknown: {why}"),
            Err(_) => "unknown: timeout".to_string(),
        };
        let line = format!("{op} -> {outcome}");
        let at = turmoil::elapsed().as_millis();
        self.seen.borrow_mut().push((self.name.clone(), at, line));
        outcome
    }

    /// Wait until `ms` into the run.
    async fn at(&self, ms: u64) {
        let until = Duration::from_millis(ms).saturating_sub(turmoil::elapsed());
        tokio::time::sleep(until).await;
    }
}

impl Cluster {
    fn new(backend: Reference, seed: u64) -> Cluster {
        let sim = Builder::new()
            .rng_seed(seed)
            .epoch(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            .tick_duration(Duration::from_millis(1))
            .simulation_duration(Duration::from_secs(60))
            .max_message_latency(Duration::from_millis(5))
            .build();
        let servers: Vec<String> = (1..=3).map(|i| format!("server-{i}")).collect();
        let mut cluster = Cluster {
            sim,
            disks: BTreeMap::new(),
            servers: servers.clone(),
            seen: Seen::default(),
            backend,
            seed,
        };
        for name in &servers {
            let node = Node::new(name, &servers, seed, TIMEOUT, &Default::default());
            cluster.disks.insert(name.clone(), node.disk.clone());
            cluster
                .sim
                .host(name.as_str(), move || backend.serve(node.clone()));
        }
        cluster
    }

    fn client<F, Fut>(&mut self, name: &str, script: F)
    where
        F: FnOnce(Session) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let node = Node::new(name, &self.servers, self.seed, TIMEOUT, &Default::default());
        let session = Session {
            name: name.to_string(),
            client: self.backend.client(node),
            seen: self.seen.clone(),
        };
        self.sim.client(name, async move {
            script(session).await;
            Ok(())
        });
    }

    fn run_until(&mut self, ms: u64) {
        while self.sim.elapsed() < Duration::from_millis(ms) {
            self.sim.step().unwrap();
        }
    }

    /// Crash `host`: its software stops and its disk loses what it had not synced.
    fn crash(&mut self, host: &str) {
        self.sim.crash(host);
        self.disks[host].crash();
    }

    /// Run to the end; what each op answered, in order.
    fn finish(mut self) -> Vec<String> {
        self.sim.run().unwrap();
        self.seen
            .borrow()
            .iter()
            .map(|(_, _, l)| l.clone())
            .collect()
    }

    fn timed(mut self) -> Vec<(String, u128, String)> {
        self.sim.run().unwrap();
        self.seen.take()
    }
}

fn sequential(backend: Reference, ops: Vec<KvOp>) -> Vec<String> {
    let mut cluster = Cluster::new(backend, SEED);
    cluster.client("client-1", |mut s| async move {
        for op in ops {
            s.op(op).await;
        }
    });
    cluster.finish()
}

#[test]
fn every_operation_through_the_client() {
    let ops = vec![
        KvOp::put("a", "1"),
        KvOp::get("a"),
        KvOp::create("a", "x"),
        KvOp::update("a", "2", 1),
        KvOp::update("a", "3", 1),
        KvOp::entry("a"),
        KvOp::delete_with_version("a", 1),
        KvOp::delete_with_version("a", 2),
        KvOp::get("a"),
        KvOp::entry("a"),
        KvOp::create("a", "x"),
        KvOp::keys(""),
        KvOp::update("a", "4", 3),
        KvOp::delete("a"),
        KvOp::get("a"),
        KvOp::entry("a"),
        KvOp::update("a", "5", 5),
        KvOp::delete("a"),
        KvOp::create("a", "6"),
        KvOp::put("b", "1"),
        KvOp::put("ab", "2"),
        KvOp::put("c", ""),
        KvOp::keys("a"),
        KvOp::scan(""),
        KvOp::purge("b"),
        KvOp::get("b"),
        KvOp::create("b", "3"),
        KvOp::purge("zz"),
        KvOp::update("zz", "v", 14),
        KvOp::update("nope", "v", 0),
        KvOp::delete_with_version("nope", 0),
        KvOp::delete("nope"),
        KvOp::put("d", "1"),
    ];
    let expected = [
        r#"put a "1" -> @1"#,
        r#"get a -> "1""#,
        r#"create a "x" -> already-exists"#,
        r#"update a "2" @1 -> @2"#,
        r#"update a "3" @1 -> revision-mismatch"#,
        r#"entry a -> "2"@2"#,
        r#"delete a @1 -> revision-mismatch"#,
        r#"delete a @2 -> deleted true"#,
        r#"get a -> none"#,
        r#"entry a -> ""@3"#,
        r#"create a "x" -> already-exists"#,
        r#"keys "" -> []"#,
        r#"update a "4" @3 -> @4"#,
        r#"delete a -> deleted true"#,
        r#"get a -> none"#,
        r#"entry a -> none"#,
        r#"update a "5" @5 -> @6"#,
        r#"delete a -> deleted true"#,
        r#"create a "6" -> @8"#,
        r#"put b "1" -> @9"#,
        r#"put ab "2" -> @10"#,
        r#"put c "" -> @11"#,
        r#"keys "a" -> [a ab]"#,
        r#"scan "" -> [a="6"@8 ab="2"@10 b="1"@9]"#,
        r#"purge b -> purged"#,
        r#"get b -> none"#,
        r#"create b "3" -> @13"#,
        r#"purge zz -> purged"#,
        r#"update zz "v" @14 -> @15"#,
        // 0 expects "no message yet", as NATS reads it: so it holds once, on a new key.
        r#"update nope "v" @0 -> @16"#,
        r#"delete nope @0 -> revision-mismatch"#,
        r#"delete nope -> deleted true"#,
        r#"put d "1" -> @18"#,
    ];
    assert_eq!(sequential(Reference::default(), ops), expected);
}

#[test]
fn create_over_tombstone_mutant_creates() {
    let ops = || {
        vec![
            KvOp::put("a", "1"),
            KvOp::delete_with_version("a", 1),
            KvOp::create("a", "2"),
        ]
    };
    let reference = sequential(Reference::default(), ops());
    assert_eq!(reference[2], r#"create a "2" -> already-exists"#);
    let mutant = sequential(Reference::from(Bug::CreateOverTombstone), ops());
    assert_eq!(mutant[2], r#"create a "2" -> @3"#);
}

/// Writes, then the primary crashes at 500 ms and restarts at 1 s; then reads and a write.
fn crash_primary(backend: Reference, seed: u64) -> Cluster {
    let mut cluster = Cluster::new(backend, seed);
    cluster.client("client-1", |mut s| async move {
        s.op(KvOp::put("a", "1")).await;
        s.op(KvOp::put("b", "2")).await;
        s.op(KvOp::delete("b")).await;
        s.at(1500).await;
        s.op(KvOp::get("a")).await;
        s.op(KvOp::entry("b")).await;
        s.op(KvOp::put("c", "3")).await;
        s.op(KvOp::update("a", "4", 1)).await;
    });
    cluster.run_until(500);
    cluster.crash("server-1");
    cluster.run_until(1000);
    cluster.sim.bounce("server-1");
    cluster
}

#[test]
fn writes_survive_a_primary_crash() {
    let seen = crash_primary(Reference::default(), SEED).finish();
    assert_eq!(
        seen[3..],
        [
            r#"get a -> "1""#,
            r#"entry b -> none"#,
            r#"put c "3" -> @4"#,
            r#"update a "4" @1 -> @5"#,
        ]
    );
}

#[test]
fn lost_write_mutant_forgets_acknowledged_writes() {
    let seen = crash_primary(Reference::from(Bug::LostWrite), SEED).finish();
    assert_eq!(seen[0], r#"put a "1" -> @1"#);
    assert_eq!(seen[3], r#"get a -> none"#);
    assert_eq!(seen[6], r#"update a "4" @1 -> revision-mismatch"#);
}

#[test]
fn revision_reset_mutant_reuses_revisions() {
    let seen = crash_primary(Reference::from(Bug::RevisionReset), SEED).finish();
    assert_eq!(seen[2], r#"delete b -> deleted true"#);
    // Revisions 2 and 3 went to the put and the delete of b.
    assert_eq!(seen[5], r#"put c "3" -> @2"#);
}

/// The primary is cut off from both backups while a write is outstanding, so the client
/// retries it; then the same for a put.
fn retry_while_uncommitted(backend: Reference, seed: u64) -> Cluster {
    let mut cluster = Cluster::new(backend, seed);
    cluster.client("client-1", |mut s| async move {
        s.op(KvOp::put("a", "1")).await;
        s.at(1000).await;
        s.op(KvOp::update("a", "2", 1)).await;
        s.op(KvOp::get("a")).await;
        s.at(4000).await;
        s.op(KvOp::put("c", "x")).await;
        s.op(KvOp::entry("c")).await;
        s.op(KvOp::put("d", "y")).await;
    });
    for at in [900, 3900] {
        cluster.run_until(at);
        cluster.sim.partition("server-1", "server-2");
        cluster.sim.partition("server-1", "server-3");
        cluster.run_until(at + 800);
        cluster.sim.repair("server-1", "server-2");
        cluster.sim.repair("server-1", "server-3");
    }
    cluster
}

#[test]
fn a_retried_write_applies_once() {
    let seen = retry_while_uncommitted(Reference::default(), SEED).finish();
    assert_eq!(
        seen,
        [
            r#"put a "1" -> @1"#,
            r#"update a "2" @1 -> @2"#,
            r#"get a -> "2""#,
            r#"put c "x" -> @3"#,
            r#"entry c -> "x"@3"#,
            r#"put d "y" -> @4"#,
        ]
    );
}

#[test]
fn double_apply_mutant_applies_retries_again() {
    let seen = retry_while_uncommitted(Reference::from(Bug::DoubleApply), SEED).finish();
    // The first copy of the update took effect; the retry finds its own revision gone.
    assert_eq!(seen[1], r#"update a "2" @1 -> revision-mismatch"#);
    assert_eq!(seen[2], r#"get a -> "2""#);
    // The put took a revision per copy.
    assert_ne!(seen[5], r#"put d "y" -> @4"#);
}

/// server-3 is cut off from the primary while a value changes; reads follow.
fn lagging_backup(backend: Reference) -> Vec<String> {
    let mut cluster = Cluster::new(backend, SEED);
    cluster.client("client-1", |mut s| async move {
        s.op(KvOp::put("a", "1")).await;
        s.at(200).await;
        s.op(KvOp::put("a", "2")).await;
        for _ in 0..8 {
            s.op(KvOp::get("a")).await;
        }
        // Long after the partition healed, the backup has caught up.
        s.at(4000).await;
        for _ in 0..8 {
            s.op(KvOp::get("a")).await;
        }
    });
    cluster.run_until(100);
    cluster.sim.partition("server-1", "server-3");
    cluster.run_until(2000);
    cluster.sim.repair("server-1", "server-3");
    cluster.finish()
}

#[test]
fn stale_read_mutant_reads_a_lagging_backup() {
    let fresh = r#"get a -> "2""#;
    let reference = lagging_backup(Reference::default());
    assert!(reference[2..].iter().all(|l| l == fresh), "{reference:#?}");
    let mutant = lagging_backup(Reference::from(Bug::StaleRead));
    // server-3 answers with whatever it had when cut off: "1", or nothing at all.
    assert!(mutant[2..10].iter().any(|l| l != fresh), "{mutant:#?}");
    assert!(mutant[10..].iter().all(|l| l == fresh), "{mutant:#?}");
}

/// Three clients on two keys, through a partition and a primary crash.
fn busy(seed: u64) -> Vec<(String, u128, String)> {
    let mut cluster = Cluster::new(Reference::default(), seed);
    for c in 1..=3 {
        cluster.client(&format!("client-{c}"), move |mut s| async move {
            for i in 0..20u64 {
                let key = if (i + c) % 2 == 0 { "a" } else { "b" };
                let rev = match s.op(KvOp::entry(key)).await.rsplit_once('@') {
                    Some((_, rev)) => rev.parse().unwrap_or(0),
                    None => 0,
                };
                let op = match i % 5 {
                    0 => KvOp::put(key, &format!("{c}.{i}")),
                    1 => KvOp::update(key, &format!("{c}.{i}"), rev),
                    2 => KvOp::create(key, "new"),
                    3 => KvOp::delete_with_version(key, rev),
                    _ => KvOp::delete(key),
                };
                s.op(op).await;
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            s.op(KvOp::scan("")).await;
        });
    }
    cluster.run_until(150);
    cluster.sim.partition("server-1", "server-2");
    cluster.run_until(400);
    cluster.crash("server-1");
    cluster.run_until(900);
    cluster.sim.bounce("server-1");
    cluster.run_until(1500);
    cluster.sim.repair("server-1", "server-2");
    cluster.timed()
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let first = busy(11);
    assert_eq!(first.len(), 3 * 41);
    assert_eq!(first, busy(11));
    assert_ne!(first, busy(12));
}

#[test]
fn names() {
    let all = [None].into_iter().chain(super::Bug::ALL.map(Some));
    let names: Vec<String> = all
        .map(|bug| {
            let reference = super::Reference {
                bug,
                ..Default::default()
            };
            reference.backend().name().to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "kv/reference",
            "kv/mutant-stale-read",
            "kv/mutant-lost-write",
            "kv/mutant-revision-reset",
            "kv/mutant-create-over-tombstone",
            "kv/mutant-double-apply",
            "kv/mutant-zero-skips-check",
            "kv/mutant-at-least-revision",
            "kv/mutant-watch-drop-on-reconnect",
            "kv/mutant-watch-resume-at-cursor",
            "kv/mutant-watch-skip-compacted",
            "kv/mutant-watch-relist-no-markers",
            "kv/mutant-watch-ignore-max-age",
            "kv/mutant-watch-trust-stream",
            "kv/mutant-watch-future-cursor",
            "kv/mutant-watch-empty-all",
        ]
    );
}

//! One passing and one failing history per rule.

use squall_models::kv::{KvError, KvOp, KvRet};
use squall_models::watch::{End, Retention, Scope, Update, Watch, WatchOp, WatchRet, Watched};

use super::watches;
use crate::check::Violation;
use crate::history::Operation;

/// A history built one operation at a time, each after the one before unless placed.
#[derive(Default)]
struct H {
    ops: Vec<Operation<WatchOp, WatchRet>>,
}

impl H {
    /// An operation invoked at event `call` that answered at `done` (`None`: unknown).
    fn at(&mut self, call: usize, done: Option<usize>, op: WatchOp, ret: Option<WatchRet>) {
        let id = self.ops.len() as u64 + 1;
        self.ops.push(Operation {
            id,
            client: 1,
            op,
            ret: done.and(ret),
            call,
            done,
        });
    }

    fn next(&mut self) -> usize {
        self.ops
            .iter()
            .map(|o| o.done.unwrap_or(o.call))
            .max()
            .map_or(0, |e| e + 1)
    }

    fn kv(&mut self, op: KvOp, ret: KvRet) -> &mut H {
        let call = self.next();
        self.at(
            call,
            Some(call + 1),
            WatchOp::Kv(op),
            Some(WatchRet::Kv(ret)),
        );
        self
    }

    fn put(&mut self, key: &str, value: &str, rev: u64) -> &mut H {
        self.kv(KvOp::put(key, value), KvRet::Written(rev))
    }

    fn watch(&mut self, scope: Scope, from: Option<u64>, updates: Vec<Update>, end: End) -> &mut H {
        let call = self.next();
        let w = Watch {
            scope,
            from,
            listen_ms: 100,
        };
        let got = Watched { updates, end };
        self.at(
            call,
            Some(call + 1),
            WatchOp::Watch(w),
            Some(WatchRet::Watched(got)),
        );
        self
    }

    /// A watch during which `writes` happen, one after another.
    fn watch_over(&mut self, scope: Scope, updates: Vec<Update>, writes: Vec<(KvOp, KvRet)>) {
        let call = self.next();
        let w = Watch {
            scope,
            from: None,
            listen_ms: 100,
        };
        let got = Watched {
            updates,
            end: End::Listened,
        };
        let done = call + 2 * writes.len() + 1;
        self.at(
            call,
            Some(done),
            WatchOp::Watch(w),
            Some(WatchRet::Watched(got)),
        );
        for (i, (op, ret)) in writes.into_iter().enumerate() {
            let at = call + 1 + 2 * i;
            self.at(at, Some(at + 1), WatchOp::Kv(op), Some(WatchRet::Kv(ret)));
        }
    }

    fn check(&self, history: usize) -> Result<(), Violation> {
        watches(
            &self.ops,
            Retention {
                history,
                ..Retention::default()
            },
            None,
        )
    }
}

fn put(key: &str, value: &str, rev: u64) -> Update {
    Update::Put {
        key: key.into(),
        value: value.into(),
        rev,
    }
}

fn del(key: &str, rev: u64) -> Update {
    Update::Delete {
        key: key.into(),
        rev,
    }
}

fn prefix(p: &str) -> Scope {
    Scope::Prefix(p.into())
}

/// a.0 @1, b.0 @2, a.0 @3, a.1 deleted @4.
fn writes() -> H {
    let mut h = H::default();
    h.put("a.0", "x", 1).put("b.0", "y", 2).put("a.0", "z", 3);
    h.kv(KvOp::delete("a.1"), KvRet::Deleted(true));
    h
}

fn fails(r: Result<(), Violation>, says: &str) -> Violation {
    let v = r.expect_err("a violation");
    assert!(v.what.contains(says), "{:?} does not say {says:?}", v.what);
    v
}

#[test]
fn a_state_sync_then_live_updates_passes() {
    let mut h = H::default();
    h.put("a.0", "x", 1).put("a.1", "w", 2);
    h.kv(KvOp::delete("a.1"), KvRet::Deleted(true));
    let updates = vec![put("a.0", "x", 1), del("a.1", 3), put("a.0", "z", 4)];
    let z = (KvOp::put("a.0", "z"), KvRet::Written(4));
    h.watch_over(prefix("a."), updates, vec![z]);
    h.check(1).unwrap();
}

#[test]
fn order_rejects_duplicates_and_replays_before_the_cursor() {
    let mut h = writes();
    h.watch(
        Scope::All,
        Some(1),
        vec![put("b.0", "y", 2), put("b.0", "y", 2)],
        End::Listened,
    );
    fails(h.check(1), "twice");

    let mut h = writes();
    h.watch(Scope::All, Some(2), vec![put("b.0", "y", 2)], End::Listened);
    let v = fails(h.check(1), "not after its cursor @2");
    assert_eq!(v.ops, vec![5]);

    let mut h = writes();
    h.watch(
        Scope::All,
        Some(1),
        vec![put("a.0", "z", 3), put("b.0", "y", 2)],
        End::Listened,
    );
    fails(h.check(1), "after @3");
}

#[test]
fn updates_must_be_real_writes_in_scope() {
    let mut h = writes();
    h.watch(
        prefix("a."),
        Some(4),
        vec![put("a.0", "q", 5)],
        End::Listened,
    );
    fails(h.check(1), "no write made");

    let mut h = writes();
    h.watch(
        prefix("b."),
        Some(2),
        vec![put("a.0", "z", 3)],
        End::Listened,
    );
    fails(h.check(1), "outside its scope");

    // The value of a write that returned @3, delivered at @5.
    let mut h = writes();
    h.put("b.0", "v", 5);
    h.watch(Scope::All, Some(4), vec![put("a.0", "z", 5)], End::Listened);
    fails(h.check(1), "revision 5 holds");

    let mut h = writes();
    h.watch(Scope::All, Some(4), vec![del("a.0", 5)], End::Listened);
    fails(h.check(1), "no write made");

    let mut h = writes();
    h.kv(KvOp::purge("a.0"), KvRet::Purged);
    let purge = Update::Purge {
        key: "a.0".into(),
        rev: 5,
    };
    h.watch(Scope::All, Some(4), vec![purge], End::Listened);
    h.check(1).unwrap();
}

#[test]
fn a_write_with_an_unknown_outcome_may_appear_or_not() {
    let mut h = writes();
    let call = h.next();
    h.at(call, None, WatchOp::Kv(KvOp::put("a.0", "u")), None);
    h.watch(
        prefix("a."),
        Some(4),
        vec![put("a.0", "u", 5)],
        End::Listened,
    );
    h.watch(prefix("a."), Some(4), vec![], End::Listened);
    h.check(1).unwrap();

    // A refused write made nothing.
    let mut h = writes();
    h.kv(KvOp::create("a.0", "u"), KvRet::Err(KvError::AlreadyExists));
    h.watch(
        prefix("a."),
        Some(4),
        vec![put("a.0", "u", 5)],
        End::Listened,
    );
    fails(h.check(1), "no write made");
}

#[test]
fn a_gap_in_scope_is_a_violation_and_one_outside_is_not() {
    let mut h = writes();
    h.watch(
        prefix("a."),
        Some(0),
        vec![put("a.0", "x", 1), put("a.0", "z", 3)],
        End::Listened,
    );
    h.check(1).unwrap();

    let mut h = writes();
    h.watch(
        Scope::All,
        Some(0),
        vec![put("a.0", "x", 1), put("a.0", "z", 3)],
        End::Listened,
    );
    let v = fails(h.check(1), "skipped revision 2");
    assert_eq!(v.ops, vec![2, 5]);

    // A delete marker's revision is revealed by another watch.
    let mut h = writes();
    h.put("a.1", "v", 5);
    h.watch(
        prefix("a."),
        Some(3),
        vec![del("a.1", 4), put("a.1", "v", 5)],
        End::Listened,
    );
    h.watch(
        prefix("a."),
        Some(3),
        vec![put("a.1", "v", 5)],
        End::Listened,
    );
    fails(h.check(1), "skipped revision 4");
}

#[test]
fn a_state_sync_needs_every_key_with_its_markers() {
    let synced = |sync: Vec<Update>| {
        let mut h = H::default();
        h.put("a.0", "x", 1).put("a.1", "w", 2);
        h.kv(KvOp::delete("a.1"), KvRet::Deleted(true));
        h.watch(prefix("a."), Some(2), vec![del("a.1", 3)], End::Listened);
        h.put("a.0", "z", 4);
        let live = (KvOp::put("a.0", "v"), KvRet::Written(5));
        h.watch_over(prefix("a."), sync, vec![live]);
        h.check(1)
    };
    let v = put("a.0", "v", 5);
    synced(vec![del("a.1", 3), put("a.0", "z", 4), v.clone()]).unwrap();
    fails(synced(vec![put("a.0", "z", 4), v]), "misses a.1");
    // Nothing after the sync: the watch may have ended in mid-sync.
    synced(vec![put("a.0", "z", 4)]).unwrap();
}

#[test]
fn a_state_sync_shows_last_writes_and_is_not_stale() {
    let mut h = H::default();
    h.put("a.0", "x", 1).put("a.0", "z", 2).put("b.0", "y", 3);
    h.watch(
        Scope::All,
        None,
        vec![put("a.0", "x", 1), put("b.0", "y", 3)],
        End::Listened,
    );
    fails(h.check(1), "overwritten by @2");

    let mut h = writes();
    h.put("b.0", "v", 5);
    let stale = vec![put("b.0", "y", 2), put("b.0", "v", 5)];
    h.watch(prefix("b."), None, stale, End::Listened);
    fails(h.check(1), "done before the watch began");

    // A watch begun while a write was in flight may sync before or after it.
    let mut h = H::default();
    h.put("a.0", "x", 1);
    h.at(
        2,
        Some(5),
        WatchOp::Kv(KvOp::put("a.0", "z")),
        Some(WatchRet::Kv(KvRet::Written(2))),
    );
    let w = Watch {
        scope: Scope::All,
        from: None,
        listen_ms: 100,
    };
    let got = Watched {
        updates: vec![put("a.0", "x", 1), put("a.0", "z", 2)],
        end: End::Listened,
    };
    h.at(3, Some(6), WatchOp::Watch(w), Some(WatchRet::Watched(got)));
    h.check(1).unwrap();
}

#[test]
fn cursor_expired_needs_a_write_retention_can_have_dropped() {
    // After @2, a.0 was written once more: history 1 keeps it.
    let mut h = writes();
    h.watch(prefix("a."), Some(2), vec![], End::CursorExpired);
    fails(h.check(1), "cursor-expired after @2");

    // After @0, a.0 was written twice: history 1 dropped the first.
    let mut h = writes();
    h.watch(prefix("a."), Some(0), vec![], End::CursorExpired);
    h.check(1).unwrap();
    fails(h.check(2), "history 2");
}

/// Event `i` of these histories happens at `i` seconds, on a clock known to the millisecond.
fn ages(h: &H, max_age_s: i64) -> super::Ages {
    use squall_models::spark::Window;
    const S: i64 = 1_000_000_000;
    let end = (h.ops.iter())
        .map(|o| o.done.unwrap_or(o.call))
        .max()
        .unwrap_or(0) as i64
        + 1;
    let windows = (h.ops.iter())
        .map(|o| {
            let to = o.done.map_or(end, |d| d as i64) * S + 1_000_000;
            let from = o.call as i64 * S - 1_000_000;
            (o.id, Window { from, to, peak: to })
        })
        .collect();
    super::Ages {
        max_age: max_age_s * S,
        windows,
    }
}

#[test]
fn with_max_age_a_sync_leaves_out_aged_writes_and_never_shows_them() {
    let retention = Retention {
        history: 1,
        max_age: Some(std::time::Duration::from_secs(3)),
        ..Retention::default()
    };
    // Not aged: the sync must show a.0 (once something follows it).
    let mut late = H::default();
    late.put("a.0", "x", 1).put("b.0", "y", 2);
    late.watch_over(
        Scope::All,
        vec![put("b.0", "y", 2), put("c.0", "z", 3), put("b.0", "w", 4)],
        vec![
            (KvOp::put("c.0", "z"), KvRet::Written(3)),
            (KvOp::put("b.0", "w"), KvRet::Written(4)),
        ],
    );
    let checked = |h: &H, max_age_s| watches(&h.ops, retention, Some(&ages(h, max_age_s)));
    fails(checked(&late, 10), "misses a.0");
    // a.0 is 4s old at the call: it may be (and surely is) aged out.
    checked(&late, 3).unwrap();
    // Showing a write that surely aged out is a violation.
    let mut shows = H::default();
    shows.put("a.0", "x", 1);
    shows
        .put("b.0", "y", 2)
        .put("b.0", "w", 3)
        .put("b.0", "v", 4);
    shows.watch(
        Scope::Prefix("a.".into()),
        None,
        vec![put("a.0", "x", 1)],
        End::Listened,
    );
    fails(
        checked(&shows, 3),
        "aged out (max_age) before the watch began",
    );
    checked(&shows, 20).unwrap();
    // CursorExpired is right once a write after the cursor can have aged out.
    let mut expired = H::default();
    expired
        .put("a.0", "x", 1)
        .put("a.1", "y", 2)
        .put("b.0", "z", 3);
    expired.watch(prefix("a."), Some(1), vec![], End::CursorExpired);
    fails(checked(&expired, 20), "nor one old enough to age out");
    checked(&expired, 3).unwrap();
}

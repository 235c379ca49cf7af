//! Watch histories: what each watch delivered, against the writes of the history.
//!
//! Revisions are bucket-wide, so a revision names one write. The checker first gathers
//! every revision the history reveals — returned by a put, create or update, or delivered by
//! any watch — with its key and what it wrote, and rejects a revision that two sources
//! disagree on, or a value written at two revisions. Then, per watch:
//!
//! 1. **Order.** Revisions strictly increase: no duplicate, nothing out of order, and from
//!    a cursor nothing at or before it.
//! 2. **Real writes.** Every update is in the watch's scope and was made by a write of the
//!    history invoked before the watch answered, of the right kind (a put of that value; a
//!    delete or `delete_with_version` for `Delete`; a purge for `Purge`) and, if the write
//!    returned its revision, at that revision. A write whose outcome is unknown may be one.
//! 3. **No gaps.** Between the cursor (or the state sync's revision) and the last update,
//!    every revealed revision in scope was delivered.
//! 4. **State sync.** A watch without a cursor starts with the last write of every key in
//!    scope as of some revision `S` — one update per key, markers included, none overwritten
//!    by `S`, no key with a revealed write by `S` missing — and `S` is no older than a write
//!    in scope that completed before the watch began. The rest follows from `S` with no
//!    gaps. The checker tries each split of the updates into a state sync and the rest. A
//!    watch may end within its sync, so missing keys and staleness count only when
//!    something came after it.
//! 5. **`CursorExpired`** is right only if retention can have dropped a write in scope after
//!    the cursor (or the last update): some key in scope has more than `history` writes
//!    not known to be older, or two of them one a purge, or one of them can have aged out.
//!
//! A bucket with `max_age` drops every write that old, last ones and markers included, by
//! the clock of the server that wrote it. The checker knows that clock only as a window
//! over each operation ([`Ages`], as the spark checker does): a write *may have aged* by
//! the end of a watch if the earliest the server can have stamped it is `max_age` before
//! the most its clock read by then, and *surely aged* before a watch began if the latest
//! stamp it can have (never, for an unknown outcome) is `max_age` before the least its
//! clock read at the call. A watch without a cursor must not deliver a write that surely
//! aged; its state sync may leave out (or skip before its live part) a key whose last
//! write may have aged.
//!
//! Only what the history shows is used, and a write with an unknown outcome may or may not
//! appear, so a correct backend is never flagged. A violation names the watch and the
//! operations that revealed the revisions involved.

use squall_models::kv::{KvOp, KvRet, Rev};
use squall_models::spark::{Instant, Window};
use squall_models::watch::{End, Retention, Scope, Update, Watch, WatchOp, WatchRet, Watched};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound::{Excluded, Included};

use crate::check::Violation;
use crate::history::Operation;

type Op = Operation<WatchOp, WatchRet>;

/// What a write left, as far as a watch can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum What<'a> {
    Put(&'a str),
    Delete,
    Purge,
}

/// A revealed revision: what it holds and who revealed it.
#[derive(Clone, Copy)]
struct Known<'a> {
    key: &'a str,
    what: What<'a>,
    by: &'a Op,
}

/// The writes of a history and every revision it reveals.
struct Writes<'a> {
    known: BTreeMap<Rev, Known<'a>>,
    /// KV write operations by key, in history order.
    by_key: BTreeMap<&'a str, Vec<(&'a Op, &'a KvOp)>>,
    ages: Option<&'a Ages>,
}

/// What a bucket that ages writes out needs of time: its `max_age`, and the window of the
/// serving host's clock over each operation, by operation id.
pub struct Ages {
    pub max_age: Instant,
    pub windows: BTreeMap<u64, Window>,
}

impl Ages {
    /// Whether write `w` may have aged out by the end of `by`.
    fn may(&self, w: &Op, by: &Op) -> bool {
        self.windows[&w.id].from + self.max_age <= self.windows[&by.id].peak
    }

    /// Whether write `w` surely aged out before `by` was called. An unknown outcome may take
    /// effect at any time after its call, so it never surely aged.
    fn surely(&self, w: &Op, by: &Op) -> bool {
        w.done.is_some() && self.windows[&w.id].to + self.max_age < self.windows[&by.id].from
    }
}

/// The first rule of the module docs that `ops` break; `ages` for a bucket with `max_age`.
pub fn watches(ops: &[Op], retention: Retention, ages: Option<&Ages>) -> Result<(), Violation> {
    let mut writes = Writes::gather(ops)?;
    writes.ages = ages;
    for o in ops {
        if let (WatchOp::Watch(w), Some(WatchRet::Watched(got))) = (&o.op, &o.ret) {
            writes.judge(o, w, got, retention)?;
        }
    }
    Ok(())
}

fn what(u: &Update) -> What<'_> {
    match u {
        Update::Put { value, .. } => What::Put(value),
        Update::Delete { .. } => What::Delete,
        Update::Purge { .. } => What::Purge,
    }
}

/// The value a KV operation writes, if it writes one and says at which revision.
fn put_value(op: &KvOp) -> Option<&str> {
    match op {
        KvOp::Put { value, .. } | KvOp::Create { value, .. } | KvOp::Update { value, .. } => {
            Some(value)
        }
        _ => None,
    }
}

/// Whether a KV write's answer allows that it wrote: not refused, and sent.
fn may_have_written(o: &Op) -> bool {
    !matches!(o.ret, Some(WatchRet::Kv(KvRet::Err(_))))
}

fn violation(what: String, mut ops: Vec<u64>) -> Violation {
    ops.sort_unstable();
    ops.dedup();
    Violation {
        what,
        ops,
        ..Default::default()
    }
}

impl<'a> Writes<'a> {
    fn gather(ops: &'a [Op]) -> Result<Writes<'a>, Violation> {
        let mut writes = Writes {
            known: BTreeMap::new(),
            by_key: BTreeMap::new(),
            ages: None,
        };
        let mut values: BTreeMap<(&str, &str), (Rev, &Op)> = BTreeMap::new();
        for o in ops {
            let revealed: Vec<(Rev, Known)> = match (&o.op, &o.ret) {
                (WatchOp::Kv(op), ret) => {
                    let Some(key) = op.key().filter(|_| op.is_write()) else {
                        continue;
                    };
                    writes.by_key.entry(key).or_default().push((o, op));
                    match (put_value(op), ret) {
                        (Some(value), Some(WatchRet::Kv(KvRet::Written(rev)))) => {
                            let what = What::Put(value);
                            vec![(*rev, Known { key, what, by: o })]
                        }
                        _ => vec![],
                    }
                }
                (WatchOp::Watch(_), Some(WatchRet::Watched(got))) => (got.updates.iter())
                    .map(|u| (u.rev(), Known::of(u, o)))
                    .collect(),
                _ => vec![],
            };
            for (rev, k) in revealed {
                let earlier = *writes.known.entry(rev).or_insert(k);
                if (earlier.key, earlier.what) != (k.key, k.what) {
                    return Err(violation(
                        format!(
                            "revision {rev} holds {} by #{} but {} by #{}",
                            earlier.describe(),
                            earlier.by.id,
                            k.describe(),
                            o.id
                        ),
                        vec![earlier.by.id, o.id],
                    ));
                }
                if let What::Put(value) = k.what {
                    let (first, by) = *values.entry((k.key, value)).or_insert((rev, o));
                    if first != rev {
                        return Err(violation(
                            format!(
                                "{}={value:?} written at revision {first} (#{}) and at {rev} (#{})",
                                k.key, by.id, o.id
                            ),
                            vec![by.id, o.id],
                        ));
                    }
                }
            }
        }
        Ok(writes)
    }

    /// Rules 1 to 5 for watch `o`.
    fn judge(
        &self,
        o: &Op,
        w: &Watch,
        got: &Watched,
        retention: Retention,
    ) -> Result<(), Violation> {
        let mut prev = w.from;
        for (i, u) in got.updates.iter().enumerate() {
            if let Some(p) = prev.filter(|&p| u.rev() <= p) {
                let how = if i == 0 {
                    format!("not after its cursor @{p}")
                } else if u.rev() == p {
                    "twice".to_string()
                } else {
                    format!("after @{p}")
                };
                return Err(violation(
                    format!("watch #{} delivered {u} {how}", o.id),
                    vec![o.id],
                ));
            }
            prev = Some(u.rev());
            self.real(o, &w.scope, u)?;
        }
        match w.from {
            Some(cursor) => self.gaps(o, &w.scope, cursor, &got.updates, false)?,
            None => {
                self.unaged(o, &got.updates)?;
                self.split(o, &w.scope, &got.updates)?
            }
        }
        if got.end == End::CursorExpired {
            self.expiry(o, w, got, retention.history)?;
        }
        Ok(())
    }

    /// Rule 2 for update `u` of watch `o`.
    fn real(&self, o: &Op, scope: &Scope, u: &Update) -> Result<(), Violation> {
        let fail = |what: String, ops| Err(violation(format!("watch #{} {what}", o.id), ops));
        if !scope.covers(u.key()) {
            return fail(
                format!("delivered {u}, outside its scope {scope}"),
                vec![o.id],
            );
        }
        let mut sources = self.sources(o, u.key(), what(u));
        let Some((source, _)) = sources.next() else {
            return fail(format!("delivered {u}, which no write made"), vec![o.id]);
        };
        // Values are unique in squall's workloads; should two writes share one, either may be it.
        match source.ret {
            Some(WatchRet::Kv(KvRet::Written(rev)))
                if rev != u.rev() && sources.next().is_none() =>
            {
                fail(
                    format!("delivered {u}, but its write #{} took @{rev}", source.id),
                    vec![source.id, o.id],
                )
            }
            _ => Ok(()),
        }
    }

    /// The writes of the history that can have made `what` on `key`, as watch `o` saw it.
    fn sources(
        &self,
        o: &Op,
        key: &str,
        what: What<'a>,
    ) -> impl Iterator<Item = &(&'a Op, &'a KvOp)> + '_ {
        let answered = o.done.unwrap_or(usize::MAX);
        let candidates = self.by_key.get(key).into_iter().flatten();
        candidates.filter(move |(write, op)| {
            write.call < answered
                && may_have_written(write)
                && match what {
                    What::Put(value) => put_value(op) == Some(value),
                    What::Delete => {
                        matches!(op, KvOp::Delete { .. } | KvOp::DeleteWithVersion { .. })
                    }
                    What::Purge => matches!(op, KvOp::Purge { .. }),
                }
        })
    }

    /// Whether the write at revision `rev` may have aged out by the end of watch `o`.
    fn aged(&self, o: &Op, k: &Known<'a>) -> bool {
        let Some(ages) = self.ages else {
            return false;
        };
        self.sources(o, k.key, k.what).any(|(w, _)| ages.may(w, o))
    }

    /// Rule 3: every revealed revision in scope between `from` and the last update; a state
    /// sync's live part (`synced`) may skip a write that may have aged out before it.
    fn gaps(
        &self,
        o: &Op,
        scope: &Scope,
        from: Rev,
        updates: &[Update],
        synced: bool,
    ) -> Result<(), Violation> {
        let mut prev = from;
        for u in updates {
            let skipped = (self.known.range(prev + 1..u.rev()))
                .find(|(_, k)| scope.covers(k.key) && !(synced && self.aged(o, k)));
            if let Some((rev, k)) = skipped {
                return Err(violation(
                    format!(
                        "{} #{} skipped revision {rev} ({} by #{}): it delivered @{prev} then {u}",
                        if synced { "watch" } else { "resumed watch" },
                        o.id,
                        k.describe(),
                        k.by.id
                    ),
                    vec![k.by.id, o.id],
                ));
            }
            prev = u.rev();
        }
        Ok(())
    }

    /// Rule 4: some split of `updates` into a state sync and a gapless rest. On failure,
    /// what fails for the longest candidate sync (one update per key).
    fn split(&self, o: &Op, scope: &Scope, updates: &[Update]) -> Result<(), Violation> {
        let mut keys = BTreeSet::new();
        let longest = updates.iter().take_while(|u| keys.insert(u.key())).count();
        let mut first = None;
        for k in (0..=longest).rev() {
            let (sync, rest) = updates.split_at(k);
            let at = sync.last().map_or(0, Update::rev);
            let complete = !rest.is_empty();
            let tried = (self.sync(o, scope, sync, complete))
                .and_then(|()| self.gaps(o, scope, at, rest, true));
            match tried {
                Ok(()) => return Ok(()),
                Err(v) => {
                    first.get_or_insert(v);
                }
            }
        }
        Err(first.expect("there is always the empty split"))
    }

    /// Whether `sync` is the bucket in `scope` as of its last revision, as watch `o` may see
    /// it; a sync not known to be `complete` (nothing came after it) may lack keys yet.
    fn sync(
        &self,
        o: &Op,
        scope: &Scope,
        sync: &[Update],
        complete: bool,
    ) -> Result<(), Violation> {
        let at = sync.last().map_or(0, Update::rev);
        let fail = |what: String, by: &Op| {
            Err(violation(
                format!("watch #{}: its state sync as of @{at} {what}", o.id),
                vec![by.id, o.id],
            ))
        };
        let shown: BTreeSet<&str> = sync.iter().map(Update::key).collect();
        for u in sync {
            let later = self.known.range((Excluded(u.rev()), Included(at)));
            if let Some((rev, k)) = later.into_iter().find(|(_, k)| k.key == u.key()) {
                return fail(
                    format!("shows {u}, overwritten by @{rev} (#{})", k.by.id),
                    k.by,
                );
            }
        }
        if !complete {
            return Ok(());
        }
        let written = self.known.range(..=at);
        if let Some((rev, k)) = written
            .into_iter()
            .find(|(_, k)| scope.covers(k.key) && !shown.contains(k.key) && !self.aged(o, k))
        {
            let what = k.describe();
            return fail(
                format!("misses {}, written @{rev} ({what} by #{})", k.key, k.by.id),
                k.by,
            );
        }
        let in_scope = self.by_key.iter().filter(|(key, _)| scope.covers(key));
        for (write, op) in in_scope.flat_map(|(_, writes)| writes) {
            let before = write.done.is_some_and(|d| d < o.call);
            let aged = self.ages.is_some_and(|a| a.may(write, o));
            match write.ret {
                Some(WatchRet::Kv(KvRet::Written(rev))) if before && rev > at && !aged => {
                    let why = format!(
                        "is older than #{} ({op} @{rev}), done before the watch began",
                        write.id
                    );
                    return fail(why, write);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Watch `o`, without a cursor, delivers no write that surely aged out before it began:
    /// its state sync must not show one, and it is too old to come live.
    fn unaged(&self, o: &Op, updates: &[Update]) -> Result<(), Violation> {
        let Some(ages) = self.ages else {
            return Ok(());
        };
        for u in updates {
            let sources: Vec<_> = self.sources(o, u.key(), what(u)).collect();
            match sources.last() {
                Some((w, _)) if sources.iter().all(|(w, _)| ages.surely(w, o)) => {
                    return Err(violation(
                        format!(
                            "watch #{} delivered {u}, aged out (max_age) before the watch began",
                            o.id
                        ),
                        vec![w.id, o.id],
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Rule 5 for watch `o`, which answered `CursorExpired`.
    fn expiry(&self, o: &Op, w: &Watch, got: &Watched, history: usize) -> Result<(), Violation> {
        let last = got.updates.last().map(Update::rev);
        let cursor = w.from.max(last).unwrap_or(0);
        let answered = o.done.unwrap_or(usize::MAX);
        let droppable = self
            .by_key
            .iter()
            .filter(|(key, _)| w.scope.covers(key))
            .any(|(_, writes)| {
                let after: Vec<&(&Op, &KvOp)> = (writes.iter())
                .filter(|(write, _)| write.call < answered && may_have_written(write))
                .filter(|(write, _)| {
                    !matches!(write.ret, Some(WatchRet::Kv(KvRet::Written(r))) if r <= cursor)
                })
                .collect();
                let purge = after.iter().any(|(_, op)| matches!(op, KvOp::Purge { .. }));
                let aged = self
                    .ages
                    .is_some_and(|a| after.iter().any(|(w, _)| a.may(w, o)));
                after.len() > history || (after.len() >= 2 && purge) || aged
            });
        if droppable {
            return Ok(());
        }
        Err(violation(
            format!(
                "watch #{} answered cursor-expired after @{cursor}, but no key in scope has had enough writes since to drop one (history {}), nor one old enough to age out",
                o.id, history
            ),
            vec![o.id],
        ))
    }
}

impl<'a> Known<'a> {
    fn of(u: &'a Update, by: &'a Op) -> Known<'a> {
        Known {
            key: u.key(),
            what: what(u),
            by,
        }
    }

    fn describe(&self) -> String {
        match self.what {
            What::Put(value) => format!("{}={value:?}", self.key),
            What::Delete => format!("{}=del", self.key),
            What::Purge => format!("{}=purge", self.key),
        }
    }
}

#[cfg(test)]
mod tests;

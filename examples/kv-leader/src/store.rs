//! The bucket: each key's kept writes, the revision counter, and retention. Pure and
//! synchronous: the server hands it one command at a time with the time of day, so every
//! command is atomic and the order the leader runs them in is the order of revisions.

use squall_models::watch::Retention;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::time::Duration;

use crate::wire::{Answer, Cmd, Event, Refusal, Rev, What};
use crate::Bug;

struct Record {
    rev: Rev,
    what: What,
    /// When the leader made it, by its clock: `max_age` counts from here.
    at: Duration,
}

#[derive(Default)]
struct Key {
    /// The writes retention keeps, oldest first; the last one is the key's state.
    kept: VecDeque<Record>,
    /// The newest revision of this key that retention dropped. A watch resuming from
    /// before it would miss a write: its cursor has expired.
    dropped: Rev,
}

/// How a watch starts.
#[derive(Debug, PartialEq, Eq)]
pub enum Start {
    /// With these writes, in revision order, which bring it up to revision `rev`.
    With { events: Vec<Event>, rev: Rev },
    /// Retention dropped a write it needs.
    Expired,
}

pub struct Store {
    keys: BTreeMap<String, Key>,
    /// The revision of the latest write.
    rev: Rev,
    /// The size of the kept writes (key and value of each), held to `max_bytes`.
    bytes: u64,
    retention: Retention,
    bug: Option<Bug>,
}

/// Whether a watch of `prefixes` covers `key`.
pub fn covers(prefixes: &[String], key: &str) -> bool {
    prefixes.iter().any(|p| key.starts_with(p.as_str()))
}

fn size(key: &str, what: &What) -> u64 {
    let value = match what {
        What::Put(value) => value.len(),
        What::Delete | What::Purge => 0,
    };
    (key.len() + value) as u64
}

impl Store {
    pub fn new(retention: Retention, bug: Option<Bug>) -> Store {
        Store {
            keys: BTreeMap::new(),
            rev: 0,
            bytes: 0,
            retention,
            bug,
        }
    }

    /// Run `cmd` at time of day `now`: its answer, and the write it made, if any.
    pub fn run(&mut self, cmd: &Cmd, now: Duration) -> (Answer, Option<Event>) {
        self.age(now);
        let refuse = |r| (Answer::Refused(r), None);
        let (key, what) = match cmd {
            Cmd::Get { key } => {
                let value = self.value(key).filter(|(v, _)| !v.is_empty());
                return (Answer::Value(value.map(|(v, _)| v.to_string())), None);
            }
            Cmd::Entry { key } => {
                let entry = self.value(key).map(|(v, rev)| (v.to_string(), rev));
                return (Answer::Entry(entry), None);
            }
            Cmd::Keys { prefix } => {
                let keys = self.listed(prefix).map(|(k, _, _)| k.to_string());
                return (Answer::Keys(keys.collect()), None);
            }
            Cmd::Scan { prefix } => {
                let entries = self.listed(prefix);
                let entries = entries.map(|(k, v, rev)| (k.to_string(), v.to_string(), rev));
                return (Answer::Entries(entries.collect()), None);
            }
            Cmd::Put { key, value } => (key, What::Put(value.clone())),
            // A tombstone is a value here: only a marker or nothing lets `create` in.
            Cmd::Create { key, .. } if self.value(key).is_some() => return refuse(Refusal::Exists),
            Cmd::Create { key, value } => (key, What::Put(value.clone())),
            // Compared with the last write of any kind, markers included.
            Cmd::Update { key, rev, .. } | Cmd::DeleteIf { key, rev }
                if self.rev_of(key) != *rev =>
            {
                return refuse(Refusal::WrongRevision)
            }
            Cmd::Update { key, value, .. } => (key, What::Put(value.clone())),
            Cmd::DeleteIf { key, .. } => (key, What::Put(String::new())),
            Cmd::Delete { key } => (key, What::Delete),
            Cmd::Purge { key } => (key, What::Purge),
        };
        match self.write(key, what, now) {
            Ok(event) => (Answer::Wrote(event.rev), Some(event)),
            Err(refusal) => refuse(refusal),
        }
    }

    /// Where a watch of `prefixes` starts at `now`: after revision `after`, or without it
    /// at the last write of every key it covers, markers included.
    pub fn watch(&mut self, prefixes: &[String], after: Option<Rev>, now: Duration) -> Start {
        self.age(now);
        let covered = || (self.keys.iter()).filter(|(k, _)| covers(prefixes, k));
        let event = |key: &str, r: &Record| Event {
            key: key.to_string(),
            rev: r.rev,
            what: r.what.clone(),
        };
        let mut events: Vec<Event> = match after {
            None => (covered())
                .filter_map(|(k, key)| Some(event(k, key.kept.back()?)))
                .collect(),
            Some(after) if covered().any(|(_, key)| key.dropped > after) => return Start::Expired,
            Some(after) => (covered())
                .flat_map(|(k, key)| key.kept.iter().map(move |r| (k, r)))
                .filter(|(_, r)| r.rev > after)
                .map(|(k, r)| event(k, r))
                .collect(),
        };
        events.sort_by_key(|e| e.rev);
        Start::With {
            events,
            rev: self.rev,
        }
    }

    /// The key's last write, if it is a put (a tombstone included), with its revision.
    fn value(&self, key: &str) -> Option<(&str, Rev)> {
        match self.keys.get(key)?.kept.back()? {
            Record {
                what: What::Put(v),
                rev,
                ..
            } => Some((v, *rev)),
            _ => None,
        }
    }

    /// The revision of the key's last write; 0 if it has none.
    fn rev_of(&self, key: &str) -> Rev {
        let last = self.keys.get(key).and_then(|k| k.kept.back());
        last.map_or(0, |r| r.rev)
    }

    /// The keys under `prefix` that hold a value, in order, with it and its revision.
    fn listed<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str, Rev)> {
        let tombstones = self.bug == Some(Bug::ListsTombstones);
        (self
            .keys
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded)))
        .take_while(move |(k, _)| k.starts_with(prefix))
        .filter_map(|(k, _)| Some((k.as_str(), self.value(k)?)))
        .filter(move |(_, (v, _))| !v.is_empty() || tombstones)
        .map(|(k, (v, rev))| (k, v, rev))
    }

    /// Write `what` to `key` at `now`, dropping what retention no longer keeps; refused if
    /// the kept writes would pass `max_bytes` (nothing is dropped to make room).
    fn write(&mut self, key: &str, what: What, now: Duration) -> Result<Event, Refusal> {
        let kept = self.keys.get(key).map_or(0, |k| k.kept.len());
        // A purge rolls the key's history up into its marker; any other write pushes the
        // oldest out once the key has `history` writes.
        let drop = match what {
            What::Purge => kept,
            _ => (kept + 1).saturating_sub(self.retention.history.max(1)),
        };
        let k = self.keys.entry(key.to_string()).or_default();
        let freed: u64 = k.kept.iter().take(drop).map(|r| size(key, &r.what)).sum();
        let bytes = self.bytes - freed + size(key, &what);
        if self.retention.max_bytes.is_some_and(|max| bytes > max) {
            return Err(Refusal::Full);
        }
        for r in k.kept.drain(..drop) {
            k.dropped = r.rev;
        }
        self.bytes = bytes;
        self.rev += 1;
        let rev = self.rev;
        k.kept.push_back(Record {
            rev,
            what: what.clone(),
            at: now,
        });
        let key = key.to_string();
        Ok(Event { key, rev, what })
    }

    /// Drop every write older than `max_age` at `now`, last ones and markers included: the
    /// key is then absent. Every key is looked at each time, which suits small buckets.
    fn age(&mut self, now: Duration) {
        let Some(cutoff) = (self.retention.max_age).and_then(|age| now.checked_sub(age)) else {
            return;
        };
        for (key, k) in &mut self.keys {
            while let Some(r) = k.kept.front().filter(|r| r.at <= cutoff) {
                self.bytes -= size(key, &r.what);
                k.dropped = r.rev;
                k.kept.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str) -> Cmd {
        let (key, value) = (key.into(), value.into());
        Cmd::Put { key, value }
    }

    fn run(store: &mut Store, cmd: Cmd) -> Answer {
        store.run(&cmd, Duration::ZERO).0
    }

    #[test]
    fn tombstones_show_in_entry_only() {
        let mut store = Store::new(Retention::default(), None);
        assert_eq!(run(&mut store, put("a", "x")), Answer::Wrote(1));
        let dwv = Cmd::DeleteIf {
            key: "a".into(),
            rev: 1,
        };
        assert_eq!(run(&mut store, dwv), Answer::Wrote(2));
        let get = run(&mut store, Cmd::Get { key: "a".into() });
        assert_eq!(get, Answer::Value(None));
        let entry = run(&mut store, Cmd::Entry { key: "a".into() });
        assert_eq!(entry, Answer::Entry(Some((String::new(), 2))));
        let keys = run(&mut store, Cmd::Keys { prefix: "".into() });
        assert_eq!(keys, Answer::Keys(vec![]));
        let create = Cmd::Create {
            key: "a".into(),
            value: "y".into(),
        };
        assert_eq!(run(&mut store, create), Answer::Refused(Refusal::Exists));
    }

    #[test]
    fn a_resume_past_dropped_history_expires() {
        let history = Retention {
            history: 2,
            ..Retention::default()
        };
        let mut store = Store::new(history, None);
        for v in ["1", "2", "3"] {
            run(&mut store, put("a", v));
        }
        let all = [String::new()];
        assert_eq!(store.watch(&all, Some(0), Duration::ZERO), Start::Expired);
        let Start::With { events, rev } = store.watch(&all, Some(1), Duration::ZERO) else {
            panic!("revision 1 was the only one dropped");
        };
        assert_eq!((events.len(), rev), (2, 3));
        // The purge rolls revisions 2 and 3 up into its marker, 4.
        run(&mut store, Cmd::Purge { key: "a".into() });
        assert_eq!(store.watch(&all, Some(2), Duration::ZERO), Start::Expired);
        let Start::With { events, .. } = store.watch(&all, Some(3), Duration::ZERO) else {
            panic!("nothing after revision 3 was dropped");
        };
        assert_eq!(events.iter().map(|e| e.rev).collect::<Vec<_>>(), [4]);
    }
}

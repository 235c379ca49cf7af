//! The streams a reference server holds, and what each operation does to them.

use serde::{Deserialize, Serialize};
use squall_models::stream::{Producer, StreamError as E, StreamOp, StreamRet as R};
use std::collections::BTreeMap;

use super::Bug;

/// Milliseconds on the host's clock.
pub type Ms = u64;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Store {
    pub streams: BTreeMap<String, Log>,
    /// The first offset the next stream of a name takes: kept across deletes, so that no
    /// offset of a name is ever given twice.
    pub bases: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Log {
    pub json: bool,
    pub ttl: Option<u64>,
    pub expires: Option<Ms>,
    /// The offset of the first message.
    pub base: u64,
    pub messages: Vec<String>,
    pub closed: bool,
    pub closer: Option<Producer>,
    pub last_seq: Option<String>,
    /// Producer id -> (epoch, last seq).
    pub producers: BTreeMap<String, (u64, u64)>,
}

impl Log {
    /// The offset after `k` messages: 16 hex digits, so offsets sort as strings.
    fn offset(&self, k: usize) -> String {
        format!("{:016x}", self.base + k as u64)
    }

    fn tail(&self) -> String {
        self.offset(self.messages.len())
    }

    /// The position an offset names, or `None` if it is not one of ours.
    fn position(&self, offset: &str) -> Option<usize> {
        let o = u64::from_str_radix(offset, 16).ok()?;
        Some(o.saturating_sub(self.base).min(self.messages.len() as u64) as usize)
    }
}

impl Store {
    /// Whether the stream `name` is JSON (false when there is none).
    pub fn json(&self, name: &str) -> bool {
        self.streams.get(name).is_some_and(|l| l.json)
    }

    /// Drop `name`'s stream; its offsets stay taken (unless the offset-reuse mutant).
    fn remove(&mut self, name: &str, bug: Option<Bug>) {
        if let Some(log) = self.streams.remove(name) {
            if bug != Some(Bug::OffsetReuse) {
                let next = log.base + log.messages.len() as u64 + 1;
                self.bases.insert(name.to_string(), next);
            }
        }
    }

    /// Apply `op` at time `now`.
    pub fn apply(&mut self, op: &StreamOp, now: Ms, bug: Option<Bug>) -> R {
        let name = op.stream();
        if self
            .streams
            .get(name)
            .and_then(|l| l.expires)
            .is_some_and(|at| now >= at)
        {
            self.remove(name, bug);
        }
        if let StreamOp::Append {
            json, data, close, ..
        } = op
        {
            if data.is_empty() && !close {
                return R::Err(E::empty(*json));
            }
        }
        if let StreamOp::Create { json, ttl, .. } = op {
            return match self.streams.get(name) {
                Some(log) if (log.json, log.ttl, log.closed) == (*json, *ttl, false) => {
                    R::Created {
                        next: log.tail(),
                        new: false,
                    }
                }
                Some(_) => R::Err(E::Exists),
                None => {
                    let log = Log {
                        json: *json,
                        ttl: *ttl,
                        expires: ttl.map(|t| now + t * 1000),
                        base: self.bases.get(name).copied().unwrap_or(0),
                        messages: Vec::new(),
                        closed: false,
                        closer: None,
                        last_seq: None,
                        producers: BTreeMap::new(),
                    };
                    let next = log.tail();
                    self.streams.insert(name.to_string(), log);
                    R::Created { next, new: true }
                }
            };
        }
        let Some(log) = self.streams.get_mut(name) else {
            return R::Err(E::NotFound);
        };
        match op {
            StreamOp::Create { .. } => unreachable!("answered above"),
            StreamOp::Garbled { .. } => unreachable!("a request's parse refuses it"),
            StreamOp::Append {
                json,
                data,
                seq,
                producer,
                close,
                ..
            } => append(log, *json, data, seq, producer.as_ref(), *close, bug),
            StreamOp::Close { .. } => {
                log.closed = true;
                R::Closed { next: log.tail() }
            }
            StreamOp::Read { from, .. } => {
                let start = match from {
                    None => 0,
                    Some(o) => match log.position(o) {
                        Some(k) => k,
                        None => {
                            return R::Err(E::BadRequest {
                                kind: "invalid-offset".into(),
                            })
                        }
                    },
                };
                let got = &log.messages[start..];
                let data = match (log.json, got.is_empty()) {
                    (_, true) => Vec::new(),
                    (true, false) => got.to_vec(),
                    (false, false) => vec![got.concat()],
                };
                R::Read {
                    data,
                    next: log.tail(),
                    up_to_date: true,
                    closed: log.closed,
                }
            }
            StreamOp::Head { .. } => R::Meta {
                json: log.json,
                next: log.tail(),
                closed: log.closed,
            },
            StreamOp::Delete { .. } => {
                self.remove(name, bug);
                R::Deleted
            }
        }
    }
}

/// An append, checked in the order the spec and `durable-streams-server` agree on.
fn append(
    log: &mut Log,
    json: bool,
    data: &[String],
    seq: &Option<String>,
    producer: Option<&Producer>,
    close: bool,
    bug: Option<Bug>,
) -> R {
    if let Some(p) = producer {
        if json != log.json && !data.is_empty() {
            return R::Err(E::ContentType);
        }
        let state = log.producers.get(&p.id).copied();
        if let Some((epoch, last)) = state {
            let fenced = if bug == Some(Bug::StaleEpoch) {
                false
            } else {
                p.epoch < epoch
            };
            if fenced {
                return R::Err(E::Fenced { current: epoch });
            }
            if log.closed {
                return closed_to(log, p);
            }
            let duplicate = p.epoch == epoch && p.seq <= last;
            if duplicate && bug != Some(Bug::DuplicateAppend) {
                return R::Duplicate {
                    next: log.tail(),
                    epoch,
                    seq: last,
                    closed: false,
                };
            }
            if p.epoch != epoch && p.seq != 0 && bug != Some(Bug::EpochAnySeq) {
                return R::Err(E::BadRequest {
                    kind: "bad-request".into(),
                });
            }
            if p.epoch == epoch && p.seq > last + 1 && bug != Some(Bug::GapAccepted) {
                return R::Err(E::Gap {
                    expected: last + 1,
                    received: p.seq,
                });
            }
        } else {
            if log.closed {
                return closed_to(log, p);
            }
            if p.seq != 0 {
                return R::Err(E::Gap {
                    expected: 0,
                    received: p.seq,
                });
            }
        }
    } else {
        if log.closed {
            return R::Err(E::StreamClosed { next: log.tail() });
        }
        if json != log.json {
            return R::Err(E::ContentType);
        }
    }
    if let (Some(new), Some(last)) = (seq, &log.last_seq) {
        if !after(new, last, bug) {
            return R::Err(E::SeqOrder);
        }
    }
    log.messages.extend(data.iter().cloned());
    if seq.is_some() {
        log.last_seq = seq.clone();
    }
    if let Some(p) = producer {
        log.producers.insert(p.id.clone(), (p.epoch, p.seq));
    }
    if close {
        log.closed = true;
        log.closer = producer.cloned();
    }
    R::Appended {
        next: log.tail(),
        closed: log.closed,
        producer: producer.map(|p| (p.epoch, p.seq)),
    }
}

/// A producer's append to a closed stream: a duplicate if it is the one that closed it.
fn closed_to(log: &Log, p: &Producer) -> R {
    if log.closer.as_ref() == Some(p) {
        R::Duplicate {
            next: log.tail(),
            epoch: p.epoch,
            seq: p.seq,
            closed: true,
        }
    } else {
        R::Err(E::StreamClosed { next: log.tail() })
    }
}

/// Whether `Stream-Seq` `new` comes after `last`: bytewise (the mutant's way if it has one).
fn after(new: &str, last: &str, bug: Option<Bug>) -> bool {
    let mutant = bug.and_then(|b| b.seq_after(new, last));
    mutant.unwrap_or(new.as_bytes() > last.as_bytes())
}

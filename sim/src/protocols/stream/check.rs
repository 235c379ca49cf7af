//! Exactly-once delivery of stream appends, judged on the final read of each stream.
//!
//! After quiescence the workload reads every stream from the start ([`Protocol::finale`]).
//! Each such read must show exactly the appends the history allows, once each:
//!
//! - every acknowledged append (200, or a 204 duplicate) is there; an append whose outcome
//!   is unknown is there at most once; nothing is there that no client appended;
//! - in an order consistent with the history: an append acknowledged before another was
//!   invoked comes first;
//! - each producer's appends form, per epoch, the contiguous sequence 0, 1, 2, ..., epochs
//!   never going back.
//!
//! Messages name their append (see [`crate::protocols::stream::payload`]). A stream that
//! was ever deleted or created with a TTL is left to the linearizability check: what its
//! final read may hold depends on which incarnation it reads.
//!
//! [`Protocol::finale`]: crate::protocol::Protocol::finale

use squall_models::stream::{Ms, StreamError, StreamOp, StreamRet, Timed};
use std::collections::{BTreeMap, BTreeSet};

use crate::check::{Verdict, Violation};
use crate::history::{Event, History, Operation};

type Op = Operation<StreamOp, StreamRet>;

/// The operations with the window of simulated time each ran in, for the model.
pub fn timed(
    history: &History<StreamOp, StreamRet>,
    ops: &[Op],
) -> Vec<Operation<Timed, StreamRet>> {
    let ms = |i: usize| -> Ms {
        match &history.events[i] {
            Event::Invoke { at, .. } | Event::Return { at, .. } => at / 1_000_000,
            _ => unreachable!("operations point at invocations and returns"),
        }
    };
    ops.iter()
        .map(|o| Operation {
            id: o.id,
            client: o.client,
            op: Timed {
                op: o.op.clone(),
                from: ms(o.call),
                to: o.done.map_or(Ms::MAX, ms),
            },
            ret: o.ret.clone(),
            call: o.call,
            done: o.done,
        })
        .collect()
}

/// Judge the final reads, the operations of client `finale`. On success, also the ids of
/// the appends whose outcome was unknown and whose data the final read lacks: since such a
/// stream only ever grows, they never took effect, and the linearizability search need
/// not place them.
pub fn exactly_once(ops: &[Op], finale: u32) -> Result<BTreeSet<u64>, Verdict> {
    let mut never = BTreeSet::new();
    for last in ops.iter().filter(|o| o.client == finale) {
        let stream = last.op.stream();
        let on: Vec<&Op> = ops
            .iter()
            .filter(|o| o.client != finale && o.op.stream() == stream)
            .collect();
        let incarnations = on.iter().any(|o| match &o.op {
            StreamOp::Delete { .. } => true,
            StreamOp::Create { ttl, .. } => ttl.is_some(),
            _ => false,
        });
        if incarnations {
            continue;
        }
        let data = match &last.ret {
            Some(StreamRet::Read {
                data,
                up_to_date: true,
                ..
            }) => data.clone(),
            Some(StreamRet::Err(StreamError::NotFound)) => Vec::new(),
            Some(other) => {
                return Err(Verdict::Unknown(format!(
                    "the final read of {stream} (#{}) answered {other}, not the whole stream",
                    last.id
                )))
            }
            None => {
                return Err(Verdict::Unknown(format!(
                    "the final read of {stream} (#{}) got no answer: heal every fault before the scenario's duration",
                    last.id
                )))
            }
        };
        never.extend(judge(stream, last, &on, &data).map_err(Verdict::Violation)?);
    }
    Ok(never)
}

/// An append as the final read shows it: the operations that sent it (a retry sends the
/// same data again) and where its messages stand.
#[derive(Default)]
struct Seen<'a> {
    ops: Vec<&'a Op>,
    size: usize,
    at: Vec<usize>,
}

fn judge(stream: &str, last: &Op, on: &[&Op], data: &[String]) -> Result<Vec<u64>, Violation> {
    let json = on
        .iter()
        .any(|o| matches!(o.op, StreamOp::Create { json: true, .. }));
    let messages: Vec<String> = if json {
        data.to_vec()
    } else {
        let all = data.concat();
        all.split_terminator(';').map(str::to_string).collect()
    };
    let id = |m: &str| -> String {
        match m.rsplit_once('.') {
            Some((id, _)) if json => id.to_string(),
            _ => m.trim_end_matches(';').to_string(),
        }
    };
    let mut appends: BTreeMap<String, Seen> = BTreeMap::new();
    for o in on {
        if let StreamOp::Append { data, .. } = &o.op {
            if let Some(first) = data.first() {
                let seen = appends.entry(id(first)).or_default();
                seen.ops.push(o);
                seen.size = data.len();
            }
        }
    }
    let fail = |what: String, ops: Vec<&Op>| -> Result<(), Violation> {
        let mut ids: Vec<u64> = ops.iter().map(|o| o.id).chain([last.id]).collect();
        ids.sort();
        ids.dedup();
        Err(Violation {
            what: format!("exactly-once on {stream}: {what}"),
            ops: ids,
            ..Default::default()
        })
    };
    for (i, m) in messages.iter().enumerate() {
        match appends.get_mut(&id(m)) {
            Some(seen) => seen.at.push(i),
            None => {
                fail(format!("message {m:?} was never appended"), vec![])?;
            }
        }
    }
    for (name, seen) in &appends {
        let acked = seen.ops.iter().any(|o| {
            matches!(
                o.ret,
                Some(StreamRet::Appended { .. } | StreamRet::Duplicate { .. })
            )
        });
        if seen.at.len() > seen.size {
            fail(
                format!(
                    "append {name} is in the stream {} times",
                    seen.at.len() / seen.size.max(1)
                ),
                seen.ops.clone(),
            )?;
        }
        if acked && seen.at.is_empty() {
            fail(
                format!("append {name} was acknowledged but is not in the stream"),
                seen.ops.clone(),
            )?;
        }
    }
    order(&appends, &fail)?;
    contiguous(&messages, &id, &appends, &fail)?;
    let absent = appends.values().filter(|s| s.at.is_empty());
    Ok(absent
        .flat_map(|s| &s.ops)
        .filter(|o| o.ret.is_none())
        .map(|o| o.id)
        .collect())
}

/// An append acknowledged before another was invoked stands before it.
fn order<'a>(
    appends: &BTreeMap<String, Seen<'a>>,
    fail: &impl Fn(String, Vec<&'a Op>) -> Result<(), Violation>,
) -> Result<(), Violation> {
    let present: Vec<(&String, &Seen)> = appends.iter().filter(|(_, s)| !s.at.is_empty()).collect();
    for (a, sa) in &present {
        let Some(done) = sa
            .ops
            .iter()
            .filter(|o| {
                matches!(
                    o.ret,
                    Some(StreamRet::Appended { .. } | StreamRet::Duplicate { .. })
                )
            })
            .filter_map(|o| o.done)
            .min()
        else {
            continue;
        };
        for (b, sb) in &present {
            let call = sb.ops.iter().map(|o| o.call).min().unwrap_or(usize::MAX);
            if done < call && sb.at[0] < sa.at[0] {
                let ops = sa.ops.iter().chain(&sb.ops).copied().collect();
                return fail(
                    format!(
                        "append {b} stands before {a}, which was acknowledged before {b} was sent"
                    ),
                    ops,
                );
            }
        }
    }
    Ok(())
}

/// Each producer's appends run 0, 1, 2, ... within an epoch, epochs never going back.
fn contiguous<'a>(
    messages: &[String],
    id: &impl Fn(&str) -> String,
    appends: &BTreeMap<String, Seen<'a>>,
    fail: &impl Fn(String, Vec<&'a Op>) -> Result<(), Violation>,
) -> Result<(), Violation> {
    let mut producers: BTreeMap<String, (u64, u64, &str)> = BTreeMap::new();
    let mut previous = String::new();
    for m in messages {
        let name = id(m);
        if name == previous {
            continue; // the rest of a JSON batch
        }
        let Some(seen) = appends.get(&name) else {
            continue;
        };
        let Some(StreamOp::Append {
            producer: Some(p), ..
        }) = seen.ops.first().map(|o| &o.op)
        else {
            previous = name;
            continue;
        };
        let expected = match producers.get(&p.id) {
            Some(&(epoch, seq, _)) if p.epoch == epoch => Some(seq + 1),
            Some(&(epoch, _, _)) if p.epoch < epoch => None,
            _ => Some(0),
        };
        if expected != Some(p.seq) {
            let before = producers
                .get(&p.id)
                .map(|(_, _, b)| *b)
                .unwrap_or("nothing");
            let mut ops = seen.ops.clone();
            if let Some(b) = appends.get(before) {
                ops.extend(&b.ops);
            }
            return fail(
                format!(
                    "producer {} appended epoch {} seq {} right after {before}",
                    p.id, p.epoch, p.seq
                ),
                ops,
            );
        }
        producers.insert(
            p.id.clone(),
            (p.epoch, p.seq, appends.get_key_value(&name).unwrap().0),
        );
        previous = name;
    }
    Ok(())
}

//! Histories as [porcupine](https://github.com/anishathalye/porcupine)'s operations: a
//! JSON array of `{"ClientId", "Input", "Call", "Output", "Return"}`, porcupine's
//! `Operation` as Go's `encoding/json` writes it.
//!
//! `Input` and `Output` are the operation and its answer in squall's JSON. `Call` and
//! `Return` are event indices, not times: porcupine reads `[Call, Return]` as a closed
//! interval, and indices keep two events of one simulated instant in the order they
//! happened, as squall's checker does. An operation whose outcome is unknown has `Output`
//! `null` and returns after every other event, as porcupine's own Jepsen test places
//! unknown returns at the end. `ClientId` is zero-based: the clients in ascending order.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::json;

use crate::history::{Event, History};

/// `history` as porcupine's operations, in invocation order.
pub fn write<O: Clone + Serialize, R: Clone + Serialize>(history: &History<O, R>) -> String {
    let clients: BTreeSet<u32> = history
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Invoke { client, .. } => Some(*client),
            _ => None,
        })
        .collect();
    let rank = |c: u32| clients.iter().position(|&x| x == c).unwrap_or(0);
    let end = history.events.len();
    let ops: Vec<_> = history
        .operations()
        .into_iter()
        .map(|o| {
            json!({
                "ClientId": rank(o.client),
                "Input": o.op,
                "Call": o.call,
                "Output": o.ret,
                "Return": o.done.filter(|_| o.ret.is_some()).unwrap_or(end),
            })
        })
        .collect();
    serde_json::to_string_pretty(&ops).expect("a history always serializes")
}

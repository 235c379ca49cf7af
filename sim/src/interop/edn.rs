//! Histories as Jepsen's EDN (`history.edn`): one map an event, in the order they
//! happened, `{:type :invoke, :f :write, :value 4, :process 0, :time 1000, :index 0}`.
//!
//! - `:type`: `:invoke`; `:ok` or `:fail` for an answer, as [`Answer::is_ok`] says; `:info`
//!   for an unknown outcome (its `:error` says why) and for a fault.
//! - `:f` and `:value` come from the operation's JSON: a bare name is `:f` with a `nil`
//!   value (`read`), a one-entry object its key and content (`{"write": 4}`), an object with
//!   an `op` field that field and the rest (KV's `{"op": "put", "key": ...}`).
//! - A completion's `:value` is the answer's content when it is named like the operation
//!   (a read's value), the invocation's value when the answer says no more than success
//!   or failure (a write, a compare-and-set: `:type` says which), else the whole answer.
//!   So a register history comes out as Jepsen writes one, and [`jepsen`](super::jepsen)
//!   reads it back.
//! - `:process` is the client, `:nemesis` for a fault (`:f` its first word, `:value` the
//!   rest); `:time` is simulated nanoseconds; `:index` the event's position.

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};

use edn_format::{emit_str, Keyword, Value};
use serde::Serialize;
use serde_json::Value as Json;
use squall_models::Answer;

use crate::history::{Event, History};

/// `history` as EDN, one map a line.
pub fn write<O: Display + Serialize, R: Answer + Serialize>(history: &History<O, R>) -> String {
    let mut out = String::new();
    let mut invoked: BTreeMap<u64, (String, Value)> = BTreeMap::new();
    for (index, e) in history.events.iter().enumerate() {
        let (kind, f, value, process, at, error) = match e {
            Event::Invoke { at, client, id, op } => {
                let (f, value) = function(op);
                invoked.insert(*id, (f.clone(), value.clone()));
                ("invoke", f, value, client.to_string(), at, None)
            }
            Event::Return {
                at,
                client,
                id,
                ret,
            } => {
                let (f, value) = invoked.remove(id).unwrap_or_else(nothing);
                let kind = if ret.is_ok() { "ok" } else { "fail" };
                let value = completion(&f, value, to_json(ret));
                (kind, f, value, client.to_string(), at, None)
            }
            Event::Unknown {
                at,
                client,
                id,
                why,
            } => {
                let (f, value) = invoked.remove(id).unwrap_or_else(nothing);
                ("info", f, value, client.to_string(), at, Some(why))
            }
            Event::Fault { at, what } => {
                let (f, rest) = what.split_once(' ').unwrap_or((what, ""));
                let value = Value::String(rest.to_string());
                ("info", f.to_string(), value, ":nemesis".into(), at, None)
            }
        };
        let _ = write!(
            out,
            "{{:type :{kind}, :f :{f}, :value {}, :process {process}, :time {at}, :index {index}",
            emit_str(&value)
        );
        if let Some(why) = error {
            let _ = write!(out, ", :error {}", emit_str(&Value::String(why.clone())));
        }
        out.push_str("}\n");
    }
    out
}

/// An operation's `:f` and invocation `:value`.
fn function<O: Display + Serialize>(op: &O) -> (String, Value) {
    match to_json(op) {
        Json::String(f) => (f, Value::Nil),
        Json::Object(mut m) => match m.remove("op") {
            Some(Json::String(f)) => (f, edn(Json::Object(m))),
            Some(other) => {
                m.insert("op".into(), other);
                first_word(op, Json::Object(m))
            }
            None if m.len() == 1 => {
                let (f, v) = m.into_iter().next().expect("one entry");
                (f, edn(v))
            }
            None => first_word(op, Json::Object(m)),
        },
        other => first_word(op, other),
    }
}

/// The function named by the first word of an operation's text, and its whole JSON.
fn first_word<O: Display>(op: &O, json: Json) -> (String, Value) {
    let text = op.to_string();
    let f = text.split_whitespace().next().unwrap_or("op").to_string();
    (f, edn(json))
}

/// A completion's `:value` (see the module documentation).
fn completion(f: &str, invoked: Value, ret: Json) -> Value {
    match ret {
        Json::String(_) => invoked,
        Json::Object(m) if m.len() == 1 => {
            let (name, content) = m.into_iter().next().expect("one entry");
            match content {
                Json::Bool(_) => invoked,
                content if name == f => edn(content),
                content => edn(Json::Object([(name, content)].into_iter().collect())),
            }
        }
        other => edn(other),
    }
}

fn to_json<T: Serialize>(t: &T) -> Json {
    serde_json::to_value(t).expect("operations and answers serialize")
}

/// JSON as EDN: objects become maps with keyword keys, arrays vectors.
fn edn(json: Json) -> Value {
    match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN).into()),
        },
        Json::String(s) => Value::String(s),
        Json::Array(a) => Value::Vector(a.into_iter().map(edn).collect()),
        Json::Object(m) => Value::Map(
            m.into_iter()
                .map(|(k, v)| (Value::Keyword(Keyword::from_name(&k)), edn(v)))
                .collect(),
        ),
    }
}

/// What a completion of no invoked operation completes (a history always invokes first).
fn nothing() -> (String, Value) {
    ("unknown".into(), Value::Nil)
}

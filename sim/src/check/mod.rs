//! Checkers: a history against a model.
//!
//! [`Verdict`] is what every checker ends in; a violation names the operations of the
//! smallest failing part of the history it found.

/// The outcome of checking one history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every property held.
    Ok,
    /// A property failed.
    Violation(Violation),
    /// The checker could not decide within its budget; says which and why.
    Unknown(String),
}

/// A failed property, with the operations that show it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Violation {
    /// What failed, in a sentence or two (the operation that could not be placed and the
    /// model state where the search stopped, say).
    pub what: String,
    /// Ids of the operations of the minimal failing history, in history order.
    pub ops: Vec<u64>,
    /// The operation that could not be placed, where a checker knows one (linearizability).
    pub stuck: Option<u64>,
    /// The model states the search stopped in, as text (`{:?}`), where a checker knows them.
    pub states: Vec<String>,
}

pub mod clock;
pub mod linear;

use squall_models::Model;
use std::fmt::Display;

use crate::history::Operation;
use linear::{Budget, Linearizability};

/// Whether `ops` are linearizable against `model`, as a verdict that names the operation
/// that could not be placed and the model states the search stopped in.
pub fn linearizable<M: Model>(
    model: &M,
    ops: &[Operation<M::Op, M::Ret>],
    limits: &Budget,
) -> Verdict
where
    M::Op: PartialEq + Display,
    M::Ret: Display,
{
    match linear::check(model, ops, limits) {
        Linearizability::Linearizable => Verdict::Ok,
        Linearizability::Unknown { part } => Verdict::Unknown(format!(
            "linearizability undecided within {} model steps{}",
            limits.steps,
            part.map(|p| format!(" (part {p})")).unwrap_or_default()
        )),
        Linearizability::Violation(c) => {
            let stuck = &ops[c.op];
            let answer = stuck
                .ret
                .as_ref()
                .map_or("no answer".to_string(), |r| format!("answered {r}"));
            let states: Vec<String> = c.states.iter().map(|s| format!("{s:?}")).collect();
            Verdict::Violation(Violation {
                what: format!(
                    "not linearizable{}: #{} ({}, c{}) {answer}, which no order of the operations before it allows; model state(s) where the search stopped: {}",
                    c.part.map(|p| format!(" on {p}")).unwrap_or_default(),
                    stuck.id,
                    stuck.op,
                    stuck.client,
                    states.join(" | ")
                ),
                ops: c.ops.iter().map(|&i| ops[i].id).collect(),
                stuck: Some(stuck.id),
                states,
            })
        }
    }
}

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// What failed, in a sentence or two (the operation that could not be placed and the
    /// model state where the search stopped, say).
    pub what: String,
    /// Ids of the operations of the minimal failing history, in history order.
    pub ops: Vec<u64>,
}

pub mod kv;

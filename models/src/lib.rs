//! Reference models of the protocols squall checks.
//!
//! A model is a sequential specification: [`Model::init`] gives the first state and
//! [`Model::step`] judges one operation with the answer a backend gave, returning the next
//! state or `None` when that answer is not a right one. Judging rather than computing the
//! answer lets one model serve protocols with several right answers (server-chosen revisions,
//! TTLs rounded to seconds) and lets a checker ask "could this have happened?".
//!
//! Models are pure: no I/O, no async, no clock (time is an argument of an operation when a
//! protocol needs it) and no randomness. States are `Clone + Eq + Hash` so checkers can
//! memoise them.

use std::fmt::Debug;
use std::hash::Hash;

pub mod kv;
pub mod register;
pub mod spark;
pub mod stream;
pub mod suspension;
pub mod watch;

/// A sequential specification of a protocol.
pub trait Model {
    /// Everything the protocol remembers between operations.
    type State: Clone + Eq + Hash + Debug;
    /// An operation a client invokes.
    type Op: Clone + Debug;
    /// The answer a backend gives to an operation (protocol errors included).
    type Ret: Clone + Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `op` answered `ret` in `state`, or `None` if `ret` is not a right
    /// answer there.
    ///
    /// `ret` is `None` when the operation may have taken effect but its answer was never
    /// seen (a timeout, a lost connection): the model applies the operation as the protocol
    /// would, accepting any answer.
    fn step(
        &self,
        state: &Self::State,
        op: &Self::Op,
        ret: Option<&Self::Ret>,
    ) -> Option<Self::State>;

    /// The part of the state `op` touches, if it touches one part only. Operations on
    /// different parts commute, so a checker may check each part's operations apart
    /// (P-compositionality). `None`, the default, means the operation may touch any part.
    fn part(&self, _op: &Self::Op) -> Option<String> {
        None
    }
}

/// Whether an answer reports success; a history prints failures as `fail`.
pub trait Answer {
    fn is_ok(&self) -> bool;
}

//! A single register with compare-and-set, initially empty: the model behind Jepsen's
//! etcd histories.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::{Answer, Model};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterOp {
    Read,
    Write(i64),
    /// Set to `.1` if the register holds `.0`.
    Cas(i64, i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterRet {
    /// What a read saw; `None` is "no value".
    Read(Option<i64>),
    Written,
    /// Whether the compare matched and the set happened.
    Cas(bool),
}

/// One register, initially without a value.
#[derive(Clone, Copy, Debug, Default)]
pub struct Register;

impl Model for Register {
    type State = Option<i64>;
    type Op = RegisterOp;
    type Ret = RegisterRet;

    fn init(&self) -> Option<i64> {
        None
    }

    fn step(
        &self,
        s: &Option<i64>,
        op: &RegisterOp,
        ret: Option<&RegisterRet>,
    ) -> Option<Option<i64>> {
        match (op, ret) {
            (RegisterOp::Read, None) => Some(*s),
            (RegisterOp::Read, Some(RegisterRet::Read(v))) => (v == s).then_some(*s),
            (RegisterOp::Write(v), None | Some(RegisterRet::Written)) => Some(Some(*v)),
            (RegisterOp::Cas(from, to), None) => {
                Some(if *s == Some(*from) { Some(*to) } else { *s })
            }
            (RegisterOp::Cas(from, to), Some(RegisterRet::Cas(ok))) => {
                let matches = *s == Some(*from);
                (matches == *ok).then_some(if matches { Some(*to) } else { *s })
            }
            _ => None,
        }
    }
}

impl Answer for RegisterRet {
    fn is_ok(&self) -> bool {
        !matches!(self, RegisterRet::Cas(false))
    }
}

impl fmt::Display for RegisterOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterOp::Read => write!(f, "read"),
            RegisterOp::Write(v) => write!(f, "write {v}"),
            RegisterOp::Cas(a, b) => write!(f, "cas {a} {b}"),
        }
    }
}

impl fmt::Display for RegisterRet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterRet::Read(Some(v)) => write!(f, "{v}"),
            RegisterRet::Read(None) => write!(f, "nil"),
            RegisterRet::Written => write!(f, "written"),
            RegisterRet::Cas(ok) => write!(f, "cas {}", if *ok { "ok" } else { "mismatch" }),
        }
    }
}

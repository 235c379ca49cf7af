//! Histories recorded by other tools, imported so squall's checkers can judge them.

pub mod jepsen;

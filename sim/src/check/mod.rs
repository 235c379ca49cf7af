//! Checkers: a history against a model.

pub mod linear;

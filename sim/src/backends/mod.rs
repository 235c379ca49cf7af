//! Systems under test, per protocol: reference backends, mutants and real ones.
pub mod kv;

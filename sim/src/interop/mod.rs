//! Histories in and out: histories recorded by other tools, imported so squall's checkers
//! can judge them ([`jepsen`]), and squall's histories written in other tools' formats
//! ([`edn`], [`porcupine`]) or its own JSON.

pub mod edn;
pub mod jepsen;
pub mod porcupine;

use std::fmt::Display;
use std::path::Path;

use serde::Serialize;
use squall_models::Answer;

use crate::history::History;

/// A format a history can be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Format {
    /// squall's own: the events as they are recorded.
    Json,
    /// Jepsen's history, one map an event ([`edn`]).
    Edn,
    /// porcupine's operations ([`porcupine`]).
    Porcupine,
}

impl Format {
    /// The format a file's name asks for: EDN for `.edn`, else squall's JSON.
    pub fn of(path: &Path) -> Format {
        match path.extension().is_some_and(|e| e == "edn") {
            true => Format::Edn,
            false => Format::Json,
        }
    }

    /// `history` in this format.
    pub fn write<O, R>(self, history: &History<O, R>) -> String
    where
        O: Clone + Display + Serialize,
        R: Clone + Answer + Serialize,
    {
        match self {
            Format::Json => history.to_json(),
            Format::Edn => edn::write(history),
            Format::Porcupine => porcupine::write(history),
        }
    }
}

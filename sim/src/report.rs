//! What a run reports: one line, and on a violation the minimal failing history and the
//! command that replays it.

pub mod html;

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use squall_models::Answer;
use std::fmt::Display;

use crate::check::Verdict;
use crate::history::{Event, History};

/// The result of one run of one seed.
#[derive(Clone, Debug)]
pub struct Run {
    pub seed: u64,
    pub backend: String,
    pub verdict: Outcome,
    /// Operations invoked.
    pub ops: usize,
    /// Hash of the history's text form; empty when the run produced no history.
    pub hash: String,
    /// The full history, as text.
    pub history: String,
    /// How often each `(operation, answer)` was reached ([`crate::protocol::Protocol::answers`]).
    pub answers: BTreeMap<(String, String), u64>,
}

/// A run's verdict as reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A property failed: what, and the minimal failing history as text.
    Violation {
        what: String,
        minimal: String,
    },
    /// The run could not be judged: a backend failed, the checker ran out of budget, or the
    /// run was not deterministic.
    Error(String),
}

impl Run {
    /// Judge a recorded history with `verdict`.
    pub fn judged<O: Display + Clone, R: Display + Answer + Clone>(
        seed: u64,
        backend: &str,
        history: &History<O, R>,
        verdict: Verdict,
    ) -> Run {
        let verdict = match verdict {
            Verdict::Ok => Outcome::Ok,
            Verdict::Unknown(why) => Outcome::Error(format!("checker gave up: {why}")),
            Verdict::Violation(v) => Outcome::Violation {
                minimal: minimal(history, &v.ops),
                what: v.what,
            },
        };
        Run {
            seed,
            backend: backend.to_string(),
            verdict,
            ops: history.operations().len(),
            hash: history.hash(),
            history: history.text(),
            answers: BTreeMap::new(),
        }
    }

    /// A run that produced no history to judge.
    pub fn failed(seed: u64, backend: &str, why: String) -> Run {
        Run {
            seed,
            backend: backend.to_string(),
            verdict: Outcome::Error(why),
            ops: 0,
            hash: String::new(),
            history: String::new(),
            answers: BTreeMap::new(),
        }
    }

    pub fn verdict_name(&self) -> &'static str {
        match self.verdict {
            Outcome::Ok => "ok",
            Outcome::Violation { .. } => "violation",
            Outcome::Error(_) => "error",
        }
    }

    /// The full report: the run line, then for a failure why, the minimal failing history
    /// and the replay command.
    pub fn report(&self, scenario: &Path) -> String {
        if self.verdict == Outcome::Ok {
            return format!("{self}\n");
        }
        format!(
            "{self}\n{}replay: {}\n",
            self.details(),
            self.replay(scenario)
        )
    }

    /// Why the run failed, indented: the violation and the minimal failing history, or the
    /// error. Empty when it held.
    pub fn details(&self) -> String {
        let mut out = String::new();
        match &self.verdict {
            Outcome::Ok => {}
            Outcome::Violation { what, minimal } => {
                let _ = writeln!(out, "  violation: {what}");
                let _ = writeln!(out, "  minimal failing history:");
                for line in minimal.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
            Outcome::Error(why) => {
                let _ = writeln!(out, "  error: {why}");
            }
        }
        out
    }

    /// The one command that replays this run bit-for-bit.
    pub fn replay(&self, scenario: &Path) -> String {
        replay(scenario, &self.backend, self.seed)
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hash = if self.hash.is_empty() {
            "-"
        } else {
            &self.hash
        };
        write!(
            f,
            "seed={} backend={} verdict={} ops={} history={hash}",
            self.seed,
            self.backend,
            self.verdict_name(),
            self.ops
        )
    }
}

/// The command that replays seed `seed` of `scenario` against `backend`.
fn replay(scenario: &Path, backend: &str, seed: u64) -> String {
    format!(
        "squall replay {} --backend {backend} --seed {seed}",
        scenario.display()
    )
}

/// What a sweep found so far, for its closing summary.
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: u64,
    pub violations: u64,
    pub errors: u64,
    /// Every run that did not hold: its scenario, backend, seed and verdict.
    pub failed: Vec<(PathBuf, String, u64, &'static str)>,
}

/// How many failing runs a summary lists; the run lines above list them all.
const LISTED: usize = 20;

impl Tally {
    pub fn add(&mut self, scenario: &Path, run: &Run) {
        match run.verdict {
            Outcome::Ok => self.ok += 1,
            Outcome::Violation { .. } => self.violations += 1,
            Outcome::Error(_) => self.errors += 1,
        }
        if run.verdict != Outcome::Ok {
            self.failed.push((
                scenario.to_path_buf(),
                run.backend.clone(),
                run.seed,
                run.verdict_name(),
            ));
        }
    }

    /// Add `other`'s runs to these.
    pub fn extend(&mut self, other: Tally) {
        self.ok += other.ok;
        self.violations += other.violations;
        self.errors += other.errors;
        self.failed.extend(other.failed);
    }

    pub fn runs(&self) -> u64 {
        self.ok + self.violations + self.errors
    }

    /// The closing lines, each starting with `#`: counts, why the sweep stopped early (if
    /// it did), and the replay command of each failing run.
    pub fn summary(&self, stopped: Option<&str>) -> String {
        let mut out = format!(
            "# summary: {} runs, {} ok, {} violations, {} errors",
            self.runs(),
            self.ok,
            self.violations,
            self.errors
        );
        if let Some(why) = stopped {
            let _ = write!(out, "; {why}");
        }
        out.push('\n');
        for (scenario, backend, seed, verdict) in self.failed.iter().take(LISTED) {
            let _ = writeln!(out, "# {verdict}: {}", replay(scenario, backend, *seed));
        }
        if self.failed.len() > LISTED {
            let _ = writeln!(
                out,
                "# and {} more failing runs",
                self.failed.len() - LISTED
            );
        }
        out
    }
}

/// The events of operations `ids`, with the faults that happened between the first and the
/// last of them, as text.
fn minimal<O: Display, R: Display + Answer>(history: &History<O, R>, ids: &[u64]) -> String {
    let chosen = |e: &Event<O, R>| match e {
        Event::Invoke { id, .. } | Event::Return { id, .. } | Event::Unknown { id, .. } => {
            ids.contains(id)
        }
        Event::Fault { .. } => false,
    };
    let first = history.events.iter().position(chosen);
    let last = history.events.iter().rposition(chosen);
    let (Some(first), Some(last)) = (first, last) else {
        return String::new();
    };
    let mut out = String::new();
    for e in &history.events[first..=last] {
        if chosen(e) || matches!(e, Event::Fault { .. }) {
            let _ = writeln!(out, "{e}");
        }
    }
    out
}

//! The fault schedule: what the world does to the network and the hosts, and when.
//!
//! A scenario's `[[fault]]` entries become a [`Schedule`] of timed [`Fault`]s; the world
//! applies each one as simulated time reaches it, through turmoil's network controls and
//! squall's own disks.

use std::fmt;
use std::time::Duration;

/// One thing the world does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Drop messages between hosts of different groups (from the first group to the second
    /// only, when `oneway`).
    Partition {
        groups: Vec<Vec<String>>,
        oneway: bool,
    },
    /// Undo the partition with the same groups.
    Heal {
        groups: Vec<Vec<String>>,
        oneway: bool,
    },
    /// Stop the host's software; its disk loses unsynced writes.
    Crash { host: String },
    /// Start a crashed host's software again.
    Restart { host: String },
    /// Set the maximum message latency of every link.
    Latency { max: Duration },
    /// Move a host's clock by `by` nanoseconds (negative: back).
    Clock { host: String, by: i128 },
    /// Switch the backends' BUGGIFY fault points on or off.
    Buggify { on: bool },
    /// Set the odds of message faults on squall's transport (all nought: off).
    Messages { odds: Odds },
}

/// The odds that a message sent is lost, sent twice or held back to go after the next one,
/// in millionths, so that faults compare and print exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Odds {
    pub loss: u32,
    pub duplicate: u32,
    pub reorder: u32,
}

impl Odds {
    /// Certainty, in millionths.
    pub const WHOLE: u32 = 1_000_000;

    /// The odds as the fractions a scenario file writes, by name.
    pub fn fractions(&self) -> [(&'static str, f64); 3] {
        let f = |n: u32| f64::from(n) / f64::from(Odds::WHOLE);
        [
            ("loss", f(self.loss)),
            ("duplicate", f(self.duplicate)),
            ("reorder", f(self.reorder)),
        ]
    }
}

/// One `[[fault]]` of a scenario on one host: a fault, and what undoes it and when, if
/// anything does. A shrinker keeps or drops a spec whole, and a spec writes itself back as
/// a `[[fault]]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub at: Duration,
    pub fault: Fault,
    /// The undoing fault (a heal, a restart, the old latency) and how long after `at`.
    pub undo: Option<(Duration, Fault)>,
}

impl Spec {
    /// The schedule of `specs`, in the order they were written.
    pub fn schedule(specs: &[Spec]) -> Schedule {
        let mut out = Schedule::default();
        for s in specs {
            out.push(s.at, s.fault.clone());
            if let Some((after, undo)) = &s.undo {
                out.push(s.at + *after, undo.clone());
            }
        }
        out
    }

    /// The `[[fault]]` table that reads back as this spec.
    pub fn to_toml(&self) -> toml::Table {
        let d = |d: &Duration| toml::Value::from(humantime::format_duration(*d).to_string());
        let mut t = toml::Table::new();
        t.insert("at".into(), d(&self.at));
        // Undoing faults are written as the `*_after` of the fault they undo.
        let undo_key = match &self.fault {
            Fault::Partition { groups, oneway } => {
                t.insert(
                    "partition".into(),
                    toml::Value::try_from(groups).expect("strings"),
                );
                if *oneway {
                    t.insert("oneway".into(), true.into());
                }
                "heal_after"
            }
            Fault::Crash { host } => {
                t.insert("crash".into(), host.as_str().into());
                "restart_after"
            }
            Fault::Latency { max } => {
                t.insert("latency".into(), d(max));
                "restore_after"
            }
            Fault::Clock { host, by } => {
                t.insert("clock".into(), host.as_str().into());
                let sign = if *by < 0 { "-" } else { "+" };
                let by = Duration::from_nanos(by.unsigned_abs() as u64);
                let jump = format!("{sign}{}", humantime::format_duration(by));
                t.insert("jump".into(), jump.into());
                "restore_after"
            }
            Fault::Buggify { on } => {
                t.insert("buggify".into(), (*on).into());
                "restore_after"
            }
            Fault::Messages { odds } => {
                let fractions = odds.fractions().into_iter();
                let table = fractions.map(|(k, v)| (k.to_string(), toml::Value::from(v)));
                t.insert("messages".into(), toml::Value::Table(table.collect()));
                "restore_after"
            }
            Fault::Heal { .. } | Fault::Restart { .. } => {
                unreachable!("a spec starts with the fault, not its undoing")
            }
        };
        if let Some((after, _)) = &self.undo {
            t.insert(undo_key.into(), d(after));
        }
        t
    }
}

/// Faults in the order they happen; faults at the same instant keep the order they were
/// written in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule(Vec<(Duration, Fault)>);

impl Schedule {
    pub fn push(&mut self, at: Duration, fault: Fault) {
        let i = self.0.partition_point(|(t, _)| *t <= at);
        self.0.insert(i, (at, fault));
    }

    pub fn iter(&self) -> impl Iterator<Item = &(Duration, Fault)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Fault {
    /// Every (from, to) host pair the fault cuts or heals, in a stable order.
    pub fn links(groups: &[Vec<String>], oneway: bool) -> Vec<(&str, &str)> {
        let mut links = Vec::new();
        for (i, a) in groups.iter().enumerate() {
            for b in &groups[i + 1..] {
                for x in a {
                    for y in b {
                        links.push((x.as_str(), y.as_str()));
                    }
                }
            }
            if oneway {
                break;
            }
        }
        links
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups = |g: &[Vec<String>], sep: &str| {
            g.iter()
                .map(|g| format!("[{}]", g.join(" ")))
                .collect::<Vec<_>>()
                .join(sep)
        };
        match self {
            Fault::Partition { groups: g, oneway } => write!(
                f,
                "partition {}",
                groups(g, if *oneway { " -/-> " } else { " | " })
            ),
            Fault::Heal { groups: g, oneway } => write!(
                f,
                "heal {}",
                groups(g, if *oneway { " --> " } else { " | " })
            ),
            Fault::Crash { host } => write!(f, "crash {host}"),
            Fault::Restart { host } => write!(f, "restart {host}"),
            Fault::Latency { max } => write!(f, "latency max {}", humantime::format_duration(*max)),
            Fault::Buggify { on } => write!(f, "buggify {}", if *on { "on" } else { "off" }),
            Fault::Messages { odds } if *odds == Odds::default() => write!(f, "messages off"),
            Fault::Messages { odds } => {
                // Millionths over ten thousand: a percentage that prints as written.
                let pc = |n: u32| f64::from(n) / 10_000.0;
                write!(
                    f,
                    "messages loss {}% duplicate {}% reorder {}%",
                    pc(odds.loss),
                    pc(odds.duplicate),
                    pc(odds.reorder)
                )
            }
            Fault::Clock { host, by } => {
                let sign = if *by < 0 { "-" } else { "+" };
                let by = Duration::from_nanos(by.unsigned_abs() as u64);
                write!(
                    f,
                    "clock {host} jumps {sign}{}",
                    humantime::format_duration(by)
                )
            }
        }
    }
}

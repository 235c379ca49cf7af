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

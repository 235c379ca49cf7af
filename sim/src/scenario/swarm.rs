//! Swarm testing: each seed draws its own test. With `swarm = true` a scenario's seed draws
//! the topology (servers and clients between `[topology] min_*` and the counts given), which
//! fault kinds of `swarm_faults` are on (each a coin toss, as TigerBeetle's swarm options
//! and Groce et al.'s swarm testing do: a run with no crashes hammers partitions harder),
//! and each kind's faults: when, where, how long, how hard. The draw is a pure function of
//! the seed ([`crate::time::stream`] `swarm`), is written at the head of the history, and
//! becomes an ordinary scenario: its `[[fault]]` specs and topology, which `squall shrink`
//! writes out.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

use crate::faults::{Fault, Odds, Spec};
use crate::scenario::{ages_well, client_names, server_names, Scenario};
use crate::time::stream;

/// The fault kinds a swarm may switch on.
pub const KINDS: &[&str] = &[
    "partition",
    "crash",
    "latency",
    "clock",
    "buggify",
    "messages",
];

/// The most faults of one kind a seed draws.
const MOST: usize = 16;

/// A scenario's swarm settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Swarm {
    /// The fewest servers and clients a draw gives; the most are `[topology]`'s.
    pub min_servers: usize,
    pub min_clients: usize,
    /// The fault kinds a seed may switch on, from [`KINDS`].
    pub kinds: Vec<String>,
}

/// Seed `seed`'s draw of `scenario`: the scenario it runs, with no swarm left in it and its
/// draw described in `drawn`.
pub fn draw(scenario: &Scenario, swarm: &Swarm, seed: u64) -> Scenario {
    let mut rng = stream(seed, "swarm");
    let servers = rng.random_range(swarm.min_servers..=scenario.servers);
    let clients = rng.random_range(swarm.min_clients..=scenario.clients);
    let on: Vec<&str> = (swarm.kinds.iter())
        .filter(|_| rng.random_bool(0.5))
        .map(String::as_str)
        .collect();
    let mut draw = Draw {
        rng,
        servers: server_names(servers),
        clients: client_names(clients),
        duration: scenario.duration,
        timeout: scenario.timeout,
        latency: scenario.latency.1,
    };
    let specs: Vec<Spec> = on.iter().flat_map(|kind| draw.faults(kind)).collect();
    let mut drawn = Scenario {
        servers,
        clients,
        swarm: None,
        ..scenario.with_specs(specs)
    };
    let mut line = format!(
        "swarm: servers={servers} clients={clients} faults={}",
        if on.is_empty() {
            "none".to_string()
        } else {
            on.join(",")
        }
    );
    // A bucket that ages writes out: a coin toss, since a seed that draws it runs only the
    // operations the checks judge knowing that (blind writes and watches).
    if scenario.bucket.max_age.is_some() {
        if draw.rng.random_bool(0.5) {
            drawn.workload.mix.retain(|op, _| ages_well(op));
            line.push_str(" max_age=on");
        } else {
            drawn.bucket.max_age = None;
        }
    }
    drawn.drawn = Some(line);
    drawn
}

struct Draw {
    rng: ChaCha8Rng,
    servers: Vec<String>,
    clients: Vec<String>,
    duration: Duration,
    timeout: Duration,
    latency: Duration,
}

impl Draw {
    fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        // Whole milliseconds, so that a written scenario reads them back exactly.
        let ms = self
            .rng
            .random_range(lo.as_millis()..=hi.max(lo).as_millis());
        Duration::from_millis(ms as u64)
    }

    fn server(&mut self) -> String {
        self.servers[self.rng.random_range(0..self.servers.len())].clone()
    }

    /// Faults of `kind` one after another (never two of a kind at once, so a heal or
    /// restart undoes only its own), at a rate drawn for the kind: the pause between two is
    /// drawn below a mean gap that is itself drawn, from 50 ms (a storm) to an eighth of the
    /// duration; at most [`MOST`]. All are undone by three quarters of the duration (what runs at the end, a
    /// finale, sees a healed world). BUGGIFY is on from the start.
    fn faults(&mut self, kind: &str) -> Vec<Spec> {
        if kind == "buggify" {
            return vec![Spec {
                at: Duration::ZERO,
                fault: Fault::Buggify { on: true },
                undo: None,
            }];
        }
        let end = self.duration * 3 / 4;
        let gap = self.between(Duration::from_millis(50), self.duration / 8);
        let mut at = self.between(Duration::ZERO, gap);
        let mut out = Vec::new();
        while out.len() < MOST {
            let spec = self.fault(kind, at);
            let until = at + spec.undo.as_ref().map_or(Duration::ZERO, |(d, _)| *d);
            if until > end {
                break;
            }
            out.push(spec);
            at = until + self.between(Duration::from_millis(10), gap * 2);
        }
        out
    }

    fn fault(&mut self, kind: &str, at: Duration) -> Spec {
        let short = Duration::from_millis(100);
        let long = (self.duration / 8).max(short);
        match kind {
            "partition" => {
                let lonely = self.server();
                let rest: Vec<String> = (self.servers.iter().chain(&self.clients))
                    .filter(|h| **h != lonely)
                    .cloned()
                    .collect();
                let groups = vec![vec![lonely], rest];
                let oneway = self.rng.random_bool(0.25);
                Spec {
                    at,
                    fault: Fault::Partition {
                        groups: groups.clone(),
                        oneway,
                    },
                    undo: Some((self.between(short, long), Fault::Heal { groups, oneway })),
                }
            }
            "crash" => {
                let host = self.server();
                let restart = Fault::Restart { host: host.clone() };
                Spec {
                    at,
                    fault: Fault::Crash { host },
                    undo: Some((self.between(short, short * 5), restart)),
                }
            }
            "latency" => Spec {
                at,
                fault: Fault::Latency {
                    max: self.between(self.timeout / 4, self.timeout * 2),
                },
                undo: Some((
                    self.between(short, long),
                    Fault::Latency { max: self.latency },
                )),
            },
            "clock" => {
                let by = self.between(Duration::from_millis(50), Duration::from_secs(2));
                let sign = if self.rng.random_bool(0.5) { 1 } else { -1 };
                Spec {
                    at,
                    fault: Fault::Clock {
                        host: self.server(),
                        by: sign * by.as_nanos() as i128,
                    },
                    undo: None,
                }
            }
            "messages" => {
                // Each between 1% and 10%: enough to strike every exchange of a run, not
                // so much that nothing gets through.
                let mut odd = || self.rng.random_range(Odds::WHOLE / 100..=Odds::WHOLE / 10);
                let odds = Odds {
                    loss: odd(),
                    duplicate: odd(),
                    reorder: odd(),
                };
                let off = Fault::Messages {
                    odds: Odds::default(),
                };
                Spec {
                    at,
                    fault: Fault::Messages { odds },
                    undo: Some((self.between(short, long), off)),
                }
            }
            other => unreachable!("scenario validation admits no swarm fault kind {other:?}"),
        }
    }
}

//! Faults decided call by call, by dice the run's seed loads: BUGGIFY points and the fate
//! of each message.
//!
//! BUGGIFY, as FoundationDB has it: fault points in a backend's own code. A backend asks
//! [`crate::world::Node::buggify`] at a point where something rare but legal could happen
//! (a reply held back, a connection dropped) and does it when told. Points fire only while
//! a `buggify` fault has switched them on; then each named point is live for the whole
//! run or not at all (a coin toss per seed and name), and a live point fires on one call in
//! ten.
//!
//! Message faults strike squall's own transport ([`crate::world::frame`]): while a
//! `messages` fault is on, each frame sent is lost, sent twice, held back to go after the
//! next frame on its connection, or sent as it is, at the fault's odds. The same draw gives
//! each frame its latency above the scenario's minimum, which turmoil would otherwise draw
//! from the one stream every message of the run shares.
//!
//! Every draw comes from the run's seed, so a run stays a function of it; outside a
//! simulation (live mode) nothing fires and every message goes as it is.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::faults::Odds;
use crate::time::stream;

thread_local! {
    /// The simulation running on this thread (one a thread, as sweeps run them).
    static RUN: RefCell<Option<Run>> = const { RefCell::new(None) };
}

struct Run {
    seed: u64,
    buggify: bool,
    /// Whether each point asked so far is live this run.
    live: BTreeMap<String, bool>,
    fires: ChaCha8Rng,
    messages: Odds,
    /// How far above the minimum a frame's latency may go (nought: no draw).
    latency: Duration,
}

/// A run's dice; put away when dropped.
pub(crate) struct Dice;

impl Dice {
    pub(crate) fn start(seed: u64) -> Dice {
        RUN.set(Some(Run {
            seed,
            buggify: false,
            live: BTreeMap::new(),
            fires: stream(seed, "buggify"),
            messages: Odds::default(),
            latency: Duration::ZERO,
        }));
        Dice
    }

    /// Switch the BUGGIFY points on or off.
    pub(crate) fn buggify(&self, on: bool) {
        RUN.with_borrow_mut(|run| run.as_mut().map(|r| r.buggify = on));
    }

    /// Set the odds of message faults (all nought: off).
    pub(crate) fn messages(&self, odds: Odds) {
        RUN.with_borrow_mut(|run| run.as_mut().map(|r| r.messages = odds));
    }

    /// Set how far above the minimum a frame's latency may go.
    pub(crate) fn latency(&self, range: Duration) {
        RUN.with_borrow_mut(|run| run.as_mut().map(|r| r.latency = range));
    }
}

impl Drop for Dice {
    fn drop(&mut self) {
        RUN.set(None);
    }
}

/// Whether fault point `name` fires now.
pub(crate) fn fires(name: &str) -> bool {
    RUN.with_borrow_mut(|run| {
        let Some(run) = run.as_mut().filter(|r| r.buggify) else {
            return false;
        };
        let seed = run.seed;
        let live = *(run.live.entry(name.to_string()))
            .or_insert_with(|| stream(seed, &format!("buggify/{name}")).random_bool(0.5));
        live && run.fires.random_bool(0.1)
    })
}

/// What becomes of a message sent now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Sent,
    Lost,
    Twice,
    /// Held back, to go after the next message on its connection.
    Held,
}

/// What becomes of a message sent now over `link`, and how long it waits before it goes.
///
/// Both are drawn from the seed, the link, the simulated time and the message's place among
/// those its connection sent at that time (`nth`), not from one stream all messages share:
/// a shrinker that cuts some operations keeps the time of those it keeps, and so their
/// messages' fates and latencies. Nothing is drawn while message faults and latency are
/// both off.
pub fn fate(link: &str, nth: u32) -> (Fate, Duration) {
    RUN.with_borrow_mut(|run| {
        let Some(run) = run
            .as_mut()
            .filter(|r| r.messages != Odds::default() || !r.latency.is_zero())
        else {
            return (Fate::Sent, Duration::ZERO);
        };
        let mut h = blake3::Hasher::new();
        h.update(&run.seed.to_le_bytes());
        let now = turmoil::sim_elapsed().unwrap_or_default().as_nanos() as u64;
        h.update(&now.to_le_bytes());
        h.update(&nth.to_le_bytes());
        h.update(link.as_bytes());
        let die = h.finalize();
        let die = |i: usize| u64::from_le_bytes(die.as_bytes()[i..i + 8].try_into().expect("8"));
        let roll = (die(0) % u64::from(Odds::WHOLE)) as u32;
        let Odds {
            loss,
            duplicate,
            reorder,
        } = run.messages;
        let fate = if roll < loss {
            Fate::Lost
        } else if roll < loss + duplicate {
            Fate::Twice
        } else if roll < loss + duplicate + reorder {
            Fate::Held
        } else {
            Fate::Sent
        };
        (fate, delay(run.latency, die(8)))
    })
}

/// A latency within `range`, from a die: exponential with mean a fifth of the range, cut
/// at its end, in whole milliseconds, as turmoil draws its own.
fn delay(range: Duration, die: u64) -> Duration {
    let range = range.as_millis() as u64;
    let uniform = (die >> 11) as f64 / (1u64 << 53) as f64;
    let times = -(1.0 - uniform).ln() / 5.0;
    Duration::from_millis(((range as f64 * times) as u64).min(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fates(seed: u64, odds: Odds, n: usize) -> Vec<Fate> {
        let dice = Dice::start(seed);
        dice.messages(odds);
        (0..n as u32).map(|i| fate("a->b", i).0).collect()
    }

    #[test]
    fn fates_follow_the_odds_and_the_seed() {
        let odds = Odds {
            loss: 100_000,
            duplicate: 200_000,
            reorder: 300_000,
        };
        let drawn = fates(7, odds, 10_000);
        assert_eq!(drawn, fates(7, odds, 10_000), "a function of the seed");
        assert_ne!(drawn, fates(8, odds, 10_000));
        let count = |f: Fate| drawn.iter().filter(|&&d| d == f).count();
        // Within a few standard deviations of 1000, 2000, 3000 and 4000.
        for (f, expect) in [
            (Fate::Lost, 1000),
            (Fate::Twice, 2000),
            (Fate::Held, 3000),
            (Fate::Sent, 4000),
        ] {
            assert!(count(f).abs_diff(expect) < 200, "{f:?}: {}", count(f));
        }
    }

    #[test]
    fn off_or_outside_a_run_every_message_is_sent() {
        assert!(fates(1, Odds::default(), 100)
            .iter()
            .all(|&f| f == Fate::Sent));
        assert_eq!(
            fate("a->b", 0),
            (Fate::Sent, Duration::ZERO),
            "no run on this thread"
        );
    }

    /// When each of client `a`'s twenty frames reaches the server, in a simulation where
    /// turmoil draws latency over a range of `theirs` and the transport over `ours`; with
    /// `noise`, client `b` sends twenty frames of its own meanwhile.
    fn arrivals(theirs: Duration, ours: Duration, noise: bool) -> Vec<(u32, Duration)> {
        use crate::world::frame::Conn;
        use crate::world::PORT;
        use std::cell::RefCell;
        use std::rc::Rc;

        let dice = Dice::start(9);
        dice.latency(ours);
        let mut sim = turmoil::Builder::new()
            .rng_seed(9)
            .tick_duration(Duration::from_millis(1))
            .min_message_latency(Duration::from_millis(1))
            .max_message_latency(Duration::from_millis(1) + theirs)
            .build();
        let got = Rc::new(RefCell::new(Vec::new()));
        let seen = got.clone();
        sim.host("server", move || {
            let seen = seen.clone();
            async move {
                let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
                loop {
                    let mut conn = Conn::<u32>::new(listener.accept().await?.0);
                    let seen = seen.clone();
                    tokio::task::spawn_local(async move {
                        while let Some(n) = conn.recv().await {
                            let at = turmoil::sim_elapsed().unwrap_or_default();
                            seen.borrow_mut().push((n, at));
                        }
                    });
                }
            }
        });
        let send = |first: u32, gap: u64| async move {
            let mut conn = Conn::<u32>::connect("server").await?;
            for n in first..first + 20 {
                conn.send(&n).await?;
                tokio::time::sleep(Duration::from_millis(gap)).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(())
        };
        sim.client("a", send(0, 3));
        if noise {
            sim.client("b", send(1000, 2));
        }
        sim.run().expect("the simulation runs");
        let mut got = got.take();
        got.retain(|&(n, _)| n < 1000);
        got
    }

    #[test]
    fn a_frame_keeps_its_latency_whatever_else_is_sent() {
        let ms = Duration::from_millis;
        let quiet = arrivals(ms(0), ms(30), false);
        assert_eq!(quiet.len(), 20);
        assert!(quiet.windows(2).all(|w| w[0] < w[1]), "in order: {quiet:?}");
        // Sent every 3 ms: the time each took varies.
        let took: BTreeMap<_, _> = quiet.iter().map(|&(n, at)| (at - ms(3) * n, n)).collect();
        assert!(took.len() > 5, "{quiet:?}");
        assert_eq!(quiet, arrivals(ms(0), ms(30), true));
        // What the transport's draws are for: turmoil's own, from one stream for every
        // message, move when other messages are sent.
        assert_ne!(
            arrivals(ms(30), ms(0), false),
            arrivals(ms(30), ms(0), true)
        );
    }

    #[test]
    fn latencies_stay_in_range_and_lean_low() {
        let dice = Dice::start(3);
        dice.latency(Duration::from_millis(100));
        let drawn: Vec<u128> = (0..10_000u32)
            .map(|i| fate("a->b", i).1.as_millis())
            .collect();
        assert!(drawn.iter().all(|&d| d <= 100));
        // Exponential with mean 20 ms: about 63% below the mean, about 0.7% cut at 100 ms.
        let below = drawn.iter().filter(|&&d| d < 20).count();
        assert!(below.abs_diff(6321) < 300, "{below} below the mean");
        let cut = drawn.iter().filter(|&&d| d == 100).count();
        assert!(cut < 150, "{cut} at the end of the range");
    }
}

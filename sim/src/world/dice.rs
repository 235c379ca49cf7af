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
//! Message faults strike squall's own transport ([`crate::backends::frame`]): while a
//! `messages` fault is on, each frame sent is lost, sent twice, held back to go after the
//! next frame on its connection, or sent as it is, at the fault's odds.
//!
//! Every draw comes from the run's seed, so a run stays a function of it; outside a
//! simulation (live mode) nothing fires and every message goes as it is.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::collections::BTreeMap;

use super::stream;
use crate::faults::Odds;

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
    /// How often each message (by link and content) has been sent while faults were on.
    sent: BTreeMap<[u8; 32], u32>,
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
            sent: BTreeMap::new(),
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

/// The fate of `message` sent now over `link`. It is drawn from the seed, the link, the
/// message and how often it was sent before, not from one stream all messages share: so
/// a shrinker that cuts other operations leaves this message's fate as it was. Nothing is
/// drawn while message faults are off.
pub fn fate(link: &str, message: &[u8]) -> Fate {
    RUN.with_borrow_mut(|run| {
        let Some(run) = run.as_mut().filter(|r| r.messages != Odds::default()) else {
            return Fate::Sent;
        };
        let mut h = blake3::Hasher::new();
        h.update(&run.seed.to_le_bytes());
        h.update(link.as_bytes());
        h.update(&(message.len() as u64).to_le_bytes());
        h.update(message);
        let again = run.sent.entry(*h.finalize().as_bytes()).or_default();
        h.update(&again.to_le_bytes());
        *again += 1;
        let die = u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"));
        let roll = (die % u64::from(Odds::WHOLE)) as u32;
        let Odds {
            loss,
            duplicate,
            reorder,
        } = run.messages;
        if roll < loss {
            Fate::Lost
        } else if roll < loss + duplicate {
            Fate::Twice
        } else if roll < loss + duplicate + reorder {
            Fate::Held
        } else {
            Fate::Sent
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fates(seed: u64, odds: Odds, n: usize) -> Vec<Fate> {
        let dice = Dice::start(seed);
        dice.messages(odds);
        (0..n)
            .map(|i| fate("a->b", &(i % 7).to_le_bytes()))
            .collect()
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
        assert_eq!(fate("a->b", b"m"), Fate::Sent, "no run on this thread");
    }
}

//! kv-leader held to squall's shipped `kv` and `watch` scenarios, as a team would hold its
//! own backend: a few lines per test, squall's scenarios embedded in squall.

use std::process::Command;
use std::rc::Rc;

use kv_leader::{Bug, Leader};
use squall::backend::{Backend, Kind};
use squall::protocols::{kv::Kv, watch::Watches};
use squall::suite::{self, Suite};

/// The leader as squall runs it: a backend serving `kv` and `watch`, its bucket keeping
/// what each scenario's `[bucket]` says.
fn leader(bug: Option<Bug>) -> Backend {
    let (name, about) = match bug {
        None => ("kv/leader", "a single in-memory leader speaking JSON lines"),
        Some(Bug::ListsTombstones) => (
            "kv/leader-lists-tombstones",
            "keys and scan list tombstones",
        ),
    };
    let make = move |bucket| {
        let leader = Leader::new(bucket);
        bug.map_or(leader, |bug| leader.with_bug(bug))
    };
    Backend::new(name, Kind::RealSim, about)
        .serves::<Kv>(move |s| Rc::new(make(s.bucket)))
        .serves::<Watches>(move |s| Rc::new(make(s.bucket)))
}

#[test]
fn kv_scenarios_hold() {
    Suite::new(leader(None)).shipped("kv").seeds(0..8).run();
}

#[test]
fn watch_scenarios_hold() {
    Suite::new(leader(None)).shipped("watch").seeds(0..8).run();
}

/// squall catches the planted bug, and the replay instruction it prints runs the same
/// history again: this test, in a process of its own, with the seed in the environment.
#[test]
fn the_planted_bug_is_caught_and_replays() {
    let suite = Suite::new(leader(Some(Bug::ListsTombstones)))
        .shipped("kv/no-faults.toml")
        .seeds(0..8)
        .snapshots(None);
    let outcomes = suite.check();
    if std::env::var(suite::SEED).is_ok() {
        // This is the replay: it has printed the run.
        return;
    }
    let failure = outcomes
        .failures
        .first()
        .expect("squall catches the planted bug");
    println!(
        "{}\n{}replay: {}",
        failure.run,
        failure.run.details(),
        failure.replay
    );

    // `SQUALL_SCENARIO=... SQUALL_SEED=N cargo test -p kv-leader -- NAME --exact`, run as
    // cargo would run it: this test binary, that environment, those arguments.
    let (env, rest) = failure.replay.split_once(" cargo test").unwrap();
    let args = rest
        .split_once(" -- ")
        .expect("the replay names the test")
        .1;
    let mut replay = Command::new(std::env::current_exe().unwrap());
    for pair in env.split(' ') {
        let (key, value) = pair.split_once('=').unwrap();
        replay.env(key, value);
    }
    let out = replay
        .args(args.split(' '))
        .arg("--nocapture")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = format!("seed={} ", failure.run.seed);
    let hash = format!("history={}", failure.run.hash);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&line) && l.contains(&hash)),
        "the replay did not print {hash}:\n{stdout}"
    );
}

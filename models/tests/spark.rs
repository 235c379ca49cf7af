//! The spark model's invariants, as properties over random times, windows and parameters:
//! it accepts what a host running at some instant of each window answers, and rejects
//! entries read after their deadline, TTLs that cannot remain, invalid keys and oversize
//! values stored, a second pull, a write past the limit, and one node's keys on another.

use proptest::prelude::*;
use squall_models::spark::{
    Call, CallRet, Entry, Expiry, Instant, Invocation, Params, Rounding, SparkError, SparkModel,
    SparkRet, Value, Window, SECOND,
};
use squall_models::Model;
use std::collections::BTreeMap;

type State = BTreeMap<String, squall_models::spark::Store>;

fn model(params: Params) -> SparkModel {
    let nodes = ["a", "b"].map(String::from).into_iter().collect();
    SparkModel {
        params,
        nodes,
        written: None,
    }
}

fn value(text: &str) -> Value {
    Value {
        text: text.into(),
        pad: 0,
    }
}

/// An invocation on `node` with `WritesSparkKV`, running within `[from, to]`.
fn inv(node: &str, from: Instant, to: Instant, calls: Vec<Call>) -> Invocation {
    let window = Window { from, to, peak: to };
    Invocation {
        node: node.into(),
        writes: true,
        calls,
        window: Some(window),
    }
}

fn set(key: &str, text: &str, ttl: i32) -> Call {
    Call::Set {
        key: key.into(),
        value: value(text),
        ttl,
    }
}

fn get(key: &str) -> Call {
    Call::Get { key: key.into() }
}

fn done(rets: Vec<CallRet>) -> SparkRet {
    SparkRet::Done(rets)
}

fn got(text: &str, ttl: u32) -> CallRet {
    CallRet::Got(Some(Entry {
        value: value(text),
        ttl,
    }))
}

fn step(m: &SparkModel, s: &State, op: &Invocation, ret: SparkRet) -> Option<State> {
    m.step(s, op, Some(&ret))
}

fn params() -> impl Strategy<Value = Params> {
    let rounding = prop_oneof![
        Just(Rounding::Ceil),
        Just(Rounding::Floor),
        Just(Rounding::Nearest)
    ];
    let expiry = prop_oneof![Just(Expiry::AtDeadline), Just(Expiry::AfterDeadline)];
    (rounding, expiry).prop_map(|(rounding, expiry)| Params {
        rounding,
        expiry,
        ..Params::default()
    })
}

/// A host's answer to `get` at instant `now` of an entry set at `at` with `ttl`.
fn host_get(p: &Params, at: Instant, ttl: i32, now: Instant) -> CallRet {
    if ttl == 0 {
        return got("v", 0);
    }
    let left = at + ttl as Instant * SECOND - now;
    let live = match p.expiry {
        Expiry::AtDeadline => left > 0,
        Expiry::AfterDeadline => left >= 0,
    };
    if live {
        got("v", p.round(left))
    } else {
        CallRet::Got(None)
    }
}

proptest! {
    // Fixed seeds: the same cases every run.
    #![proptest_config(ProptestConfig {
        rng_seed: proptest::test_runner::RngSeed::Fixed(0),
        ..ProptestConfig::default()
    })]
    /// Reads at any instants after a set, each judged with a window around its instant,
    /// are accepted as a host answers them, whatever the rounding and boundary; the host's
    /// clock may go back between reads.
    #[test]
    fn accepts_what_a_host_answers(
        p in params(),
        at in 0..10 * SECOND,
        ttl in 0..4i32,
        slack in (0..SECOND / 2, 0..SECOND / 2),
        reads in prop::collection::vec(0..6 * SECOND, 1..8),
    ) {
        let m = model(p.clone());
        let w = |now: Instant| (now - slack.0, now + slack.1);
        let (from, to) = w(at);
        let mut s = step(&m, &m.init(), &inv("a", from, to, vec![set("k", "v", ttl)]),
            done(vec![CallRet::Set(Ok(()))])).unwrap();
        for d in reads {
            let now = at + d - SECOND;
            let (from, to) = w(now);
            let answer = host_get(&p, at, ttl, now);
            let op = inv("a", from, to, vec![get("k")]);
            s = step(&m, &s, &op, done(vec![answer.clone()]))
                .unwrap_or_else(|| panic!("rejected {answer} at {now} in {s:?}"));
        }
    }

    /// Once every instant of a window is past the deadline, the entry cannot be read;
    /// a TTL of 0 is never past it.
    #[test]
    fn nothing_is_read_after_its_deadline(ttl in 0..5i32, late in 0..10 * SECOND, d in 0..SECOND) {
        let m = model(Params::default());
        let s = step(&m, &m.init(), &inv("a", 0, d, vec![set("k", "v", ttl)]),
            done(vec![CallRet::Set(Ok(()))])).unwrap();
        let from = d + ttl as Instant * SECOND + late;
        let read = inv("a", from, from + d, vec![get("k")]);
        let seen = step(&m, &s, &read, done(vec![got("v", 0)]));
        let absent = step(&m, &s, &read, done(vec![CallRet::Got(None)]));
        prop_assert_eq!(seen.is_some(), ttl == 0);
        prop_assert_eq!(absent.is_some(), ttl != 0);
    }

    /// A remaining TTL must be one some instant of the window gives: reporting the TTL the
    /// entry was set with is wrong once a second has surely passed.
    #[test]
    fn the_original_ttl_is_not_the_remaining_one(ttl in 2..10i32, d in 0..SECOND / 4) {
        let m = model(Params::default());
        let s = step(&m, &m.init(), &inv("a", 0, d, vec![set("k", "v", ttl)]),
            done(vec![CallRet::Set(Ok(()))])).unwrap();
        let read = inv("a", d + SECOND, 2 * d + SECOND, vec![get("k")]);
        prop_assert!(step(&m, &s, &read, done(vec![got("v", ttl as u32)])).is_none());
        prop_assert!(step(&m, &s, &read, done(vec![got("v", ttl as u32 - 1)])).is_some());
    }

    /// Invalid or reserved keys and values over the cap are never stored.
    #[test]
    fn bad_keys_and_oversize_values_are_refused(
        key in prop_oneof![Just(String::new()), "[a-z ]{1,8}", "__(flaron|sys):[a-z]{1,4}",
            "[a-z]{257,260}", "[a-zA-Z0-9:._-]{1,16}"],
        len in 65_530usize..65_540,
        inclusive: bool,
    ) {
        let p = Params { cap_inclusive: inclusive, ..Params::default() };
        let m = model(p.clone());
        let op = inv("a", 0, 0, vec![Call::Set { key: key.clone(), value: Value { text: "v".into(), pad: len - 1 }, ttl: 0 }]);
        let ok = step(&m, &m.init(), &op, done(vec![CallRet::Set(Ok(()))]));
        let valid = squall_models::spark::valid_key(&key);
        prop_assert_eq!(ok.is_some(), valid && !p.too_large(len));
        let code = if !valid { SparkError::BadKey } else { SparkError::TooLarge };
        let refused = step(&m, &m.init(), &op, done(vec![CallRet::Set(Err(code))]));
        prop_assert_eq!(refused.is_some(), !valid || p.too_large(len));
    }

    /// Stores are per node: what one node stores, another does not read.
    #[test]
    fn nodes_do_not_share_keys(ttl in 0..5i32) {
        let m = model(Params::default());
        let s = step(&m, &m.init(), &inv("a", 0, 0, vec![set("k", "v", ttl)]),
            done(vec![CallRet::Set(Ok(()))])).unwrap();
        let read = inv("b", 0, 0, vec![get("k"), Call::List]);
        prop_assert!(step(&m, &s, &read, done(vec![got("v", ttl as u32), CallRet::Listed(vec![])])).is_none());
        prop_assert!(step(&m, &s, &read, done(vec![CallRet::Got(None), CallRet::Listed(vec![])])).is_some());
    }

    /// At most `pulls` pulls run per invocation; the next answers WriteLimit (-3).
    #[test]
    fn one_pull_per_invocation(first in 0..2u32, second in 0..2u32) {
        let m = model(Params::default());
        let pull = Call::Pull { origin: "b".into(), keys: vec!["k".into()] };
        let op = inv("a", 0, 0, vec![pull.clone(), pull]);
        let twice = done(vec![CallRet::Pulled(Ok(first)), CallRet::Pulled(Ok(second))]);
        let limited = done(vec![CallRet::Pulled(Ok(first)), CallRet::Pulled(Err(SparkError::WriteLimit))]);
        prop_assert!(step(&m, &m.init(), &op, twice).is_none());
        prop_assert!(step(&m, &m.init(), &op, limited).is_some());
    }

    /// Writes past the per-invocation limit fail, and a fresh invocation starts again.
    #[test]
    fn writes_past_the_limit_fail(writes in 1..5u32) {
        let m = model(Params { writes, ..Params::default() });
        let calls: Vec<Call> = (0..=writes).map(|i| set("k", &format!("v{i}"), 0)).collect();
        let op = inv("a", 0, 0, calls);
        let mut rets = vec![CallRet::Set(Ok(())); writes as usize + 1];
        prop_assert!(step(&m, &m.init(), &op, done(rets.clone())).is_none());
        rets[writes as usize] = CallRet::Set(Err(SparkError::WriteLimit));
        let s = step(&m, &m.init(), &op, done(rets)).unwrap();
        let again = inv("a", 0, 0, vec![set("k", "w", 0)]);
        prop_assert!(step(&m, &s, &again, done(vec![CallRet::Set(Ok(()))])).is_some());
    }
}

/// A clock set back shows a lazily expired entry again, and that is accepted; a purge
/// once the clock may have passed the deadline is accepted too.
#[test]
fn a_clock_set_back_may_show_an_entry_again_or_not() {
    let m = model(Params::default());
    let s = step(
        &m,
        &m.init(),
        &inv("a", 0, 0, vec![set("k", "v", 2)]),
        done(vec![CallRet::Set(Ok(()))]),
    )
    .unwrap();
    let late = inv("a", 3 * SECOND, 3 * SECOND, vec![get("k")]);
    let s = step(&m, &s, &late, done(vec![CallRet::Got(None)])).unwrap();
    // Set back to 1s: 1s left, or purged.
    let mut back = inv("a", SECOND, SECOND, vec![get("k")]);
    back.window.as_mut().unwrap().peak = 3 * SECOND;
    assert!(step(&m, &s, &back, done(vec![got("v", 1)])).is_some());
    assert!(step(&m, &s, &back, done(vec![CallRet::Got(None)])).is_some());
    assert!(step(&m, &s, &back, done(vec![got("v", 2)])).is_none());
}

/// An invocation that never reached its node changes nothing.
#[test]
fn not_connected_is_no_effect() {
    let m = model(Params::default());
    let op = inv("a", 0, 0, vec![set("k", "v", 0)]);
    assert_eq!(
        m.step(&m.init(), &op, Some(&SparkRet::NotConnected)),
        Some(m.init())
    );
}

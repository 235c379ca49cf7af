//! The real `durable-streams-server` 0.2.0 on every stream scenario. Where it lacks a
//! capability the scenario needs, it is not applicable, for the reason stated; elsewhere its
//! histories are deterministic and snapshot-checked at seed 0, and every deviation from the
//! model that squall finds in it is asserted here as what it is (README, "Durable Streams").

mod common;

use common::backend;
use libtest_mimic::{Arguments, Failed, Trial};
use squall::report::Outcome;
use squall::sweep;

const REAL: &str = "stream/durable-streams-server";

/// A PUT without Stream-Closed to a stream closed since answers 200, not 409.
const CREATE_CLOSED: &str = "200 exists";
/// A stream created again after a delete starts its offsets from zero again.
const RECREATE: &str = "201 created next=0000000000000000_0000000000000000";
/// An append whose producer headers break the rules (one or two of the three, an empty id,
/// a sign, a leading zero, a fraction, past 2^53 - 1) is taken, not refused with a 400.
const GARBLED: &str = "garbled";

/// What each scenario finds: not applicable (with a piece of the reason), a violation
/// (on every seed run, what failed containing one of the pieces), or nothing.
fn expected(scenario: &str) -> Expect {
    match scenario {
        "stream/crash" => Expect::NotApplicable("needs crash durability"),
        // It may draw crashes.
        "stream/swarm" => Expect::NotApplicable("needs crash durability"),
        "stream/ttl" => Expect::NotApplicable("needs simulated time"),
        "stream/close-race" => Expect::Violation(vec![CREATE_CLOSED]),
        "stream/mixed" | "stream/no-faults" => {
            Expect::Violation(vec![RECREATE, CREATE_CLOSED, GARBLED])
        }
        "stream/producers" => Expect::Violation(vec![GARBLED]),
        _ => Expect::Holds,
    }
}

enum Expect {
    NotApplicable(&'static str),
    Violation(Vec<&'static str>),
    Holds,
}

fn main() {
    let args = Arguments::from_args();
    let trials = common::scenarios()
        .into_iter()
        .filter(|s| s.protocol == "stream")
        .map(|s| {
            let name = common::name(&s);
            Trial::test(name.clone(), move || {
                let real = backend(REAL);
                let not_applicable = sweep::applicable(&s, &real).err();
                let expect = expected(&name);
                if let Expect::NotApplicable(why) = expect {
                    return match not_applicable {
                        Some(reason) if reason.contains(why) => Ok(()),
                        other => Err(Failed::from(format!(
                            "expected not applicable ({why}), got {other:?}"
                        ))),
                    };
                }
                if let Some(reason) = not_applicable {
                    return Err(Failed::from(format!(
                        "unexpectedly not applicable: {reason}"
                    )));
                }
                let first = sweep::run(&s, &real, 0);
                if sweep::run(&s, &real, 0).history != first.history {
                    return Err(Failed::from("seed 0 gave two different histories"));
                }
                let description =
                    format!("{} --backend {REAL} --seed 0: {first}", s.path.display());
                let snapshot = format!("{}__durable-streams-server", name.replace('/', "__"));
                common::snapshot(&snapshot, description, &first.history);
                for seed in 0..4 {
                    let run = sweep::run(&s, &real, seed);
                    match (&expect, &run.verdict) {
                        (Expect::Holds, Outcome::Ok) => {}
                        (Expect::Violation(any), Outcome::Violation { what: found, .. })
                            if any.iter().any(|what| found.contains(what)) => {}
                        _ => {
                            return Err(Failed::from(format!(
                                "seed {seed}: {}",
                                run.report(&s.path)
                            )))
                        }
                    }
                }
                Ok(())
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

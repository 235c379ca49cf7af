//! Regression seeds: runs that failed once, kept beside their scenario so that they are run
//! again forever.
//!
//! `squall run --save-failures` adds every failing (backend, seed) of a scenario
//! `NAME.toml` to `NAME.seeds` in the same folder (not `.toml`, so a folder sweep does not
//! take it for a scenario): one `BACKEND SEED` a line, sorted, without duplicates, under a
//! comment that says what the file is. The conformance tests run every saved seed again
//! and hold it to what it showed:
//!
//! - a **mutant**'s seed must still fail: the harness must keep catching that planted bug
//!   on that seed;
//! - **any other** backend's seed must hold: it failed when the backend had a bug, and
//!   must not fail again once the bug is fixed (until then, conformance fails on it).
//!
//! Live runs are not saved: a live seed fixes the plan, not the timing, so it need not
//! fail again.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::backend::Kind;
use crate::protocols::Registry;
use crate::report::{Outcome, Run};

/// A scenario's saved seeds: (backend, seed), in order.
pub type Seeds = BTreeSet<(String, u64)>;

/// Where the seeds of the scenario at `scenario` are kept.
pub fn path(scenario: &Path) -> PathBuf {
    scenario.with_extension("seeds")
}

/// The seeds saved for the scenario at `scenario`, each of a backend `registry` knows; none
/// if it has no file.
pub fn load(registry: &Registry, scenario: &Path) -> Result<Seeds, String> {
    let file = path(scenario);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Seeds::new()),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    let mut seeds = Seeds::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |what: String| format!("{}:{}: {what}", file.display(), n + 1);
        let (backend, seed) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad(format!("expected `BACKEND SEED`, found {line:?}")))?;
        let seed = seed
            .trim()
            .parse()
            .map_err(|_| bad(format!("seed: {:?} is not a seed", seed.trim())))?;
        if registry.get(backend).is_none() {
            return Err(bad(format!("backend: unknown backend {backend:?}")));
        }
        seeds.insert((backend.to_string(), seed));
    }
    Ok(seeds)
}

/// Add `new` to the seeds saved for the scenario at `scenario`, leaving out live backends'.
/// Returns how many were not saved before.
pub fn save(
    registry: &Registry,
    scenario: &Path,
    new: impl IntoIterator<Item = (String, u64)>,
) -> Result<usize, String> {
    let mut seeds = load(registry, scenario)?;
    let before = seeds.len();
    let live = |b: &str| registry.get(b).is_some_and(|b| b.is_live());
    seeds.extend(new.into_iter().filter(|(b, _)| !live(b)));
    let added = seeds.len() - before;
    if added == 0 {
        return Ok(0);
    }
    let mut text = format!(
        "# Regression seeds of {}: runs that failed, saved by `squall run --save-failures`,\n\
         # one `BACKEND SEED` a line. The conformance tests run each again: a mutant's seed\n\
         # must still fail, any other backend's must hold.\n",
        scenario.file_name().unwrap_or_default().to_string_lossy()
    );
    for (backend, seed) in &seeds {
        let _ = writeln!(text, "{backend} {seed}");
    }
    let file = path(scenario);
    std::fs::write(&file, text).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(added)
}

/// Whether a saved seed's `run` again still shows what it was saved for (see the module
/// documentation); if not, why.
pub fn recheck(registry: &Registry, run: &Run) -> Result<(), String> {
    let mutant = (registry.get(&run.backend)).is_some_and(|b| b.kind() == Kind::Mutant);
    match (mutant, &run.verdict) {
        (true, Outcome::Ok) => Err(format!(
            "saved seed {} of mutant {} no longer fails: the harness stopped catching it",
            run.seed, run.backend
        )),
        (false, Outcome::Violation { .. } | Outcome::Error(_)) => Err(format!(
            "saved seed {} of {} fails again",
            run.seed, run.backend
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_sorted_without_duplicates_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("squall-regressions-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let scenario = dir.join("partition.toml");
        let seeds = |v: &[(&str, u64)]| {
            v.iter()
                .map(|(b, s)| (b.to_string(), *s))
                .collect::<Vec<_>>()
        };
        let added = save(
            &Registry::shipped(),
            &scenario,
            seeds(&[("kv/mutant-stale-read", 9), ("kv/mutant-lost-write", 3)]),
        );
        assert_eq!(added, Ok(2));
        // A live backend of its own: kv/nats is there only with the `nats` feature.
        let live = crate::backend::Backend::new("kv/live", crate::backend::Kind::RealLive, "");
        let added = save(
            &Registry::shipped().with(live),
            &scenario,
            seeds(&[
                ("kv/mutant-stale-read", 9),
                ("kv/mutant-stale-read", 1),
                ("kv/live", 4),
            ]),
        );
        assert_eq!(added, Ok(1), "a duplicate and a live seed are not added");
        let text = std::fs::read_to_string(dir.join("partition.seeds")).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "kv/mutant-lost-write 3",
                "kv/mutant-stale-read 1",
                "kv/mutant-stale-read 9"
            ]
        );
        assert!(text.starts_with("# Regression seeds of partition.toml"));
        assert_eq!(load(&Registry::shipped(), &scenario).unwrap().len(), 3);

        std::fs::write(
            dir.join("partition.seeds"),
            "# x\nkv/reference 1\nkv/nope 2\n",
        )
        .unwrap();
        let e = load(&Registry::shipped(), &scenario).unwrap_err();
        assert!(
            e.ends_with("partition.seeds:3: backend: unknown backend \"kv/nope\""),
            "{e}"
        );
        std::fs::write(dir.join("partition.seeds"), "kv/reference x\n").unwrap();
        let e = load(&Registry::shipped(), &scenario).unwrap_err();
        assert!(
            e.ends_with("partition.seeds:1: seed: \"x\" is not a seed"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_mutant_must_still_fail_and_others_must_hold() {
        let ok = |backend: &str| Run {
            verdict: Outcome::Ok,
            ..Run::failed(1, backend, String::new())
        };
        assert!(recheck(&Registry::shipped(), &ok("kv/reference")).is_ok());
        assert!(recheck(&Registry::shipped(), &ok("kv/mutant-stale-read")).is_err());
        let failed = |backend: &str| Run::failed(1, backend, "boom".into());
        assert!(recheck(&Registry::shipped(), &failed("kv/mutant-stale-read")).is_ok());
        assert!(recheck(&Registry::shipped(), &failed("kv/reference")).is_err());
    }
}

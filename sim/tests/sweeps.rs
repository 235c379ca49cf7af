//! Long sweeps from the command line: progress, shards, what is printed, --fail-fast,
//! --save-failures, and Ctrl-C.

mod common;

use common::squall;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A scenario of one client doing two operations: a run takes about a tenth of a
/// millisecond, so a test can sweep 100,000 seeds.
const TINY: &str = r#"
name = "tiny"
protocol = "kv"
duration = "1s"
[topology]
servers = 1
clients = 1
[workload]
keys = 1
ops_per_client = 2
mix = { get = 1, put = 1 }
"#;

/// A fresh folder of the test's own, holding `files` (name, contents).
fn folder(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("squall-sweeps-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The seeds of the run lines of `out`, and their verdicts.
fn runs(out: &str) -> Vec<(u64, String)> {
    out.lines()
        .filter_map(|l| {
            let mut f = l.strip_prefix("seed=")?.split(' ');
            let seed = f.next()?.parse().ok()?;
            let verdict = f.find_map(|kv| kv.strip_prefix("verdict="))?;
            Some((seed, verdict.to_string()))
        })
        .collect()
}

fn summary(out: &str) -> &str {
    out.lines()
        .find(|l| l.starts_with("# summary: "))
        .unwrap_or_else(|| panic!("no summary in:\n{out}"))
}

#[test]
fn a_100000_seed_sweep_shows_progress_and_shards_cover_every_seed_once() {
    let dir = folder("shards", &[("tiny.toml", TINY)]);
    let tiny = dir.join("tiny.toml");
    let mut seen = BTreeSet::new();
    for i in 1..=4 {
        let shard = format!("{i}/4");
        let o = squall(&[
            "run",
            tiny.to_str().unwrap(),
            "--seeds",
            "0..100000",
            "--shard",
            &shard,
            "--jobs",
            "2",
            "--runs",
            "all",
        ]);
        let (out, err) = (text(&o.stdout), text(&o.stderr));
        assert_eq!(o.status.code(), Some(0), "{err}");
        let runs = runs(&out);
        assert_eq!(runs.len(), 25_000);
        for (seed, verdict) in runs {
            assert_eq!(seed % 4, i - 1, "shard {shard} ran seed {seed}");
            assert_eq!(verdict, "ok");
            assert!(seen.insert(seed), "seed {seed} ran twice");
        }
        assert_eq!(
            summary(&out),
            "# summary: 25000 runs, 25000 ok, 0 violations, 0 errors"
        );
        // Not a terminal: plain progress lines on stderr, a tenth at a time, then the end.
        let progress: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("squall: progress "))
            .collect();
        assert_eq!(progress.len(), 10, "{err}");
        assert!(
            progress[0].starts_with("squall: progress 2500/25000 seeds (10%), "),
            "{err}"
        );
        assert!(
            progress[9].starts_with("squall: progress 25000/25000 seeds (100%), "),
            "{err}"
        );
        assert!(progress[9].contains(" seeds/s, 0 failed, "), "{err}");
    }
    assert_eq!(seen, (0..100_000).collect());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_long_sweep_prints_only_failing_runs_unless_asked() {
    let dir = folder("quiet", &[("tiny.toml", TINY)]);
    let tiny = dir.join("tiny.toml");
    let o = squall(&["run", tiny.to_str().unwrap(), "--seeds", "0..1001"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0));
    assert!(runs(&out).is_empty(), "{out}");
    assert_eq!(
        summary(&out),
        "# summary: 1001 runs, 1001 ok, 0 violations, 0 errors"
    );
    let o = squall(&[
        "run",
        tiny.to_str().unwrap(),
        "--seeds",
        "0..3",
        "--runs",
        "failures",
    ]);
    assert!(runs(&text(&o.stdout)).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

const MUTANT: &str = "kv/mutant-create-over-tombstone";

/// A copy of `scenarios/kv/no-faults.toml` in a folder of the test's own, so that saved
/// seeds land there.
fn no_faults(test: &str) -> (PathBuf, PathBuf) {
    let toml = std::fs::read_to_string(common::root().join("scenarios/kv/no-faults.toml")).unwrap();
    let dir = folder(test, &[("no-faults.toml", &toml)]);
    let file = dir.join("no-faults.toml");
    (dir, file)
}

/// The `BACKEND SEED` lines of the regression seeds beside `scenario`.
fn saved(scenario: &Path) -> Vec<String> {
    std::fs::read_to_string(scenario.with_extension("seeds"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[test]
fn fail_fast_stops_at_the_first_failure_and_save_failures_keeps_the_seeds() {
    let (dir, file) = no_faults("failfast");
    let o = squall(&[
        "run",
        file.to_str().unwrap(),
        "--backend",
        MUTANT,
        "--seeds",
        "0..32",
        "--fail-fast",
        "--save-failures",
    ]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let runs = runs(&out);
    let (last, verdict) = runs.last().unwrap();
    assert_eq!(
        verdict, "violation",
        "one job: the failing run is the last:\n{out}"
    );
    assert_eq!(runs.iter().filter(|(_, v)| v != "ok").count(), 1);
    assert!(runs.len() < 32);
    assert!(
        summary(&out).ends_with(&format!(
            "; stopped at the first failure (--fail-fast) after {} of 32 runs",
            runs.len()
        )),
        "{out}"
    );
    let replay = format!(
        "# violation: squall replay {} --backend {MUTANT} --seed {last}",
        file.display()
    );
    assert!(out.lines().any(|l| l == replay), "{out}");
    assert_eq!(saved(&file), [format!("{MUTANT} {last}")]);

    // Saving again adds the new failures, sorted, each once.
    let o = squall(&[
        "run",
        file.to_str().unwrap(),
        "--backend",
        MUTANT,
        "--seeds",
        "0..12",
        "--save-failures",
    ]);
    let mut want: Vec<u64> = self::runs(&text(&o.stdout))
        .into_iter()
        .filter(|(_, v)| v != "ok")
        .map(|(s, _)| s)
        .collect();
    want.push(*last);
    want.sort_unstable();
    want.dedup();
    let want: Vec<String> = want.iter().map(|s| format!("{MUTANT} {s}")).collect();
    assert_eq!(saved(&file), want);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ctrl_c_stops_the_sweep_and_reports_and_saves_what_it_found() {
    let (dir, file) = no_faults("sigint");
    let mut child = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args([
            "run",
            file.to_str().unwrap(),
            "--backend",
            MUTANT,
            "--seeds",
            "0..100000",
            "--runs",
            "all",
            "--save-failures",
            "--jobs",
            "2",
        ])
        .current_dir(common::root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut before = String::new();
    // Wait for a failure to be reported, then interrupt.
    while !before.lines().any(|l| l.contains("verdict=violation")) {
        assert!(
            stdout.read_line(&mut before).unwrap() > 0,
            "ended early:\n{before}"
        );
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut after = String::new();
    stdout.read_to_string(&mut after).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    let out = before + &after;
    assert_eq!(status.code(), Some(1), "failures found: exit 1\n{err}");
    assert!(err.contains("squall: interrupted"), "{err}");
    let runs = runs(&out);
    assert!(runs.len() < 100_000);
    // What ran is a prefix of the seeds, each reported.
    let seeds: Vec<u64> = runs.iter().map(|(s, _)| *s).collect();
    assert_eq!(seeds, (0..runs.len() as u64).collect::<Vec<_>>());
    let failed: Vec<u64> = runs
        .iter()
        .filter(|(_, v)| v != "ok")
        .map(|(s, _)| *s)
        .collect();
    assert!(
        summary(&out).contains(&format!(
            "; interrupted (Ctrl-C) after {} of 100000 runs",
            runs.len()
        )),
        "{out}"
    );
    for (n, seed) in failed.iter().enumerate() {
        let replay = format!(
            "squall replay {} --backend {MUTANT} --seed {seed}",
            file.display()
        );
        assert!(
            out.lines().any(|l| l == format!("replay: {replay}")),
            "{out}"
        );
        // The summary lists the first 20.
        let listed = out.lines().any(|l| l == format!("# violation: {replay}"));
        assert_eq!(listed, n < 20, "{out}");
    }
    let want: Vec<String> = failed.iter().map(|s| format!("{MUTANT} {s}")).collect();
    assert_eq!(saved(&file), want);
    std::fs::remove_dir_all(&dir).unwrap();
}

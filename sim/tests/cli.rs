//! The command line, as DESIGN.md's contract states it: output lines, exit statuses and the
//! replay line.

mod common;

use common::squall;

use std::process::Output;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The run lines of an output: `seed=N backend=NAME verdict=V ops=K history=HEX`.
fn runs(o: &Output) -> Vec<Vec<(String, String)>> {
    stdout(o)
        .lines()
        .filter(|l| l.starts_with("seed="))
        .map(|l| {
            l.split(' ')
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap();
                    (k.to_string(), v.to_string())
                })
                .collect()
        })
        .collect()
}

fn field<'a>(run: &'a [(String, String)], key: &str) -> &'a str {
    &run.iter().find(|(k, _)| k == key).unwrap().1
}

#[test]
fn list_backends() {
    let o = squall(&["list", "backends"]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(
        out.lines()
            .any(|l| l == "kv/reference\tkv,watch\treference"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l == "kv/mutant-stale-read\tkv,watch\tmutant"),
        "{out}"
    );
    for line in out.lines() {
        assert_eq!(line.split('\t').count(), 3, "{line}");
    }
}

#[test]
fn list_scenarios() {
    let o = squall(&["list", "scenarios"]);
    assert!(o.status.success());
    assert!(stdout(&o)
        .lines()
        .any(|l| l == "scenarios/kv/no-faults.toml"));
}

#[test]
fn run_prints_one_line_per_run_and_holds() {
    let o = squall(&[
        "run",
        "scenarios/kv/no-faults.toml",
        "--seeds",
        "0..4",
        "--jobs",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let runs = runs(&o);
    assert_eq!(runs.len(), 4);
    for (i, run) in runs.iter().enumerate() {
        let keys: Vec<&str> = run.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["seed", "backend", "verdict", "ops", "history"]);
        assert_eq!(field(run, "seed"), i.to_string(), "runs come in seed order");
        assert_eq!(field(run, "backend"), "kv/reference");
        assert_eq!(field(run, "verdict"), "ok");
        assert_eq!(field(run, "history").len(), 16);
    }
}

#[test]
fn shards_split_the_seeds() {
    let seeds = |shard: &str| -> Vec<String> {
        let o = squall(&[
            "run",
            "scenarios/kv/no-faults.toml",
            "--seeds",
            "0..6",
            "--shard",
            shard,
        ]);
        runs(&o)
            .iter()
            .map(|r| field(r, "seed").to_string())
            .collect()
    };
    assert_eq!(seeds("1/2"), ["0", "2", "4"]);
    assert_eq!(seeds("2/2"), ["1", "3", "5"]);
}

#[test]
fn a_violation_exits_1_and_its_replay_line_reproduces_it() {
    let o = squall(&[
        "run",
        "scenarios/kv/no-faults.toml",
        "--backend",
        "kv/mutant-create-over-tombstone",
        "--seeds",
        "0..16",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    let caught = runs(&o)
        .into_iter()
        .find(|r| field(r, "verdict") == "violation")
        .expect("a violation");
    let replay = out
        .lines()
        .find(|l| l.starts_with("replay: "))
        .unwrap()
        .strip_prefix("replay: ")
        .unwrap()
        .to_string();
    assert_eq!(
        replay,
        format!("squall replay scenarios/kv/no-faults.toml --backend kv/mutant-create-over-tombstone --seed {}", field(&caught, "seed"))
    );
    let args: Vec<&str> = replay.split(' ').skip(1).collect();
    let again = squall(&args);
    assert_eq!(again.status.code(), Some(1));
    let rerun = runs(&again);
    assert_eq!(
        field(&rerun[0], "history"),
        field(&caught, "history"),
        "replay reproduces the same history"
    );
}

#[test]
fn replay_writes_the_history_as_json() {
    let file = std::env::temp_dir().join(format!("squall-cli-{}.json", std::process::id()));
    let o = squall(&[
        "replay",
        "scenarios/kv/no-faults.toml",
        "--seed",
        "3",
        "--history",
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    std::fs::remove_file(&file).unwrap();
    let events = json["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["type"] == "invoke"));
    assert!(stdout(&o).contains(" invoke "), "replay prints the history");
}

#[test]
fn check_determinism_runs_each_seed_twice() {
    let o = squall(&[
        "run",
        "scenarios/kv/crash.toml",
        "--seeds",
        "0..2",
        "--check-determinism",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn bad_input_exits_2_naming_the_problem() {
    let o = squall(&["run", "scenarios/kv", "--backend", "kv/nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown backend \"kv/nope\""));
    let o = squall(&["run", "no/such/place"]);
    assert_eq!(o.status.code(), Some(2));
    let o = squall(&["run", "scenarios/kv", "--seeds", "banana"]);
    assert_eq!(o.status.code(), Some(2));

    let dir = std::env::temp_dir().join(format!("squall-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "name = \"x\"\nprotocol = \"kv\"\nduration = \"soon\"\n[topology]\nservers = 1\nclients = 1\n\
         [workload]\nkeys = 1\nops_per_client = 1\nmix = { get = 1 }\n",
    )
    .unwrap();
    let o = squall(&["run", file.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.toml:3: duration: not a duration"),
        "{err}"
    );
}

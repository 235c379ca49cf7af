//! Histories in and out: `squall check` on Jepsen histories, and histories written as
//! Jepsen EDN and porcupine operations.

mod common;

// The tests of `squall check` and `squall replay` run the binary, which needs `cli`.
#[cfg(feature = "cli")]
use common::squall;
#[cfg(feature = "cli")]
use std::{path::Path, process::Output};

use std::path::PathBuf;

use squall::interop::{edn, jepsen};

fn corpus() -> PathBuf {
    common::root().join("sim/tests/data/jepsen-etcd")
}

/// (file, known verdict) of the corpus.
fn verdicts() -> Vec<(PathBuf, String)> {
    std::fs::read_to_string(corpus().join("VERDICTS.tsv"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (file, want) = l.split_once('\t').unwrap();
            (corpus().join(file), want.to_string())
        })
        .collect()
}

#[cfg(feature = "cli")]
fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("squall-interop-{}-{name}", std::process::id()))
}

#[test]
#[cfg(feature = "cli")]
fn check_gives_every_corpus_history_its_known_verdict() {
    let verdicts = verdicts();
    assert_eq!(verdicts.len(), 102);
    let mut args = vec!["check", "--model", "register"];
    args.extend(verdicts.iter().map(|(f, _)| f.to_str().unwrap()));
    let o = squall(&args);
    assert_eq!(o.status.code(), Some(1), "79 are not linearizable");
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().filter(|l| l.contains(" verdict=")).collect();
    assert_eq!(lines.len(), 102);
    for ((file, want), line) in verdicts.iter().zip(lines) {
        let want = match want.as_str() {
            "linearizable" => "ok",
            _ => "violation",
        };
        assert!(
            line.starts_with(&format!("{} verdict={want} ", file.display())),
            "{line}"
        );
    }
    // One linearizable history alone exits 0.
    let (ok, _) = verdicts.iter().find(|(_, v)| v == "linearizable").unwrap();
    let o = squall(&["check", "--model", "register", ok.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
#[cfg(feature = "cli")]
fn check_names_file_and_line_of_bad_input() {
    let file = temp("bad.edn");
    std::fs::write(
        &file,
        "{:type :invoke, :f :read, :value nil, :process 0, :time 0, :index 0}\n{:type :ok, :f :read\n",
    )
    .unwrap();
    let o = squall(&["check", "--model", "register", file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("{}:2: not EDN", file.display())),
        "{err}"
    );
    let o = squall(&["check", "--model", "register", "no/such.log"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Export then import: the same operations at the same places (so the same verdict), for
/// every history of the corpus.
#[test]
fn edn_round_trips_the_corpus() {
    for (file, _) in verdicts() {
        let history = jepsen::read(&file).unwrap();
        let text = edn::write(&history);
        let back = jepsen::parse_edn(&text, "x.edn").unwrap_or_else(|e| panic!("{e}\n{text}"));
        // The same events, but for operation ids: the log's `:fail` reads and writes are
        // left out (they did not happen), so its ids have gaps that EDN's do not.
        let ops = |h: &jepsen::Register| -> Vec<_> {
            h.operations()
                .into_iter()
                .map(|o| (o.client, o.op, o.ret, o.call, o.done))
                .collect()
        };
        assert_eq!(ops(&back), ops(&history), "{}", file.display());
        assert_eq!(back.events.len(), history.events.len());
    }
}

/// The same through the command line: `check --history out.edn`, then `check out.edn`.
#[test]
#[cfg(feature = "cli")]
fn check_exports_and_reads_back_edn() {
    let verdicts = verdicts();
    for (file, _) in verdicts.iter().take(6) {
        let out = temp("round.edn");
        let a = squall(&[
            "check",
            "--model",
            "register",
            file.to_str().unwrap(),
            "--history",
            out.to_str().unwrap(),
        ]);
        let b = squall(&["check", "--model", "register", out.to_str().unwrap()]);
        std::fs::remove_file(&out).unwrap();
        let rest = |o: &Output| {
            let s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.split_once(" verdict=").unwrap().1.to_string()
        };
        assert_eq!(a.status.code(), b.status.code());
        assert_eq!(
            rest(&a),
            rest(&b),
            "same verdict, operations and history hash"
        );
    }
}

#[test]
fn a_register_history_as_edn_reads_as_jepsen_writes_it() {
    let log = "\
INFO  jepsen.util - 0\t:invoke\t:write\t4
INFO  jepsen.util - 1\t:invoke\t:cas\t[4 1]
INFO  jepsen.util - 0\t:ok\t:write\t4
INFO  jepsen.util - 1\t:fail\t:cas\t[4 1]
INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - 0\t:ok\t:read\t4
INFO  jepsen.util - 1\t:invoke\t:write\t3
INFO  jepsen.util - 1\t:info\t:write\t:timed-out
";
    let text = edn::write(&jepsen::parse(log, "t.log").unwrap());
    assert_eq!(
        text,
        "\
{:type :invoke, :f :write, :value 4, :process 0, :time 1000, :index 0}
{:type :invoke, :f :cas, :value [4 1], :process 1, :time 2000, :index 1}
{:type :ok, :f :write, :value 4, :process 0, :time 3000, :index 2}
{:type :fail, :f :cas, :value [4 1], :process 1, :time 4000, :index 3}
{:type :invoke, :f :read, :value nil, :process 0, :time 5000, :index 4}
{:type :ok, :f :read, :value 4, :process 0, :time 6000, :index 5}
{:type :invoke, :f :write, :value 3, :process 1, :time 7000, :index 6}
{:type :info, :f :write, :value 3, :process 1, :time 8000, :index 7, :error \":timed-out\"}
"
    );
}

/// A simulated KV history with faults and unknown outcomes, written as EDN and as
/// porcupine's operations.
#[test]
#[cfg(feature = "cli")]
fn replay_exports_edn_and_porcupine() {
    let edn_file = temp("kv.edn");
    let json_file = temp("kv.json");
    let replay = |file: &Path, format: &[&str]| {
        let mut args = vec![
            "replay",
            "scenarios/kv/partition.toml",
            "--seed",
            "1",
            "--history",
            file.to_str().unwrap(),
        ];
        args.extend(format);
        assert_eq!(squall(&args).status.code(), Some(0));
        std::fs::read_to_string(file).unwrap()
    };
    let edn_text = replay(&edn_file, &[]);
    let porcupine_text = replay(&json_file, &["--format", "porcupine"]);
    std::fs::remove_file(&edn_file).unwrap();
    std::fs::remove_file(&json_file).unwrap();

    let maps: Vec<edn_format::Value> = edn_text
        .lines()
        .map(|l| edn_format::parse_str(l).unwrap())
        .collect();
    let kw = |s: &str| edn_format::Value::Keyword(edn_format::Keyword::from_name(s));
    let get = |m: &edn_format::Value, k: &str| match m {
        edn_format::Value::Map(m) => m.get(&kw(k)).cloned(),
        _ => None,
    };
    let count = |ty: &str| {
        maps.iter()
            .filter(|m| get(m, "type") == Some(kw(ty)))
            .count()
    };
    let ops: Vec<serde_json::Value> = serde_json::from_str(&porcupine_text).unwrap();
    assert_eq!(count("invoke"), ops.len());
    assert!(
        maps.iter()
            .any(|m| get(m, "process") == Some(kw("nemesis"))),
        "faults"
    );
    for (i, m) in maps.iter().enumerate() {
        assert_eq!(get(m, "index"), Some(edn_format::Value::Integer(i as i64)));
        assert!(get(m, "f").is_some() && get(m, "time").is_some());
    }
    let unknown: Vec<&serde_json::Value> = ops.iter().filter(|o| o["Output"].is_null()).collect();
    assert!(!unknown.is_empty(), "the partition leaves outcomes unknown");
    for o in &ops {
        assert!(o["Call"].as_u64() < o["Return"].as_u64(), "{o}");
        assert!(o["Input"]["op"].is_string(), "{o}");
        assert!(o["ClientId"].as_u64().unwrap() < 4, "clients 1..4 are 0..3");
    }
    // Unknown outcomes return after every event.
    assert_eq!(unknown[0]["Return"].as_u64().unwrap() as usize, maps.len());
}

//! Hostile scenario files: the parser and validator never panic or hang, and reject every
//! bad file with one line naming the file, the line and the field.
//!
//! Three sources, 100,000 files in all by default (`PROTOCOL_CASES` below; set
//! `PROPTEST_CASES` to run that many of each instead): the shipped scenarios mutated by
//! byte, line and field edits; files generated from a grammar of the schema, most fields
//! well-typed, some not, values at and past every limit; and arbitrary text. A file that is
//! accepted must stay within the limits, and its plan is drawn when small (the workloads'
//! generators see the odd values too). Parsing only: nothing is simulated. The files are
//! drawn from a fixed seed (`PROPTEST_RNG_SEED` picks another).

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use squall::protocol::Protocol;
use squall::protocols::{self, Registry, Visit};
use squall::scenario::{self, Error, Scenario};

const FILE: &str = "fuzz.toml";

/// Cases per source unless `PROPTEST_CASES` says otherwise: 45,000 + 40,000 + 15,000.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Run `strategy`'s texts through the parser; shrinks a failure to a small text.
fn fuzz(default: u32, strategy: impl Strategy<Value = String>) {
    let base = Config::default();
    let config = Config {
        cases: cases(default),
        // Failures are shrunk and printed; a regression test belongs in tests/scenario.rs.
        failure_persistence: None,
        // The same files every run, so that a failure in CI is a failure on a laptop and a
        // green suite stays green; `PROPTEST_RNG_SEED=N` explores other files, and the
        // cargo-fuzz target in fuzz/ explores freely.
        rng_seed: match base.rng_seed {
            RngSeed::Random => RngSeed::Fixed(0),
            fixed => fixed,
        },
        ..base
    };
    TestRunner::new(config)
        .run(&strategy, |text| {
            check(&text);
            Ok(())
        })
        .unwrap();
}

/// Parse `text`: accepted within the limits, or rejected in the promised form.
fn check(text: &str) {
    match Scenario::parse(Path::new(FILE), text, &Registry::shipped()) {
        Ok(s) => accepted(&s),
        Err(e) => rejected(text, &e),
    }
}

fn rejected(text: &str, e: &Error) {
    let lines = text.split('\n').count();
    assert_eq!(e.file, Path::new(FILE));
    assert!(
        (1..=lines).contains(&e.line),
        "line {} of a {lines}-line file: {e}\n{text}",
        e.line
    );
    assert!(!e.field.is_empty(), "no field named: {e}\n{text}");
    assert!(
        !e.field.chars().any(char::is_control) && e.field.chars().count() <= 100,
        "field {:?}: {e}\n{text}",
        e.field
    );
    assert!(!e.message.trim().is_empty(), "no message: {e}\n{text}");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{FILE}:{}: {}: ", e.line, e.field)),
        "{shown}"
    );
    assert!(!shown.contains('\n'), "more than one line: {shown:?}");
    // The line named holds the field named, unless that is a table (a syntax error in it)
    // or missing altogether.
    let table = |name: &str| {
        text.split('\n')
            .any(|l| l.trim().trim_matches(['[', ']']).trim() == name)
            || (name.starts_with("fault[") && !name.contains('.'))
    };
    let missing = e.message.starts_with("missing field") || e.message.contains("needs");
    if !missing && e.field != "(top level)" && !table(&e.field) {
        let line = text.split('\n').nth(e.line - 1).unwrap();
        let last = e.field.rsplit('.').next().unwrap();
        let last = last.split('[').next().unwrap();
        assert!(line.contains(last), "{e}, but line {} is {line:?}", e.line);
    }
}

fn accepted(s: &Scenario) {
    let ops = s.clients * s.workload.ops_per_client;
    assert!(ops <= scenario::MAX_OPERATIONS, "{ops} operations");
    assert!(s.servers <= scenario::MAX_HOSTS && s.clients <= scenario::MAX_HOSTS);
    assert!(s.seeds.end - s.seeds.start <= scenario::MAX_SEEDS);
    assert!(s.faults.iter().count() <= 2 * scenario::MAX_FAULTS * (s.servers + s.clients));
    // Whether a backend can run it is a question with an answer, not a panic.
    let _ = squall::sweep::applicable(s, &backend(&s.backend));
    if ops <= 2_000 {
        struct Draw<'a>(&'a Scenario);
        impl Visit for Draw<'_> {
            type Out = ();
            fn visit<P: Protocol>(self) {
                drop(P::plan(self.0, 0));
            }
        }
        protocols::visit(&s.protocol, Draw(s))
            .unwrap_or_else(|| panic!("accepted protocol {:?}", s.protocol));
    }
}

/// The shipped scenario files' texts.
static SHIPPED: LazyLock<Vec<String>> = LazyLock::new(|| {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let files = scenario::files(&[root]).unwrap();
    assert!(files.len() >= 20, "{} scenario files", files.len());
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect()
});

/// Values at and past the schema's limits, of every TOML type.
const VALUES: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "7",
    "64",
    "65",
    "256",
    "257",
    "1000000",
    "1000001",
    "-1",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "1e3",
    "nan",
    "true",
    "\"\"",
    "\"x\"",
    "\"0s\"",
    "\"1ms\"",
    "\"250ms\"",
    "\"5s\"",
    "\"24h\"",
    "\"25h\"",
    "\"-1s\"",
    "\"+2s\"",
    "\"-500ms\"",
    "\"99999999999999999999s\"",
    "\"584942417355y\"",
    "\"1 fortnight\"",
    "\"0..64\"",
    "\"9..3\"",
    "\"0..0\"",
    "\"7\"",
    "\"0..18446744073709551615\"",
    "\"18446744073709551615\"",
    "\"server-1\"",
    "\"server-*\"",
    "\"client-*\"",
    "\"*\"",
    "\"server-0\"",
    "\"client-9\"",
    "\"kv\"",
    "\"spark\"",
    "\"kv/reference\"",
    "\"kv/nats\"",
    "\"stream/durable-streams-server\"",
    "\"ceil\"",
    "\"up\"",
    "[]",
    "[[]]",
    "[[\"server-1\"], [\"client-*\"]]",
    "[[\"server-*\"], [\"server-1\"]]",
    "[[\"client-1\"], [\"server-*\"], [\"client-2\"]]",
    "{}",
    "{ min = \"1ms\", max = \"0ms\" }",
    "{ min = \"0ms\", max = \"24h\" }",
    "{ get = 4294967295, put = 1 }",
    "{ get = 0 }",
    "{ nope = 1 }",
    "1979-05-27T07:32:00Z",
    "'''\nx'''",
    "\"\\u0000\"",
    "\"ü\"",
];

/// Keys of the schema, and some that are not.
const KEYS: &[&str] = &[
    "name",
    "protocol",
    "backend",
    "seeds",
    "duration",
    "timeout",
    "servers",
    "clients",
    "keys",
    "ops_per_client",
    "mix",
    "think",
    "latency",
    "at",
    "partition",
    "oneway",
    "heal_after",
    "crash",
    "restart_after",
    "restore_after",
    "clock",
    "jump",
    "messages",
    "loss",
    "duplicate",
    "reorder",
    "linearizable",
    "history",
    "value_cap",
    "cap_inclusive",
    "reads",
    "writes",
    "pulls",
    "failed_pull_consumes",
    "ttl_cap",
    "quota",
    "rounding",
    "expiry",
    "calls",
    "ttl",
    "lease_ttl",
    "grace",
    "budget",
    "min",
    "max",
    "get",
    "set",
    "claim",
    "append",
    "nope",
    "\"quoted key\"",
    "a.b",
];

/// Lines to drop in anywhere.
const LINES: &[&str] = &[
    "[topology]",
    "[workload]",
    "[network]",
    "[[fault]]",
    "[expect]",
    "[bucket]",
    "[spark]",
    "[suspension]",
    "[limits]",
    "[nope]",
    "[[topology]]",
    "[workload.mix]",
    "[",
    "]",
    "=",
    "# comment",
    "",
    "\"",
    "'",
    "\"\"\"",
    "x = ",
    "= 1",
    "fault = []",
    "[[fault]]\nat = \"1s\"",
];

/// One edit of a text; positions are taken modulo its length.
#[derive(Clone, Debug)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize, usize),
    DropLine(usize),
    CopyLine(usize, usize),
    SwapLines(usize, usize),
    AddLine(usize, &'static str),
    /// Replace the value of the n-th `key = value` line.
    Value(usize, &'static str),
    /// Rename the key of the n-th `key = value` line.
    Key(usize, &'static str),
    /// Splice in a line of another shipped file.
    Graft(usize, usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<usize>();
    prop_oneof![
        (at, any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (at, select(b"\"'[]{}=,.-+*#\n\\0123456789\x00\xff".to_vec()))
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (at, 1..40usize).prop_map(|(i, n)| Edit::Remove(i, n)),
        at.prop_map(Edit::DropLine),
        (at, at).prop_map(|(i, j)| Edit::CopyLine(i, j)),
        (at, at).prop_map(|(i, j)| Edit::SwapLines(i, j)),
        (at, select(LINES)).prop_map(|(i, l)| Edit::AddLine(i, l)),
        (at, select(VALUES)).prop_map(|(i, v)| Edit::Value(i, v)),
        (at, select(VALUES)).prop_map(|(i, v)| Edit::Value(i, v)),
        (at, select(KEYS)).prop_map(|(i, k)| Edit::Key(i, k)),
        (at, at, at).prop_map(|(f, i, j)| Edit::Graft(f, i, j)),
    ]
}

fn apply(text: String, edit: &Edit) -> String {
    let mut bytes = text.into_bytes();
    let mut lines: Vec<String> = Vec::new();
    let split = |bytes: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(bytes)
            .split('\n')
            .map(str::to_string)
            .collect()
    };
    let pos = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match *edit {
        Edit::Flip(i, b) if !bytes.is_empty() => {
            let i = pos(i, bytes.len());
            bytes[i] = b;
        }
        Edit::Insert(i, b) => bytes.insert(pos(i, bytes.len() + 1), b),
        Edit::Remove(i, n) if !bytes.is_empty() => {
            let i = pos(i, bytes.len());
            bytes.drain(i..(i + n).min(bytes.len()));
        }
        Edit::Flip(..) | Edit::Remove(..) => {}
        _ => lines = split(&bytes),
    }
    if lines.is_empty() {
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    let n = lines.len();
    let assignments: Vec<usize> = (0..n).filter(|&i| lines[i].contains('=')).collect();
    match *edit {
        Edit::DropLine(i) => drop(lines.remove(pos(i, n))),
        Edit::CopyLine(i, j) => {
            let l = lines[pos(i, n)].clone();
            lines.insert(pos(j, n + 1), l);
        }
        Edit::SwapLines(i, j) => lines.swap(pos(i, n), pos(j, n)),
        Edit::AddLine(i, l) => lines.insert(pos(i, n + 1), l.to_string()),
        Edit::Value(i, v) | Edit::Key(i, v) if !assignments.is_empty() => {
            let k = assignments[pos(i, assignments.len())];
            let (key, value) = lines[k].split_once('=').unwrap();
            lines[k] = match edit {
                Edit::Value(..) => format!("{key}= {v}"),
                _ => format!("{v} ={value}"),
            };
        }
        Edit::Graft(f, i, j) => {
            let other = &SHIPPED[pos(f, SHIPPED.len())];
            let other: Vec<&str> = other.split('\n').collect();
            lines.insert(pos(j, n + 1), other[pos(i, other.len())].to_string());
        }
        _ => {}
    }
    lines.join("\n")
}

/// A shipped file with one to five edits.
fn mutated() -> impl Strategy<Value = String> {
    (any::<usize>(), prop::collection::vec(edit(), 1..=5)).prop_map(|(f, edits)| {
        let text = SHIPPED[f % SHIPPED.len()].clone();
        edits.iter().fold(text, apply)
    })
}

#[test]
fn mutated_shipped_scenarios() {
    fuzz(45_000, mutated());
}

/// A value for a field: mostly the right type and plausible, sometimes anything.
fn value(good: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        49 => select(good).prop_map(str::to_string),
        1 => select(VALUES).prop_map(str::to_string),
    ]
    .boxed()
}

const INTS: &[&str] = &[
    "1", "2", "3", "5", "1", "2", "3", "0", "16", "64", "65", "256", "257", "1000", "1000000",
    "1000001",
];
const DURATIONS: &[&str] = &[
    "\"0s\"",
    "\"1ms\"",
    "\"5ms\"",
    "\"250ms\"",
    "\"1s\"",
    "\"2s\"",
    "\"5s\"",
    "\"24h\"",
];
const HOSTS: &[&str] = &[
    "\"server-1\"",
    "\"server-2\"",
    "\"server-*\"",
    "\"client-1\"",
    "\"client-*\"",
    "\"server-9\"",
    "\"*\"",
];
/// The protocols, and one that is not.
const PROTOCOLS: &[&str] = &["kv", "watch", "spark", "suspension", "stream", "gossip"];

/// `key = value` lines for some of `fields`.
fn table(fields: &'static [(&'static str, &'static [&'static str])]) -> BoxedStrategy<String> {
    let lines: Vec<BoxedStrategy<Option<String>>> = fields
        .iter()
        .map(|&(key, good)| {
            let line = value(good).prop_map(move |v| format!("{key} = {v}\n"));
            prop::option::weighted(0.98, line).boxed()
        })
        .collect();
    lines
        .prop_map(|ls| ls.into_iter().flatten().collect())
        .boxed()
}

/// A mix of the protocol's operations, and one of none.
fn mix(protocol: &str) -> impl Strategy<Value = String> {
    let mut ops =
        squall::scenario::Catalogue::operations(&Registry::shipped(), protocol).unwrap_or_default();
    ops.push("nope");
    prop::collection::vec(
        (
            select(ops),
            select(&["0", "1", "1", "3", "1000001", "4294967295"][..]),
        ),
        1..6,
    )
    .prop_map(|ops| {
        let ops: std::collections::BTreeMap<_, _> = ops.into_iter().collect();
        let ops: Vec<String> = ops.iter().map(|(o, w)| format!("{o} = {w}")).collect();
        format!("mix = {{ {} }}\n", ops.join(", "))
    })
}

fn span(key: &'static str) -> impl Strategy<Value = String> {
    (select(DURATIONS), select(DURATIONS))
        .prop_map(move |(a, b)| format!("{key} = {{ min = {a}, max = {b} }}\n"))
}

fn partition() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::collection::vec(select(HOSTS), 0..3), 0..4).prop_map(|groups| {
        let groups: Vec<String> = groups
            .iter()
            .map(|g| format!("[{}]", g.join(", ")))
            .collect();
        format!("partition = [{}]\n", groups.join(", "))
    })
}

fn fault() -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        partition(),
        select(HOSTS).prop_map(|h| format!("crash = {h}\n")),
        select(DURATIONS).prop_map(|d| format!("latency = {d}\n")),
        (
            select(HOSTS),
            select(&["\"+2s\"", "\"-500ms\"", "\"1s\"", "\"-\"", "\"+-1s\""][..])
        )
            .prop_map(|(h, j)| format!("clock = {h}\njump = {j}\n")),
        (
            select(&["loss", "duplicate", "reorder", "lost"][..]),
            select(&["0", "0.05", "1", "1.5", "-0.1", "nan", "\"5%\""][..])
        )
            .prop_map(|(k, v)| format!("messages = {{ {k} = {v}, loss = 0.5 }}\n")),
    ];
    let extra = table(&[
        ("oneway", &["true", "false"]),
        ("heal_after", DURATIONS),
        ("restart_after", DURATIONS),
        ("restore_after", DURATIONS),
    ]);
    (
        value(DURATIONS),
        prop::collection::vec(kind, 1..=1),
        prop::option::weighted(0.3, extra),
    )
        .prop_map(|(at, kinds, extra)| {
            format!(
                "[[fault]]\nat = {at}\n{}{}",
                kinds.concat(),
                extra.unwrap_or_default()
            )
        })
}

/// A scenario file from the schema's grammar: sections in any order, fields maybe missing.
fn generated() -> impl Strategy<Value = String> {
    select(PROTOCOLS).prop_flat_map(generated_of)
}

fn generated_of(protocol: &'static str) -> impl Strategy<Value = String> {
    let top = table(&[
        ("name", &["\"g\"", "\"\""]),
        (
            "seeds",
            &[
                "\"0..4\"",
                "\"3\"",
                "\"0..64\"",
                "\"5..5\"",
                "\"0..18446744073709551615\"",
                "\"0..1000000\"",
            ],
        ),
        ("duration", DURATIONS),
        ("timeout", DURATIONS),
    ]);
    let backend = prop::option::weighted(
        0.1,
        select(
            &[
                "\"kv/reference\"",
                "\"spark/reference\"",
                "\"stream/reference\"",
                "\"kv/nats\"",
                "\"kv/nope\"",
                "\"kv/misbehave-silent\"",
            ][..],
        ),
    )
    .prop_map(|b| b.map(|b| format!("backend = {b}\n")).unwrap_or_default());
    let top = (top, backend).prop_map(move |(t, b)| format!("protocol = \"{protocol}\"\n{b}{t}"));
    let sections = vec![
        table(&[("servers", INTS), ("clients", INTS)])
            .prop_map(|t| format!("[topology]\n{t}"))
            .boxed(),
        (
            table(&[("keys", INTS), ("ops_per_client", INTS)]),
            prop::option::weighted(0.97, mix(protocol)),
            prop::option::of(span("think")),
        )
            .prop_map(|(t, m, s)| {
                format!(
                    "[workload]\n{t}{}{}",
                    m.unwrap_or_default(),
                    s.unwrap_or_default()
                )
            })
            .boxed(),
        prop::option::of(span("latency"))
            .prop_map(|s| format!("[network]\n{}", s.unwrap_or_default()))
            .boxed(),
        table(&[("linearizable", &["true", "false"])])
            .prop_map(|t| format!("[expect]\n{t}"))
            .boxed(),
        table(&[("history", INTS)])
            .prop_map(|t| format!("[bucket]\n{t}"))
            .boxed(),
        table(&[
            ("value_cap", INTS),
            ("cap_inclusive", &["true"]),
            ("reads", INTS),
            ("writes", INTS),
            ("pulls", INTS),
            ("ttl_cap", INTS),
            ("quota", INTS),
            ("rounding", &["\"ceil\"", "\"floor\"", "\"up\""]),
            ("expiry", &["\"at-deadline\"", "\"after-deadline\""]),
            ("calls", INTS),
            ("ttl", INTS),
        ])
        .prop_map(|t| format!("[spark]\n{t}"))
        .boxed(),
        table(&[
            ("lease_ttl", DURATIONS),
            ("grace", DURATIONS),
            ("timeout", DURATIONS),
            ("clock", DURATIONS),
        ])
        .prop_map(|t| format!("[suspension]\n{t}"))
        .boxed(),
        table(&[("budget", DURATIONS)])
            .prop_map(|t| format!("[limits]\n{t}"))
            .boxed(),
    ];
    let sections: Vec<BoxedStrategy<Option<String>>> = sections
        .into_iter()
        .enumerate()
        // Topology and workload nearly always: without them nothing else is looked at.
        .map(|(i, s)| prop::option::weighted(if i < 2 { 0.99 } else { 0.3 }, s).boxed())
        .collect();
    (top, sections, prop::collection::vec(fault(), 0..4)).prop_map(|(top, sections, faults)| {
        let sections: String = sections.into_iter().flatten().collect();
        format!("{top}{sections}{}", faults.concat())
    })
}

#[test]
fn generated_from_the_schema() {
    fuzz(40_000, generated());
}

#[test]
fn arbitrary_text() {
    let text = prop_oneof![
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        prop::collection::vec(select(LINES), 0..12).prop_map(|l| l.join("\n")),
    ];
    fuzz(15_000, text);
}

/// squall's backend called `name`.
fn backend(name: &str) -> squall::backend::Backend {
    Registry::shipped()
        .get(name)
        .expect("a shipped backend")
        .clone()
}

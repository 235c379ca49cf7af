//! Scenario files: every shipped one loads; every bad one is rejected with its file, line
//! and field, never a panic.

mod common;

use std::path::Path;

use squall::faults::Fault;
use squall::protocols::Registry;
use squall::scenario::{Error, Scenario};

const GOOD: &str = r#"name = "t"
protocol = "kv"
duration = "2s"
[topology]
servers = 3
clients = 2
[workload]
keys = 2
ops_per_client = 5
mix = { get = 1, put = 1 }
"#;

fn parse(text: &str) -> Result<Scenario, Error> {
    Scenario::parse(Path::new("t.toml"), text, &Registry::shipped())
}

/// `GOOD` with `extra` appended; the error's (line, field, message fragment).
fn rejected(extra: &str) -> (usize, String, String) {
    let e = parse(&format!("{GOOD}{extra}")).expect_err("must be rejected");
    assert_eq!(e.file, Path::new("t.toml"));
    (e.line, e.field, e.message)
}

#[test]
fn shipped_scenarios_load() {
    let all = common::scenarios();
    assert!(all.len() >= 5, "{} scenarios", all.len());
    for s in all {
        let backend = Registry::shipped().get(&s.backend).unwrap().clone();
        assert_eq!(backend.kind(), squall::backend::Kind::Reference);
        assert!(backend.serves_protocol(&s.protocol), "{}", s.path.display());
    }
}

#[test]
fn bucket_retention() {
    assert_eq!(parse(GOOD).unwrap().bucket.history, 1);
    let s = parse(&format!("{GOOD}[bucket]\nhistory = 5\n")).unwrap();
    assert_eq!(s.bucket.history, 5);
    let (line, field, message) = rejected("[bucket]\nhistory = 65\n");
    assert_eq!((line, field.as_str()), (12, "bucket.history"));
    assert!(message.contains("1..=64"), "{message}");
    // The KV checks know no expiry: GOOD's mix reads.
    let (line, field, message) = rejected("[bucket]\nmax_age = \"1s\"\n");
    assert_eq!((line, field.as_str()), (12, "bucket.max_age"));
    assert!(message.contains("not get"), "{message}");
}

#[test]
fn bucket_age_and_size() {
    let blind = GOOD.replace("get = 1, put = 1", "put = 1, delete = 1");
    let s = parse(&format!(
        "{blind}[bucket]\nmax_age = \"1500ms\"\nmax_bytes = 4096\n"
    ))
    .unwrap();
    assert_eq!(
        s.bucket.max_age,
        Some(std::time::Duration::from_millis(1500))
    );
    assert_eq!(s.bucket.max_bytes, Some(4096));
    assert_eq!((parse(GOOD).unwrap().bucket.max_age), None);
    let bad = |extra: &str| {
        let e = parse(&format!("{blind}[bucket]\nhistory = 2\n{extra}\n")).unwrap_err();
        (e.line, e.field, e.message)
    };
    let (line, field, message) = bad("max_age = \"soon\"");
    assert_eq!((line, field.as_str()), (13, "bucket.max_age"));
    assert!(message.contains("not a duration"), "{message}");
    let (_, field, message) = bad("max_age = \"50ms\"");
    assert_eq!(field, "bucket.max_age");
    assert!(message.contains("at least 100ms"), "{message}");
    let (line, field, message) = bad("max_bytes = 0");
    assert_eq!((line, field.as_str()), (13, "bucket.max_bytes"));
    assert!(message.contains("more than zero"), "{message}");
    let (_, field, _) = bad("max_bytes = -1");
    assert_eq!(field, "bucket.max_bytes");
}

#[test]
fn a_watch_scenario_runs_on_kv_reference_by_default() {
    let text = GOOD
        .replace(r#"protocol = "kv""#, r#"protocol = "watch""#)
        .replace("get = 1", "watch_all_from = 1");
    assert_eq!(parse(&text).unwrap().backend, "kv/reference");
}

#[test]
fn defaults() {
    let s = parse(GOOD).unwrap();
    assert_eq!(s.backend, "kv/reference");
    assert_eq!(s.seeds, 0..16);
    assert_eq!(s.timeout.as_secs(), 1);
    assert!(s.expect.linearizable);
    assert_eq!(
        s.hosts(),
        ["server-1", "server-2", "server-3", "client-1", "client-2"]
    );
}

#[test]
fn faults_expand_into_a_timed_schedule() {
    let s = parse(&format!(
        "{GOOD}[[fault]]\nat = \"1s\"\npartition = [[\"server-1\"], [\"client-*\"]]\nheal_after = \"500ms\"\n\
         [[fault]]\nat = \"200ms\"\ncrash = \"server-2\"\nrestart_after = \"1s\"\n"
    ))
    .unwrap();
    let timeline: Vec<(u128, String)> = s
        .faults
        .iter()
        .map(|(at, f)| (at.as_millis(), f.to_string()))
        .collect();
    assert_eq!(
        timeline,
        [
            (200, "crash server-2".to_string()),
            (
                1000,
                "partition [server-1] | [client-1 client-2]".to_string()
            ),
            (1200, "restart server-2".to_string()),
            (1500, "heal [server-1] | [client-1 client-2]".to_string()),
        ]
    );
    let (_, first) = s.faults.iter().nth(1).unwrap();
    assert_eq!(
        Fault::links(&[vec!["a".into()], vec!["b".into(), "c".into()]], false),
        [("a", "b"), ("a", "c")]
    );
    assert!(matches!(first, Fault::Partition { oneway: false, .. }));
}

#[test]
fn malformed_toml() {
    let e = parse("name = \"x\"\n[topology\n").unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (2, "topology"));
}

#[test]
fn unknown_field() {
    let (line, field, msg) = rejected("[network]\njitter = \"5ms\"\n");
    assert_eq!((line, field.as_str()), (12, "network.jitter"));
    assert!(msg.contains("unknown field `jitter`"), "{msg}");
}

#[test]
fn wrong_type() {
    let e = parse(&GOOD.replace("servers = 3", "servers = \"three\"")).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (5, "topology.servers"));
}

#[test]
fn missing_field() {
    let e = parse(&GOOD.replace("duration = \"2s\"\n", "")).unwrap_err();
    assert!(e.message.contains("duration"), "{e}");
}

#[test]
fn bad_duration() {
    let e = parse(&GOOD.replace("\"2s\"", "\"2 fortnights\"")).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (3, "duration"));
    assert!(e.message.contains("not a duration"), "{e}");
}

#[test]
fn unknown_backend() {
    let e = parse(&GOOD.replace("duration", "backend = \"kv/nope\"\nduration")).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (3, "backend"));
}

#[test]
fn unknown_protocol() {
    let e = parse(&GOOD.replace("\"kv\"", "\"gossip\"")).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (2, "protocol"));
}

#[test]
fn unknown_operation_in_mix() {
    let e = parse(&GOOD.replace("put = 1", "frobnicate = 1")).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (10, "workload.mix.frobnicate"));
}

#[test]
fn fault_naming_a_missing_host() {
    let (line, field, msg) = rejected("[[fault]]\nat = \"1s\"\ncrash = \"server-1\"\n[[fault]]\nat = \"2s\"\ncrash = \"server-9\"\n");
    assert_eq!((line, field.as_str()), (16, "fault[2].crash"));
    assert!(msg.contains("no host named \"server-9\""), "{msg}");
}

#[test]
fn fault_with_two_kinds() {
    let (line, field, _) =
        rejected("[[fault]]\nat = \"1s\"\ncrash = \"server-1\"\nlatency = \"1s\"\n");
    assert_eq!((line, field.as_str()), (12, "fault[1]"));
}

#[test]
fn fault_option_of_another_kind() {
    let (line, field, _) =
        rejected("[[fault]]\nat = \"1s\"\ncrash = \"server-1\"\nheal_after = \"1s\"\n");
    assert_eq!((line, field.as_str()), (14, "fault[1].heal_after"));
}

#[test]
fn host_in_two_groups() {
    let (_, field, msg) =
        rejected("[[fault]]\nat = \"1s\"\npartition = [[\"server-1\"], [\"server-*\"]]\n");
    assert_eq!(field, "fault[1].partition");
    assert!(msg.contains("two groups"), "{msg}");
}

#[test]
fn sizes_beyond_the_limits() {
    let e = parse(&GOOD.replace("clients = 2", "clients = 100000")).unwrap_err();
    assert_eq!(e.field, "topology.clients");
    let e = parse(&GOOD.replace("ops_per_client = 5", "ops_per_client = 99999999999")).unwrap_err();
    assert_eq!(e.field, "workload.ops_per_client");
    let e = parse(&GOOD.replace("\"2s\"", "\"400days\"")).unwrap_err();
    assert_eq!(e.field, "duration");
}

#[test]
fn bad_seed_range() {
    let e = parse(&GOOD.replace("duration", "seeds = \"9..3\"\nduration")).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (3, "seeds"));
}

#[test]
fn empty_and_garbage_files() {
    for text in ["", "\u{0}\u{1}", "[[[", "name = "] {
        let e = parse(text).unwrap_err();
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn clock_jumps() {
    let s = parse(&format!(
        "{GOOD}[[fault]]\nat = \"0s\"\nclock = \"server-*\"\njump = \"-1500ms\"\n[[fault]]\nat = \"1s\"\nclock = \"client-1\"\njump = \"+2s\"\n"
    ))
    .unwrap();
    let timeline: Vec<String> = s.faults.iter().map(|(_, f)| f.to_string()).collect();
    assert_eq!(
        timeline,
        [
            "clock server-1 jumps -1s 500ms",
            "clock server-2 jumps -1s 500ms",
            "clock server-3 jumps -1s 500ms",
            "clock client-1 jumps +2s"
        ]
    );
    assert!(matches!(
        s.faults.iter().next(),
        Some((
            _,
            Fault::Clock {
                by: -1_500_000_000,
                ..
            }
        ))
    ));
    let (line, field, _) = rejected("[[fault]]\nat = \"1s\"\nclock = \"server-1\"\n");
    assert_eq!((line, field.as_str()), (13, "fault[1].jump"));
    let (line, field, _) =
        rejected("[[fault]]\nat = \"1s\"\nclock = \"server-1\"\njump = \"soonish\"\n");
    assert_eq!((line, field.as_str()), (14, "fault[1].jump"));
    let (_, field, _) = rejected("[[fault]]\nat = \"1s\"\ncrash = \"server-1\"\njump = \"1s\"\n");
    assert_eq!(field, "fault[1].jump");
}

/// `GOOD` as a spark scenario, ending in an empty `[spark]` section at line 11.
fn spark() -> String {
    let s = GOOD.replace("\"kv\"", "\"spark\"");
    s.replace("put = 1", "set = 1, pull = 1") + "[spark]\n"
}

#[test]
fn spark_parameters_default_and_override() {
    use squall::protocol::settings;
    use squall::protocols::spark::Spark;
    use squall_models::spark::{Params, Rounding};
    let s = parse(&spark()).unwrap();
    let spark_of = |s| settings::<Spark>(s).into_owned();
    assert_eq!(spark_of(&s).params, Params::default());
    assert_eq!((spark_of(&s).calls, spark_of(&s).ttl), (3, 3));
    let extra = "writes = 2\nrounding = \"floor\"\ncalls = 5\n";
    let s = parse(&(spark() + extra)).unwrap();
    assert_eq!(spark_of(&s).params.writes, 2);
    assert_eq!(spark_of(&s).params.rounding, Rounding::Floor);
    assert_eq!(spark_of(&s).calls, 5);
}

#[test]
fn bad_spark_parameters_name_their_line_and_field() {
    let bad = |extra: &str| parse(&(spark() + "ttl_cap = 10\n" + extra)).unwrap_err();
    let e = bad("rounding = \"up\"\n");
    assert_eq!((e.line, e.field.as_str()), (13, "spark.rounding"), "{e}");
    let e = bad("ttl = 11\n");
    assert_eq!((e.line, e.field.as_str()), (13, "spark.ttl"), "{e}");
    assert!(e.message.contains("0..=ttl_cap"), "{e}");
    let e = bad("calls = 0\n");
    assert_eq!((e.line, e.field.as_str()), (13, "spark.calls"), "{e}");
    let e = bad("limit = 3\n");
    assert_eq!(e.line, 13, "{e}");
    assert!(e.message.contains("unknown field `limit`"), "{e}");
}

#[test]
fn only_spark_scenarios_take_a_spark_section() {
    let (line, field, msg) = rejected("[spark]\nreads = 1\n");
    assert_eq!((line, field.as_str()), (11, "spark"));
    assert!(msg.contains("only a spark scenario"), "{msg}");
}

#[test]
fn a_protocol_without_settings_takes_no_section_of_its_name() {
    let (line, field, msg) = rejected("[kv]\nreads = 1\n");
    assert_eq!((line, field.as_str()), (11, "kv"));
    assert!(msg.contains("takes no [kv] section"), "{msg}");
}

#[test]
fn the_suspension_section_is_checked_with_line_and_field() {
    let (line, field, message) = rejected("[suspension]\nlease_ttl = \"50ms\"\n");
    assert_eq!((line, field.as_str()), (11, "suspension"));
    assert!(message.contains("only a suspension scenario"), "{message}");

    let suspension = GOOD
        .replace("\"kv\"", "\"suspension\"")
        .replace("{ get = 1, put = 1 }", "{ claim = 1, deliver = 1 }");
    let e = parse(&format!("{suspension}[suspension]\nclock = \"0ms\"\n")).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (12, "suspension.clock"));
    let e = parse(&format!("{suspension}[suspension]\ngrace = \"soon\"\n")).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (12, "suspension.grace"));
    let s = parse(&format!("{suspension}[suspension]\ngrace = \"7ms\"\n")).unwrap();
    let times = squall::protocol::settings::<squall::protocols::suspension::Suspension>(&s);
    assert_eq!(times.grace, std::time::Duration::from_millis(7));
}

#[test]
fn a_scripted_plan_reads_back_with_its_errors_located() {
    let script = "[[client]]\nop = []\n[[client]]\n[[client.op]]\nthink = \"5ms\"\nop = \"put\"\nkey = \"k0\"\nvalue = \"v\"\n";
    let s = parse(&format!("{GOOD}{script}")).unwrap();
    let steps = s.script.as_ref().unwrap();
    assert_eq!((steps[0].len(), steps[1].len()), (0, 1));
    assert_eq!(steps[1][0].think, std::time::Duration::from_millis(5));
    let (line, field, message) = rejected(&script.replace("\"put\"", "\"puts\""));
    assert!((14..=18).contains(&line), "line {line}");
    assert_eq!(field, "client[2].op[1]");
    assert!(message.contains("puts"), "{message}");
    let (_, field, message) = rejected(&script.replace("key =", "kee ="));
    assert_eq!(field, "client[2].op[1]");
    assert!(message.contains("key"), "{message}");
    let (_, field, _) = rejected("[[client]]\nop = []\n");
    assert_eq!(field, "topology.clients");
}

#[test]
fn swarm_bounds_and_kinds_are_checked() {
    let swarm = GOOD.replace("duration = \"2s\"", "duration = \"2s\"\nswarm = true");
    let s = parse(&swarm).unwrap();
    assert!(s.swarm.is_some());
    let drawn = s.for_seed(3);
    assert!(drawn.servers <= 3 && drawn.clients <= 2);
    assert!(drawn.drawn.as_ref().unwrap().starts_with("swarm: "));
    assert_eq!(
        s.for_seed(3).specs,
        drawn.specs,
        "a draw is a function of the seed"
    );
    let bad = swarm.replace("swarm = true", "swarm = true\nswarm_faults = [\"meteor\"]");
    let e = parse(&bad).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (5, "swarm_faults"));
    let e = parse(
        &format!("{GOOD}[[fault]]\nat = \"1s\"\ncrash = \"server-1\"\n")
            .replace("duration = \"2s\"", "duration = \"2s\"\nswarm = true"),
    )
    .unwrap_err();
    assert_eq!(e.field, "fault[1]");
}

#[test]
fn buggify_is_a_fault() {
    let s = parse(&format!(
        "{GOOD}[[fault]]\nat = \"0s\"\nbuggify = true\nrestore_after = \"1s\"\n"
    ))
    .unwrap();
    let timeline: Vec<String> = s.faults.iter().map(|(_, f)| f.to_string()).collect();
    assert_eq!(timeline, ["buggify on", "buggify off"]);
}

#[test]
fn message_faults() {
    let fault = "[[fault]]\nat = \"1s\"\nmessages = { loss = 0.05, duplicate = 0, reorder = 0.125 }\nrestore_after = \"2s\"\n";
    let s = parse(&format!("{GOOD}{fault}")).unwrap();
    let timeline: Vec<String> = s.faults.iter().map(|(_, f)| f.to_string()).collect();
    assert_eq!(
        timeline,
        [
            "messages loss 5% duplicate 0% reorder 12.5%",
            "messages off"
        ]
    );
    // As a shrinker writes it back, it reads the same.
    let faults = vec![toml::Value::Table(s.specs[0].to_toml())];
    let written = toml::to_string(&toml::Table::from_iter([("fault".into(), faults.into())]));
    let again = parse(&format!("{GOOD}{}", written.unwrap())).unwrap();
    assert_eq!(again.specs, s.specs);

    let (line, field, message) = rejected("[[fault]]\nat = \"1s\"\nmessages = { loss = 1.5 }\n");
    assert_eq!((line, field.as_str()), (13, "fault[1].messages.loss"));
    assert!(message.contains("not a chance"), "{message}");
    let (line, field, message) =
        rejected("[[fault]]\nat = \"1s\"\nmessages = { loss = 0.6, reorder = 0.6 }\n");
    assert_eq!((line, field.as_str()), (13, "fault[1].messages"));
    assert!(message.contains("more than 1"), "{message}");
    let (line, field, message) = rejected("[[fault]]\nat = \"1s\"\nmessages = { lose = 0.1 }\n");
    assert_eq!((line, field.as_str()), (13, "fault[1].messages"));
    assert!(message.contains("lose"), "{message}");
    let (line, field, _) =
        rejected("[[fault]]\nat = \"1s\"\nmessages = { loss = 0.1 }\nheal_after = \"1s\"\n");
    assert_eq!((line, field.as_str()), (14, "fault[1].heal_after"));
}

// Found by tests/scenario_fuzz.rs, or by reading what it exercised.

#[test]
fn mix_weights_are_bounded_so_that_their_sum_cannot_overflow() {
    // Once accepted, and drawing a plan then panicked (or drew from an empty range).
    let e = parse(&GOOD.replace("get = 1", "get = 4294967295")).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (10, "workload.mix.get"), "{e}");
    assert!(e.message.contains("at most 1000000"), "{e}");
}

#[test]
fn an_enormous_plan_is_rejected_before_it_is_drawn() {
    let e = parse(
        &GOOD
            .replace("clients = 2", "clients = 256")
            .replace("ops_per_client = 5", "ops_per_client = 1000000"),
    )
    .unwrap_err();
    assert_eq!(
        (e.line, e.field.as_str()),
        (9, "workload.ops_per_client"),
        "{e}"
    );
    assert!(e.message.contains("256 clients x 1000000"), "{e}");
}

#[test]
fn a_seed_range_is_bounded() {
    // A sweep collects its seeds: 2^64 of them exhausted memory.
    let e = parse(&GOOD.replace("duration", "seeds = \"0..18446744073709551615\"\nduration"))
        .unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (3, "seeds"), "{e}");
    assert!(squall::scenario::parse_seeds("0..1000000").is_ok());
    assert!(squall::scenario::parse_seeds("0..1000001").is_err());
}

#[test]
fn faults_are_bounded() {
    let fault = "[[fault]]\nat = \"1s\"\nlatency = \"5ms\"\n";
    let e = parse(&format!("{GOOD}{}", fault.repeat(1001))).unwrap_err();
    assert_eq!(e.field, "fault[1001]", "{e}");
    assert_eq!(e.line, 12 + 3 * 1000, "{e}");
    assert!(parse(&format!("{GOOD}{}", fault.repeat(1000))).is_ok());
}

#[test]
fn a_missing_field_is_named_not_its_neighbour() {
    // Once named `name`, the first key of the file.
    let e = parse(&GOOD.replace("duration = \"2s\"\n", "")).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (1, "duration"), "{e}");
    let e = parse(&GOOD.replace("clients = 2\n", "")).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (4, "topology.clients"), "{e}");
}

#[test]
fn every_rejection_names_a_line_and_a_field() {
    // Once line 0 and no field for an empty file, and garbage named as a field.
    let e = parse("").unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (1, "name"), "{e}");
    let e = parse("\u{0}\u{1} = 3").unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (1, "(top level)"), "{e}");
    let e = parse(&GOOD.replace("clients = 2", "cli\u{7}ents = 2")).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (6, "topology"), "{e}");
    assert_eq!(
        e.to_string().lines().count(),
        1,
        "one line: {:?}",
        e.to_string()
    );
}

#[test]
fn a_file_that_is_not_utf8_names_its_line() {
    let dir = std::env::temp_dir().join(format!("squall-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    let mut bytes = GOOD.as_bytes().to_vec();
    bytes.splice(
        GOOD.find("clients").unwrap()..GOOD.find("clients").unwrap(),
        [0xff],
    );
    std::fs::write(&file, bytes).unwrap();
    let e = Scenario::load(&file, &Registry::shipped()).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (6, "topology"), "{e}");
    assert!(e.message.contains("not UTF-8"), "{e}");
    std::fs::write(&file, vec![b'#'; squall::scenario::MAX_FILE_BYTES + 1]).unwrap();
    let e = Scenario::load(&file, &Registry::shipped()).unwrap_err();
    assert!(e.message.contains("more than the limit"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn limits() {
    let s = parse(GOOD).unwrap();
    assert_eq!(s.limits, squall::scenario::Limits::default());
    let s = parse(&format!(
        "{GOOD}[limits]\nbudget = \"5s\"\novertime = \"1m\"\n"
    ))
    .unwrap();
    assert_eq!(s.limits.budget.as_secs(), 5);
    assert_eq!(s.limits.overtime.as_secs(), 60);
    let (line, field, _) = rejected("[limits]\nbudget = \"0s\"\n");
    assert_eq!((line, field.as_str()), (12, "limits.budget"));
    let (line, field, _) = rejected("[limits]\novertime = \"later\"\n");
    assert_eq!((line, field.as_str()), (12, "limits.overtime"));
}

#[test]
fn a_swarm_tosses_max_age_and_narrows_the_mix_with_it() {
    let s = Scenario::load(
        &common::root().join("scenarios/watch/swarm.toml"),
        &Registry::shipped(),
    )
    .unwrap();
    assert!(s.bucket.max_age.is_some() && s.workload.mix.contains_key("get"));
    let (mut on, mut off) = (0, 0);
    for seed in 0..16 {
        let drawn = s.for_seed(seed);
        match drawn.bucket.max_age {
            Some(_) => {
                on += 1;
                assert!(drawn.drawn.as_ref().unwrap().ends_with("max_age=on"));
                assert!(drawn
                    .workload
                    .mix
                    .keys()
                    .all(|op| squall::scenario::ages_well(op)));
            }
            None => {
                off += 1;
                assert_eq!(drawn.workload.mix, s.workload.mix);
            }
        }
        // The draw, written out as a plain scenario, reads back as what ran.
        let text = toml::to_string(&drawn.concrete()).unwrap();
        let back = parse(&text).unwrap();
        assert_eq!(back.workload.mix, drawn.workload.mix, "seed {seed}");
        assert_eq!(back.bucket.max_age, drawn.bucket.max_age, "seed {seed}");
    }
    assert!(on > 0 && off > 0, "{on} on, {off} off");
}

#[test]
fn a_mix_spread_over_lines_names_the_line_of_the_operation() {
    // Found by the fuzz test: an inline table may span lines (TOML 1.1), and an unknown
    // operation was named on the table's first line.
    let text = GOOD.replace("get = 1,", "get = 1,\n  cats = 2,");
    let e = parse(&text).unwrap_err();
    assert_eq!(e.field, "workload.mix.cats", "{e}");
    let line = text.lines().nth(e.line - 1).unwrap();
    assert!(line.contains("cats"), "{e}: line {line:?}");
}

#[test]
fn a_number_past_tomls_integers_is_an_error_not_a_panic() {
    // Found by the fuzz test: a u64 field read it, then re-reading the file as TOML panicked.
    let text = std::fs::read_to_string(common::root().join("scenarios/spark/swarm.toml")).unwrap();
    let (at, _) = text.split_once("quota = ").unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("quota = "))
        .unwrap()
        + 1;
    let text = format!("{at}quota = 18446744073709551615\n");
    let e = parse(&text).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (line, "spark.quota"), "{e}");
}

#[test]
fn a_mix_key_apart_from_its_value_names_the_key_line() {
    // Found by the fuzz test: in an inline table spread over lines, a key and its `=` may
    // sit on different lines.
    let text = GOOD.replace("get = 1,", "get = 1,\n  cats\n = 2,");
    let e = parse(&text).unwrap_err();
    assert_eq!(e.field, "workload.mix.cats", "{e}");
    let line = text.lines().nth(e.line - 1).unwrap();
    assert!(line.contains("cats"), "{e}: line {line:?}");
}

#[test]
fn expect_answered_only_without_faults() {
    let s = parse(&format!("{GOOD}[expect]\nanswered = true\n")).unwrap();
    assert!(s.expect.answered);
    assert!(!parse(GOOD).unwrap().expect.answered);
    let (line, field, message) =
        rejected("[[fault]]\nat = \"1s\"\ncrash = \"server-1\"\n[expect]\nanswered = true\n");
    assert_eq!((line, field.as_str()), (15, "expect.answered"));
    assert!(message.contains("faults"), "{message}");
}

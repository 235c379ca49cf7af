//! Live mode against redis-servers these tests start themselves (free loopback ports, a
//! store folder each, stopped at the end): FlowFabric's real Lua library driven by the
//! suspension scenarios, and what squall guarantees about everything else on the server.

mod common;

use std::sync::Arc;

use common::backend;
use squall::check::Verdict;
use squall::live::{self, Flavor, Server};
use squall::protocol::Protocol;
use squall::protocols::suspension::Suspension;
use squall::protocols::Registry;
use squall::report::Outcome;
use squall::scenario::Scenario;
use squall::sweep;

const BACKEND: &str = "suspension/flowfabric-redis";

/// A redis-server of this test's own, not shared with other tests.
fn own() -> Arc<Server> {
    Arc::new(Server::start(Flavor::Redis).unwrap_or_else(|e| panic!("{e}")))
}

fn conn(server: &Server) -> redis::Connection {
    redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

fn cmd(conn: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(conn).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// The code of the library called `name`, if any.
fn library(conn: &mut redis::Connection, name: &str) -> Option<String> {
    let v = cmd(conn, &["FUNCTION", "LIST", "LIBRARYNAME", name, "WITHCODE"]);
    let redis::Value::Array(libs) = v else {
        return None;
    };
    libs.iter().find_map(|lib| {
        let redis::Value::Array(kv) = lib else {
            return None;
        };
        let text = |v: &redis::Value| redis::from_redis_value::<String>(v.clone()).ok();
        let fields: Vec<_> = kv.chunks(2).map(|p| (text(&p[0]), text(&p[1]))).collect();
        let named = fields
            .iter()
            .any(|(k, v)| k.as_deref() == Some("library_name") && v.as_deref() == Some(name));
        let code = fields
            .into_iter()
            .find(|(k, _)| k.as_deref() == Some("library_code"));
        named.then_some(code?.1).flatten()
    })
}

/// A short suspension scenario of two clients.
fn scenario() -> Scenario {
    let text = r#"
        name = "live-redis"
        protocol = "suspension"
        duration = "3s"
        timeout = "500ms"
        [topology]
        servers = 1
        clients = 2
        [workload]
        keys = 2
        ops_per_client = 40
        mix = { claim = 3, renew = 2, suspend = 2, deliver = 3, rotate = 1, register = 1, caps = 1 }
        think = { min = "5ms", max = "20ms" }
    "#;
    Scenario::parse("live-redis.toml".as_ref(), text, &Registry::shipped())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// One run of the short scenario on `server`: its verdict, or why it could not run.
fn run_on(server: &Arc<Server>) -> Result<Verdict, String> {
    let s = scenario();
    let plan = Suspension::plan(&s, 1);
    let backend = backend(BACKEND).live::<Suspension>(&s).unwrap();
    let history = live::run_on::<Suspension>(&s, &plan, backend, server.clone())?;
    Ok(Suspension::check(&s, &history))
}

/// Every suspension scenario holds against FlowFabric's Lua, crashes included (squall
/// kills and restarts its own redis-server, which fsyncs every write).
#[test]
fn suspension_scenarios_hold() {
    let mut failures = String::new();
    let mut runs = 0;
    for s in common::live_scenarios("suspension", BACKEND) {
        for seed in 0..2 {
            let run = sweep::run(&s, &backend(BACKEND), seed);
            runs += 1;
            if run.verdict != Outcome::Ok {
                failures.push_str(&run.report(&s.path));
            }
        }
    }
    assert_eq!(runs, 12);
    assert!(failures.is_empty(), "{failures}");
}

/// A run reads and writes only its namespace: someone else's keys (FlowFabric keys of
/// another deployment among them) and function library are as they were; the namespace a
/// dead squall process left is removed; the library squall loaded is removed again.
#[test]
fn runs_touch_only_their_namespace_and_clean_leftovers() {
    let server = own();
    let mut c = conn(&server);
    let theirs = "#!lua name=theirs\nredis.register_function('theirs_f', function() return 1 end)";
    cmd(&mut c, &["FUNCTION", "LOAD", theirs]);
    let keys = [
        "app:k",
        "ff:exec:{p:0}:e0:core",
        "ff:idx:{p:0}:lane:default:eligible",
    ];
    for k in keys {
        cmd(&mut c, &["SET", k, "theirs"]);
    }
    let dead = live::namespace(0).replace(&format!("_{}_", std::process::id()), "_999999999_");
    assert!(live::leftover(&dead), "{dead}");
    let left = format!("ff:exec:{{{dead}:p:0}}:e0:core");
    cmd(&mut c, &["SET", &left, "left"]);

    assert_eq!(run_on(&server), Ok(Verdict::Ok));

    for k in keys {
        assert_eq!(
            cmd(&mut c, &["GET", k]),
            redis::Value::BulkString(b"theirs".to_vec())
        );
    }
    assert_eq!(cmd(&mut c, &["EXISTS", &left]), redis::Value::Int(0));
    assert_eq!(
        cmd(&mut c, &["DBSIZE"]),
        redis::Value::Int(keys.len() as i64)
    );
    assert_eq!(library(&mut c, "theirs").as_deref(), Some(theirs));
    assert_eq!(
        library(&mut c, "flowfabric"),
        None,
        "squall loaded it: it removes it"
    );
}

/// FCALL names are global, so squall uses a `flowfabric` library already there only if it
/// is ff-script 0.2.0's, and then leaves it there.
#[test]
fn an_identical_library_is_used_and_kept() {
    let server = own();
    let mut c = conn(&server);
    cmd(&mut c, &["FUNCTION", "LOAD", ff_script::LIBRARY_SOURCE]);
    assert_eq!(run_on(&server), Ok(Verdict::Ok));
    assert_eq!(
        library(&mut c, "flowfabric").as_deref(),
        Some(ff_script::LIBRARY_SOURCE)
    );
    assert_eq!(cmd(&mut c, &["DBSIZE"]), redis::Value::Int(0));
}

/// A different library called `flowfabric` is refused with a clear error, and left as it
/// was; the run writes nothing.
#[test]
fn a_different_library_is_refused_and_left_alone() {
    let server = own();
    let mut c = conn(&server);
    let other =
        "#!lua name=flowfabric\nredis.register_function('ff_other', function() return 2 end)";
    cmd(&mut c, &["FUNCTION", "LOAD", other]);
    let err = run_on(&server).unwrap_err();
    assert!(
        err.contains("already has a function library \"flowfabric\" that is not ff-script 0.2.0's"),
        "{err}"
    );
    assert_eq!(library(&mut c, "flowfabric").as_deref(), Some(other));
    assert_eq!(cmd(&mut c, &["DBSIZE"]), redis::Value::Int(0));
}

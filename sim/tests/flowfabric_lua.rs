//! The model against FlowFabric's real Lua library (`ff-script` 0.2.0, v6) in a real
//! `redis-server`: seeded random operation sequences from the suspension workload, driven
//! through FCALL by `suspension/flowfabric-redis`'s client; the model must accept every
//! answer the library gives.
//!
//! The test starts its own `redis-server` on a free 127.0.0.1 port without persistence and
//! stops it when done. Its keys live in the namespace `squall_lua`. Live: it reads the wall
//! clock (for its time limit and through Redis's `TIME`); Lua functions read `TIME` once per
//! call, so each answer is judged at every millisecond between a `TIME` read just before the
//! call and one just after, with the deadlines the operation sent as they are.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use squall::live::{Flavor, Proxy, Way};
use squall::protocol::Protocol;
use squall::protocols::suspension::backends::redis::{Library, Redis};
use squall::protocols::suspension::backends::SuspClient;
use squall::protocols::suspension::{params, Suspension};
use squall::protocols::Registry;
use squall::scenario::Scenario;
use squall_models::suspension::{Params, State, SuspOp, SuspRet, SuspensionModel as Model};
use squall_models::Answer as _;
use squall_models::Model as _;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SEQUENCES: u64 = 200;
const OPS: usize = 40;
const LIMIT: Duration = Duration::from_secs(90);
/// More candidate states than this means the bracket times never pin down.
const STATES: usize = 64;

const SCENARIO: &str = r#"
name = "differential"
protocol = "suspension"
duration = "1s"
[topology]
servers = 1
clients = 1
[workload]
keys = 2
ops_per_client = 1
mix = { claim = 4, reclaim = 2, renew = 3, mark_expired = 2, create_pending = 2, suspend = 4, deliver = 5, buffer = 2, resume = 1, expire_suspension = 2, close_waitpoint = 1, rotate = 2, list_kids = 1, register = 1, caps = 1 }
[suspension]
lease_ttl = "40ms"
grace = "25ms"
timeout = "50ms"
"#;

/// Our own `redis-server`, stopped on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start() -> (Server, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start redis-server ({e}); install it with: apt-get install -y redis-server"
            )
        });
    (Server(child), format!("redis://127.0.0.1:{port}/"))
}

/// A client of the server at `url` once it is up, the library loaded.
async fn connect(url: &str, params: Params) -> Redis {
    for _ in 0..100 {
        let mut r = Redis::new(url, "squall_lua", params.clone(), Duration::from_secs(5));
        match Library::acquire(&mut r).await {
            Ok(()) => return r,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("redis-server did not come up")
}

#[tokio::test(flavor = "current_thread")]
async fn the_model_accepts_what_the_lua_answers() {
    let (_server, url) = start();
    let scenario =
        Scenario::parse("differential.toml".as_ref(), SCENARIO, &Registry::shipped()).unwrap();
    let model = Model::new(params(&scenario));
    let mut redis = connect(&url, model.params.clone()).await;
    let began = Instant::now();
    let (mut ops, mut sequences) = (0, 0);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for seed in 0..SEQUENCES {
        if began.elapsed() > LIMIT {
            break;
        }
        redis.reset().await.unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut memory = Default::default();
        let mut states: Vec<State> = vec![model.init()];
        let mut done: Vec<String> = vec![];
        for n in 0..OPS {
            let intent = Suspension::draw(&scenario, 1, n, &mut rng);
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..8))).await;
            let before = redis.time().await.unwrap();
            // Stamped with the machine's clock; the deadlines it sets go to the Lua as they are.
            let op = <Suspension as Protocol>::op(&memory, &intent);
            let ret = redis.call(&op).await.unwrap();
            let after = redis.time().await.unwrap();
            let mut next: Vec<State> = vec![];
            for t in before..=after {
                // The Lua reads `TIME` once: judge the answer at each millisecond it may have.
                let mut at = op.clone();
                *at.now_mut() = t;
                for s in &states {
                    if let Some(n) = model.step(s, &at, Some(&ret)) {
                        if !next.contains(&n) {
                            next.push(n);
                        }
                    }
                }
            }
            done.push(format!("{op} -> {ret}"));
            if next.is_empty() {
                let (_, want) = model.apply(&states[0], &op, None);
                panic!(
                    "sequence {seed}, operation {n}: the Lua answered {ret}, the model {want} (times {before}..={after}); model state {:?}\n{}",
                    states[0],
                    done.join("\n")
                );
            }
            next.truncate(STATES);
            states = next;
            Suspension::learn(&mut memory, &op, &ret);
            ops += 1;
            *seen.entry(kind(&op.to_string(), &ret)).or_default() += 1;
        }
        sequences += 1;
    }
    println!("{sequences} sequences, {ops} operations: every answer accepted");
    for (kind, count) in &seen {
        println!("{count:6}  {kind}");
    }
    assert!(
        sequences >= 20,
        "only {sequences} sequences within {LIMIT:?}"
    );
}

/// An operation's name and its answer's head, for the tally.
fn kind(op: &str, ret: &SuspRet) -> String {
    let head = match ret {
        SuspRet::Ok(f) | SuspRet::AlreadySatisfied(f) | SuspRet::Duplicate(f) => {
            let status = ret.to_string();
            let status = status.split(' ').next().unwrap_or("").to_string();
            let word = f
                .iter()
                .find(|x| x.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !x.is_empty());
            format!("{status} {}", word.map_or("", String::as_str))
        }
        other => other.to_string(),
    };
    format!("{} -> {head}", op.split(' ').next().unwrap_or(""))
}

/// An operation whose answer was lost is settled at the server's millisecond it ran, read
/// back on a later call of its client (not one cut off before it could ask); one whose
/// request was lost is left as it was sent.
#[tokio::test(flavor = "current_thread")]
async fn a_lost_answer_is_settled_when_it_ran() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let (_server, url) = start();
            let mut admin = connect(&url, Params::default()).await;
            admin.reset().await.unwrap();
            let addr = url.trim_start_matches("redis://").trim_end_matches('/');
            let zero = (Duration::ZERO, Duration::ZERO);
            let proxy = Proxy::start(addr.parse().unwrap(), zero, ChaCha8Rng::seed_from_u64(0))
                .await
                .unwrap();
            let mut client = Redis::new(
                &Flavor::Redis.url(proxy.addr()),
                "squall_lua",
                Params::default(),
                Duration::from_secs(1),
            );
            let start = admin.time().await.unwrap();
            let list = SuspOp::ListKids {
                eid: "e0".into(),
                now: start,
            };
            // One transaction, no read before it that a cut answer would stall; stamped a
            // minute early, as no caller's clock would be.
            let scan = |eid: &str| SuspOp::MarkExpired {
                eid: eid.into(),
                now: start - 60_000,
            };
            let patience = Duration::from_millis(300);
            assert_eq!(settle(&mut client, &list).await, None);

            // Answers cut: the scan runs; a call while requests are cut too cannot ask.
            proxy.cut(Way::Down);
            let before = admin.time().await.unwrap();
            let lost = tokio::time::timeout(patience, client.call(&scan("e0"))).await;
            assert!(lost.is_err(), "answers cut, yet {lost:?}");
            let after = admin.time().await.unwrap();
            proxy.cut(Way::Up);
            let asked = tokio::time::timeout(patience, client.call(&list)).await;
            assert!(asked.is_err(), "cut off, yet {asked:?}");
            assert_eq!(client.settled(), None);
            proxy.heal(Way::Up);
            proxy.heal(Way::Down);
            let (sent, ran) = settle(&mut client, &list)
                .await
                .expect("the scan ran, its answer lost");
            assert_eq!(sent, scan("e0"));
            let at = *ran.clone().now_mut();
            assert!((before..=after).contains(&at), "{before}..={after}: {ran}");
            assert_eq!(
                ran,
                SuspOp::MarkExpired {
                    eid: "e0".into(),
                    now: at
                }
            );

            // Requests cut: the scan never ran.
            proxy.cut(Way::Up);
            let lost = tokio::time::timeout(patience, client.call(&scan("e1"))).await;
            assert!(lost.is_err(), "requests cut, yet {lost:?}");
            proxy.heal(Way::Up);
            assert_eq!(settle(&mut client, &list).await, None);
        })
        .await;
}

/// What the first call of `op` that reaches the server settles (the first after a cut may
/// find its connection reset, and sends nothing).
async fn settle(client: &mut Redis, op: &SuspOp) -> Option<(SuspOp, SuspOp)> {
    for _ in 0..3 {
        let answer = client.call(op).await.unwrap();
        let settled = client.settled();
        if answer != SuspRet::NotConnected {
            assert!(answer.is_ok(), "{answer}");
            return settled;
        }
        assert_eq!(settled, None);
    }
    panic!("no connection after three calls")
}

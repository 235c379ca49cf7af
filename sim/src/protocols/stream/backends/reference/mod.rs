//! `stream/reference`: a Durable Streams server of squall's own, and its mutants.
//!
//! # Design
//!
//! One server host. HTTP handlers (axum, served by hyper over turmoil TCP) parse a request
//! into an operation and hand it to the store task, which owns the streams, the host's disk
//! and clock: it applies operations one at a time (so validation and append are serialised
//! per stream and producer, as the spec requires), writes the whole store to
//! `node.disk` and syncs before it answers, so whatever was acknowledged survives a crash.
//! A restarted server loads the store back.
//!
//! Offsets are 16 hex digits of a position that runs on across deletes: a name's next
//! stream starts past the last offset its previous one showed. Expiry (`Stream-TTL`) reads
//! `node.clock`. A long-poll at the tail waits for the store to change, up to half the
//! client timeout, and then answers 204.
//!
//! # Mutants
//!
//! The same code with one planted bug, chosen by [`Bug`].

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, Response};
use axum::Router;
use squall_models::stream::{Producer, StreamError, StreamOp, StreamRet};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

use super::http::{self, BASE};
use crate::world::{Node, Software};

mod store;

use store::Store;

/// A planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bug {
    /// No dedup: a producer's retry of an append it already made is appended again
    /// (Redpanda before 21.10.2, F5-01).
    DuplicateAppend,
    /// A producer's stale epoch is taken as a new one instead of fenced with 403.
    StaleEpoch,
    /// `Stream-Seq` compared as a number when both parse (`"10"` after `"9"`).
    SeqAsNumber,
    /// A stream created again after a delete starts its offsets from zero again.
    OffsetReuse,
    /// Closure is kept in memory only: a restarted server reopens every stream.
    ClosureLost,
    /// A producer's sequence gap is appended instead of answered 409 (a lost append goes
    /// unnoticed).
    GapAccepted,
    /// A new producer epoch is taken at any sequence number, not only from 0.
    EpochAnySeq,
}

impl Bug {
    /// The seq-as-number mutant's `Stream-Seq` order: two numbers compare as numbers.
    fn seq_after(self, new: &str, last: &str) -> Option<bool> {
        match (self, new.parse::<u64>(), last.parse::<u64>()) {
            (Bug::SeqAsNumber, Ok(n), Ok(l)) => Some(n > l),
            _ => None,
        }
    }

    pub const ALL: [Bug; 7] = [
        Bug::DuplicateAppend,
        Bug::StaleEpoch,
        Bug::SeqAsNumber,
        Bug::OffsetReuse,
        Bug::ClosureLost,
        Bug::GapAccepted,
        Bug::EpochAnySeq,
    ];

    /// The backend's name on the command line, and its bug in one line.
    fn named(self) -> (&'static str, &'static str) {
        match self {
            Bug::DuplicateAppend => (
                "stream/mutant-duplicate-append",
                "no producer dedup: a retried append is appended again",
            ),
            Bug::StaleEpoch => (
                "stream/mutant-stale-epoch",
                "a stale producer epoch is accepted instead of fenced",
            ),
            Bug::SeqAsNumber => (
                "stream/mutant-seq-as-number",
                "Stream-Seq compared as a number, not bytewise",
            ),
            Bug::OffsetReuse => (
                "stream/mutant-offset-reuse",
                "offsets start from zero again after delete and re-create",
            ),
            Bug::ClosureLost => (
                "stream/mutant-closure-lost",
                "closure kept in memory only: lost on restart",
            ),
            Bug::GapAccepted => (
                "stream/mutant-gap-accepted",
                "a producer's sequence gap is appended instead of answered 409",
            ),
            Bug::EpochAnySeq => (
                "stream/mutant-epoch-any-seq",
                "a new producer epoch is accepted at any sequence number, not only 0",
            ),
        }
    }

    /// The backend's name on the command line.
    pub fn backend(self) -> &'static str {
        self.named().0
    }

    /// The bug, in one line.
    pub fn about(self) -> &'static str {
        self.named().1
    }
}

/// The reference server, or with `bug` one of its mutants.
pub fn serve(node: Node, bug: Option<Bug>) -> Software {
    Box::pin(async move {
        let (tx, rx) = mpsc::unbounded_channel();
        let poll = node.timeout / 2;
        tokio::task::spawn_local(keep(node, bug, rx));
        let router = Router::new()
            .fallback(handle)
            .with_state(Handler { store: tx, poll });
        http::serve(router).await
    })
}

/// What the store answers: the answer, whether the stream is JSON, and a receiver that
/// wakes when the store next changes (for long-polls).
type Reply = (StreamRet, bool, watch::Receiver<()>);
type Command = (StreamOp, oneshot::Sender<Reply>);

#[derive(Clone)]
struct Handler {
    store: mpsc::UnboundedSender<Command>,
    poll: Duration,
}

const FILE: &str = "streams.json";

/// The store task: loads the store from disk, then applies operations in turn.
async fn keep(node: Node, bug: Option<Bug>, mut ops: mpsc::UnboundedReceiver<Command>) {
    let mut store: Store = node
        .disk
        .read(FILE)
        .map(|bytes| serde_json::from_slice(&bytes).expect("the store file is ours"))
        .unwrap_or_default();
    if bug == Some(Bug::ClosureLost) {
        for log in store.streams.values_mut() {
            log.closed = false;
            log.closer = None;
        }
    }
    let (changed, _) = watch::channel(());
    while let Some((op, reply)) = ops.recv().await {
        let now = node.clock.now().as_millis() as u64;
        let ret = store.apply(&op, now, bug);
        if !matches!(op, StreamOp::Read { .. } | StreamOp::Head { .. }) {
            node.disk.write(
                FILE,
                &serde_json::to_vec(&store).expect("a store serializes"),
            );
            node.disk.sync();
            changed.send_replace(());
        }
        let _ = reply.send((ret, store.json(op.stream()), changed.subscribe()));
    }
}

async fn handle(State(h): State<Handler>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 << 20).await else {
        return bad("bad-request");
    };
    let op = match parse(
        &parts.method,
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
        &body,
    ) {
        Ok(op) => op,
        Err(kind) => return bad(kind),
    };
    let ask = |op: StreamOp| {
        let store = h.store.clone();
        async move {
            let (tx, rx) = oneshot::channel();
            store.send((op, tx)).ok()?;
            rx.await.ok()
        }
    };
    let Some((mut ret, mut json, mut changes)) = ask(op.clone()).await else {
        return Response::builder().status(503).body(Body::empty()).unwrap();
    };
    let wait = matches!(op, StreamOp::Read { wait: true, .. });
    // tokio's Instant: turmoil drives it inside a simulation (simulated time).
    let deadline = tokio::time::Instant::now() + h.poll;
    // A long-poll at the tail of an open stream waits for a change, then reads again.
    while wait
        && matches!(&ret, StreamRet::Read { data, closed: false, .. } if data.is_empty())
        && tokio::time::timeout_at(deadline, changes.changed())
            .await
            .is_ok_and(|r| r.is_ok())
    {
        let Some(again) = ask(op.clone()).await else {
            break;
        };
        (ret, json, changes) = again;
    }
    http::response(&ret, json, wait)
}

fn bad(kind: &str) -> Response<Body> {
    let e = StreamError::BadRequest { kind: kind.into() };
    http::response(&StreamRet::Err(e), false, false)
}

/// The operation a request asks for, or the 400 problem type it earns.
fn parse(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<StreamOp, &'static str> {
    let stream = path
        .strip_prefix(BASE)
        .and_then(|p| p.strip_prefix('/'))
        .filter(|s| !s.is_empty())
        .ok_or("invalid-stream-name")?
        .to_string();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let json =
        text("content-type").is_some_and(|t| t.eq_ignore_ascii_case(http::content_type(true)));
    let close = text(http::CLOSED).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    Ok(match *method {
        Method::PUT => StreamOp::Create {
            stream,
            json,
            ttl: text(http::TTL)
                .map(|t| t.parse().map_err(|_| "bad-request"))
                .transpose()?,
        },
        Method::POST if body.is_empty() && close && text(http::PRODUCER_ID).is_none() => {
            StreamOp::Close { stream }
        }
        Method::POST => StreamOp::Append {
            data: messages(json, body)?,
            seq: text(http::SEQ).map(str::to_string),
            producer: producer(headers)?,
            stream,
            json,
            close,
        },
        Method::GET => {
            let mut from = None;
            let mut wait = false;
            for pair in query.unwrap_or("").split('&') {
                match pair.split_once('=') {
                    Some(("offset", "-1")) => from = None,
                    Some(("offset", o)) => from = Some(o.to_string()),
                    Some(("live", "long-poll")) => wait = true,
                    _ => {}
                }
            }
            StreamOp::Read { stream, from, wait }
        }
        Method::HEAD => StreamOp::Head { stream },
        Method::DELETE => StreamOp::Delete { stream },
        _ => return Err("bad-request"),
    })
}

/// A body's messages: a JSON array flattened one level, or the bytes as one message.
fn messages(json: bool, body: &[u8]) -> Result<Vec<String>, &'static str> {
    if !json {
        let text = String::from_utf8_lossy(body).into_owned();
        return Ok(if text.is_empty() { vec![] } else { vec![text] });
    }
    let text = |v: serde_json::Value| match v {
        serde_json::Value::String(s) => s,
        v => v.to_string(),
    };
    match serde_json::from_slice(body).map_err(|_| "invalid-json")? {
        serde_json::Value::Array(values) => Ok(values.into_iter().map(text).collect()),
        value => Ok(vec![text(value)]),
    }
}

/// The producer headers: all three or none.
fn producer(headers: &HeaderMap) -> Result<Option<Producer>, &'static str> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // "a non-negative integer <= 2^53-1", in decimal without a sign or leading zeros.
    let number = |v: &str| match v.parse::<u64>() {
        Ok(n) if v == n.to_string() && n < 1 << 53 => Ok(n),
        _ => Err("bad-request"),
    };
    match (
        text(http::PRODUCER_ID),
        text(http::PRODUCER_EPOCH),
        text(http::PRODUCER_SEQ),
    ) {
        (None, None, None) => Ok(None),
        (Some(id), Some(epoch), Some(seq)) if !id.is_empty() => Ok(Some(Producer {
            id: id.to_string(),
            epoch: number(epoch)?,
            seq: number(seq)?,
        })),
        _ => Err("bad-request"),
    }
}

//! Durable Streams with idempotent producers (spec `a347312`, as `durable-streams-server`
//! 0.2.0 implements it), as a model that judges a backend's answers.
//!
//! A stream is named, has a content type (bytes or JSON), maybe a TTL, and holds messages;
//! it can be closed (for good) and deleted. Operations:
//!
//! - `create`: 201 new; 200 when the stream exists with the same configuration (content
//!   type, TTL, and closure status: a closed stream answers 409 to a create without
//!   `Stream-Closed`); 409 `already-exists` otherwise.
//! - `append`: an empty body (or JSON `[]`) is 400 before anything else; then 404, then, for
//!   a plain append, closed (409 `stream-closed`) > content type (409) > `Stream-Seq` (409
//!   `sequence-conflict` unless strictly greater, bytewise, than the stream's last); a JSON
//!   array is flattened one level into messages.
//! - an idempotent producer's append (`Producer-Id`/`-Epoch`/`-Seq`): content type; a stale
//!   epoch is 403 with the current one; on a closed stream only the tuple that closed it
//!   answers 204, any other 409 `stream-closed`, but a retry of an append made before the
//!   close may answer either (the spec's closed-stream rule says 409, its validation logic
//!   a 204 duplicate); the same epoch with `seq <= last` is a 204
//!   duplicate echoing the producer's state; a new epoch must start at 0 (else 400); a gap
//!   is 409 with the expected and received sequence; a new producer must start at 0.
//! - `close`: close-only, idempotent. `read`: catch-up from the start or an offset, or
//!   long-poll (a read that may wait, answering empty at the tail). `head`, `delete`.
//!
//! Offsets are the server's: the model judges rather than predicts them. It remembers the
//! next offset seen after each count of messages, and holds every offset to be stable,
//! strictly increasing with the count, and greater than every offset the name had before
//! it was deleted and created again (a reader resuming with an old offset must not skip the
//! new stream's data).
//!
//! Time is an argument: each operation carries the window of simulated time it ran in
//! ([`Timed`]), and a TTL makes an expiry window that later answers narrow.

use imbl::{OrdMap, Vector};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

use crate::{Answer, Model};

/// Milliseconds of simulated time.
pub type Ms = u64;

/// An idempotent producer's `(Producer-Id, Producer-Epoch, Producer-Seq)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Producer {
    pub id: String,
    pub epoch: u64,
    pub seq: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum StreamOp {
    /// PUT: `json` picks `application/json` over `application/octet-stream`.
    Create {
        stream: String,
        json: bool,
        ttl: Option<u64>,
    },
    /// POST with a body: `data` is the messages (one for a bytes stream; a JSON array's
    /// elements for a JSON one; empty for an empty body). `json` is the content type sent.
    Append {
        stream: String,
        json: bool,
        data: Vec<String>,
        seq: Option<String>,
        producer: Option<Producer>,
        close: bool,
    },
    /// POST of one message with producer headers that break the rules (some missing, an
    /// empty id, a number with a sign, a leading zero or a fraction, or past 2^53 - 1):
    /// `headers` as sent. A 400, and no effect.
    Garbled {
        stream: String,
        json: bool,
        headers: Vec<(String, String)>,
    },
    /// POST with `Stream-Closed: true` and no body.
    Close {
        stream: String,
    },
    /// GET from `from` (`None`: the start); `wait`: long-poll.
    Read {
        stream: String,
        from: Option<String>,
        wait: bool,
    },
    Head {
        stream: String,
    },
    Delete {
        stream: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "ret")]
pub enum StreamRet {
    /// 201 (`new`) or 200.
    Created {
        next: String,
        new: bool,
    },
    /// 200 with producer headers (echoing epoch and seq), 204 without.
    Appended {
        next: String,
        closed: bool,
        producer: Option<(u64, u64)>,
    },
    /// 204 to a producer: already appended; the producer's epoch and last seq.
    Duplicate {
        next: String,
        epoch: u64,
        seq: u64,
        closed: bool,
    },
    /// 204 to a close.
    Closed {
        next: String,
    },
    /// 200 (or 204 when a long-poll timed out: no data). Bytes streams read as one string.
    Read {
        data: Vec<String>,
        next: String,
        up_to_date: bool,
        closed: bool,
    },
    Meta {
        json: bool,
        next: String,
        closed: bool,
    },
    Deleted,
    Err(StreamError),
}

/// An error answer: its status and problem type (`application/problem+json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "error")]
pub enum StreamError {
    /// 404 `not-found` (missing or expired).
    NotFound,
    /// 409 `already-exists`: a create with another configuration.
    Exists,
    /// 409 `content-type-mismatch`.
    ContentType,
    /// 409 `stream-closed`, with `Stream-Next-Offset`.
    StreamClosed { next: String },
    /// 409 `sequence-conflict`: `Stream-Seq` not above the last.
    SeqOrder,
    /// 409 `sequence-conflict` with `Producer-Expected-Seq` and `Producer-Received-Seq`.
    Gap { expected: u64, received: u64 },
    /// 403 `producer-epoch-fenced` with the current `Producer-Epoch`.
    Fenced { current: u64 },
    /// 400, with the problem type (`empty-body`, `empty-array`, `bad-request`).
    BadRequest { kind: String },
    /// Any other status: never right.
    Other { status: u16, kind: String },
}

impl StreamError {
    pub fn status(&self) -> u16 {
        match self {
            StreamError::NotFound => 404,
            StreamError::Fenced { .. } => 403,
            StreamError::BadRequest { .. } => 400,
            StreamError::Other { status, .. } => *status,
            _ => 409,
        }
    }

    /// The problem type's last segment, e.g. `stream-closed`.
    pub fn kind(&self) -> &str {
        match self {
            StreamError::NotFound => "not-found",
            StreamError::Exists => "already-exists",
            StreamError::ContentType => "content-type-mismatch",
            StreamError::StreamClosed { .. } => "stream-closed",
            StreamError::SeqOrder | StreamError::Gap { .. } => "sequence-conflict",
            StreamError::Fenced { .. } => "producer-epoch-fenced",
            StreamError::BadRequest { kind } | StreamError::Other { kind, .. } => kind,
        }
    }

    /// The 400 an empty append gets: `empty-array` on a JSON body, else `empty-body`.
    pub fn empty(json: bool) -> StreamError {
        let kind = if json { "empty-array" } else { "empty-body" };
        StreamError::BadRequest { kind: kind.into() }
    }
}

impl StreamOp {
    pub fn stream(&self) -> &str {
        match self {
            StreamOp::Create { stream, .. }
            | StreamOp::Append { stream, .. }
            | StreamOp::Garbled { stream, .. }
            | StreamOp::Close { stream }
            | StreamOp::Read { stream, .. }
            | StreamOp::Head { stream }
            | StreamOp::Delete { stream } => stream,
        }
    }
}

impl Answer for StreamRet {
    fn is_ok(&self) -> bool {
        !matches!(self, StreamRet::Err(_))
    }
}

/// An operation with the window of simulated time it ran in: from its invocation to its
/// answer (`Ms::MAX` when the answer never came).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timed {
    pub op: StreamOp,
    pub from: Ms,
    pub to: Ms,
}

/// What a name holds: the stream that lives under it, and the greatest offset it ever
/// showed, across deletes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Name {
    pub live: Option<Stream>,
    pub high: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Stream {
    pub json: bool,
    pub ttl: Option<u64>,
    /// Expires somewhere in `[lo, hi]` (ms): narrowed by what answers show.
    pub expiry: Option<(Ms, Ms)>,
    pub messages: Vector<String>,
    /// The next offset seen after this many messages.
    pub marks: OrdMap<usize, String>,
    pub closed: bool,
    /// The producer tuple whose append closed the stream.
    pub closer: Option<Producer>,
    pub last_seq: Option<String>,
    /// Producer id -> (epoch, last seq).
    pub producers: OrdMap<String, (u64, u64)>,
}

/// Every name's state, by name.
pub type State = BTreeMap<String, Name>;

/// The Durable Streams model.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamModel;

impl Model for StreamModel {
    type State = State;
    type Op = Timed;
    type Ret = StreamRet;

    fn init(&self) -> State {
        State::new()
    }

    fn step(&self, state: &State, op: &Timed, ret: Option<&StreamRet>) -> Option<State> {
        let key = op.op.stream();
        let expiry = state
            .get(key)
            .and_then(|n| n.live.as_ref())
            .and_then(|s| s.expiry);
        // Expired iff the server's time t in [from, to] is at or past the expiry in [lo, hi].
        let branches: &[bool] = match expiry {
            None => &[true],
            Some((_, hi)) if op.from >= hi => &[false],
            Some((lo, _)) if op.to < lo => &[true],
            Some(_) => &[true, false],
        };
        // One copy of the state a branch: it is most of what a step costs.
        branches.iter().find_map(|&alive| {
            let mut state = state.clone();
            let name = state.entry(key.to_string()).or_default();
            if let Some((lo, hi)) = name.live.as_mut().and_then(|s| s.expiry.as_mut()) {
                if alive {
                    *lo = (*lo).max(op.from);
                } else {
                    *hi = (*hi).min(op.to);
                    name.forget();
                }
            }
            apply(name, op, ret)?;
            Some(state)
        })
    }

    fn part(&self, op: &Timed) -> Option<String> {
        Some(op.op.stream().to_string())
    }
}

/// The model with every operation's time unknown (any time from the start on): what a
/// history without times allows, and what TTLs cannot be judged by.
#[derive(Clone, Copy, Debug, Default)]
pub struct Anytime;

impl Model for Anytime {
    type State = State;
    type Op = StreamOp;
    type Ret = StreamRet;

    fn init(&self) -> State {
        StreamModel.init()
    }

    fn step(&self, state: &State, op: &StreamOp, ret: Option<&StreamRet>) -> Option<State> {
        let op = Timed {
            op: op.clone(),
            from: 0,
            to: Ms::MAX,
        };
        StreamModel.step(state, &op, ret)
    }

    fn part(&self, op: &StreamOp) -> Option<String> {
        Some(op.stream().to_string())
    }
}

impl Name {
    /// The stream is gone (deleted or expired); its offsets stay taken.
    fn forget(&mut self) {
        if let Some(s) = self.live.take() {
            self.high = s.marks.values().chain(&self.high).max().cloned();
        }
    }
}

impl Stream {
    /// Whether `next` may be the offset after `k` messages; if so it is remembered.
    fn mark(&mut self, high: &Option<String>, k: usize, next: &str) -> bool {
        if let Some(seen) = self.marks.get(&k) {
            return seen == next;
        }
        let fits = high.as_deref().is_none_or(|h| next > h)
            && self.marks.range(..k).all(|(_, o)| o.as_str() < next)
            && self.marks.range(k + 1..).all(|(_, o)| o.as_str() > next);
        if fits {
            self.marks.insert(k, next.to_string());
        }
        fits
    }

    fn tail(&mut self, high: &Option<String>, next: &str) -> bool {
        self.mark(high, self.messages.len(), next)
    }
}

/// Whether an answer is right: `None` if it is wrong.
type Verdict = Option<()>;

/// Whether the answer is `want` (any answer is when it was never seen).
fn answers(ret: Option<&StreamRet>, want: &StreamRet) -> Verdict {
    ret.is_none_or(|r| r == want).then_some(())
}

/// Whether `ret` is right for a POST with garbled producer headers to a stream that is
/// `missing` or `closed`: "All three producer headers MUST be provided together or none at
/// all ... servers MUST return 400", and so for a malformed value. Whether a server checks
/// them before it looks at the stream the spec does not say, so the stream's own refusal
/// is right too. No effect either way.
fn garbled(ret: Option<&StreamRet>, missing: bool, closed: bool) -> Verdict {
    use StreamError as E;
    match ret {
        None | Some(StreamRet::Err(E::BadRequest { .. })) => Some(()),
        Some(StreamRet::Err(E::NotFound)) if missing => Some(()),
        Some(StreamRet::Err(E::StreamClosed { .. })) if closed => Some(()),
        Some(_) => None,
    }
}

/// Apply `op` to `name`, judging `ret`; `None` if `ret` is wrong.
fn apply(name: &mut Name, t: &Timed, ret: Option<&StreamRet>) -> Verdict {
    use StreamError as E;
    use StreamRet as R;
    let high = name.high.clone();
    if let StreamOp::Append {
        json, data, close, ..
    } = &t.op
    {
        if data.is_empty() && !close {
            return answers(ret, &R::Err(E::empty(*json)));
        }
    }
    let Some(s) = name.live.as_mut() else {
        return match &t.op {
            StreamOp::Create { json, ttl, .. } => {
                let mut s = Stream::new(*json, *ttl, t);
                match ret {
                    None => {}
                    Some(R::Created { next, new: true }) if s.tail(&high, next) => {}
                    Some(_) => return None,
                }
                name.live = Some(s);
                Some(())
            }
            StreamOp::Garbled { .. } => garbled(ret, true, false),
            _ => answers(ret, &R::Err(E::NotFound)),
        };
    };
    match &t.op {
        StreamOp::Create { json, ttl, .. } => {
            if (*json, *ttl, false) != (s.json, s.ttl, s.closed) {
                return answers(ret, &R::Err(E::Exists));
            }
            match ret {
                None => Some(()),
                Some(R::Created { next, new: false }) => s.tail(&high, next).then_some(()),
                Some(_) => None,
            }
        }
        StreamOp::Append {
            json,
            data,
            seq,
            producer,
            close,
            ..
        } => {
            let (seq, producer) = (seq.as_ref(), producer.as_ref());
            if let Some(verdict) = s.refuse(&high, *json, seq, producer, ret) {
                return verdict;
            }
            s.append(&high, data, seq, producer, *close, ret)
        }
        StreamOp::Garbled { .. } => garbled(ret, false, s.closed),
        StreamOp::Close { .. } => {
            s.closed = true;
            match ret {
                None => Some(()),
                Some(R::Closed { next }) => s.tail(&high, next).then_some(()),
                Some(_) => None,
            }
        }
        StreamOp::Read { from, .. } => s.read(&high, from.as_ref(), ret),
        StreamOp::Head { .. } => match ret {
            None => Some(()),
            Some(R::Meta { json, next, closed }) if (*json, *closed) == (s.json, s.closed) => {
                s.tail(&high, next).then_some(())
            }
            Some(_) => None,
        },
        StreamOp::Delete { .. } => {
            name.forget();
            answers(ret, &R::Deleted)
        }
    }
}

impl Stream {
    /// The stream a create at `t` makes: empty, its expiry window from `t`'s if it has a TTL.
    fn new(json: bool, ttl: Option<u64>, t: &Timed) -> Stream {
        Stream {
            json,
            ttl,
            expiry: ttl.map(|ttl| (t.from + ttl * 1000, t.to.saturating_add(ttl * 1000))),
            messages: Vector::new(),
            marks: OrdMap::new(),
            closed: false,
            closer: None,
            last_seq: None,
            producers: OrdMap::new(),
        }
    }

    /// An append's checks, in the server's order: the verdict on its answer when one
    /// refuses it (or finds it a producer's duplicate); `None` when it goes through.
    fn refuse(
        &mut self,
        high: &Option<String>,
        json: bool,
        seq: Option<&String>,
        producer: Option<&Producer>,
        ret: Option<&StreamRet>,
    ) -> Option<Verdict> {
        use StreamError as E;
        use StreamRet as R;
        if let Some(p) = producer {
            if json != self.json {
                return Some(answers(ret, &R::Err(E::ContentType)));
            }
            let state = self.producers.get(&p.id).copied();
            if let Some((epoch, _)) = state.filter(|&(epoch, _)| p.epoch < epoch) {
                return Some(answers(ret, &R::Err(E::Fenced { current: epoch })));
            }
            if self.closed {
                if self.closer.as_ref() == Some(p) {
                    return Some(duplicate(self, high, ret, (p.epoch, p.seq), true));
                }
                // A retry of an append made before the close: the spec's closed-stream rule
                // (5.2) says 409, its validation logic a 204 duplicate; both are right.
                let retry = state.filter(|&(epoch, last)| p.epoch == epoch && p.seq <= last);
                if let (Some(echo), Some(R::Duplicate { .. })) = (retry, ret) {
                    return Some(duplicate(self, high, ret, echo, true));
                }
                return Some(self.closed_to(high, ret));
            }
            let want = match state {
                Some((epoch, last)) if p.epoch == epoch && p.seq <= last => {
                    return Some(duplicate(self, high, ret, (epoch, last), false));
                }
                Some((epoch, _)) if p.epoch > epoch => 0,
                Some((_, last)) => last + 1,
                None => 0,
            };
            if p.seq != want {
                let e = match state {
                    Some((epoch, _)) if p.epoch > epoch => E::BadRequest {
                        kind: "bad-request".into(),
                    },
                    _ => E::Gap {
                        expected: want,
                        received: p.seq,
                    },
                };
                return Some(answers(ret, &R::Err(e)));
            }
        } else {
            if self.closed {
                return Some(self.closed_to(high, ret));
            }
            if json != self.json {
                return Some(answers(ret, &R::Err(E::ContentType)));
            }
        }
        if seq.is_some_and(|q| self.last_seq.as_ref() >= Some(q)) {
            return Some(answers(ret, &R::Err(E::SeqOrder)));
        }
        None
    }

    /// The 409 `stream-closed` an append to a closed stream gets.
    fn closed_to(&mut self, high: &Option<String>, ret: Option<&StreamRet>) -> Verdict {
        match ret {
            None => Some(()),
            Some(StreamRet::Err(StreamError::StreamClosed { next })) => {
                self.tail(high, next).then_some(())
            }
            Some(_) => None,
        }
    }

    /// An append that went through: its messages added, the producer's and `Stream-Seq`'s
    /// state moved on, the stream closed if it asked.
    fn append(
        &mut self,
        high: &Option<String>,
        data: &[String],
        seq: Option<&String>,
        producer: Option<&Producer>,
        close: bool,
        ret: Option<&StreamRet>,
    ) -> Verdict {
        self.messages.extend(data.iter().cloned());
        if let Some(q) = seq {
            self.last_seq = Some(q.clone());
        }
        if let Some(p) = producer {
            self.producers.insert(p.id.clone(), (p.epoch, p.seq));
        }
        if close {
            self.closed = true;
            self.closer = producer.cloned();
        }
        match ret {
            None => Some(()),
            Some(StreamRet::Appended {
                next,
                closed,
                producer: echo,
            }) if *closed == self.closed && *echo == producer.map(|p| (p.epoch, p.seq)) => {
                self.tail(high, next).then_some(())
            }
            Some(_) => None,
        }
    }

    /// A read from offset `from` (`None`: the start): its data must be the messages from
    /// where `from` was seen, or, for an offset never seen, from some count of messages.
    fn read(
        &mut self,
        high: &Option<String>,
        from: Option<&String>,
        ret: Option<&StreamRet>,
    ) -> Verdict {
        let (data, next, up_to_date, closed) = match ret {
            None => return Some(()),
            Some(StreamRet::Read {
                data,
                next,
                up_to_date,
                closed,
            }) => (data, next, up_to_date, closed),
            Some(_) => return None,
        };
        let start = match from {
            None => Some(0),
            Some(o) => self.marks.iter().find(|(_, m)| *m == o).map(|(&k, _)| k),
        };
        let starts = match start {
            Some(k) => k..k + 1,
            None => 0..self.messages.len() + 1,
        };
        // A bytes stream's read is one body: message bounds do not show in it.
        if !self.json && data.len() > 1 {
            return None;
        }
        let n = self.messages.len();
        let ok = |j: usize| *up_to_date == (j == n) && *closed == (self.closed && j == n);
        // Where the answer's data, read from message `i`, ends: whole messages for
        // JSON; bytes (where message bounds do not show) otherwise.
        let bytes = data.concat();
        let end_from = |i: usize| -> Option<usize> {
            if self.json {
                let j = i + data.len();
                let same = j <= n && self.messages.iter().skip(i).take(data.len()).eq(data);
                return (same && ok(j)).then_some(j);
            }
            let (mut left, mut j) = (bytes.as_str(), i);
            loop {
                if left.is_empty() && ok(j) {
                    return Some(j);
                }
                left = left.strip_prefix(self.messages.get(j)?.as_str())?;
                j += 1;
            }
        };
        let end = starts.into_iter().find_map(end_from)?;
        self.mark(high, end, next).then_some(())
    }
}

/// A 204 duplicate echoing `(epoch, seq)`; nothing is appended.
fn duplicate(
    s: &mut Stream,
    high: &Option<String>,
    ret: Option<&StreamRet>,
    echo: (u64, u64),
    closed: bool,
) -> Option<()> {
    match ret {
        None => Some(()),
        Some(StreamRet::Duplicate {
            next,
            epoch,
            seq,
            closed: c,
        }) if (*epoch, *seq, *c) == (echo.0, echo.1, closed) => s.tail(high, next).then_some(()),
        Some(_) => None,
    }
}

impl fmt::Display for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.id, self.epoch, self.seq)
    }
}

impl fmt::Display for StreamOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamOp::Create { stream, json, ttl } => {
                write!(f, "create {stream}{}", if *json { " json" } else { "" })?;
                if let Some(ttl) = ttl {
                    write!(f, " ttl={ttl}s")?;
                }
                Ok(())
            }
            StreamOp::Append {
                stream,
                json,
                data,
                seq,
                producer,
                close,
            } => {
                write!(
                    f,
                    "append {stream}{} {data:?}",
                    if *json { " json" } else { "" }
                )?;
                if let Some(seq) = seq {
                    write!(f, " seq={seq}")?;
                }
                if let Some(p) = producer {
                    write!(f, " producer={p}")?;
                }
                if *close {
                    write!(f, " close")?;
                }
                Ok(())
            }
            StreamOp::Garbled {
                stream,
                json,
                headers,
            } => {
                write!(
                    f,
                    "append {stream}{} garbled",
                    if *json { " json" } else { "" }
                )?;
                headers
                    .iter()
                    .try_for_each(|(name, value)| write!(f, " {name}={value:?}"))
            }
            StreamOp::Close { stream } => write!(f, "close {stream}"),
            StreamOp::Read { stream, from, wait } => {
                write!(f, "read {stream} from={}", from.as_deref().unwrap_or("-1"))?;
                if *wait {
                    write!(f, " long-poll")?;
                }
                Ok(())
            }
            StreamOp::Head { stream } => write!(f, "head {stream}"),
            StreamOp::Delete { stream } => write!(f, "delete {stream}"),
        }
    }
}

impl fmt::Display for Timed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.op.fmt(f)
    }
}

/// ` closed` when `closed`.
fn flag(on: bool, name: &str) -> String {
    if on {
        format!(" {name}")
    } else {
        String::new()
    }
}

impl fmt::Display for StreamRet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamRet::Created { next, new } => {
                write!(
                    f,
                    "{} next={next}",
                    if *new { "201 created" } else { "200 exists" }
                )
            }
            StreamRet::Appended {
                next,
                closed,
                producer,
            } => {
                match producer {
                    Some((e, s)) => write!(f, "200 appended next={next} producer={e}/{s}")?,
                    None => write!(f, "204 appended next={next}")?,
                }
                write!(f, "{}", flag(*closed, "closed"))
            }
            StreamRet::Duplicate {
                next,
                epoch,
                seq,
                closed,
            } => write!(
                f,
                "204 duplicate next={next} producer={epoch}/{seq}{}",
                flag(*closed, "closed")
            ),
            StreamRet::Closed { next } => write!(f, "204 closed next={next}"),
            StreamRet::Read {
                data,
                next,
                up_to_date,
                closed,
            } => write!(
                f,
                "read {data:?} next={next}{}{}",
                flag(*up_to_date, "up-to-date"),
                flag(*closed, "closed")
            ),
            StreamRet::Meta { json, next, closed } => write!(
                f,
                "200 head{} next={next}{}",
                flag(*json, "json"),
                flag(*closed, "closed")
            ),
            StreamRet::Deleted => write!(f, "204 deleted"),
            StreamRet::Err(e) => write!(f, "{e}"),
        }
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status(), self.kind())?;
        match self {
            StreamError::StreamClosed { next } => write!(f, " next={next}"),
            StreamError::Gap { expected, received } => {
                write!(f, " expected={expected} received={received}")
            }
            StreamError::Fenced { current } => write!(f, " current={current}"),
            _ => Ok(()),
        }
    }
}

//! Jepsen register logs (the etcd histories of Horn & Kroening and porcupine) as
//! [`History`]s of the [`Register`](squall_models::register::Register) model.
//!
//! A log has one event a line, `INFO  jepsen.util - <process> <type> <f> <value>`, fields
//! separated by tabs or spaces:
//!
//! | log | history |
//! |---|---|
//! | `:invoke :read nil`, `:invoke :write 4`, `:invoke :cas [1 4]` | [`Event::Invoke`] of `Read`, `Write(4)`, `Cas(1, 4)` |
//! | `:ok :read 3` / `:ok :read nil` | [`Event::Return`] `Read(Some(3))` / `Read(None)` |
//! | `:ok :write 4` | `Written` |
//! | `:ok :cas [1 4]` / `:fail :cas [1 4]` | `Cas(true)` / `Cas(false)`: the compare did not match, which the model must justify |
//! | `:fail :read`, `:fail :write` | nothing: the operation did not happen, so it is left out, invocation and all |
//! | `:info ...` | [`Event::Unknown`] (why: the value, e.g. `:timed-out`) |
//!
//! A `:fail` read or write is definite in Jepsen (the client knows it had no effect), and an
//! operation without effect or answer constrains nothing, so leaving it out is exact; a
//! `:fail` CAS, by contrast, answers "the register did not hold the expected value".
//!
//! Processes are clients and operations are numbered in invocation order. Logs carry no
//! time: an event's `at` is its line number in microseconds, so a printed history points
//! back at the log.
//!
//! The same histories as Jepsen's EDN (`history.edn`: one map a line, `{:type :invoke, :f
//! :read, :value nil, :process 0, :time 0, :index 0}`) read the same way: `:time` (in
//! nanoseconds) is the event's `at` when given, an `:info`'s `:error` its why, and a
//! `:nemesis` process's events are faults. [`read`] takes a file ending in `.edn` as EDN,
//! any other as a log.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use squall_models::register::{RegisterOp, RegisterRet};

use crate::history::{Event, History};

/// A register history.
pub type Register = History<RegisterOp, RegisterRet>;

/// Why a log could not be read.
#[derive(Debug)]
pub enum Error {
    Io {
        file: String,
        source: std::io::Error,
    },
    Syntax {
        file: String,
        line: usize,
        what: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { file, source } => write!(f, "{file}: {source}"),
            Error::Syntax { file, line, what } => write!(f, "{file}:{line}: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Syntax { .. } => None,
        }
    }
}

/// Reads the history at `path`: EDN if its name ends in `.edn`, else a log.
pub fn read(path: &Path) -> Result<Register, Error> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) if path.extension().is_some_and(|e| e == "edn") => parse_edn(&text, &file),
        Ok(text) => parse(&text, &file),
        Err(source) => Err(Error::Io { file, source }),
    }
}

/// Parses a log's `text`; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Register, Error> {
    build(text, file, Line::parse)
}

/// Parses an EDN history's `text`, one map a line; `file` names it in errors.
pub fn parse_edn(text: &str, file: &str) -> Result<Register, Error> {
    build(text, file, Line::from_edn)
}

/// The history of the non-blank lines of `text`, each read by `line`.
fn build(
    text: &str,
    file: &str,
    line: impl Fn(&str) -> Result<Line, String>,
) -> Result<Register, Error> {
    let mut events = Vec::new();
    // Per process: the open operation's id, what it is, and where its invocation sits.
    let mut open: BTreeMap<u32, (u64, RegisterOp, usize)> = BTreeMap::new();
    let mut next_id = 0;
    for (n, text) in text.lines().enumerate() {
        let no = n + 1;
        let error = |what: String| Error::Syntax {
            file: file.to_string(),
            line: no,
            what,
        };
        if text.trim().is_empty() {
            continue;
        }
        let l = line(text).map_err(error)?;
        let at = l.time.unwrap_or(no as u64 * 1_000);
        let Some(client) = l.process else {
            let what = format!("{} {}", l.f.trim_start_matches(':'), l.value);
            events.push(Some(Event::Fault { at, what }));
            continue;
        };
        if l.kind == Kind::Invoke {
            if open.contains_key(&client) {
                return Err(error(format!("process {client} invokes while busy")));
            }
            let op = l.op().map_err(error)?;
            open.insert(client, (next_id, op, events.len()));
            events.push(Some(Event::Invoke {
                at,
                client,
                id: next_id,
                op,
            }));
            next_id += 1;
            continue;
        }
        let Some((id, op, invoke)) = open.remove(&client) else {
            return Err(error(format!("process {client} completes nothing")));
        };
        if l.f != function(&op) {
            return Err(error(format!("{} completes {}", l.f, function(&op))));
        }
        let ret = match (l.kind, op) {
            (Kind::Info, _) => {
                let why = l.error.unwrap_or(l.value);
                events.push(Some(Event::Unknown {
                    at,
                    client,
                    id,
                    why,
                }));
                continue;
            }
            (Kind::Ok, RegisterOp::Read) => RegisterRet::Read(value(&l.value).map_err(error)?),
            (Kind::Ok, RegisterOp::Write(_)) => RegisterRet::Written,
            (Kind::Ok, RegisterOp::Cas(..)) => RegisterRet::Cas(true),
            (Kind::Fail, RegisterOp::Cas(..)) => RegisterRet::Cas(false),
            (Kind::Fail, _) => {
                events[invoke] = None;
                continue;
            }
            (Kind::Invoke, _) => unreachable!("handled above"),
        };
        events.push(Some(Event::Return {
            at,
            client,
            id,
            ret,
        }));
    }
    Ok(History {
        events: events.into_iter().flatten().collect(),
    })
}

/// One event's fields, values as a log writes them (`nil`, `3`, `[1 4]`, `:timed-out`).
struct Line {
    /// `None`: the nemesis (a fault).
    process: Option<u32>,
    kind: Kind,
    f: String,
    value: String,
    /// Nanoseconds since the start, if the history says.
    time: Option<u64>,
    /// Why an `:info` outcome is unknown, if the history says.
    error: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// How a log names an operation's function.
fn function(op: &RegisterOp) -> &'static str {
    match op {
        RegisterOp::Read => ":read",
        RegisterOp::Write(_) => ":write",
        RegisterOp::Cas(..) => ":cas",
    }
}

impl Line {
    fn parse(line: &str) -> Result<Line, String> {
        let (_, rest) = line
            .split_once("jepsen.util - ")
            .ok_or("expected `INFO  jepsen.util - <process> <type> <f> <value>`")?;
        let (process, rest) = field(rest);
        let process = process
            .parse()
            .map_err(|_| format!("bad process {process:?}"))?;
        let (kind, rest) = field(rest);
        let (f, value) = field(rest);
        let kind = match kind {
            ":invoke" => Kind::Invoke,
            ":ok" => Kind::Ok,
            ":fail" => Kind::Fail,
            ":info" => Kind::Info,
            _ => return Err(format!("unknown type {kind:?}")),
        };
        Ok(Line {
            process: Some(process),
            kind,
            f: f.to_string(),
            value: value.to_string(),
            time: None,
            error: None,
        })
    }

    /// One map of an EDN history.
    fn from_edn(line: &str) -> Result<Line, String> {
        use edn_format::{Keyword, Value};
        let map = match edn_format::parse_str(line) {
            Ok(Value::Map(map)) => map,
            Ok(other) => return Err(format!("expected a map, found {other}")),
            Err(e) => return Err(format!("not EDN: {}", e.error)),
        };
        let get = |key: &str| map.get(&Value::Keyword(Keyword::from_name(key)));
        let keyword = |key: &str| match get(key) {
            Some(Value::Keyword(k)) => Ok(format!(":{}", k.name())),
            _ => Err(format!(":{key} must be a keyword")),
        };
        let count = |key: &str| match get(key) {
            None => Ok(None),
            Some(Value::Integer(n)) if *n >= 0 => Ok(Some(*n as u64)),
            Some(v) => Err(format!(":{key} {v} is not a count")),
        };
        let process = match get("process") {
            Some(Value::Integer(p)) => {
                Some(u32::try_from(*p).map_err(|_| format!("bad process {p}"))?)
            }
            Some(Value::Keyword(k)) if k.name() == "nemesis" => None,
            _ => return Err(":process must be a number or :nemesis".into()),
        };
        let kind = match keyword("type")?.as_str() {
            ":invoke" => Kind::Invoke,
            ":ok" => Kind::Ok,
            ":fail" => Kind::Fail,
            ":info" => Kind::Info,
            other => return Err(format!("unknown type {other:?}")),
        };
        let value = match get("value") {
            Some(Value::String(s)) => s.clone(),
            Some(v) => edn_format::emit_str(v),
            None => "nil".into(),
        };
        let error = get("error").map(|e| match e {
            Value::String(s) => s.clone(),
            e => edn_format::emit_str(e),
        });
        Ok(Line {
            process,
            kind,
            f: keyword("f")?,
            value,
            time: count("time")?,
            error,
        })
    }

    /// The operation an invocation calls.
    fn op(&self) -> Result<RegisterOp, String> {
        let arg = |v: Option<i64>| v.ok_or_else(|| format!("{} needs a value", self.f));
        match self.f.as_str() {
            ":read" => Ok(RegisterOp::Read),
            ":write" => Ok(RegisterOp::Write(arg(value(&self.value)?)?)),
            ":cas" => {
                let pair = self
                    .value
                    .strip_prefix('[')
                    .and_then(|v| v.strip_suffix(']'))
                    .and_then(|v| v.split_once(' '))
                    .ok_or_else(|| format!("bad cas argument {:?}", self.value))?;
                Ok(RegisterOp::Cas(
                    arg(value(pair.0)?)?,
                    arg(value(pair.1.trim())?)?,
                ))
            }
            f => Err(format!("unknown function {f:?}")),
        }
    }
}

/// The first field of `s` and what follows it, both without surrounding blanks.
fn field(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let (first, rest) = s.split_once([' ', '\t']).unwrap_or((s, ""));
    (first, rest.trim())
}

/// A register value: an integer, or `nil` for none.
fn value(v: &str) -> Result<Option<i64>, String> {
    match v {
        "nil" => Ok(None),
        _ => v.parse().map(Some).map_err(|_| format!("bad value {v:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - 1\t:invoke\t:write\t4
INFO  jepsen.util - 2   :invoke :cas    [4 1]
INFO  jepsen.util - 0\t:ok\t:read\tnil
INFO  jepsen.util - 1\t:ok\t:write\t4
INFO  jepsen.util - 2   :fail   :cas    [4 1]
INFO  jepsen.util - 0\t:invoke\t:write\t3
INFO  jepsen.util - 1\t:invoke\t:read\tnil
INFO  jepsen.util - 0\t:info\t:write\t:timed-out
INFO  jepsen.util - 1\t:fail\t:read\t:timed-out

INFO  jepsen.util - 5\t:invoke\t:cas\t[3 0]
INFO  jepsen.util - 5\t:ok\t:cas\t[3 0]
";

    #[test]
    fn parses_every_kind_of_line() {
        let h = parse(LOG, "t.log").unwrap();
        let events: Vec<String> = h
            .events
            .iter()
            .map(|e| match e {
                Event::Invoke { client, id, op, .. } => format!("{client} {id} {op:?}"),
                Event::Return {
                    client, id, ret, ..
                } => format!("{client} {id} {ret:?}"),
                Event::Unknown {
                    client, id, why, ..
                } => format!("{client} {id} ? {why}"),
                Event::Fault { what, .. } => what.clone(),
            })
            .collect();
        assert_eq!(
            events,
            [
                "0 0 Read",
                "1 1 Write(4)",
                "2 2 Cas(4, 1)",
                "0 0 Read(None)",
                "1 1 Written",
                "2 2 Cas(false)",
                "0 3 Write(3)",
                "0 3 ? :timed-out",
                "5 5 Cas(3, 0)",
                "5 5 Cas(true)",
            ]
        );
        let Event::Invoke { at, .. } = h.events[6] else {
            panic!()
        };
        assert_eq!(at, 7_000, "line 7, in microseconds");
    }

    #[test]
    fn errors_name_file_and_line() {
        let bad = [
            ("garbage", "t.log:1: expected"),
            ("INFO  jepsen.util - x\t:invoke\t:read\tnil", "bad process"),
            (
                "INFO  jepsen.util - 1\t:ok\t:read\t3",
                "t.log:1: process 1 completes nothing",
            ),
            (
                "INFO  jepsen.util - 1\t:invoke\t:write\tfoo",
                "bad value \"foo\"",
            ),
            (
                "INFO  jepsen.util - 1\t:invoke\t:cas\t[1]",
                "bad cas argument",
            ),
            (
                "INFO  jepsen.util - 1\t:invoke\t:inc\t1",
                "unknown function",
            ),
            ("INFO  jepsen.util - 1\t:done\t:read\t1", "unknown type"),
        ];
        for (line, want) in bad {
            let text = format!("{line}\n");
            let e = parse(&text, "t.log").unwrap_err().to_string();
            assert!(e.contains(want), "{line}: {e}");
        }
        let twice = "INFO  jepsen.util - 1\t:invoke\t:read\tnil\n\
                     INFO  jepsen.util - 1\t:invoke\t:read\tnil\n";
        let e = parse(twice, "t.log").unwrap_err().to_string();
        assert_eq!(e, "t.log:2: process 1 invokes while busy");
        let mismatch = "INFO  jepsen.util - 1\t:invoke\t:read\tnil\n\
                        INFO  jepsen.util - 1\t:ok\t:write\t1\n";
        let e = parse(mismatch, "t.log").unwrap_err().to_string();
        assert_eq!(e, "t.log:2: :write completes :read");
    }

    #[test]
    fn missing_file_is_an_error() {
        let e = read(Path::new("/nonexistent/x.log")).unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/x.log: "));
    }
}

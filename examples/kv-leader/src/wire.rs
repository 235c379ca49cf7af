//! The wire format: one JSON value per line, `\n`-terminated, over TCP. A call and a
//! watch, client lines marked `>`:
//!
//! ```text
//! > {"call":{"client":"client-1","seq":7,"cmd":{"cmd":"update","key":"k1","value":"v","rev":12}}}
//! < {"reply":{"seq":7,"answer":{"wrote":13}}}
//! > {"watch":{"prefixes":["a."],"after":null}}
//! < {"start":{"events":[{"key":"a.0","rev":9,"what":"delete"}],"rev":13}}
//! < "beat"
//! < {"event":{"key":"a.1","rev":14,"what":{"put":"x"}}}
//! ```
//!
//! Each line goes out in a single write. turmoil's TCP sends a write as one segment and
//! does not retransmit: a segment lost to a partition stalls its connection for good
//! (nothing after it is delivered), but a line never arrives torn. Both ends therefore
//! bound every wait and treat a silent connection as dead.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use turmoil::net::TcpStream;

/// A bucket-wide revision: every write takes the next one.
pub type Rev = u64;

/// The port the leader listens on.
pub const PORT: u16 = 7070;

/// Client to leader.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Request `seq` of `client`. A retry resends the same `seq`; the leader answers it
    /// with the first answer instead of running it again.
    Call { client: String, seq: u64, cmd: Cmd },
    /// Turn this connection into a stream of the writes to keys under any of `prefixes`
    /// (`""` covers every key): those after revision `after`, or without it the last
    /// write of every such key first.
    Watch {
        prefixes: Vec<String>,
        after: Option<Rev>,
    },
}

/// What a call asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "cmd")]
pub enum Cmd {
    Get {
        key: String,
    },
    Entry {
        key: String,
    },
    Keys {
        prefix: String,
    },
    Scan {
        prefix: String,
    },
    Put {
        key: String,
        value: String,
    },
    /// Put only if the key holds no value (absent, deleted or purged; a tombstone counts
    /// as a value).
    Create {
        key: String,
        value: String,
    },
    /// Put only if the key's last write has revision `rev` (0: never written).
    Update {
        key: String,
        value: String,
        rev: Rev,
    },
    /// Write a delete marker.
    Delete {
        key: String,
    },
    /// Write an empty-value tombstone if the key's last write has revision `rev`.
    DeleteIf {
        key: String,
        rev: Rev,
    },
    /// Drop the key's history, leaving a purge marker.
    Purge {
        key: String,
    },
}

/// Leader to client.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// The answer to call `seq`.
    Reply { seq: u64, answer: Answer },
    /// A watch's first line: the writes it starts with, in revision order, and the
    /// revision they bring it up to (where a reconnecting watch resumes).
    Start { events: Vec<Event>, rev: Rev },
    /// A write made after the watch started.
    Event(Event),
    /// Nothing new; the watch is alive.
    Beat,
    /// A write the watch needs after `after` has been dropped by retention.
    Expired,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// A value (`get`); absent, deleted and tombstoned keys have none.
    Value(Option<String>),
    /// A value with its revision (`entry`); a tombstone shows with its empty value.
    Entry(Option<(String, Rev)>),
    Keys(Vec<String>),
    /// Key, value, revision.
    Entries(Vec<(String, String, Rev)>),
    /// A write took this revision.
    Wrote(Rev),
    Refused(Refusal),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// `create` on a key that holds a value.
    Exists,
    /// `update` / `delete_if` against another revision.
    WrongRevision,
    /// The write would pass the bucket's byte limit.
    Full,
}

/// One write, as a watch sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub key: String,
    pub rev: Rev,
    pub what: What,
}

/// What a write left. An empty `Put` is a tombstone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum What {
    Put(String),
    Delete,
    Purge,
}

/// A connection that carries lines. Neither method is cancellation safe: whoever gives up
/// on one mid-way drops the connection.
pub struct Conn {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
    line: String,
}

impl Conn {
    pub async fn connect(host: &str) -> io::Result<Conn> {
        Ok(Conn::new(TcpStream::connect((host, PORT)).await?))
    }

    pub fn new(stream: TcpStream) -> Conn {
        let (read, write) = stream.into_split();
        Conn {
            read: BufReader::new(read),
            write,
            line: String::new(),
        }
    }

    /// Send `msg` as one line, in one write.
    pub async fn send<T: Serialize>(&mut self, msg: &T) -> io::Result<()> {
        let mut line = serde_json::to_vec(msg)?;
        line.push(b'\n');
        self.write.write_all(&line).await
    }

    /// The next line, or `None` once the peer has closed the connection.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> io::Result<Option<T>> {
        self.line.clear();
        if self.read.read_line(&mut self.line).await? == 0 {
            return Ok(None);
        }
        Ok(Some(serde_json::from_str(&self.line)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<T: Serialize>(msg: &T) -> String {
        serde_json::to_string(msg).unwrap()
    }

    /// The lines of the module docs.
    #[test]
    fn lines_are_as_documented() {
        let call = Request::Call {
            client: "client-1".into(),
            seq: 7,
            cmd: Cmd::Update {
                key: "k1".into(),
                value: "v".into(),
                rev: 12,
            },
        };
        assert_eq!(
            line(&call),
            r#"{"call":{"client":"client-1","seq":7,"cmd":{"cmd":"update","key":"k1","value":"v","rev":12}}}"#
        );
        let reply = Response::Reply {
            seq: 7,
            answer: Answer::Wrote(13),
        };
        assert_eq!(line(&reply), r#"{"reply":{"seq":7,"answer":{"wrote":13}}}"#);
        let watch = Request::Watch {
            prefixes: vec!["a.".into()],
            after: None,
        };
        assert_eq!(
            line(&watch),
            r#"{"watch":{"prefixes":["a."],"after":null}}"#
        );
        let start = Response::Start {
            events: vec![Event {
                key: "a.0".into(),
                rev: 9,
                what: What::Delete,
            }],
            rev: 13,
        };
        assert_eq!(
            line(&start),
            r#"{"start":{"events":[{"key":"a.0","rev":9,"what":"delete"}],"rev":13}}"#
        );
        assert_eq!(line(&Response::Beat), r#""beat""#);
        let event = Response::Event(Event {
            key: "a.1".into(),
            rev: 14,
            what: What::Put("x".into()),
        });
        assert_eq!(
            line(&event),
            r#"{"event":{"key":"a.1","rev":14,"what":{"put":"x"}}}"#
        );
    }
}

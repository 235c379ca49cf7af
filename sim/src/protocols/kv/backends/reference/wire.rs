//! Messages between clients and servers and between the primary and its backups, carried
//! in [`crate::world::frame`]s.

use serde::{Deserialize, Serialize};
use squall_models::kv::{KvOp, KvRet, Rev};
use squall_models::watch::{Scope, Update};

use super::bucket::Write;

/// One write of the log, with the request that made it, so that every replica can rebuild
/// the dedup table from its log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub rev: Rev,
    pub key: String,
    pub write: Write,
    pub client: String,
    pub seq: u64,
    pub ret: KvRet,
    /// When the primary wrote it, by its clock (nanoseconds): retention ages it from then.
    pub at: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "msg")]
pub enum Msg {
    /// Client to server: request `seq` of `client`; a retry resends the same `seq`.
    Request { client: String, seq: u64, op: KvOp },
    /// Server to client: the answer to request `seq`.
    Reply { seq: u64, ret: KvRet },
    /// Primary to backup: the log from index `start` on (empty: a probe or heartbeat).
    Append { start: usize, entries: Vec<Record> },
    /// Backup to primary: the backup's log matches the primary's up to index `len`.
    Ack { len: usize },
    /// Client to primary: stream the writes in `scope`, after a state sync or from cursor
    /// `from`. The connection carries that stream from then on.
    Watch { scope: Scope, from: Option<Rev> },
    /// Primary to watcher: message `n` of a watch stream, numbered from 0 so that the
    /// watcher can tell a lost, repeated or late one.
    Watched { n: u64, watched: Watched },
}

/// What a watch stream carries.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Watched {
    /// The last write of every key in scope as of revision `rev`.
    Sync { updates: Vec<Update>, rev: Rev },
    /// Writes in scope, in revision order.
    Updates { updates: Vec<Update> },
    /// Nothing new, the stream is alive.
    Beat,
    /// Retention dropped a write the cursor needs.
    Expired,
}

/// A connection between KV hosts.
pub type Conn = crate::world::frame::Conn<Msg>;

//! Messages between clients and servers and between the primary and its backups: frames of
//! a big-endian `u32` length and a `serde_json` body, over turmoil TCP.

use serde::{Deserialize, Serialize};
use squall_models::kv::{KvOp, KvRet, Rev};
use squall_models::watch::{Scope, Update};
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use turmoil::net::TcpStream;

use super::bucket::Write;
use crate::world::PORT;

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
    /// Primary to watcher: the last write of every key in scope as of revision `rev`.
    Sync { updates: Vec<Update>, rev: Rev },
    /// Primary to watcher: writes in scope, in revision order.
    Updates { updates: Vec<Update> },
    /// Primary to watcher: nothing new, the stream is alive.
    Beat,
    /// Primary to watcher: retention dropped a write the cursor needs.
    Expired,
}

/// A bound on a frame, so that a garbled length cannot ask for gigabytes.
const MAX_FRAME: u32 = 64 << 20;

/// A connection. A task of its own reads whole frames into a queue, so a caller that gives
/// up waiting (a timeout, a cancelled call) never leaves a frame half read.
pub struct Conn {
    write: OwnedWriteHalf,
    frames: mpsc::UnboundedReceiver<Msg>,
    reader: AbortHandle,
}

impl Conn {
    pub async fn connect(host: &str) -> io::Result<Conn> {
        Ok(Conn::new(TcpStream::connect((host, PORT)).await?))
    }

    pub fn new(stream: TcpStream) -> Conn {
        let (mut read, write) = stream.into_split();
        let (tx, frames) = mpsc::unbounded_channel();
        let reader = tokio::task::spawn_local(async move {
            while let Ok(msg) = read_frame(&mut read).await {
                if tx.send(msg).is_err() {
                    break;
                }
            }
        })
        .abort_handle();
        Conn {
            write,
            frames,
            reader,
        }
    }

    /// Send one frame; a turmoil write is a single segment, so it goes whole or not at all.
    pub async fn send(&mut self, msg: &Msg) -> io::Result<()> {
        let body = serde_json::to_vec(msg)?;
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        self.write.write_all(&frame).await
    }

    /// The next frame, or `None` once the connection is closed or garbled.
    pub async fn recv(&mut self) -> Option<Msg> {
        self.frames.recv().await
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

async fn read_frame(read: &mut OwnedReadHalf) -> io::Result<Msg> {
    let len = read.read_u32().await?;
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "frame too long"));
    }
    let mut body = vec![0; len as usize];
    read.read_exact(&mut body).await?;
    Ok(serde_json::from_slice(&body)?)
}

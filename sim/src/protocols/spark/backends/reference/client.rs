//! The client: sends an invocation to its node and reads the answers as the SDK does.

use async_trait::async_trait;
use squall_models::spark::{CallRet, Entry, Invocation, SparkError, SparkRet};
use std::collections::BTreeMap;

use super::wire::{Conn, HostRet, Msg};
use crate::protocol::Caller;
use crate::protocols::spark::Spark;
use crate::world::Node;

pub struct Client {
    node: Node,
    /// The sequence number of the latest invocation.
    seq: u64,
    /// Open connections by node.
    conns: BTreeMap<String, Conn>,
}

impl Client {
    pub fn new(node: Node) -> Client {
        Client {
            node,
            seq: 0,
            conns: BTreeMap::new(),
        }
    }
}

#[async_trait(?Send)]
impl Caller<Spark> for Client {
    /// Sent once, never retried: a second run of an invocation is not the same as one.
    async fn call(&mut self, inv: &Invocation) -> Result<SparkRet, String> {
        self.seq += 1;
        let seq = self.seq;
        // Out of `conns` while in use: a call cancelled mid-write drops it.
        let mut conn = match self.conns.remove(&inv.node) {
            Some(conn) => conn,
            None => match Conn::connect(&inv.node).await {
                Ok(conn) => conn,
                Err(_) => return Ok(SparkRet::NotConnected),
            },
        };
        let invocation = inv.clone();
        conn.send(&Msg::Invoke { seq, invocation })
            .await
            .map_err(|e| format!("{}: {e}", self.node.name))?;
        loop {
            match conn.recv().await {
                Some(Msg::Results { seq: s, results }) if s == seq => {
                    self.conns.insert(inv.node.clone(), conn);
                    return Ok(SparkRet::Done(results.into_iter().map(read).collect()));
                }
                Some(_) => continue,
                None => return Err(format!("connection to {} lost", inv.node)),
            }
        }
    }
}

/// A host result as the SDK reads it.
fn read(ret: HostRet) -> CallRet {
    match ret {
        HostRet::Get(payload) => CallRet::Got(Entry::from_payload(&payload)),
        HostRet::Set(0) => CallRet::Set(Ok(())),
        HostRet::Set(code) => CallRet::Set(Err(SparkError::from_code(code))),
        HostRet::Delete => CallRet::Deleted,
        HostRet::List(json) if json.is_empty() => CallRet::Listed(Vec::new()),
        // A list the SDK cannot parse shows as a key no store holds, for the model to reject.
        HostRet::List(json) => {
            CallRet::Listed(serde_json::from_slice(&json).unwrap_or_else(|_| vec![String::new()]))
        }
        HostRet::Pull(n) if n >= 0 => CallRet::Pulled(Ok(n as u32)),
        HostRet::Pull(n) => CallRet::Pulled(Err(SparkError::from_pull(n))),
    }
}

//! The client: sends an invocation to its node and reads the answers as the SDK does.

use async_trait::async_trait;
use squall_models::spark::Invocation;
use std::collections::BTreeMap;

use super::wire::{Conn, Msg};
use crate::protocols::spark::backends::{HostRet, SparkClient};
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
impl SparkClient for Client {
    /// Sent once, never retried: a second run of an invocation is not the same as one.
    async fn invoke(&mut self, inv: &Invocation) -> Result<Option<Vec<HostRet>>, String> {
        self.seq += 1;
        let seq = self.seq;
        // Out of `conns` while in use: a call cancelled mid-write drops it.
        let mut conn = match self.conns.remove(&inv.node) {
            Some(conn) => conn,
            None => match Conn::connect(&inv.node).await {
                Ok(conn) => conn,
                Err(_) => return Ok(None),
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
                    return Ok(Some(results));
                }
                Some(_) => continue,
                None => return Err(format!("connection to {} lost", inv.node)),
            }
        }
    }
}

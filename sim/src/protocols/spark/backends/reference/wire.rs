//! Messages between clients and edge nodes and between nodes, carried in
//! [`crate::world::frame`]s.

use serde::{Deserialize, Serialize};
use squall_models::spark::Invocation;

use crate::protocols::spark::backends::HostRet;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "msg")]
pub enum Msg {
    /// Client to node: run this invocation; `seq` pairs the answer with it.
    Invoke { seq: u64, invocation: Invocation },
    /// Node to client: each call's result.
    Results { seq: u64, results: Vec<HostRet> },
    /// Node to origin node: the live entries of these keys, for a pull.
    Fetch { keys: Vec<String> },
    /// Origin node to node.
    Fetched { entries: Vec<Migrant> },
}

/// An entry on its way from the origin of a pull.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Migrant {
    pub key: String,
    pub value: Vec<u8>,
    /// Nanoseconds to its deadline, on the origin's clock; `None`: no expiry.
    pub left: Option<u64>,
    /// The TTL it was set with.
    pub ttl: u32,
}

/// A connection between spark hosts.
pub type Conn = crate::world::frame::Conn<Msg>;

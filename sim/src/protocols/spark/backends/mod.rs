//! Flaron spark backends: every server host is an edge node with a store of its own,
//! running invocations (flares) that clients send it.
//!
//! An outside backend implements [`SparkBackend`]: the software of an edge node, and a
//! [`SparkClient`] that carries an invocation to the node it names, over the backend's own
//! wire, and brings back each call's result as the host ABI returns it ([`HostRet`]).
//! squall reads those as the SDK does, so the ABI's encodings are under test too.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use squall_models::spark::{CallRet, Entry, Invocation, SparkError, SparkRet};
use std::rc::Rc;

use crate::backend::Backend;
use crate::protocol::{Caller, Capability, System};
use crate::protocols::spark::Spark;
use crate::world::{Node, Software};

pub mod reference;

use reference::{Bug, Reference};

/// A call's result as the host ABI returns it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostRet {
    /// The remaining TTL (4 bytes, little-endian) then the value; empty for none.
    Get(Vec<u8>),
    /// 0 or an error code.
    Set(i32),
    Delete,
    /// A JSON array of keys; empty for `[]`.
    List(Vec<u8>),
    /// The count pulled, or a negated error code.
    Pull(i32),
}

/// A client of edge nodes, as one client host holds it.
#[async_trait(?Send)]
pub trait SparkClient {
    /// Run `invocation` on the node it names, once (never retried: a second run of an
    /// invocation is not the same as one), and return each call's result in order;
    /// `Ok(None)` if the node refused the connection, so the invocation had no effect; `Err`
    /// says why its outcome is unknown.
    async fn invoke(&mut self, invocation: &Invocation) -> Result<Option<Vec<HostRet>>, String>;
}

/// A spark backend that runs inside the simulation.
pub trait SparkBackend {
    /// The software of edge node `node` (every server host is one). Called again each time
    /// the host restarts after a crash; what it kept on `node.disk` (synced) is still there.
    fn serve(&self, node: Node) -> Software;
    /// A client for client host `node`.
    fn client(&self, node: Node) -> Box<dyn SparkClient>;
    /// The capabilities it lacks, each with why ([`System::lacks`]); none by default.
    fn lacks(&self) -> Vec<(Capability, &'static str)> {
        Vec::new()
    }
}

impl<B: SparkBackend> System<Spark> for B {
    fn serve(&self, node: Node) -> Software {
        SparkBackend::serve(self, node)
    }

    fn client(&self, node: Node) -> Box<dyn Caller<Spark>> {
        Box::new(SparkBackend::client(self, node))
    }

    fn lacks(&self) -> Vec<(Capability, &'static str)> {
        SparkBackend::lacks(self)
    }
}

#[async_trait(?Send)]
impl Caller<Spark> for Box<dyn SparkClient> {
    async fn call(&mut self, inv: &Invocation) -> Result<SparkRet, String> {
        Ok(match self.invoke(inv).await? {
            Some(results) => SparkRet::Done(results.into_iter().map(read).collect()),
            None => SparkRet::NotConnected,
        })
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

/// squall's spark backends: the reference and its mutants.
pub fn all() -> Vec<Backend> {
    let reference = |bug: Option<Bug>| {
        let backend = Backend::reference(
            "spark/reference",
            "an edge node per server host: store synced to disk before it answers, expiry by the node's clock, pulls over the network",
            bug.map(|b| (b.backend(), b.about())),
        );
        backend.serves::<Spark>(move |s| {
            Rc::new(Reference {
                bug,
                params: crate::protocol::settings::<Spark>(s).params.clone(),
            })
        })
    };
    let mut all = vec![reference(None)];
    all.extend(Bug::ALL.map(|bug| reference(Some(bug))));
    all
}

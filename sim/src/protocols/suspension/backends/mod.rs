//! Suspension backends (FlowFabric's suspension / waitpoint / lease / signal protocol),
//! reached through [`SuspClient`].
//!
//! - [`reference`](mod@reference): squall's own, in the simulation, and its mutants;
//! - `redis` (feature `redis`): FlowFabric's Lua library in a real Redis, over a socket:
//!   the live backend `suspension/flowfabric-redis`, which the differential test
//!   `sim/tests/flowfabric_lua.rs` drives too.

use async_trait::async_trait;
use squall_models::suspension::{SuspOp, SuspRet};
use std::rc::Rc;

use crate::backend::Backend;
use crate::protocol::{Caller, Capability, System};
use crate::protocols::suspension::Suspension;
use crate::world::{Node, Software};

#[cfg(feature = "redis")]
pub mod redis;
pub mod reference;

/// A client of a suspension backend: one operation, one answer (the Lua's result array).
#[async_trait(?Send)]
pub trait SuspClient {
    /// The answer, or why its outcome is unknown.
    async fn call(&mut self, op: &SuspOp) -> Result<SuspRet, String>;
    /// `op` as it ran, if the backend knows better than its caller ([`Caller::ran`]).
    fn ran(&mut self, _op: &SuspOp) -> Option<SuspOp> {
        None
    }
    /// A lost operation, as sent and as it ran, once learned ([`Caller::settled`]).
    fn settled(&mut self) -> Option<(SuspOp, SuspOp)> {
        None
    }
}

/// squall's suspension backends: the reference and its mutants, and FlowFabric's Lua in a
/// real redis-server (live; feature `redis`).
pub fn all() -> Vec<Backend> {
    let reference = |bug: Option<reference::Bug>| {
        let backend = Backend::reference(
            "suspension/reference",
            "one server applying the protocol function, a synced operation log, request dedup",
            bug.map(|b| (b.backend(), b.about())),
        );
        backend.serves::<Suspension>(move |s| {
            Rc::new(reference::Reference {
                bug,
                params: crate::protocols::suspension::params(s),
            })
        })
    };
    let mut all = vec![reference(None)];
    all.extend(reference::Bug::ALL.map(|bug| reference(Some(bug))));
    #[cfg(feature = "redis")]
    all.push(
        Backend::new(
            "suspension/flowfabric-redis",
            crate::backend::Kind::RealLive,
            "FlowFabric's Lua library v6 (ff-script 0.2.0) in a real redis-server, over FCALL",
        )
        .serves_live::<Suspension>(|s| Box::new(redis::FlowFabric::new(s))),
    );
    all
}

/// A suspension backend that runs inside the simulation.
pub trait SuspBackend {
    /// The software of server host `node`. Called again each time the host restarts after a
    /// crash; what it kept on `node.disk` (synced) is still there.
    fn serve(&self, node: Node) -> Software;
    /// A client for client host `node`.
    fn client(&self, node: Node) -> Box<dyn SuspClient>;
    /// The capabilities it lacks, each with why ([`System::lacks`]); none by default.
    fn lacks(&self) -> Vec<(Capability, &'static str)> {
        Vec::new()
    }
}

impl<B: SuspBackend> System<Suspension> for B {
    fn serve(&self, node: Node) -> Software {
        SuspBackend::serve(self, node)
    }

    fn client(&self, node: Node) -> Box<dyn Caller<Suspension>> {
        Box::new(SuspBackend::client(self, node))
    }

    fn lacks(&self) -> Vec<(Capability, &'static str)> {
        SuspBackend::lacks(self)
    }
}

impl SuspBackend for reference::Reference {
    fn serve(&self, node: Node) -> Software {
        Box::pin(reference::serve(node, self.clone()))
    }

    fn client(&self, node: Node) -> Box<dyn SuspClient> {
        Box::new(reference::Client::new(node))
    }
}

#[async_trait(?Send)]
impl<C: SuspClient> Caller<Suspension> for C {
    async fn call(&mut self, op: &SuspOp) -> Result<SuspRet, String> {
        SuspClient::call(self, op).await
    }

    fn ran(&mut self, op: &SuspOp) -> Option<SuspOp> {
        SuspClient::ran(self, op)
    }

    fn settled(&mut self) -> Option<(SuspOp, SuspOp)> {
        SuspClient::settled(self)
    }
}

#[async_trait(?Send)]
impl SuspClient for Box<dyn SuspClient> {
    async fn call(&mut self, op: &SuspOp) -> Result<SuspRet, String> {
        self.as_mut().call(op).await
    }

    fn ran(&mut self, op: &SuspOp) -> Option<SuspOp> {
        self.as_mut().ran(op)
    }

    fn settled(&mut self) -> Option<(SuspOp, SuspOp)> {
        self.as_mut().settled()
    }
}

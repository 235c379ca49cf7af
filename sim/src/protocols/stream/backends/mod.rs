//! Durable Streams backends: squall's reference server and its mutants, and the real
//! `durable-streams-server` embedded in the simulation (feature `dss`). All speak HTTP (see
//! [`http`]) and are driven by the same client; the first server host serves.
//!
//! HTTP is the protocol's surface, so an outside backend implements only
//! [`StreamBackend`]: the software of a server host, serving the Durable Streams HTTP API on
//! port [`crate::world::PORT`] of the host over `turmoil::net`. squall's client sends
//! the requests and reads the answers.

use async_trait::async_trait;
use squall_models::stream::{StreamError, StreamOp, StreamRet};
use std::rc::Rc;

use crate::backend::Backend;
use crate::protocol::{Caller, Capability, System};
use crate::protocols::stream::Streams;
use crate::world::{Node, Software};

pub mod http;
#[cfg(feature = "dss")]
pub mod real;
pub mod reference;

use reference::Bug;

/// squall's stream backends: the reference and its mutants, and the embedded
/// durable-streams-server (feature `dss`).
pub fn all() -> Vec<Backend> {
    let backend = |server: Server| {
        let backend = match server {
            Server::Reference(bug) => Backend::reference(
                "stream/reference",
                "one HTTP server, operations serialised, the store synced to disk before each answer",
                bug.map(|b| (b.backend(), b.about())),
            ),
            #[cfg(feature = "dss")]
            Server::Real => Backend::new(
                "stream/durable-streams-server",
                crate::backend::Kind::RealSim,
                "durable-streams-server 0.2.0 (build_router, InMemoryStorage) embedded",
            ),
        };
        backend.serves::<Streams>(move |_| Rc::new(server))
    };
    let mut all = vec![backend(Server::Reference(None))];
    all.extend(Bug::ALL.map(|bug| backend(Server::Reference(Some(bug)))));
    #[cfg(feature = "dss")]
    all.push(backend(Server::Real));
    all
}

/// Which server a backend runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// Ours, with a planted bug or none.
    Reference(Option<Bug>),
    /// durable-streams-server 0.2.0 (feature `dss`).
    #[cfg(feature = "dss")]
    Real,
}

/// A Durable Streams server that runs inside the simulation.
pub trait StreamBackend {
    /// The software of server host `node`: an HTTP server on port [`crate::world::PORT`].
    /// Called again each time the host restarts after a crash; what it kept on `node.disk`
    /// (synced) is still there.
    fn serve(&self, node: Node) -> Software;
    /// The capabilities it lacks, each with why ([`System::lacks`]); none by default.
    fn lacks(&self) -> Vec<(Capability, &'static str)> {
        Vec::new()
    }
}

impl<B: StreamBackend> System<Streams> for B {
    fn serve(&self, node: Node) -> Software {
        StreamBackend::serve(self, node)
    }

    fn client(&self, node: Node) -> Box<dyn Caller<Streams>> {
        Box::new(Client { node })
    }

    fn lacks(&self) -> Vec<(Capability, &'static str)> {
        StreamBackend::lacks(self)
    }
}

impl StreamBackend for Server {
    fn serve(&self, node: Node) -> Software {
        match *self {
            Server::Reference(bug) => reference::serve(node, bug),
            #[cfg(feature = "dss")]
            Server::Real => real::serve(node),
        }
    }

    fn lacks(&self) -> Vec<(Capability, &'static str)> {
        let http = (
            Capability::Frames,
            "it speaks HTTP through hyper, not squall's frames",
        );
        match self {
            Server::Reference(_) => vec![http],
            #[cfg(feature = "dss")]
            Server::Real => vec![
                http,
                (
                    Capability::Durable,
                    "InMemoryStorage loses every stream when its host crashes",
                ),
                (
                    Capability::SimulatedTime,
                    "expiry reads the wall clock (chrono::Utc::now), not the simulated one",
                ),
            ],
        }
    }
}

/// A client: one request a call, to the first server.
struct Client {
    node: Node,
}

#[async_trait(?Send)]
impl Caller<Streams> for Client {
    async fn call(&mut self, op: &StreamOp) -> Result<StreamRet, String> {
        let server = &self.node.servers[0];
        let (status, headers, body) = http::send(server, http::request(server, op)).await?;
        // A malformed answer is still an answer, and a wrong one.
        Ok(
            http::answer(op, status, &headers, &body).unwrap_or_else(|why| {
                StreamRet::Err(StreamError::Other {
                    status: status.as_u16(),
                    kind: why,
                })
            }),
        )
    }
}

//! Durable Streams backends: squall's reference server and its mutants, and the real
//! `durable-streams-server` embedded in the simulation. All speak HTTP (see [`http`]) and
//! are driven by the same client; the first server host serves.

use async_trait::async_trait;
use squall_models::stream::{StreamError, StreamOp, StreamRet};
use std::rc::Rc;

use super::{Info, Kind};
use crate::protocol::{Caller, Capability, System};
use crate::workload::stream::Streams;
use crate::world::{Node, Software};

pub mod http;
pub mod real;
pub mod reference;

use reference::Bug;

/// The stream backends.
pub const BACKENDS: &[Info] = &[
    Info {
        name: "stream/reference",
        protocols: &["stream"],
        kind: Kind::Reference,
        about:
            "one HTTP server, operations serialised, the store synced to disk before each answer",
    },
    Info {
        name: "stream/mutant-duplicate-append",
        protocols: &["stream"],
        kind: Kind::Mutant,
        about: "no producer dedup: a retried append is appended again",
    },
    Info {
        name: "stream/mutant-stale-epoch",
        protocols: &["stream"],
        kind: Kind::Mutant,
        about: "a stale producer epoch is accepted instead of fenced",
    },
    Info {
        name: "stream/mutant-seq-as-number",
        protocols: &["stream"],
        kind: Kind::Mutant,
        about: "Stream-Seq compared as a number, not bytewise",
    },
    Info {
        name: "stream/mutant-offset-reuse",
        protocols: &["stream"],
        kind: Kind::Mutant,
        about: "offsets start from zero again after delete and re-create",
    },
    Info {
        name: "stream/mutant-closure-lost",
        protocols: &["stream"],
        kind: Kind::Mutant,
        about: "closure kept in memory only: lost on restart",
    },
    Info {
        name: "stream/durable-streams-server",
        protocols: &["stream"],
        kind: Kind::RealSim,
        about: "durable-streams-server 0.2.0 (build_router, InMemoryStorage) embedded",
    },
];

/// Which server a backend runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// Ours, with a planted bug or none.
    Reference(Option<Bug>),
    /// durable-streams-server 0.2.0.
    Real,
}

/// The stream backend called `name`.
pub fn system(name: &str) -> Option<Rc<dyn System<Streams>>> {
    let server = match name {
        "stream/reference" => Server::Reference(None),
        "stream/durable-streams-server" => Server::Real,
        _ => Server::Reference(Some(Bug::ALL.into_iter().find(|b| b.backend() == name)?)),
    };
    Some(Rc::new(server))
}

impl System<Streams> for Server {
    fn serve(&self, node: Node) -> Software {
        match *self {
            Server::Reference(bug) => reference::serve(node, bug),
            Server::Real => real::serve(node),
        }
    }

    fn client(&self, node: Node) -> Box<dyn Caller<Streams>> {
        Box::new(Client { node })
    }

    fn lacks(&self) -> Vec<(Capability, &'static str)> {
        let http = (
            Capability::Frames,
            "it speaks HTTP through hyper, not squall's frames",
        );
        match self {
            Server::Reference(_) => vec![http],
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

//! Suspension backends (FlowFabric's suspension / waitpoint / lease / signal protocol),
//! reached through [`SuspClient`].
//!
//! - [`reference`]: squall's own, in the simulation, and its mutants;
//! - [`redis`]: FlowFabric's Lua library in a real Redis, over a socket: the live backend
//!   `suspension/flowfabric-redis`, which the differential test `sim/tests/flowfabric_lua.rs`
//!   drives too.

use async_trait::async_trait;
use squall_models::suspension::{SuspOp, SuspRet};
use std::rc::Rc;

use super::{Info, Kind};
use crate::protocol::{Caller, System};
use crate::scenario::Scenario;
use crate::workload::suspension::Suspension;
use crate::world::{Node, Software};

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

/// The suspension backends.
pub const BACKENDS: &[Info] = &[
    Info {
        name: "suspension/flowfabric-redis",
        protocols: &["suspension"],
        kind: Kind::RealLive,
        about: "FlowFabric's Lua library v6 (ff-script 0.2.0) in a real redis-server, over FCALL",
    },
    Info {
        name: "suspension/reference",
        protocols: &["suspension"],
        kind: Kind::Reference,
        about: "one server applying the protocol function, a synced operation log, request dedup",
    },
    Info {
        name: "suspension/mutant-fence-skipped",
        protocols: &["suspension"],
        kind: Kind::Mutant,
        about: "renew and suspend skip the lease id / epoch fence check",
    },
    Info {
        name: "suspension/mutant-epoch-not-bumped",
        protocols: &["suspension"],
        kind: Kind::Mutant,
        about: "reclaim keeps the old lease epoch instead of incrementing it",
    },
    Info {
        name: "suspension/mutant-signal-before-hmac",
        protocols: &["suspension"],
        kind: Kind::Mutant,
        about: "a signal takes effect before its HMAC token is checked",
    },
    Info {
        name: "suspension/mutant-dedup-after-effect",
        protocols: &["suspension"],
        kind: Kind::Mutant,
        about: "a signal's idempotency record is synced after its effect; a crash between loses it",
    },
    Info {
        name: "suspension/mutant-expiry-not-idempotent",
        protocols: &["suspension"],
        kind: Kind::Mutant,
        about: "a repeated suspension-timeout scan applies the timeout behaviour again",
    },
    Info {
        name: "suspension/mutant-grace-off-by-one",
        protocols: &["suspension"],
        kind: Kind::Mutant,
        about: "a retired HMAC key stops validating one millisecond early (at expires_at)",
    },
];

/// The suspension backend called `name`, set up for `scenario`.
pub fn system(name: &str, scenario: &Scenario) -> Option<Rc<dyn System<Suspension>>> {
    let backend = reference::named(name)?;
    Some(Rc::new(reference::Reference {
        params: crate::workload::suspension::params(scenario),
        ..backend
    }))
}

/// The live suspension backend called `name`, set up for `scenario`.
pub fn live(name: &str, scenario: &Scenario) -> Option<Box<dyn crate::live::Backend<Suspension>>> {
    (name == "suspension/flowfabric-redis")
        .then(|| Box::new(redis::FlowFabric::new(scenario)) as Box<dyn crate::live::Backend<_>>)
}

impl System<Suspension> for reference::Reference {
    fn serve(&self, node: Node) -> Software {
        Box::pin(reference::serve(node, self.clone()))
    }

    fn client(&self, node: Node) -> Box<dyn Caller<Suspension>> {
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

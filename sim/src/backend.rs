//! A backend as squall names, lists and runs it: its name (written once, here), what it is,
//! and how to build it for each protocol it serves, in the simulation or live.
//!
//! A [`Backend`] is a value: squall's own are listed by [`crate::protocols::Registry`], and an
//! outside crate builds its own the same way and adds it to a registry:
//!
//! ```
//! use squall::backend::{Backend, Kind};
//! use squall::protocols::kv::{backends::reference::Reference, Kv};
//! use std::rc::Rc;
//!
//! let mine = Backend::new("kv/mine", Kind::RealSim, "squall's reference, under another name")
//!     .serves::<Kv>(|_scenario| Rc::new(Reference::default()));
//! assert_eq!(mine.protocols(), ["kv"]);
//! ```

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use crate::live;
use crate::protocol::{Protocol, System};
use crate::scenario::Scenario;

/// What a backend is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// squall's own, correct implementation of a protocol.
    Reference,
    /// A reference backend with one planted, realistic bug, which squall must catch.
    Mutant,
    /// Someone else's code, run inside the simulation.
    RealSim,
    /// Someone else's server, reached over real sockets ([`crate::live`]).
    RealLive,
    /// A backend that panics, hangs or answers garbage, to test the harness itself.
    Misbehaving,
}

/// Builds a backend's system for a scenario (its protocol settings, its bucket).
type Build<P> = Arc<dyn Fn(&Scenario) -> Rc<dyn System<P>> + Send + Sync>;
/// Builds a backend's live client side for a scenario.
type BuildLive<P> = Arc<dyn Fn(&Scenario) -> Box<dyn live::Backend<P>> + Send + Sync>;

/// A named backend: how to build it for each protocol it serves.
///
/// Cheap to clone; it crosses threads (a sweep runs each seed on a thread of its own), and
/// builds its [`System`] inside the run's thread.
#[derive(Clone)]
pub struct Backend {
    name: String,
    kind: Kind,
    about: String,
    /// Per protocol name, a [`Build`] or a [`BuildLive`] of that protocol.
    builds: BTreeMap<&'static str, Arc<dyn Any + Send + Sync>>,
}

impl Backend {
    /// A backend serving no protocol yet; `about` is one line: what it is, and for a mutant,
    /// its bug.
    pub fn new(name: impl Into<String>, kind: Kind, about: impl Into<String>) -> Backend {
        Backend {
            name: name.into(),
            kind,
            about: about.into(),
            builds: BTreeMap::new(),
        }
    }

    /// squall's reference backend of a protocol, called `name`, or, with a planted bug's
    /// `(name, about)`, the mutant it makes.
    pub fn reference(name: &str, about: &str, bug: Option<(&str, &str)>) -> Backend {
        match bug {
            None => Backend::new(name, Kind::Reference, about),
            Some((name, about)) => Backend::new(name, Kind::Mutant, about),
        }
    }

    /// Serve protocol `P` in the simulation with the system `build` makes for a scenario.
    pub fn serves<P: Protocol>(
        mut self,
        build: impl Fn(&Scenario) -> Rc<dyn System<P>> + Send + Sync + 'static,
    ) -> Backend {
        let build: Build<P> = Arc::new(build);
        self.builds.insert(P::NAME, Arc::new(build));
        self
    }

    /// Serve protocol `P` live, against a real server ([`crate::live`]).
    pub fn serves_live<P: Protocol>(
        mut self,
        build: impl Fn(&Scenario) -> Box<dyn live::Backend<P>> + Send + Sync + 'static,
    ) -> Backend {
        let build: BuildLive<P> = Arc::new(build);
        self.builds.insert(P::NAME, Arc::new(build));
        self
    }

    /// Its name, `PROTOCOL/IMPL` by convention (`kv/reference`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// One line: what it is.
    pub fn about(&self) -> &str {
        &self.about
    }

    /// The protocols it serves, in name order.
    pub fn protocols(&self) -> Vec<&'static str> {
        self.builds.keys().copied().collect()
    }

    /// Whether it serves `protocol`.
    pub fn serves_protocol(&self, protocol: &str) -> bool {
        self.builds.contains_key(protocol)
    }

    /// Whether it runs live, against a real server.
    pub fn is_live(&self) -> bool {
        self.kind == Kind::RealLive
    }

    /// Its system for protocol `P`, set up for `scenario`; `None` if it does not serve `P`
    /// in the simulation.
    pub fn system<P: Protocol>(&self, scenario: &Scenario) -> Option<Rc<dyn System<P>>> {
        let build = self.builds.get(P::NAME)?.downcast_ref::<Build<P>>()?;
        Some(build(scenario))
    }

    /// Its live side for protocol `P`, set up for `scenario`; `None` if it does not serve
    /// `P` live.
    pub fn live<P: Protocol>(&self, scenario: &Scenario) -> Option<Box<dyn live::Backend<P>>> {
        let build = self.builds.get(P::NAME)?.downcast_ref::<BuildLive<P>>()?;
        Some(build(scenario))
    }
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("protocols", &self.protocols())
            .finish()
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Reference => "reference",
            Kind::Mutant => "mutant",
            Kind::RealSim => "real-sim",
            Kind::RealLive => "real-live",
            Kind::Misbehaving => "misbehaving",
        })
    }
}

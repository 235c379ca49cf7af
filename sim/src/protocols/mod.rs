//! The protocols squall knows, one folder each, and the registry of backends.
//!
//! A protocol's folder holds its [`Protocol`] impl (how a workload draws its operations,
//! how a history of them is checked), its checkers, and its backends: squall's reference,
//! its mutants, and real ones. The `protocols!` line below is the only list of protocols; squall's
//! drivers (sweep, shrink, scenario loading, live mode) reach a protocol by name only through
//! [`visit`].
//!
//! Backends are values ([`Backend`]) held by a [`Registry`]: [`Registry::shipped`] holds
//! squall's own, and an outside crate adds its own backend to it the same way:
//!
//! ```
//! use squall::backend::{Backend, Kind};
//! use squall::protocols::{kv::backends::reference::Reference, kv::Kv, Registry};
//! use std::rc::Rc;
//!
//! let registry = Registry::shipped()
//!     .with(Backend::new("kv/mine", Kind::RealSim, "ours").serves::<Kv>(|_| Rc::new(Reference::default())));
//! assert!(registry.get("kv/mine").is_some());
//! assert_eq!(registry.reference("kv").unwrap().name(), "kv/reference");
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use crate::backend::{Backend, Kind};
use crate::plan;
use crate::protocol::Protocol;
use crate::scenario::{self, Catalogue, Scenario, Section, Settings};

pub mod kv;
pub mod spark;
pub mod stream;
pub mod suspension;
pub mod watch;

/// Something generic over a protocol, done for one protocol chosen by name at run time.
pub trait Visit {
    type Out;
    fn visit<P: Protocol>(self) -> Self::Out;
}

macro_rules! protocols {
    ($($p:ty $(=> $backends:path)?),* $(,)?) => {
        /// Every protocol's name, in the order of the list.
        pub const NAMES: &[&str] = &[$(<$p as Protocol>::NAME),*];

        /// Do `v` for the protocol called `name`; `None` if there is none.
        pub fn visit<V: Visit>(name: &str, v: V) -> Option<V::Out> {
            $(if name == <$p as Protocol>::NAME {
                return Some(v.visit::<$p>());
            })*
            None
        }

        /// squall's own backends of every protocol.
        fn shipped() -> Vec<Backend> {
            let mut all = Vec::new();
            $($(all.extend($backends());)?)*
            all
        }
    };
}

// The one list of protocols, each with squall's own backends of it (the KV backends serve
// `watch` too).
protocols!(
    kv::Kv => kv::backends::all,
    watch::Watches,
    spark::Spark => spark::backends::all,
    suspension::Suspension => suspension::backends::all,
    stream::Streams => stream::backends::all,
);

/// Backends by name: squall's own, and any an outside crate adds.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    backends: BTreeMap<String, Backend>,
}

impl Registry {
    /// squall's own backends: references, mutants, real ones and misbehaving ones.
    pub fn shipped() -> Registry {
        shipped()
            .into_iter()
            .fold(Registry::default(), Registry::with)
    }

    /// This registry with `backend` added.
    ///
    /// # Panics
    /// If a backend of the same name is registered already: a name must say which code ran.
    pub fn with(mut self, backend: Backend) -> Registry {
        if let Err(why) = self.add(backend) {
            panic!("{why}");
        }
        self
    }

    /// Add `backend`; an error if its name is taken or it serves no protocol squall knows.
    pub fn add(&mut self, backend: Backend) -> Result<(), String> {
        let name = backend.name().to_string();
        if self.backends.contains_key(&name) {
            return Err(format!("a backend called {name:?} is registered already"));
        }
        if let Some(p) = (backend.protocols().iter()).find(|p| !NAMES.contains(p)) {
            return Err(format!(
                "backend {name:?} serves {p:?}, which is no protocol"
            ));
        }
        self.backends.insert(name, backend);
        Ok(())
    }

    /// The backend called `name`.
    pub fn get(&self, name: &str) -> Option<&Backend> {
        self.backends.get(name)
    }

    /// Every backend, in name order.
    pub fn backends(&self) -> impl Iterator<Item = &Backend> {
        self.backends.values()
    }

    /// The reference backend of `protocol`: what a scenario runs when it names none.
    pub fn reference(&self, protocol: &str) -> Option<&Backend> {
        self.backends()
            .find(|b| b.kind() == Kind::Reference && b.serves_protocol(protocol))
    }

    /// Read and validate a scenario file, its protocol and backend known to this registry.
    pub fn load(&self, path: &Path) -> Result<Scenario, scenario::Error> {
        Scenario::load(path, self)
    }
}

impl Catalogue for Registry {
    fn protocols(&self) -> &[&'static str] {
        NAMES
    }

    fn operations(&self, protocol: &str) -> Option<Vec<&'static str>> {
        struct Ops;
        impl Visit for Ops {
            type Out = Vec<&'static str>;
            fn visit<P: Protocol>(self) -> Self::Out {
                P::operations()
            }
        }
        visit(protocol, Ops)
    }

    fn intent(&self, protocol: &str, table: &toml::Table) -> Result<(), String> {
        struct Intent<'a>(&'a toml::Table);
        impl Visit for Intent<'_> {
            type Out = Result<(), String>;
            fn visit<P: Protocol>(self) -> Self::Out {
                plan::intent::<P::Intent>(self.0).map(drop)
            }
        }
        visit(protocol, Intent(table)).unwrap_or_else(|| Err(format!("no protocol {protocol:?}")))
    }

    fn settings(
        &self,
        protocol: &str,
        section: Option<&Section>,
    ) -> Result<Settings, scenario::Error> {
        struct Read<'a, 'b>(Option<&'a Section<'b>>);
        impl Visit for Read<'_, '_> {
            type Out = Result<Settings, scenario::Error>;
            fn visit<P: Protocol>(self) -> Self::Out {
                let settings = match self.0 {
                    Some(section) => P::settings(section)?,
                    None => P::Settings::default(),
                };
                Ok(Settings::new(settings))
            }
        }
        visit(protocol, Read(section)).unwrap_or_else(|| Ok(Settings::default()))
    }

    fn serves(&self, backend: &str, protocol: &str) -> Option<bool> {
        self.get(backend).map(|b| b.serves_protocol(protocol))
    }

    fn reference(&self, protocol: &str) -> Option<String> {
        Registry::reference(self, protocol).map(|b| b.name().to_string())
    }
}

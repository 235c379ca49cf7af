//! A protocol's own section of a scenario file, named after it (`[spark]`): the scenario
//! hands it to the protocol (through its [`super::Catalogue`]) and keeps what the protocol
//! made of it, [`Settings`], without knowing its type.

use serde::de::DeserializeOwned;
use std::any::Any;
use std::fmt::{self, Debug};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;
use toml::de::{DeValue, ValueDeserializer};
use toml::Spanned;

use super::file::Locator;
use super::Error;

/// The section `[NAME]` of a scenario file, for the protocol `NAME` to read.
pub struct Section<'a> {
    pub(super) at: &'a Locator<'a>,
    pub(super) name: String,
    pub(super) value: Spanned<DeValue<'a>>,
}

impl Section<'_> {
    /// The section's name: the protocol's.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The section as `T`, its [`Spanned`] fields carrying their places in the file; a value
    /// `T` refuses is an error at its line.
    pub fn read<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(ValueDeserializer::from(self.value.clone()))
            .map_err(|e| self.at.toml_error(e))
    }

    /// An error about field `field` of the section (written without the section's name), at
    /// `span`.
    pub fn error(&self, span: Range<usize>, field: &str, message: impl Into<String>) -> Error {
        self.at
            .error(span, &format!("{}.{field}", self.name), message)
    }

    /// An error about the whole section.
    pub fn refuse(&self, message: impl Into<String>) -> Error {
        self.at.error(self.value.span(), &self.name, message)
    }

    /// A duration such as "250ms", as every duration of a scenario is read.
    pub fn duration(&self, field: &str, s: &Spanned<String>) -> Result<Duration, Error> {
        self.at.duration(&format!("{}.{field}", self.name), s)
    }

    /// The value `v` names, one of `names`.
    pub fn choice<T: Copy>(
        &self,
        v: &Spanned<String>,
        field: &str,
        names: &[(&str, T)],
    ) -> Result<T, Error> {
        match names.iter().find(|(n, _)| n == v.get_ref()) {
            Some((_, t)) => Ok(*t),
            None => {
                let names: Vec<String> = names.iter().map(|(n, _)| format!("{n:?}")).collect();
                Err(self.error(
                    v.span(),
                    field,
                    format!("must be one of {}", names.join(", ")),
                ))
            }
        }
    }
}

/// What a protocol made of its section: its `Protocol::Settings`, of a type only it knows.
#[derive(Clone)]
pub struct Settings(Arc<dyn Value>);

/// A settings value: anything sendable that prints.
trait Value: Any + Debug + Send + Sync {}
impl<T: Any + Debug + Send + Sync> Value for T {}

impl Settings {
    pub fn new<T: Any + Debug + Send + Sync>(value: T) -> Settings {
        Settings(Arc::new(value))
    }

    /// The settings, if they are a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        (&*self.0 as &dyn Any).downcast_ref()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::new(())
    }
}

impl Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

//! A campaign: the scenarios a command names, each paired with the backend it runs against.

use std::path::PathBuf;

use crate::backend::Backend;
use crate::protocols::Registry;
use crate::scenario::{self, Scenario};

/// Load the scenarios under `paths`, each with the backend to run it against: the one
/// called `backend`, for the scenarios of a protocol it serves, or else the scenario's own.
/// An error names the file, line and field of a bad scenario, an unknown backend, or a
/// selection with nothing to run.
pub fn load(
    registry: &Registry,
    paths: &[PathBuf],
    backend: Option<&str>,
) -> Result<Vec<(Scenario, Backend)>, String> {
    let named = match backend {
        Some(name) => Some(registry.get(name).ok_or_else(|| {
            format!("unknown backend {name:?}; `squall list backends` lists them")
        })?),
        None => None,
    };
    let mut out = Vec::new();
    for file in scenario::files(paths)? {
        let s = registry.load(&file).map_err(|e| e.to_string())?;
        let backend = match named {
            Some(b) if b.serves_protocol(&s.protocol) => b,
            Some(_) => continue,
            None => registry
                .get(&s.backend)
                .ok_or_else(|| format!("{}: no backend {:?}", file.display(), s.backend))?,
        };
        out.push((s, backend.clone()));
    }
    if out.is_empty() {
        return Err(match named {
            Some(b) => format!(
                "no scenario under the given paths is of a protocol {} serves ({})",
                b.name(),
                b.protocols().join(", ")
            ),
            None => "no scenario files under the given paths".into(),
        });
    }
    Ok(out)
}

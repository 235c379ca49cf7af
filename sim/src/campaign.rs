//! A campaign: the scenarios a command names, each paired with the backend it runs against.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::Backend;
use crate::protocols::Registry;
use crate::report::{Outcome, Run, Tally};
use crate::scenario::{self, Scenario};
use crate::sweep::{self, Sweep};
use crate::{live, regressions};

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

/// Which seeds a campaign runs of each scenario.
#[derive(Clone, Debug, Default)]
pub struct Seeds {
    /// These seeds of every scenario; each scenario's own `seeds` when `None`.
    pub range: Option<Range<u64>>,
    /// `(I, N)`: only the seeds `s` with `s % N == I - 1` (1-based), for CI matrices.
    pub shard: Option<(u64, u64)>,
}

impl Seeds {
    /// The seeds of `scenario` this selection runs.
    pub fn of(&self, scenario: &Scenario) -> Vec<u64> {
        let range = self.range.clone().unwrap_or_else(|| scenario.seeds.clone());
        range
            .filter(|seed| self.shard.is_none_or(|(i, n)| seed % n == i - 1))
            .collect()
    }
}

/// Where a campaign reports as it goes (the command line's progress bar, say).
pub trait Sink {
    /// Show `text`: whole lines.
    fn print(&mut self, text: &str);
    /// One more run is done.
    fn tick(&mut self, failed: bool);
    /// Run `run` of `scenario` is done, whatever its verdict; nothing by default.
    fn ran(&mut self, _scenario: &Scenario, _run: &Run) {}
    /// The campaign is over.
    fn finish(&mut self);
}

/// Run `seeds` of every scenario on its backend with `sweep`, reporting to `progress`: a
/// header per scenario (or why the backend cannot run it), every run when `every` (else
/// only the failing ones). Stops early once `sweep` is told to stop. Returns the tally.
pub fn run(
    scenarios: &[(Scenario, Backend)],
    seeds: &Seeds,
    sweep: &Sweep,
    every: bool,
    progress: &mut (dyn Sink + Send),
) -> Tally {
    let mut tally = Tally::default();
    for (s, backend) in scenarios {
        if sweep.stopped() {
            break;
        }
        let name = backend.name();
        let header = format!("# scenario {} ({}, {name})", s.path.display(), s.name);
        if let Err(why) = sweep::applicable(s, backend) {
            progress.print(&format!("{header}: not applicable to {name}: {why}\n"));
            continue;
        }
        progress.print(&format!("{header}\n"));
        sweep.run(s, backend, &seeds.of(s), |run| {
            let failed = run.verdict != Outcome::Ok;
            if every || failed {
                progress.print(&run.report(&s.path));
            }
            progress.tick(failed);
            progress.ran(s, run);
            tally.add(&s.path, run);
        });
    }
    progress.finish();
    tally
}

/// One server of each kind the live runs of `scenarios` need, shared by the whole campaign;
/// each stops when dropped.
pub fn servers(scenarios: &[(Scenario, Backend)]) -> Result<Vec<Arc<live::Server>>, String> {
    let mut flavors: Vec<_> = scenarios
        .iter()
        .filter_map(|(s, b)| sweep::flavor(s, b))
        .collect();
    flavors.dedup();
    flavors.into_iter().map(live::Server::shared).collect()
}

/// Add every failing run's seed to its scenario's regression seeds; per scenario, how many
/// were new, or why they could not be saved.
pub fn save_failures(registry: &Registry, tally: &Tally) -> Vec<(PathBuf, Result<usize, String>)> {
    let mut by_scenario: BTreeMap<&Path, Vec<(String, u64)>> = BTreeMap::new();
    for (scenario, backend, seed, _) in &tally.failed {
        by_scenario
            .entry(scenario)
            .or_default()
            .push((backend.clone(), *seed));
    }
    (by_scenario.into_iter())
        .map(|(scenario, seeds)| {
            let saved = regressions::save(registry, scenario, seeds);
            (scenario.to_path_buf(), saved)
        })
        .collect()
}

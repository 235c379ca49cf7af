//! Your backend under squall, from your own crate's `cargo test`.
//!
//! A [`Suite`] holds one backend to squall's scenarios (the shipped ones, embedded in this
//! crate, or your own files): it runs every seed, snapshots each scenario's first history
//! with insta in your crate's snapshots folder, and on a failure fails the test with the
//! minimal failing history and the one command that replays that seed:
//!
//! ```text
//! seed=3 backend=kv/mine verdict=violation ops=160 history=598a586a41cc5d00
//!   violation: ...
//!   minimal failing history:
//!     ...
//! replay: SQUALL_SCENARIO=scenarios/kv/partition.toml SQUALL_SEED=3 cargo test -p mine -- conformance
//! ```
//!
//! With `SQUALL_SEED` set (and `SQUALL_SCENARIO`, to pick one scenario), a suite runs only
//! that seed and prints its whole history; a run is a function of its seed, so it is the
//! same history, with the same hash, as the failure's.
//!
//! ```no_run
//! use squall::backend::{Backend, Kind};
//! use squall::protocols::kv::{backends::reference::Reference, Kv};
//! use squall::suite::Suite;
//! use std::rc::Rc;
//!
//! // In tests/conformance.rs of your crate:
//! // #[test]
//! fn conformance() {
//!     let backend = Backend::new("kv/mine", Kind::RealSim, "my KV store")
//!         .serves::<Kv>(|_scenario| Rc::new(Reference::default()));
//!     Suite::new(backend).shipped("kv").seeds(0..8).run();
//! }
//! ```

use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::backend::Backend;
use crate::protocols::Registry;
use crate::report::{Outcome, Run};
use crate::scenario::{self, Scenario};
use crate::sweep::{self, Sweep};

/// squall's scenario files, as shipped: `(path, text)`, paths as `scenarios/kv/partition.toml`.
pub fn shipped() -> Vec<(&'static str, &'static str)> {
    SHIPPED
        .find("**/*.toml")
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let file = entry.as_file()?;
            Some((file.path().to_str()?, file.contents_utf8()?))
        })
        .collect()
}

static SHIPPED: include_dir::Dir<'static> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/../scenarios");

/// The environment variable that picks one seed to run, to replay a failure.
pub const SEED: &str = "SQUALL_SEED";
/// The environment variable that picks one scenario (its path as the failure printed it).
pub const SCENARIO: &str = "SQUALL_SCENARIO";

/// A conformance suite: one backend, the scenarios it must hold, the seeds to run.
pub struct Suite {
    registry: Registry,
    backend: Backend,
    scenarios: Vec<Result<Scenario, String>>,
    seeds: Option<Range<u64>>,
    snapshots: Option<PathBuf>,
    jobs: usize,
}

/// What a suite found: every run, in order, and those that did not hold.
#[derive(Debug, Default)]
pub struct Outcomes {
    /// `(scenario path, run)` of every run.
    pub runs: Vec<(PathBuf, Run)>,
    /// Scenarios the backend cannot run, each with why (a capability it lacks).
    pub skipped: Vec<(PathBuf, String)>,
    /// The failures, each as printed: the run, why, and its replay instruction.
    pub failures: Vec<Failure>,
}

/// A run that did not hold.
#[derive(Debug, Clone)]
pub struct Failure {
    pub scenario: PathBuf,
    pub run: Run,
    /// The environment and command that replay it from the crate under test.
    pub replay: String,
}

impl Suite {
    /// A suite for `backend`, which joins squall's own in a registry (its name must be new).
    pub fn new(backend: Backend) -> Suite {
        Suite {
            registry: Registry::shipped().with(backend.clone()),
            backend,
            scenarios: Vec::new(),
            seeds: None,
            snapshots: default_snapshots(),
            jobs: 1,
        }
    }

    /// Add the shipped scenarios of `protocol` (its folder, `kv`, `watch`, ...; or one file
    /// by its path, `kv/partition.toml`).
    pub fn shipped(mut self, protocol: &str) -> Suite {
        let prefix = format!("{protocol}/");
        for (path, text) in shipped() {
            if path.starts_with(&prefix) || path == protocol {
                let path = Path::new("scenarios").join(path);
                let s = Scenario::parse(&path, text, &self.registry).map_err(|e| e.to_string());
                self.scenarios.push(s);
            }
        }
        self
    }

    /// Add the scenario files at `path` (a file, or every `*.toml` below a folder).
    pub fn files(mut self, path: impl AsRef<Path>) -> Suite {
        match scenario::files(&[path.as_ref().to_path_buf()]) {
            Ok(files) => {
                let loaded = files.iter().map(|f| self.registry.load(f));
                self.scenarios
                    .extend(loaded.map(|s| s.map_err(|e| e.to_string())));
            }
            Err(e) => self.scenarios.push(Err(e)),
        }
        self
    }

    /// Run these seeds of every scenario, instead of each scenario's own `seeds`.
    pub fn seeds(mut self, seeds: Range<u64>) -> Suite {
        self.seeds = Some(seeds);
        self
    }

    /// Runs at once, a thread each (1 by default: `cargo test` runs tests side by side).
    pub fn jobs(mut self, jobs: usize) -> Suite {
        self.jobs = jobs;
        self
    }

    /// Where insta keeps the snapshots of each scenario's first history: by default
    /// `tests/snapshots` of the crate under test; `None` takes none.
    pub fn snapshots(mut self, dir: Option<PathBuf>) -> Suite {
        self.snapshots = dir;
        self
    }

    /// Run the suite and fail the test on any failure, printing each with its minimal
    /// failing history and replay instruction.
    ///
    /// # Panics
    /// On a failure, a scenario that cannot be read, or a snapshot that differs.
    pub fn run(self) {
        let outcomes = self.check();
        if !outcomes.failures.is_empty() {
            let mut text = String::new();
            for f in &outcomes.failures {
                let _ = write!(text, "{}\n{}replay: {}\n", f.run, f.run.details(), f.replay);
            }
            panic!(
                "{} of {} runs of {} failed:\n{text}",
                outcomes.failures.len(),
                outcomes.runs.len(),
                self.backend.name()
            );
        }
    }

    /// Run the suite: every run and every failure, for a test to judge.
    ///
    /// # Panics
    /// On a scenario that cannot be read, or none to run, or a snapshot that differs.
    pub fn check(&self) -> Outcomes {
        let chosen = std::env::var(SEED).ok().map(|s| {
            s.parse::<u64>()
                .unwrap_or_else(|_| panic!("{SEED}={s:?} is not a seed"))
        });
        let only = std::env::var(SCENARIO).ok();
        let mut outcomes = Outcomes::default();
        let mut ran = 0;
        // Named here: a sweep calls back from threads of its own.
        let test = std::thread::current().name().map(str::to_string);
        for s in &self.scenarios {
            let s = s.as_ref().unwrap_or_else(|e| panic!("{e}"));
            if only.as_deref().is_some_and(|o| Path::new(o) != s.path) {
                continue;
            }
            ran += 1;
            if let Err(why) = sweep::applicable(s, &self.backend) {
                outcomes.skipped.push((s.path.clone(), why));
                continue;
            }
            let seeds: Vec<u64> = match chosen {
                Some(seed) => vec![seed],
                None => self.seeds.clone().unwrap_or(s.seeds.clone()).collect(),
            };
            let sweep = Sweep {
                jobs: self.jobs,
                ..Sweep::default()
            };
            sweep.run(s, &self.backend, &seeds, |run| {
                if chosen.is_some() {
                    print!("{}", run.history);
                    println!("{run}");
                }
                if run.verdict != Outcome::Ok {
                    outcomes.failures.push(Failure {
                        scenario: s.path.clone(),
                        run: run.clone(),
                        replay: replay(&s.path, run.seed, test.as_deref()),
                    });
                }
                outcomes.runs.push((s.path.clone(), run.clone()));
            });
            if chosen.is_none() {
                self.snapshot(s, &outcomes);
            }
        }
        assert!(ran > 0, "the suite has no scenario to run");
        outcomes
    }

    /// Snapshot the history of the first seed of `s` that ran.
    fn snapshot(&self, s: &Scenario, outcomes: &Outcomes) {
        let (Some(dir), Some((_, first))) = (
            &self.snapshots,
            outcomes.runs.iter().find(|(p, _)| *p == s.path),
        ) else {
            return;
        };
        let name = s
            .path
            .with_extension("")
            .to_string_lossy()
            .trim_start_matches("scenarios/")
            .replace(['/', '\\'], "__");
        let name = format!("{}__{name}", self.backend.name().replace('/', "__"));
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(dir);
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.bind(|| insta::assert_snapshot!(name, first.history));
    }
}

/// `tests/snapshots` of the crate under test (cargo tells a test where its crate is).
fn default_snapshots() -> Option<PathBuf> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    Some(PathBuf::from(dir).join("tests").join("snapshots"))
}

/// The command that replays seed `seed` of the scenario at `scenario` from the crate under
/// test: this test again, with the seed and the scenario in the environment.
fn replay(scenario: &Path, seed: u64, test: Option<&str>) -> String {
    let package = std::env::var("CARGO_PKG_NAME").map_or(String::new(), |p| format!(" -p {p}"));
    let test = test
        .filter(|n| *n != "main")
        .map_or(String::new(), |n| format!(" -- {n} --exact"));
    format!(
        "{SCENARIO}={} {SEED}={seed} cargo test{package}{test}",
        scenario.display()
    )
}

//! Scenario files: what to run, against which backend, under which faults.
//!
//! A scenario is a TOML file; [`Scenario::load`] reads and validates one. Every rejection is
//! an [`Error`] naming the file, the line and the field, never a panic:
//!
//! ```toml
//! name = "kv-cas-under-partition"
//! protocol = "kv"
//! backend = "kv/reference"      # the default; `--backend` overrides
//! seeds = "0..64"               # the seeds a sweep runs by default
//! duration = "30s"              # simulated time; operations still open then are unknown
//! timeout = "1s"                # how long a client waits for an answer (default 1s)
//!
//! [topology]
//! servers = 3
//! clients = 5
//!
//! [workload]
//! keys = 4                      # keys k0..k3
//! ops_per_client = 80
//! mix = { get = 3, put = 1, create = 1, update = 3, delete = 1, delete_with_version = 1, purge = 1 }
//! think = { min = "0ms", max = "20ms" }   # pause before each operation
//!
//! [network]
//! latency = { min = "1ms", max = "20ms" }
//!
//! [[fault]]
//! at = "5s"
//! partition = [["server-1"], ["server-2", "server-3", "client-*"]]
//! heal_after = "4s"
//!
//! [[fault]]
//! at = "12s"
//! crash = "server-2"
//! restart_after = "2s"
//!
//! [expect]
//! linearizable = true
//! answered = true               # no faults: an operation that never answers is a violation
//! ```
//!
//! Fault kinds (one per `[[fault]]`, each at simulated time `at`):
//! - `partition = [[group], [group], ...]`: messages between hosts of different groups are
//!   dropped; `oneway = true` (two groups only) drops them from the first group to the
//!   second only; `heal_after` repairs what it cut.
//! - `crash = "host"`: the host stops and loses unsynced disk writes; `restart_after` starts
//!   its software again.
//! - `latency = "200ms"`: the maximum message latency of every link; `restore_after` sets it
//!   back to the `[network]` one.
//! - `clock = "host"` with `jump = "+2s"` or `"-500ms"`: the host's clock (what backends
//!   read as the time of day, for TTLs and leases) moves; a skew is a jump at `0s`.
//!
//! Host names are `server-1..N` and `client-1..M`; `server-*` and `client-*` name them all.
//!
//! A protocol may read a section of its own, named after it ([`Section`]): `[spark]`
//! ([`crate::protocols::spark::settings`]), `[suspension]`
//! ([`crate::protocols::suspension::settings`]).
//!
//! What the bucket keeps of its past writes (what a watch can resume from), for backends and
//! checkers alike:
//!
//! ```toml
//! [bucket]
//! history = 1                   # writes kept per key, 1..=64 (NATS `history`; default 1)
//! max_age = "2s"                # writes older than this are dropped (NATS `max_age`)
//! max_bytes = 4096              # size cap: a write past it is refused (NATS `max_bytes`)
//! ```
//!
//! How long a run may take before it is stopped with an `error` verdict (defaults shown;
//! `squall run --budget` overrides the budget):
//!
//! ```toml
//! [limits]
//! budget = "10m"                # wall-clock time, simulation and checking together
//! overtime = "1h"               # simulated time past `duration` (last calls, a finale)
//! ```
//!
//! Sizes are bounded so that no file can exhaust memory or run for days: hosts
//! ([`MAX_HOSTS`] of each kind), operations ([`MAX_OPS_PER_CLIENT`] a client,
//! [`MAX_OPERATIONS`] a plan, checked before it is drawn), keys, durations ([`MAX_DURATION`]),
//! seeds in a range ([`MAX_SEEDS`]), faults ([`MAX_FAULTS`]), mix weights, the file itself
//! ([`MAX_FILE_BYTES`]); spark's `value_cap` and `calls` too.
//! The KV checks know no expiry, so a scenario with `max_age` mixes only blind writes
//! (`put`, `delete`, `purge`) and watches.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use squall_models::watch::Retention;

use crate::faults::{Schedule, Spec};

mod fault;
mod file;
mod section;
pub mod swarm;
mod validate;
mod walk;

use file::{Locator, Raw};
pub use section::{Section, Settings};
use serde::Deserialize;
use toml::de::DeTable;
pub use walk::{files, parse_seeds};

/// What one client does: a pause, then an operation, in turn.
#[derive(Clone, Debug, PartialEq)]
pub struct Step<I> {
    pub think: Duration,
    pub intent: I,
}

/// A validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The file it came from.
    pub path: PathBuf,
    pub name: String,
    pub protocol: String,
    pub backend: String,
    pub seeds: Range<u64>,
    pub duration: Duration,
    pub timeout: Duration,
    pub servers: usize,
    pub clients: usize,
    pub workload: Workload,
    pub latency: (Duration, Duration),
    /// The `[[fault]]` entries, one spec a host.
    pub specs: Vec<Spec>,
    /// The schedule of `specs`.
    pub faults: Schedule,
    /// The `[[client]]` tables: every client's steps, written out rather than drawn (a
    /// shrunk plan, say); each intent is the protocol's intent as a TOML table.
    pub script: Option<Vec<Vec<Step<toml::Table>>>>,
    pub expect: Expect,
    /// What the protocol made of its own section (`[spark]`), or of its absence.
    pub settings: Settings,
    /// What the bucket keeps of past writes (`[bucket]`).
    pub bucket: Retention,
    /// The file as TOML, for writing a variant of it (a shrunk plan).
    pub source: toml::Table,
    /// `swarm = true`: each seed draws its topology and faults ([`crate::scenario::swarm`]).
    pub swarm: Option<crate::scenario::swarm::Swarm>,
    /// What a swarm drew for the seed this scenario is (see [`Scenario::for_seed`]).
    pub drawn: Option<String>,
    /// How long a run may take (`[limits]`).
    pub limits: Limits,
    /// How far after the time a history records an operation the backend may have read
    /// its clock for it: zero in a simulation; live mode reads a real server's clock around
    /// each call ([`Scenario::judged_live`]). Not a field of the file.
    pub slack: Duration,
}

/// How long a run may take before it is stopped with an `error` verdict: a backend that
/// busy-loops or never stops must not stall a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time for a run, simulation and checking together.
    pub budget: Duration,
    /// Simulated time a run may take past `duration` (the last calls, a finale).
    pub overtime: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            budget: Duration::from_secs(600),
            overtime: Duration::from_secs(3600),
        }
    }
}

/// What the clients do.
#[derive(Clone, Debug)]
pub struct Workload {
    pub keys: usize,
    pub ops_per_client: usize,
    /// Operation names with their weights, as the protocol's workload knows them.
    pub mix: BTreeMap<String, u32>,
    pub think: (Duration, Duration),
}

/// What must hold.
#[derive(Clone, Debug)]
pub struct Expect {
    pub linearizable: bool,
    /// Every operation answers within `timeout`: on a healthy network an operation that
    /// never does is a violation (a backend that stalls), not an unknown outcome. Simulated
    /// runs only ([`Scenario::judged_live`]).
    pub answered: bool,
}

/// A scenario file that cannot be used, with where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is the file as a whole.
    pub line: usize,
    /// The dotted field, e.g. `fault[2].crash`; empty when no field is to blame.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for Error {}

/// The largest scenario a file may ask for, so that a typo cannot exhaust memory or run for
/// days: each is checked before anything is drawn, with an error naming the field.
pub const MAX_HOSTS: usize = 256;
pub const MAX_OPS_PER_CLIENT: usize = 1_000_000;
/// Operations of a whole plan: every client's, and a finale's one per key.
pub const MAX_OPERATIONS: usize = 1_000_000;
pub const MAX_KEYS: usize = 1_000_000;
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Seeds in one range, in a file or on the command line.
pub const MAX_SEEDS: u64 = 1_000_000;
/// `[[fault]]` entries.
pub const MAX_FAULTS: usize = 1_000;
/// A `mix` weight.
pub const MAX_WEIGHT: u32 = 1_000_000;
/// A scenario file's size.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// What scenario loading asks of the protocols and backends it does not know itself: a
/// file names them, and a registry of them ([`crate::protocols::Registry`]) answers.
pub trait Catalogue {
    /// Every protocol's name.
    fn protocols(&self) -> &[&'static str];
    /// The operation names `protocol`'s workload takes in `mix`; `None` if there is no such
    /// protocol.
    fn operations(&self, protocol: &str) -> Option<Vec<&'static str>>;
    /// Whether `table` is an intent of `protocol` (a `[[client.op]]`), or why not.
    fn intent(&self, protocol: &str, table: &toml::Table) -> Result<(), String>;
    /// What `protocol` makes of its section of the file (`section`), or of its absence.
    fn settings(&self, protocol: &str, section: Option<&Section>) -> Result<Settings, Error>;
    /// Whether backend `backend` serves `protocol`; `None` if there is no such backend.
    fn serves(&self, backend: &str, protocol: &str) -> Option<bool>;
    /// The reference backend of `protocol`, which a scenario runs when it names none.
    fn reference(&self, protocol: &str) -> Option<String>;
}

impl Scenario {
    /// Read and validate a scenario file.
    pub fn load(path: &Path, catalogue: &dyn Catalogue) -> Result<Scenario, Error> {
        let whole = |message: String| Error {
            file: path.to_path_buf(),
            line: 0,
            field: String::new(),
            message,
        };
        let size = std::fs::metadata(path).map_err(|e| whole(format!("cannot read: {e}")))?;
        if size.len() > MAX_FILE_BYTES as u64 {
            return Err(whole(format!(
                "{} bytes is more than the limit of {MAX_FILE_BYTES}",
                size.len()
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| whole(format!("cannot read: {e}")))?;
        match std::str::from_utf8(&bytes) {
            Ok(text) => Scenario::parse(path, text, catalogue),
            Err(e) => {
                // Name the line of the first bad byte: the text up to it is good.
                let good = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
                let at = Locator { path, text: good };
                let offset = good.len();
                Err(at.error(offset..offset, &at.field_at(offset), "not UTF-8 text"))
            }
        }
    }

    /// Validate scenario text; `path` is only used to name it in errors.
    pub fn parse(path: &Path, text: &str, catalogue: &dyn Catalogue) -> Result<Scenario, Error> {
        let at = Locator { path, text };
        if text.len() > MAX_FILE_BYTES {
            let message = format!("the file is more than the limit of {MAX_FILE_BYTES} bytes");
            return Err(at.error(MAX_FILE_BYTES..MAX_FILE_BYTES, "(file)", message));
        }
        let mut doc = DeTable::parse(text).map_err(|e| at.toml_error(e))?;
        // Sections named after a protocol are the protocols' to read, not the file's.
        let sections: Vec<Section> = (catalogue.protocols().iter())
            .filter_map(|p| doc.get_mut().remove_entry(*p))
            .map(|(name, value)| Section {
                at: &at,
                name: name.into_inner().into_owned(),
                value,
            })
            .collect();
        let raw = Raw::deserialize(toml::de::Deserializer::from(doc));
        let raw = raw.map_err(|e| at.toml_error(e))?;
        let mut scenario = at.validate(raw, &sections, catalogue)?;
        // As plain TOML too, for writing variants of the file; TOML's integers are i64, so a
        // number past that, which the typed fields above read, is refused here.
        scenario.source = toml::from_str(text).map_err(|e| at.toml_error(e))?;
        Ok(scenario)
    }

    /// The scenario as seed `seed` runs it: itself, or a swarm's draw for the seed.
    pub fn for_seed(&self, seed: u64) -> std::borrow::Cow<'_, Scenario> {
        match &self.swarm {
            Some(swarm) => std::borrow::Cow::Owned(crate::scenario::swarm::draw(self, swarm, seed)),
            None => std::borrow::Cow::Borrowed(self),
        }
    }

    /// The scenario as a live run of it is judged: a real server's clock is read just before
    /// each call, in whole milliseconds, so the call may have read the next one; and
    /// `expect.answered` is off, since on the wall clock a loaded machine, not the server,
    /// can make a call outlast its timeout.
    pub fn judged_live(&self) -> Scenario {
        Scenario {
            slack: Duration::from_millis(1),
            expect: Expect {
                answered: false,
                ..self.expect.clone()
            },
            ..self.clone()
        }
    }

    /// The scenario with `specs` for its faults.
    pub fn with_specs(&self, specs: Vec<Spec>) -> Scenario {
        Scenario {
            faults: Spec::schedule(&specs),
            specs,
            ..self.clone()
        }
    }

    /// The file as TOML, with its topology as this scenario has it.
    pub fn concrete(&self) -> toml::Table {
        let mut doc = self.source.clone();
        doc.remove("swarm");
        doc.remove("swarm_faults");
        let mut topology = toml::Table::new();
        topology.insert("servers".into(), (self.servers as i64).into());
        topology.insert("clients".into(), (self.clients as i64).into());
        doc.insert("topology".into(), topology.into());
        // A swarm's draw may also narrow the mix and switch max_age off.
        if let Some(toml::Value::Table(w)) = doc.get_mut("workload") {
            let mix = self.workload.mix.iter();
            let mix = mix.map(|(op, w)| (op.clone(), i64::from(*w).into()));
            w.insert("mix".into(), toml::Value::Table(mix.collect()));
        }
        if self.bucket.max_age.is_none() {
            if let Some(toml::Value::Table(b)) = doc.get_mut("bucket") {
                b.remove("max_age");
            }
        }
        doc
    }

    /// Every host name, servers first.
    pub fn hosts(&self) -> Vec<String> {
        host_names(self.servers, self.clients)
    }
}

/// Whether operation `op` of a KV or watch mix may run on a bucket with `max_age`: blind
/// writes and watches, which the checks judge knowing writes age out.
pub fn ages_well(op: &str) -> bool {
    matches!(op, "put" | "delete" | "purge") || op.starts_with("watch_")
}

pub fn server_names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("server-{i}")).collect()
}

pub fn client_names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("client-{i}")).collect()
}

/// The names of `servers` servers and `clients` clients, servers first.
fn host_names(servers: usize, clients: usize) -> Vec<String> {
    let mut hosts = server_names(servers);
    hosts.extend(client_names(clients));
    hosts
}

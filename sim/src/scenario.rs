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
//! A `suspension` scenario may add a `[suspension]` section (defaults shown):
//!
//! ```toml
//! [suspension]
//! lease_ttl = "200ms"   # the lease a claim asks for
//! grace = "100ms"       # how long a rotated-out HMAC key stays valid
//! timeout = "300ms"     # suspension and pending-waitpoint timeouts, from now
//! clock = "1ms"         # resolution of the callers' clocks, which stamp operations
//! ```
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

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

use squall_models::watch::Retention;

use crate::faults::{Fault, Odds, Schedule, Spec};

mod spark;
pub mod swarm;
pub use spark::Spark;

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
    /// The `[spark]` section (defaults unless the protocol is `spark`).
    pub spark: Spark,
    /// The `[suspension]` section (its defaults for other protocols).
    pub suspension: SuspensionTimes,
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

/// The suspension workload's times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuspensionTimes {
    pub lease_ttl: Duration,
    pub grace: Duration,
    pub timeout: Duration,
    pub clock: Duration,
}

impl Default for SuspensionTimes {
    fn default() -> Self {
        SuspensionTimes {
            lease_ttl: Duration::from_millis(200),
            grace: Duration::from_millis(100),
            timeout: Duration::from_millis(300),
            clock: Duration::from_millis(1),
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
    /// Whether backend `backend` serves `protocol`; `None` if there is no such backend.
    fn serves(&self, backend: &str, protocol: &str) -> Option<bool>;
    /// The reference backend of `protocol`, which a scenario runs when it names none.
    fn reference(&self, protocol: &str) -> Option<String>;
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Spanned<String>,
    protocol: Spanned<String>,
    backend: Option<Spanned<String>>,
    seeds: Option<Spanned<String>>,
    duration: Spanned<String>,
    timeout: Option<Spanned<String>>,
    topology: RawTopology,
    workload: RawWorkload,
    #[serde(default)]
    network: RawNetwork,
    #[serde(default)]
    fault: Vec<RawFault>,
    #[serde(default)]
    expect: RawExpect,
    spark: Option<Spanned<spark::Raw>>,
    suspension: Option<Spanned<RawSuspension>>,
    bucket: Option<RawBucket>,
    client: Option<Spanned<Vec<RawClient>>>,
    swarm: Option<Spanned<bool>>,
    swarm_faults: Option<Spanned<Vec<String>>>,
    limits: Option<RawLimits>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    #[serde(default)]
    op: Vec<Spanned<toml::Table>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    budget: Option<Spanned<String>>,
    overtime: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuspension {
    lease_ttl: Option<Spanned<String>>,
    grace: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    clock: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBucket {
    history: Option<Spanned<usize>>,
    max_age: Option<Spanned<String>>,
    max_bytes: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    servers: Spanned<usize>,
    clients: Spanned<usize>,
    min_servers: Option<Spanned<usize>>,
    min_clients: Option<Spanned<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    keys: Spanned<usize>,
    ops_per_client: Spanned<usize>,
    /// Each operation spanned: an inline table may span lines, and an error names the line
    /// of the operation it is about.
    mix: Spanned<BTreeMap<Spanned<String>, u32>>,
    think: Option<RawSpan>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpan {
    min: Spanned<String>,
    max: Spanned<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    latency: Option<RawSpan>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    at: Spanned<String>,
    partition: Option<Spanned<Vec<Vec<String>>>>,
    oneway: Option<Spanned<bool>>,
    heal_after: Option<Spanned<String>>,
    crash: Option<Spanned<String>>,
    restart_after: Option<Spanned<String>>,
    latency: Option<Spanned<String>>,
    restore_after: Option<Spanned<String>>,
    clock: Option<Spanned<String>>,
    jump: Option<Spanned<String>>,
    buggify: Option<Spanned<bool>>,
    messages: Option<Spanned<RawOdds>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOdds {
    loss: Option<Spanned<f64>>,
    duplicate: Option<Spanned<f64>>,
    reorder: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    #[serde(default = "yes")]
    linearizable: bool,
}

impl Default for RawExpect {
    fn default() -> Self {
        RawExpect { linearizable: true }
    }
}

fn yes() -> bool {
    true
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
        let toml_error = |e: toml::de::Error| {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().trim().replace('\n', " ");
            // serde names a missing field in its message; the span is its table's.
            let field = match message
                .strip_prefix("missing field `")
                .and_then(|m| m.split('`').next())
            {
                Some(missing) => match at.table_at(span.start) {
                    table if table.is_empty() => missing.to_string(),
                    table => format!("{table}.{missing}"),
                },
                None => at.field_at(span.start),
            };
            at.error(span, &field, message)
        };
        let raw: Raw = toml::from_str(text).map_err(toml_error)?;
        let mut scenario = at.validate(raw, catalogue)?;
        // As plain TOML too, for writing variants of the file; TOML's integers are i64, so a
        // number past that, which the typed fields above read, is refused here.
        scenario.source = toml::from_str(text).map_err(toml_error)?;
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
    /// each call, in whole milliseconds, so the call may have read the next one.
    pub fn judged_live(&self) -> Scenario {
        Scenario {
            slack: Duration::from_millis(1),
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
        let mut hosts = server_names(self.servers);
        hosts.extend(client_names(self.clients));
        hosts
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

/// Turns byte offsets into lines and fields for errors.
struct Locator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Locator<'_> {
    /// The 1-based line of a byte offset; an offset past the end is on the last line.
    fn line(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.text.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn error(&self, span: Range<usize>, field: &str, message: impl Into<String>) -> Error {
        Error {
            file: self.path.to_path_buf(),
            line: self.line(span.start),
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The start of the line a byte offset falls in (any offset, even inside a character).
    fn line_start(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.text.as_bytes()[..offset]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
    }

    /// The table a byte offset falls in, read off the text: the header on its line or the
    /// last one above it, `[[fault]]` entries counted (`fault[2]`); empty at the top level.
    fn table_at(&self, offset: usize) -> String {
        let end = self.text[self.line_start(offset)..]
            .find('\n')
            .map_or(self.text.len(), |i| self.line_start(offset) + i);
        let mut table = String::new();
        let mut faults = 0;
        for l in self.text[..end].lines().map(str::trim) {
            if l.starts_with("[[fault]]") {
                faults += 1;
                table = format!("fault[{faults}]");
            } else if l.starts_with('[') {
                let header = l.trim_matches(|c| c == '[' || c == ']').trim();
                table = if is_key(header) {
                    name(header)
                } else {
                    String::new()
                };
            }
        }
        table
    }

    /// The dotted field a byte offset falls in: its table and the key at the start of its
    /// line; `(top level)` when neither can be read off the text.
    fn field_at(&self, offset: usize) -> String {
        let start = self.line_start(offset);
        let line = self.text[start..].lines().next().unwrap_or("").trim();
        let table = self.table_at(offset);
        // Only what reads as a key (bare or quoted) names a field; garbage does not.
        let key = match line.split_once('=') {
            Some((key, _)) if is_key(key.trim()) => name(key),
            _ => String::new(),
        };
        match (table.is_empty(), key.is_empty()) {
            (true, true) => "(top level)".into(),
            (true, false) => key,
            (false, true) => table,
            (false, false) => format!("{table}.{key}"),
        }
    }

    /// A `messages` fault's odds: each a fraction from 0 to 1, together at most 1.
    fn odds(&self, field: &str, raw: &Spanned<RawOdds>) -> Result<Odds, Error> {
        let odd = |name: &str, v: &Option<Spanned<f64>>| -> Result<u32, Error> {
            let Some(v) = v else { return Ok(0) };
            let x = *v.get_ref();
            if !(0.0..=1.0).contains(&x) {
                return Err(self.error(
                    v.span(),
                    &format!("{field}.{name}"),
                    format!("{x} is not a chance: write a fraction from 0 to 1, e.g. 0.05"),
                ));
            }
            Ok((x * f64::from(Odds::WHOLE)).round() as u32)
        };
        let r = raw.get_ref();
        let odds = Odds {
            loss: odd("loss", &r.loss)?,
            duplicate: odd("duplicate", &r.duplicate)?,
            reorder: odd("reorder", &r.reorder)?,
        };
        if odds.loss + odds.duplicate + odds.reorder > Odds::WHOLE {
            return Err(self.error(
                raw.span(),
                field,
                "loss, duplicate and reorder add up to more than 1",
            ));
        }
        Ok(odds)
    }

    fn duration(&self, field: &str, s: &Spanned<String>) -> Result<Duration, Error> {
        let d = humantime::parse_duration(s.get_ref().trim()).map_err(|e| {
            self.error(
                s.span(),
                field,
                format!(
                    "not a duration ({e}): {:?}; write e.g. \"250ms\" or \"5s\"",
                    s.get_ref()
                ),
            )
        })?;
        if d > MAX_DURATION {
            return Err(self.error(
                s.span(),
                field,
                format!("{:?} is longer than the limit of 24h", s.get_ref()),
            ));
        }
        Ok(d)
    }

    fn span(&self, field: &str, raw: &RawSpan) -> Result<(Duration, Duration), Error> {
        let min = self.duration(&format!("{field}.min"), &raw.min)?;
        let max = self.duration(&format!("{field}.max"), &raw.max)?;
        if min > max {
            return Err(self.error(
                raw.min.span(),
                &format!("{field}.min"),
                "min is greater than max",
            ));
        }
        Ok((min, max))
    }

    fn validate(&self, raw: Raw, catalogue: &dyn Catalogue) -> Result<Scenario, Error> {
        let protocol = raw.protocol.get_ref().clone();
        let Some(known_ops) = catalogue.operations(&protocol) else {
            return Err(self.error(
                raw.protocol.span(),
                "protocol",
                format!(
                    "unknown protocol {protocol:?}; known: {}",
                    catalogue.protocols().join(", ")
                ),
            ));
        };
        let backend = match &raw.backend {
            Some(b) => {
                let name = b.get_ref();
                match catalogue.serves(name, &protocol) {
                    None => {
                        return Err(self.error(
                            b.span(),
                            "backend",
                            format!("unknown backend {name:?}; `squall list backends` lists them"),
                        ))
                    }
                    Some(false) => {
                        return Err(self.error(
                            b.span(),
                            "backend",
                            format!("backend {name:?} does not serve protocol {protocol:?}"),
                        ))
                    }
                    Some(true) => name.clone(),
                }
            }
            // The protocol's reference backend: `kv/reference` serves `watch` too.
            None => catalogue
                .reference(&protocol)
                .unwrap_or(format!("{protocol}/reference")),
        };
        let seeds = match &raw.seeds {
            Some(s) => parse_seeds(s.get_ref()).map_err(|m| self.error(s.span(), "seeds", m))?,
            None => 0..16,
        };
        let duration = self.duration("duration", &raw.duration)?;
        let timeout = match &raw.timeout {
            Some(t) => self.duration("timeout", t)?,
            None => Duration::from_secs(1),
        };
        if timeout.is_zero() {
            return Err(self.error(
                raw.timeout.as_ref().map_or(0..0, |t| t.span()),
                "timeout",
                "must be more than zero",
            ));
        }
        let servers = *raw.topology.servers.get_ref();
        let clients = *raw.topology.clients.get_ref();
        for (n, what, s) in [
            (servers, "topology.servers", &raw.topology.servers),
            (clients, "topology.clients", &raw.topology.clients),
        ] {
            if n == 0 || n > MAX_HOSTS {
                return Err(self.error(
                    s.span(),
                    what,
                    format!("{n} is out of range 1..={MAX_HOSTS}"),
                ));
            }
        }

        let w = &raw.workload;
        if *w.keys.get_ref() == 0 || *w.keys.get_ref() > MAX_KEYS {
            return Err(self.error(
                w.keys.span(),
                "workload.keys",
                format!("must be in 1..={MAX_KEYS}"),
            ));
        }
        let ops = *w.ops_per_client.get_ref();
        if ops > MAX_OPS_PER_CLIENT {
            return Err(self.error(
                w.ops_per_client.span(),
                "workload.ops_per_client",
                format!("more than the limit of {MAX_OPS_PER_CLIENT}"),
            ));
        }
        // The plan is drawn whole before a run starts: bound it here, not in memory.
        if clients * ops > MAX_OPERATIONS {
            return Err(self.error(
                w.ops_per_client.span(),
                "workload.ops_per_client",
                format!(
                    "{clients} clients x {ops} operations is more than the limit of \
                     {MAX_OPERATIONS} operations a plan"
                ),
            ));
        }
        for (name, weight) in w.mix.get_ref() {
            let field = format!("workload.mix.{}", name.get_ref());
            if !known_ops.contains(&name.get_ref().as_str()) {
                return Err(self.error(
                    name.span(),
                    &field,
                    format!(
                        "unknown {protocol} operation; known: {}",
                        known_ops.join(", ")
                    ),
                ));
            }
            if *weight > MAX_WEIGHT {
                return Err(self.error(
                    name.span(),
                    &field,
                    format!("a weight is at most {MAX_WEIGHT}"),
                ));
            }
        }
        let mix: BTreeMap<String, u32> = (w.mix.get_ref().iter())
            .map(|(name, weight)| (name.get_ref().clone(), *weight))
            .collect();
        if mix.values().all(|&v| v == 0) {
            return Err(self.error(
                w.mix.span(),
                "workload.mix",
                "needs at least one operation with a weight above zero",
            ));
        }
        let think = match &w.think {
            Some(t) => self.span("workload.think", t)?,
            None => (Duration::ZERO, Duration::ZERO),
        };
        let latency = match &raw.network.latency {
            Some(l) => self.span("network.latency", l)?,
            None => (Duration::from_millis(1), Duration::from_millis(5)),
        };

        let hosts = {
            let mut h = server_names(servers);
            h.extend(client_names(clients));
            h
        };
        if let Some(f) = raw.fault.get(MAX_FAULTS) {
            return Err(self.error(
                f.at.span(),
                &format!("fault[{}]", MAX_FAULTS + 1),
                format!("more than the limit of {MAX_FAULTS} faults"),
            ));
        }
        let mut specs = Vec::new();
        for (i, f) in raw.fault.iter().enumerate() {
            self.fault(&mut specs, i + 1, f, &hosts, latency.1)?;
        }
        let script = match &raw.client {
            Some(c) => {
                Some(self.script(catalogue, &protocol, c, clients, &raw.topology.clients)?)
            }
            None => None,
        };
        let is_swarm = raw.swarm.as_ref().is_some_and(|s| *s.get_ref());
        let bucket = match &raw.bucket {
            Some(b) => self.bucket(b, &mix, is_swarm)?,
            None => Retention::default(),
        };

        let spark = match &raw.spark {
            Some(s) if protocol != "spark" => {
                return Err(self.error(s.span(), "spark", "only a spark scenario takes [spark]"))
            }
            Some(s) => self.spark(s.get_ref())?,
            None => Spark::default(),
        };
        let suspension = self.suspension(&protocol, raw.suspension.as_ref())?;
        let swarm = self.swarm(&raw)?;
        let limits = self.limits(raw.limits.as_ref())?;

        Ok(Scenario {
            path: self.path.to_path_buf(),
            name: raw.name.into_inner(),
            protocol,
            backend,
            seeds,
            duration,
            timeout,
            servers,
            clients,
            workload: Workload {
                keys: *w.keys.get_ref(),
                ops_per_client: *w.ops_per_client.get_ref(),
                mix,
                think,
            },
            latency,
            faults: Spec::schedule(&specs),
            specs,
            script,
            expect: Expect {
                linearizable: raw.expect.linearizable,
            },
            spark,
            suspension,
            bucket,
            source: toml::Table::new(),
            swarm,
            drawn: None,
            limits,
            slack: Duration::ZERO,
        })
    }

    /// `swarm = true` with its bounds and fault kinds; `None` without.
    fn swarm(&self, raw: &Raw) -> Result<Option<crate::scenario::swarm::Swarm>, Error> {
        let t = &raw.topology;
        let on = raw.swarm.as_ref().is_some_and(|s| *s.get_ref());
        if !on {
            let stray = (t
                .min_servers
                .as_ref()
                .map(|m| (m.span(), "topology.min_servers")))
            .or(t
                .min_clients
                .as_ref()
                .map(|m| (m.span(), "topology.min_clients")))
            .or(raw
                .swarm_faults
                .as_ref()
                .map(|m| (m.span(), "swarm_faults")));
            return match stray {
                Some((span, field)) => Err(self.error(
                    span,
                    field,
                    "only a swarm scenario (`swarm = true`) takes this",
                )),
                None => Ok(None),
            };
        }
        if let Some(f) = raw.fault.first() {
            return Err(self.error(
                f.at.span(),
                "fault[1]",
                "a swarm scenario draws its faults; it takes no [[fault]]",
            ));
        }
        if let Some(c) = &raw.client {
            return Err(self.error(
                c.span(),
                "client",
                "a swarm scenario draws its plan; it takes no [[client]]",
            ));
        }
        let mut min = [1, 1];
        for (slot, (m, max, field)) in min.iter_mut().zip([
            (&t.min_servers, &t.servers, "topology.min_servers"),
            (&t.min_clients, &t.clients, "topology.min_clients"),
        ]) {
            if let Some(m) = m {
                if *m.get_ref() == 0 || m.get_ref() > max.get_ref() {
                    return Err(self.error(
                        m.span(),
                        field,
                        format!("must be in 1..={}", max.get_ref()),
                    ));
                }
                *slot = *m.get_ref();
            }
        }
        let kinds = match &raw.swarm_faults {
            None => crate::scenario::swarm::KINDS
                .iter()
                .map(|k| k.to_string())
                .collect(),
            Some(k) => {
                if let Some(bad) = k
                    .get_ref()
                    .iter()
                    .find(|k| !crate::scenario::swarm::KINDS.contains(&k.as_str()))
                {
                    return Err(self.error(
                        k.span(),
                        "swarm_faults",
                        format!(
                            "unknown fault kind {bad:?}; known: {}",
                            crate::scenario::swarm::KINDS.join(", ")
                        ),
                    ));
                }
                k.get_ref().clone()
            }
        };
        Ok(Some(crate::scenario::swarm::Swarm {
            min_servers: min[0],
            min_clients: min[1],
            kinds,
        }))
    }

    /// The `[[client]]` tables: one a client of the topology, each with its steps
    /// (`[[client.op]]`: `think`, then the intent's fields).
    fn script(
        &self,
        catalogue: &dyn Catalogue,
        protocol: &str,
        raw: &Spanned<Vec<RawClient>>,
        clients: usize,
        topology: &Spanned<usize>,
    ) -> Result<Vec<Vec<Step<toml::Table>>>, Error> {
        if raw.get_ref().len() != clients {
            return Err(self.error(
                topology.span(),
                "topology.clients",
                format!(
                    "{clients} clients, but the file scripts {} ([[client]] tables)",
                    raw.get_ref().len()
                ),
            ));
        }
        let mut out = Vec::new();
        for (c, client) in raw.get_ref().iter().enumerate() {
            let mut steps = Vec::new();
            for (n, op) in client.op.iter().enumerate() {
                let field = format!("client[{}].op[{}]", c + 1, n + 1);
                let mut intent = op.get_ref().clone();
                let think = match intent.remove("think") {
                    None => Duration::ZERO,
                    Some(toml::Value::String(t)) => {
                        self.duration(&format!("{field}.think"), &Spanned::new(op.span(), t))?
                    }
                    Some(_) => {
                        return Err(self.error(
                            op.span(),
                            &format!("{field}.think"),
                            "not a duration; write e.g. \"5ms\"",
                        ))
                    }
                };
                catalogue
                    .intent(protocol, &intent)
                    .map_err(|m| self.error(op.span(), &field, m))?;
                steps.push(Step { think, intent });
            }
            out.push(steps);
        }
        Ok(out)
    }

    /// The `[limits]` section: times above zero.
    fn limits(&self, raw: Option<&RawLimits>) -> Result<Limits, Error> {
        let mut limits = Limits::default();
        let Some(raw) = raw else { return Ok(limits) };
        for (name, value, slot) in [
            ("budget", &raw.budget, &mut limits.budget),
            ("overtime", &raw.overtime, &mut limits.overtime),
        ] {
            let Some(v) = value else { continue };
            let field = format!("limits.{name}");
            *slot = self.duration(&field, v)?;
            if slot.is_zero() {
                return Err(self.error(v.span(), &field, "must be more than zero"));
            }
        }
        Ok(limits)
    }

    /// The `[bucket]` section. A bucket that ages writes out holds only what blind writes
    /// and watches can judge: the KV checks know no expiry. A swarm scenario may mix more:
    /// a seed that draws `max_age` on runs only those ([`crate::scenario::swarm`]).
    fn bucket(
        &self,
        raw: &RawBucket,
        mix: &BTreeMap<String, u32>,
        swarm: bool,
    ) -> Result<Retention, Error> {
        let mut bucket = Retention::default();
        if let Some(h) = &raw.history {
            bucket.history = *h.get_ref();
            if !(1..=64).contains(&bucket.history) {
                return Err(self.error(h.span(), "bucket.history", "must be in 1..=64"));
            }
        }
        if let Some(a) = &raw.max_age {
            let age = self.duration("bucket.max_age", a)?;
            // NATS counts a max_age under 100ms as a configuration error.
            if age < Duration::from_millis(100) {
                return Err(self.error(a.span(), "bucket.max_age", "must be at least 100ms"));
            }
            let mut used = mix.iter().filter(|&(_, &weight)| weight > 0);
            let problem = match swarm {
                false => used.find(|(op, _)| !ages_well(op)).map(|(op, _)| {
                    format!(
                        "the KV checks know no expiry: with max_age the mix takes only put, \
                         delete, purge and watches, not {op}"
                    )
                }),
                true => (!used.any(|(op, _)| ages_well(op))).then(|| {
                    "a swarm seed that draws max_age runs only the put, delete, purge and \
                     watches of the mix, and this mix has none"
                        .to_string()
                }),
            };
            if let Some(problem) = problem {
                return Err(self.error(a.span(), "bucket.max_age", problem));
            }
            bucket.max_age = Some(age);
        }
        if let Some(b) = &raw.max_bytes {
            if *b.get_ref() == 0 {
                return Err(self.error(b.span(), "bucket.max_bytes", "must be more than zero"));
            }
            bucket.max_bytes = Some(*b.get_ref());
        }
        Ok(bucket)
    }

    /// The `[suspension]` section: only for the suspension protocol; times above zero.
    fn suspension(
        &self,
        protocol: &str,
        raw: Option<&Spanned<RawSuspension>>,
    ) -> Result<SuspensionTimes, Error> {
        let mut times = SuspensionTimes::default();
        let Some(raw) = raw else { return Ok(times) };
        if protocol != "suspension" {
            return Err(self.error(
                raw.span(),
                "suspension",
                format!("only a suspension scenario takes this section, not a {protocol} one"),
            ));
        }
        let r = raw.get_ref();
        for (name, value, slot) in [
            ("lease_ttl", &r.lease_ttl, &mut times.lease_ttl),
            ("grace", &r.grace, &mut times.grace),
            ("timeout", &r.timeout, &mut times.timeout),
            ("clock", &r.clock, &mut times.clock),
        ] {
            let Some(v) = value else { continue };
            let field = format!("suspension.{name}");
            let d = self.duration(&field, v)?;
            if d < Duration::from_millis(1) {
                return Err(self.error(v.span(), &field, "must be at least 1ms"));
            }
            *slot = d;
        }
        Ok(times)
    }

    fn hosts(
        &self,
        field: &str,
        span: Range<usize>,
        patterns: &[String],
        hosts: &[String],
    ) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        for p in patterns {
            let matched: Vec<&String> = match p.strip_suffix('*') {
                Some(prefix) => hosts.iter().filter(|h| h.starts_with(prefix)).collect(),
                None => hosts.iter().filter(|h| *h == p).collect(),
            };
            if matched.is_empty() {
                return Err(self.error(
                    span,
                    field,
                    format!("no host named {p:?} (hosts: {})", hosts.join(", ")),
                ));
            }
            for h in matched {
                if !out.contains(h) {
                    out.push(h.clone());
                }
            }
        }
        Ok(out)
    }

    fn fault(
        &self,
        out: &mut Vec<Spec>,
        i: usize,
        f: &RawFault,
        hosts: &[String],
        latency: Duration,
    ) -> Result<(), Error> {
        let field = |name: &str| format!("fault[{i}].{name}");
        let at = self.duration(&field("at"), &f.at)?;
        let kinds = [
            f.partition.is_some(),
            f.crash.is_some(),
            f.latency.is_some(),
            f.clock.is_some(),
            f.buggify.is_some(),
            f.messages.is_some(),
        ];
        if kinds.iter().filter(|&&k| k).count() != 1 {
            return Err(self.error(
                f.at.span(),
                &format!("fault[{i}]"),
                "needs exactly one of partition, crash, latency, clock, buggify, messages",
            ));
        }
        let after = |d: &Option<Spanned<String>>, name: &str| {
            d.as_ref()
                .map(|d| self.duration(&field(name), d))
                .transpose()
        };
        let misplaced = |d: &Option<Spanned<String>>, name: &str, kind: &str| match d {
            Some(d) => Err(self.error(
                d.span(),
                &field(name),
                format!("only a {kind} fault takes {name}"),
            )),
            None => Ok(()),
        };
        if f.clock.is_none() {
            misplaced(&f.jump, "jump", "clock")?;
        }
        if let Some(p) = &f.partition {
            misplaced(&f.restart_after, "restart_after", "crash")?;
            misplaced(&f.restore_after, "restore_after", "latency")?;
            let mut groups = Vec::new();
            for g in p.get_ref() {
                let g = self.hosts(&field("partition"), p.span(), g, hosts)?;
                if groups
                    .iter()
                    .any(|other: &Vec<String>| other.iter().any(|h| g.contains(h)))
                {
                    return Err(self.error(
                        p.span(),
                        &field("partition"),
                        "a host stands in two groups",
                    ));
                }
                groups.push(g);
            }
            if groups.len() < 2 {
                return Err(self.error(p.span(), &field("partition"), "needs at least two groups"));
            }
            let oneway = f.oneway.as_ref().is_some_and(|o| *o.get_ref());
            if oneway && groups.len() != 2 {
                return Err(self.error(
                    p.span(),
                    &field("partition"),
                    "a one-way partition takes exactly two groups",
                ));
            }
            let heal = after(&f.heal_after, "heal_after")?;
            out.push(Spec {
                at,
                fault: Fault::Partition {
                    groups: groups.clone(),
                    oneway,
                },
                undo: heal.map(|h| (h, Fault::Heal { groups, oneway })),
            });
        } else if let Some(c) = &f.crash {
            misplaced(&f.heal_after, "heal_after", "partition")?;
            misplaced(&f.restore_after, "restore_after", "latency")?;
            let host = self.hosts(
                &field("crash"),
                c.span(),
                std::slice::from_ref(c.get_ref()),
                hosts,
            )?;
            for h in &host {
                if h.starts_with("client-") {
                    return Err(self.error(
                        c.span(),
                        &field("crash"),
                        "only server hosts crash; a client's operations would simply stop",
                    ));
                }
            }
            let restart = after(&f.restart_after, "restart_after")?;
            for h in host {
                out.push(Spec {
                    at,
                    fault: Fault::Crash { host: h.clone() },
                    undo: restart.map(|r| (r, Fault::Restart { host: h })),
                });
            }
        } else if let Some(l) = &f.latency {
            misplaced(&f.heal_after, "heal_after", "partition")?;
            misplaced(&f.restart_after, "restart_after", "crash")?;
            let max = self.duration(&field("latency"), l)?;
            let restore = after(&f.restore_after, "restore_after")?;
            out.push(Spec {
                at,
                fault: Fault::Latency { max },
                undo: restore.map(|r| (r, Fault::Latency { max: latency })),
            });
        } else if let Some(b) = &f.buggify {
            misplaced(&f.heal_after, "heal_after", "partition")?;
            misplaced(&f.restart_after, "restart_after", "crash")?;
            let on = *b.get_ref();
            let restore = after(&f.restore_after, "restore_after")?;
            out.push(Spec {
                at,
                fault: Fault::Buggify { on },
                undo: restore.map(|r| (r, Fault::Buggify { on: !on })),
            });
        } else if let Some(m) = &f.messages {
            misplaced(&f.heal_after, "heal_after", "partition")?;
            misplaced(&f.restart_after, "restart_after", "crash")?;
            let odds = self.odds(&field("messages"), m)?;
            let restore = after(&f.restore_after, "restore_after")?;
            out.push(Spec {
                at,
                fault: Fault::Messages { odds },
                undo: restore.map(|r| {
                    let odds = Odds::default();
                    (r, Fault::Messages { odds })
                }),
            });
        } else if let Some(c) = &f.clock {
            misplaced(&f.heal_after, "heal_after", "partition")?;
            misplaced(&f.restart_after, "restart_after", "crash")?;
            misplaced(&f.restore_after, "restore_after", "latency")?;
            let Some(jump) = &f.jump else {
                return Err(self.error(
                    c.span(),
                    &field("jump"),
                    "a clock fault needs `jump`, e.g. \"+2s\" or \"-500ms\"",
                ));
            };
            let text = jump.get_ref().trim();
            let (sign, magnitude) = match text.strip_prefix('-') {
                Some(rest) => (-1, rest),
                None => (1, text.strip_prefix('+').unwrap_or(text)),
            };
            let by = self.duration(
                &field("jump"),
                &Spanned::new(jump.span(), magnitude.to_string()),
            )?;
            for host in self.hosts(
                &field("clock"),
                c.span(),
                std::slice::from_ref(c.get_ref()),
                hosts,
            )? {
                out.push(Spec {
                    at,
                    fault: Fault::Clock {
                        host,
                        by: sign * by.as_nanos() as i128,
                    },
                    undo: None,
                });
            }
        }
        Ok(())
    }
}

/// Whether `text` reads as a TOML key: bare words (dotted), or quoted.
fn is_key(text: &str) -> bool {
    let bare = |c: char| c.is_ascii_alphanumeric() || "_-. ".contains(c);
    let quoted = |q: char| {
        text.len() >= 2
            && text.starts_with(q)
            && text.ends_with(q)
            && !text[1..text.len() - 1].contains(|c: char| c == q || c.is_control())
    };
    !text.is_empty() && (text.chars().all(bare) || quoted('"') || quoted('\''))
}

/// Text from a file as a field name: trimmed, printable, not too long.
fn name(text: &str) -> String {
    text.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect()
}

/// The files named, and every `*.toml` below the folders named, each folder's sorted.
pub fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .map(|e| {
                e.map(|e| e.path())
                    .map_err(|e| format!("{}: {e}", dir.display()))
            })
            .collect::<Result<_, _>>()?;
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out)?;
            } else if p.extension().is_some_and(|e| e == "toml") {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(format!("{}: no such file or folder", p.display()));
        }
    }
    Ok(out)
}

/// `"A..B"` (B excluded) or a single seed `"N"`.
pub fn parse_seeds(s: &str) -> Result<Range<u64>, String> {
    let bad = || format!("{s:?} is not a seed range; write \"0..64\" or a single seed \"7\"");
    match s.split_once("..") {
        Some((a, b)) => {
            let a: u64 = a.trim().parse().map_err(|_| bad())?;
            let b: u64 = b.trim().parse().map_err(|_| bad())?;
            if a >= b {
                return Err(format!("{s:?} is empty"));
            }
            if b - a > MAX_SEEDS {
                return Err(format!(
                    "{s:?} is more than the limit of {MAX_SEEDS} seeds a range; \
                     split it, or use --shard"
                ));
            }
            Ok(a..b)
        }
        None => {
            let n: u64 = s.trim().parse().map_err(|_| bad())?;
            Ok(n..n.checked_add(1).ok_or_else(bad)?)
        }
    }
}

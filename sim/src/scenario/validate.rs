//! The file's tables checked into a [`Scenario`]: one function a section, each rejection an
//! [`Error`] at the value to blame.

use std::collections::BTreeMap;
use std::time::Duration;
use toml::Spanned;

use squall_models::watch::Retention;

use super::file::{
    Locator, Raw, RawBucket, RawClient, RawLimits, RawSpan, RawTopology, RawWorkload,
};
use super::swarm::{self, Swarm};
use super::Step;
use super::{
    ages_well, host_names, parse_seeds, Catalogue, Error, Expect, Limits, Scenario, Section,
    Settings, Workload, MAX_DURATION, MAX_HOSTS, MAX_KEYS, MAX_OPERATIONS, MAX_OPS_PER_CLIENT,
    MAX_WEIGHT,
};
use crate::faults::Spec;

impl Locator<'_> {
    /// Every section in turn; a file with several problems is told of the first in this
    /// order.
    pub(super) fn validate(
        &self,
        raw: Raw,
        sections: &[Section],
        catalogue: &dyn Catalogue,
    ) -> Result<Scenario, Error> {
        let protocol = raw.protocol.get_ref().clone();
        let known_ops = self.protocol(&raw.protocol, catalogue)?;
        let backend = self.backend(raw.backend.as_ref(), &protocol, catalogue)?;
        let seeds = match &raw.seeds {
            Some(s) => parse_seeds(s.get_ref()).map_err(|m| self.error(s.span(), "seeds", m))?,
            None => 0..16,
        };
        let duration = self.duration("duration", &raw.duration)?;
        let timeout = self.timeout(raw.timeout.as_ref())?;
        let (servers, clients) = self.topology(&raw.topology)?;
        let workload = self.workload(&raw.workload, &protocol, &known_ops, clients)?;
        let latency = match &raw.network.latency {
            Some(l) => self.span("network.latency", l)?,
            None => (Duration::from_millis(1), Duration::from_millis(5)),
        };
        let specs = self.faults(&raw.fault, &host_names(servers, clients), latency.1)?;
        let script = match &raw.client {
            Some(c) => {
                Some(self.script(catalogue, &protocol, c, clients, &raw.topology.clients)?)
            }
            None => None,
        };
        let is_swarm = raw.swarm.as_ref().is_some_and(|s| *s.get_ref());
        let bucket = match &raw.bucket {
            Some(b) => self.bucket(b, &workload.mix, is_swarm)?,
            None => Retention::default(),
        };
        let settings = self.settings(&protocol, sections, catalogue)?;
        let swarm = self.swarm(&raw)?;
        let limits = self.limits(raw.limits.as_ref())?;
        let answered = self.answered(&raw)?;

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
            workload,
            latency,
            faults: Spec::schedule(&specs),
            specs,
            script,
            expect: Expect {
                linearizable: raw.expect.linearizable,
                answered,
            },
            settings,
            bucket,
            source: toml::Table::new(),
            swarm,
            drawn: None,
            limits,
            slack: Duration::ZERO,
        })
    }

    /// `expect.answered`: only where nothing excuses a lost answer, no fault and no swarm.
    fn answered(&self, raw: &Raw) -> Result<bool, Error> {
        let Some(answered) = &raw.expect.answered else {
            return Ok(false);
        };
        let faulty = !raw.fault.is_empty() || raw.swarm.as_ref().is_some_and(|s| *s.get_ref());
        if *answered.get_ref() && faulty {
            return Err(self.error(
                answered.span(),
                "expect.answered",
                "a scenario with faults or a swarm may lose answers; expect them all only \
                 without either",
            ));
        }
        Ok(*answered.get_ref())
    }

    /// `protocol`: one the catalogue knows; the operation names its `mix` takes.
    fn protocol(
        &self,
        raw: &Spanned<String>,
        catalogue: &dyn Catalogue,
    ) -> Result<Vec<&'static str>, Error> {
        let protocol = raw.get_ref();
        catalogue.operations(protocol).ok_or_else(|| {
            self.error(
                raw.span(),
                "protocol",
                format!(
                    "unknown protocol {protocol:?}; known: {}",
                    catalogue.protocols().join(", ")
                ),
            )
        })
    }

    /// `backend`: one that serves the protocol, or the protocol's reference backend.
    fn backend(
        &self,
        raw: Option<&Spanned<String>>,
        protocol: &str,
        catalogue: &dyn Catalogue,
    ) -> Result<String, Error> {
        let Some(b) = raw else {
            // The protocol's reference backend: `kv/reference` serves `watch` too.
            return Ok(catalogue
                .reference(protocol)
                .unwrap_or(format!("{protocol}/reference")));
        };
        let name = b.get_ref();
        match catalogue.serves(name, protocol) {
            None => Err(self.error(
                b.span(),
                "backend",
                format!("unknown backend {name:?}; `squall list backends` lists them"),
            )),
            Some(false) => Err(self.error(
                b.span(),
                "backend",
                format!("backend {name:?} does not serve protocol {protocol:?}"),
            )),
            Some(true) => Ok(name.clone()),
        }
    }

    /// `timeout`: above zero; 1s if not given.
    fn timeout(&self, raw: Option<&Spanned<String>>) -> Result<Duration, Error> {
        let timeout = match raw {
            Some(t) => self.duration("timeout", t)?,
            None => Duration::from_secs(1),
        };
        if timeout.is_zero() {
            return Err(self.error(
                raw.map_or(0..0, |t| t.span()),
                "timeout",
                "must be more than zero",
            ));
        }
        Ok(timeout)
    }

    /// The `[topology]` section's servers and clients, each in 1..=[`MAX_HOSTS`].
    fn topology(&self, raw: &RawTopology) -> Result<(usize, usize), Error> {
        let servers = *raw.servers.get_ref();
        let clients = *raw.clients.get_ref();
        for (n, what, s) in [
            (servers, "topology.servers", &raw.servers),
            (clients, "topology.clients", &raw.clients),
        ] {
            if n == 0 || n > MAX_HOSTS {
                return Err(self.error(
                    s.span(),
                    what,
                    format!("{n} is out of range 1..={MAX_HOSTS}"),
                ));
            }
        }
        Ok((servers, clients))
    }

    /// The `[workload]` section: sizes within their limits, the plan's too.
    fn workload(
        &self,
        w: &RawWorkload,
        protocol: &str,
        known_ops: &[&str],
        clients: usize,
    ) -> Result<Workload, Error> {
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
        let mix = self.mix(&w.mix, protocol, known_ops)?;
        let think = match &w.think {
            Some(t) => self.span("workload.think", t)?,
            None => (Duration::ZERO, Duration::ZERO),
        };
        Ok(Workload {
            keys: *w.keys.get_ref(),
            ops_per_client: ops,
            mix,
            think,
        })
    }

    /// `workload.mix`: the protocol's operations, weighed, some above zero.
    fn mix(
        &self,
        raw: &Spanned<BTreeMap<Spanned<String>, u32>>,
        protocol: &str,
        known_ops: &[&str],
    ) -> Result<BTreeMap<String, u32>, Error> {
        for (name, weight) in raw.get_ref() {
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
        let mix: BTreeMap<String, u32> = (raw.get_ref().iter())
            .map(|(name, weight)| (name.get_ref().clone(), *weight))
            .collect();
        if mix.values().all(|&v| v == 0) {
            return Err(self.error(
                raw.span(),
                "workload.mix",
                "needs at least one operation with a weight above zero",
            ));
        }
        Ok(mix)
    }

    /// `swarm = true` with its bounds and fault kinds; `None` without.
    fn swarm(&self, raw: &Raw) -> Result<Option<Swarm>, Error> {
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
            None => swarm::KINDS.iter().map(|k| k.to_string()).collect(),
            Some(k) => {
                if let Some(bad) = k
                    .get_ref()
                    .iter()
                    .find(|k| !swarm::KINDS.contains(&k.as_str()))
                {
                    return Err(self.error(
                        k.span(),
                        "swarm_faults",
                        format!(
                            "unknown fault kind {bad:?}; known: {}",
                            swarm::KINDS.join(", ")
                        ),
                    ));
                }
                k.get_ref().clone()
            }
        };
        Ok(Some(Swarm {
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

    /// The protocol's own section, read by the protocol; a section of another protocol is
    /// refused.
    fn settings(
        &self,
        protocol: &str,
        sections: &[Section],
        catalogue: &dyn Catalogue,
    ) -> Result<Settings, Error> {
        if let Some(other) = sections.iter().find(|s| s.name() != protocol) {
            let name = other.name();
            return Err(other.refuse(format!(
                "only a {name} scenario takes [{name}], not a {protocol} one"
            )));
        }
        catalogue.settings(protocol, sections.first())
    }

    /// A duration such as "250ms", at most [`MAX_DURATION`].
    pub(super) fn duration(&self, field: &str, s: &Spanned<String>) -> Result<Duration, Error> {
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

    /// A `{ min, max }` pair of durations, min first.
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
}

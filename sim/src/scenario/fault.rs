//! The `[[fault]]` entries checked into fault specs: one kind an entry, the hosts it names
//! among the topology's, and the undo field (`heal_after`, `restart_after`,
//! `restore_after`) of its kind only.

use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

use super::file::{Locator, RawFault, RawOdds};
use super::{Error, MAX_FAULTS};
use crate::faults::{Fault, Odds, Spec};

impl Locator<'_> {
    /// Every `[[fault]]` entry's specs, in the file's order; `latency` is the `[network]`
    /// maximum a latency fault restores.
    pub(super) fn faults(
        &self,
        raw: &[RawFault],
        hosts: &[String],
        latency: Duration,
    ) -> Result<Vec<Spec>, Error> {
        if let Some(f) = raw.get(MAX_FAULTS) {
            return Err(self.error(
                f.at.span(),
                &format!("fault[{}]", MAX_FAULTS + 1),
                format!("more than the limit of {MAX_FAULTS} faults"),
            ));
        }
        let mut specs = Vec::new();
        for (i, f) in raw.iter().enumerate() {
            self.fault(&mut specs, i + 1, f, hosts, latency)?;
        }
        Ok(specs)
    }

    /// Entry `i` (1-based): exactly one kind, then that kind's fields.
    fn fault(
        &self,
        out: &mut Vec<Spec>,
        i: usize,
        f: &RawFault,
        hosts: &[String],
        latency: Duration,
    ) -> Result<(), Error> {
        let entry = Entry {
            at: self.duration(&format!("fault[{i}].at"), &f.at)?,
            locator: self,
            i,
            raw: f,
        };
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
        if f.clock.is_none() {
            entry.misplaced(&f.jump, "jump", "clock")?;
        }
        if let Some(p) = &f.partition {
            out.push(entry.partition(p, hosts)?);
        } else if let Some(c) = &f.crash {
            out.extend(entry.crash(c, hosts)?);
        } else if let Some(l) = &f.latency {
            entry.undone_only_by(Some("restore_after"))?;
            let max = self.duration(&entry.field("latency"), l)?;
            let restored = Fault::Latency { max: latency };
            out.push(entry.restorable(Fault::Latency { max }, restored)?);
        } else if let Some(b) = &f.buggify {
            entry.undone_only_by(Some("restore_after"))?;
            let on = *b.get_ref();
            out.push(entry.restorable(Fault::Buggify { on }, Fault::Buggify { on: !on })?);
        } else if let Some(m) = &f.messages {
            entry.undone_only_by(Some("restore_after"))?;
            let odds = self.odds(&entry.field("messages"), m)?;
            let restored = Fault::Messages {
                odds: Odds::default(),
            };
            out.push(entry.restorable(Fault::Messages { odds }, restored)?);
        } else if let Some(c) = &f.clock {
            out.extend(entry.clock(c, hosts)?);
        }
        Ok(())
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

    /// The hosts `patterns` name (`server-*` names every server), each once.
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
}

/// One `[[fault]]` entry as it is read: its fields, its number for naming them, and when
/// it strikes.
struct Entry<'a> {
    locator: &'a Locator<'a>,
    i: usize,
    raw: &'a RawFault,
    at: Duration,
}

impl Entry<'_> {
    fn field(&self, name: &str) -> String {
        format!("fault[{}].{name}", self.i)
    }

    /// The delay of undo field `name`, if the entry gives one.
    fn after(&self, d: &Option<Spanned<String>>, name: &str) -> Result<Option<Duration>, Error> {
        d.as_ref()
            .map(|d| self.locator.duration(&self.field(name), d))
            .transpose()
    }

    /// Refuses field `name` unless absent: it belongs to a `kind` fault.
    fn misplaced(&self, d: &Option<Spanned<String>>, name: &str, kind: &str) -> Result<(), Error> {
        match d {
            Some(d) => Err(self.locator.error(
                d.span(),
                &self.field(name),
                format!("only a {kind} fault takes {name}"),
            )),
            None => Ok(()),
        }
    }

    /// Refuses every undo field but `own`, the one this entry's kind takes (a clock jump
    /// takes none).
    fn undone_only_by(&self, own: Option<&str>) -> Result<(), Error> {
        let f = self.raw;
        for (name, value, kind) in [
            ("heal_after", &f.heal_after, "partition"),
            ("restart_after", &f.restart_after, "crash"),
            ("restore_after", &f.restore_after, "latency"),
        ] {
            if own != Some(name) {
                self.misplaced(value, name, kind)?;
            }
        }
        Ok(())
    }

    /// The hosts field `name` names: one host, or all of a kind (`server-*`).
    fn named(
        &self,
        name: &str,
        raw: &Spanned<String>,
        hosts: &[String],
    ) -> Result<Vec<String>, Error> {
        let pattern = std::slice::from_ref(raw.get_ref());
        self.locator
            .hosts(&self.field(name), raw.span(), pattern, hosts)
    }

    /// A latency, buggify or messages fault: `restore_after` undoes it with `undo`.
    fn restorable(&self, fault: Fault, undo: Fault) -> Result<Spec, Error> {
        let restore = self.after(&self.raw.restore_after, "restore_after")?;
        Ok(Spec {
            at: self.at,
            fault,
            undo: restore.map(|r| (r, undo)),
        })
    }

    /// `partition`: two groups or more, no host in two; `oneway` takes exactly two.
    fn partition(&self, p: &Spanned<Vec<Vec<String>>>, hosts: &[String]) -> Result<Spec, Error> {
        self.undone_only_by(Some("heal_after"))?;
        let field = self.field("partition");
        let mut groups = Vec::new();
        for g in p.get_ref() {
            let g = self.locator.hosts(&field, p.span(), g, hosts)?;
            if groups
                .iter()
                .any(|other: &Vec<String>| other.iter().any(|h| g.contains(h)))
            {
                return Err(self
                    .locator
                    .error(p.span(), &field, "a host stands in two groups"));
            }
            groups.push(g);
        }
        if groups.len() < 2 {
            return Err(self
                .locator
                .error(p.span(), &field, "needs at least two groups"));
        }
        let oneway = self.raw.oneway.as_ref().is_some_and(|o| *o.get_ref());
        if oneway && groups.len() != 2 {
            return Err(self.locator.error(
                p.span(),
                &field,
                "a one-way partition takes exactly two groups",
            ));
        }
        let heal = self.after(&self.raw.heal_after, "heal_after")?;
        Ok(Spec {
            at: self.at,
            fault: Fault::Partition {
                groups: groups.clone(),
                oneway,
            },
            undo: heal.map(|h| (h, Fault::Heal { groups, oneway })),
        })
    }

    /// `crash`: servers only, each restarted after `restart_after` if given.
    fn crash(&self, c: &Spanned<String>, hosts: &[String]) -> Result<Vec<Spec>, Error> {
        self.undone_only_by(Some("restart_after"))?;
        let host = self.named("crash", c, hosts)?;
        if host.iter().any(|h| h.starts_with("client-")) {
            return Err(self.locator.error(
                c.span(),
                &self.field("crash"),
                "only server hosts crash; a client's operations would simply stop",
            ));
        }
        let restart = self.after(&self.raw.restart_after, "restart_after")?;
        Ok(host
            .into_iter()
            .map(|h| Spec {
                at: self.at,
                fault: Fault::Crash { host: h.clone() },
                undo: restart.map(|r| (r, Fault::Restart { host: h })),
            })
            .collect())
    }

    /// `clock` with its `jump`, signed (`"+2s"`, `"-500ms"`); never undone.
    fn clock(&self, c: &Spanned<String>, hosts: &[String]) -> Result<Vec<Spec>, Error> {
        self.undone_only_by(None)?;
        let Some(jump) = &self.raw.jump else {
            return Err(self.locator.error(
                c.span(),
                &self.field("jump"),
                "a clock fault needs `jump`, e.g. \"+2s\" or \"-500ms\"",
            ));
        };
        let text = jump.get_ref().trim();
        let (sign, magnitude) = match text.strip_prefix('-') {
            Some(rest) => (-1, rest),
            None => (1, text.strip_prefix('+').unwrap_or(text)),
        };
        let by = self.locator.duration(
            &self.field("jump"),
            &Spanned::new(jump.span(), magnitude.to_string()),
        )?;
        let by = sign * by.as_nanos() as i128;
        Ok(self
            .named("clock", c, hosts)?
            .into_iter()
            .map(|host| Spec {
                at: self.at,
                fault: Fault::Clock { host, by },
                undo: None,
            })
            .collect())
    }
}

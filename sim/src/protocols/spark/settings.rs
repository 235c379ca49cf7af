//! The `[spark]` section: the spark host's limits and the choices its digest leaves
//! UNKNOWN (they reach both the backend and the model), and the spark workload's knobs.
//!
//! ```toml
//! [spark]
//! value_cap = 65536             # max_kv_value_bytes
//! cap_inclusive = false         # a value of exactly value_cap bytes is too large (>=)
//! reads = 16                    # gets and lists per invocation
//! writes = 8                    # sets and deletes per invocation
//! pulls = 1                     # pulls per invocation
//! failed_pull_consumes = true   # a failed pull uses up the allowance
//! ttl_cap = 86400               # the largest TTL a set takes, in seconds
//! quota = 1048576               # bytes of keys and values a node's store holds
//! rounding = "ceil"             # remaining TTL to whole seconds: ceil, floor or nearest
//! expiry = "at-deadline"        # expired once now >= deadline; "after-deadline": now > deadline
//! calls = 3                     # the most calls an invocation makes
//! ttl = 3                       # the longest TTL a set asks for, in seconds (0 also drawn)
//! ```
//!
//! Every field is optional; the defaults are [`Params::default`]'s and the ones above.

use serde::Deserialize;
use squall_models::spark::{Expiry, Params, Rounding};
use toml::Spanned;

use crate::scenario::{Error, Section};

/// A scenario's spark settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparkSettings {
    pub params: Params,
    /// The most calls an invocation makes.
    pub calls: usize,
    /// The longest TTL a set asks for, in seconds.
    pub ttl: i32,
}

impl Default for SparkSettings {
    fn default() -> Self {
        SparkSettings {
            params: Params::default(),
            calls: 3,
            ttl: 3,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    value_cap: Option<Spanned<usize>>,
    cap_inclusive: Option<bool>,
    reads: Option<u32>,
    writes: Option<u32>,
    pulls: Option<u32>,
    failed_pull_consumes: Option<bool>,
    ttl_cap: Option<Spanned<i32>>,
    quota: Option<u64>,
    rounding: Option<Spanned<String>>,
    expiry: Option<Spanned<String>>,
    calls: Option<Spanned<usize>>,
    ttl: Option<Spanned<i32>>,
}

/// The largest value a scenario may allow, so that one value fits a frame.
const MAX_VALUE_CAP: usize = 16 << 20;

/// Read the `[spark]` section.
pub(super) fn read(section: &Section) -> Result<SparkSettings, Error> {
    let raw: Raw = section.read()?;
    let mut s = SparkSettings::default();
    let p = &mut s.params;
    let range = |span, field: &str, ok: bool, want: &str| match ok {
        true => Ok(()),
        false => Err(section.error(span, field, format!("must be {want}"))),
    };
    if let Some(v) = &raw.value_cap {
        range(
            v.span(),
            "value_cap",
            (1..=MAX_VALUE_CAP).contains(v.get_ref()),
            "in 1..=16777216",
        )?;
        p.value_cap = *v.get_ref();
    }
    if let Some(v) = &raw.ttl_cap {
        range(v.span(), "ttl_cap", *v.get_ref() >= 0, "0 or more")?;
        p.ttl_cap = *v.get_ref();
    }
    p.cap_inclusive = raw.cap_inclusive.unwrap_or(p.cap_inclusive);
    p.reads = raw.reads.unwrap_or(p.reads);
    p.writes = raw.writes.unwrap_or(p.writes);
    p.pulls = raw.pulls.unwrap_or(p.pulls);
    p.failed_pull_consumes = raw.failed_pull_consumes.unwrap_or(p.failed_pull_consumes);
    p.quota = raw.quota.unwrap_or(p.quota);
    if let Some(v) = &raw.rounding {
        let names = [
            ("ceil", Rounding::Ceil),
            ("floor", Rounding::Floor),
            ("nearest", Rounding::Nearest),
        ];
        p.rounding = section.choice(v, "rounding", &names)?;
    }
    if let Some(v) = &raw.expiry {
        let names = [
            ("at-deadline", Expiry::AtDeadline),
            ("after-deadline", Expiry::AfterDeadline),
        ];
        p.expiry = section.choice(v, "expiry", &names)?;
    }
    if let Some(v) = &raw.calls {
        range(
            v.span(),
            "calls",
            (1..=64).contains(v.get_ref()),
            "in 1..=64",
        )?;
        s.calls = *v.get_ref();
    }
    if let Some(v) = &raw.ttl {
        let ok = (0..=s.params.ttl_cap).contains(v.get_ref());
        range(v.span(), "ttl", ok, "in 0..=ttl_cap")?;
        s.ttl = *v.get_ref();
    }
    Ok(s)
}

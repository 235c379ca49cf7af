//! The file as TOML gives it: the serde `Raw*` tables, each value spanned by its byte
//! offsets, and the [`Locator`] that turns those offsets into the line and dotted field an
//! [`Error`] names.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

use super::Error;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    pub(super) name: Spanned<String>,
    pub(super) protocol: Spanned<String>,
    pub(super) backend: Option<Spanned<String>>,
    pub(super) seeds: Option<Spanned<String>>,
    pub(super) duration: Spanned<String>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) topology: RawTopology,
    pub(super) workload: RawWorkload,
    #[serde(default)]
    pub(super) network: RawNetwork,
    #[serde(default)]
    pub(super) fault: Vec<RawFault>,
    #[serde(default)]
    pub(super) expect: RawExpect,
    pub(super) bucket: Option<RawBucket>,
    pub(super) client: Option<Spanned<Vec<RawClient>>>,
    pub(super) swarm: Option<Spanned<bool>>,
    pub(super) swarm_faults: Option<Spanned<Vec<String>>>,
    pub(super) limits: Option<RawLimits>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClient {
    #[serde(default)]
    pub(super) op: Vec<Spanned<toml::Table>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) budget: Option<Spanned<String>>,
    pub(super) overtime: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBucket {
    pub(super) history: Option<Spanned<usize>>,
    pub(super) max_age: Option<Spanned<String>>,
    pub(super) max_bytes: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTopology {
    pub(super) servers: Spanned<usize>,
    pub(super) clients: Spanned<usize>,
    pub(super) min_servers: Option<Spanned<usize>>,
    pub(super) min_clients: Option<Spanned<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkload {
    pub(super) keys: Spanned<usize>,
    pub(super) ops_per_client: Spanned<usize>,
    /// Each operation spanned: an inline table may span lines, and an error names the line
    /// of the operation it is about.
    pub(super) mix: Spanned<BTreeMap<Spanned<String>, u32>>,
    pub(super) think: Option<RawSpan>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSpan {
    pub(super) min: Spanned<String>,
    pub(super) max: Spanned<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    pub(super) latency: Option<RawSpan>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFault {
    pub(super) at: Spanned<String>,
    pub(super) partition: Option<Spanned<Vec<Vec<String>>>>,
    pub(super) oneway: Option<Spanned<bool>>,
    pub(super) heal_after: Option<Spanned<String>>,
    pub(super) crash: Option<Spanned<String>>,
    pub(super) restart_after: Option<Spanned<String>>,
    pub(super) latency: Option<Spanned<String>>,
    pub(super) restore_after: Option<Spanned<String>>,
    pub(super) clock: Option<Spanned<String>>,
    pub(super) jump: Option<Spanned<String>>,
    pub(super) buggify: Option<Spanned<bool>>,
    pub(super) messages: Option<Spanned<RawOdds>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOdds {
    pub(super) loss: Option<Spanned<f64>>,
    pub(super) duplicate: Option<Spanned<f64>>,
    pub(super) reorder: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    #[serde(default = "yes")]
    pub(super) linearizable: bool,
    pub(super) answered: Option<Spanned<bool>>,
}

impl Default for RawExpect {
    fn default() -> Self {
        RawExpect {
            linearizable: true,
            answered: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// Turns byte offsets into lines and fields for errors.
pub(super) struct Locator<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
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

    pub(super) fn error(
        &self,
        span: Range<usize>,
        field: &str,
        message: impl Into<String>,
    ) -> Error {
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
    pub(super) fn table_at(&self, offset: usize) -> String {
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
    pub(super) fn field_at(&self, offset: usize) -> String {
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

    /// A TOML or serde rejection of the text, at the field it falls in.
    pub(super) fn toml_error(&self, e: toml::de::Error) -> Error {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().replace('\n', " ");
        // serde names a missing field in its message; the span is its table's.
        let field = match message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
        {
            Some(missing) => match self.table_at(span.start) {
                table if table.is_empty() => missing.to_string(),
                table => format!("{table}.{missing}"),
            },
            None => self.field_at(span.start),
        };
        self.error(span, &field, message)
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

//! A run as one self-contained HTML page (inline CSS, SVG and a little JavaScript, nothing
//! fetched): a lane per client, each operation a bar from its call to its answer (for an
//! unknown outcome, to when the client gave up, then a dotted line to the end of the run:
//! it may take effect any time until then), faults as shaded bands from start to
//! heal or restart, and on a violation the operations of the minimal failing history
//! outlined, the one that could not be placed in red, and the model states the search
//! stopped in. Hovering a bar or band shows its details.

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};

use squall_models::Answer;

use crate::check::Verdict;
use crate::history::{At, Event, History, Nanos, Operation};

/// Pixels: the left margin for lane names, a lane's height, a bar's height.
const LEFT: f64 = 70.0;
const LANE: f64 = 24.0;
const BAR: f64 = 14.0;

/// The page for `history`, titled `title`, judged `verdict`.
pub fn page<O, R>(title: &str, history: &History<O, R>, verdict: &Verdict) -> String
where
    O: Clone + Display,
    R: Clone + Display + Answer,
{
    let ops = history.operations();
    let timeline = Timeline::new(history, &ops);
    let (minimal, stuck, what, states) = match verdict {
        Verdict::Violation(v) => (v.ops.clone(), v.stuck, Some(v.what.as_str()), &v.states[..]),
        _ => (Vec::new(), None, None, &[][..]),
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}">"#,
        w = LEFT + timeline.width + 20.0,
        height = timeline.height()
    );
    timeline.axis(&mut svg);
    timeline.faults(&mut svg, history);
    timeline.lanes(&mut svg);
    timeline.operations(&mut svg, history, &ops, &minimal, stuck);
    svg.push_str("</svg>");
    let violation = what.map_or(String::new(), |what| violation(what, stuck, states));
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{STYLE}</style></head>
<body><h1>{title}</h1>
<p id="verdict" class="{verdict_class}">verdict: {verdict_name}</p>
{violation}
<p class="legend"><span class="key ok"></span>ok <span class="key fail"></span>fail <span class="key unknown"></span>unknown outcome <span class="key minimal"></span>minimal failing history <span class="key stuck"></span>could not be placed <span class="key band"></span>fault</p>
<div id="info">Hover over an operation or a fault.</div>
<div id="scroll">{svg}</div>
<p id="drawn"></p>
<script>{SCRIPT}</script>
</body></html>
"#,
        title = esc(title),
        verdict_class = verdict_name(verdict),
        verdict_name = verdict_name(verdict),
    )
}

/// Where times and clients fall on the page: time runs left to right, a lane a client.
struct Timeline {
    /// The time of the last event (at least 1ns), at the right edge.
    end: Nanos,
    /// Pixels from time 0 to `end`.
    width: f64,
    /// The clients with operations, in order, a lane each.
    clients: Vec<u32>,
}

impl Timeline {
    fn new<O, R>(history: &History<O, R>, ops: &[Operation<O, R>]) -> Timeline {
        let mut clients: Vec<u32> = ops.iter().map(|o| o.client).collect();
        clients.sort_unstable();
        clients.dedup();
        Timeline {
            end: history.events.iter().map(at).max().unwrap_or(0).max(1),
            width: (ops.len() as f64 * 8.0).clamp(1000.0, 8000.0),
            clients,
        }
    }

    fn x(&self, t: Nanos) -> f64 {
        LEFT + (t as f64 / self.end as f64) * self.width
    }

    fn height(&self) -> f64 {
        30.0 + self.clients.len() as f64 * LANE
    }

    fn lane(&self, c: u32) -> usize {
        self.clients.iter().position(|&x| x == c).unwrap_or(0)
    }

    /// The time axis: a tick line and label every [`tick`].
    fn axis(&self, svg: &mut String) {
        let (end, height) = (self.end, self.height());
        let step = tick(end);
        let mut t = 0;
        while t <= end {
            let _ = write!(
                svg,
                r#"<line class="tick" x1="{x}" x2="{x}" y1="18" y2="{height}"/><text class="time" x="{x}" y="12">{}</text>"#,
                esc(&At(t).to_string()),
                x = self.x(t)
            );
            t += step;
        }
    }

    /// The faults, each a band across every lane ([`bands`]).
    fn faults<O, R>(&self, svg: &mut String, history: &History<O, R>) {
        for (band, kind, from, to, what) in bands(history, self.end) {
            let w = (self.x(to) - self.x(from)).max(2.0);
            let _ = write!(
                svg,
                r#"<rect class="fault {kind}" data-band="{band}" x="{}" y="18" width="{w}" height="{}" data-info="{}"><title>{}</title></rect>"#,
                self.x(from),
                self.height() - 18.0,
                esc(&what),
                esc(&what)
            );
        }
    }

    /// A line and a name a client.
    fn lanes(&self, svg: &mut String) {
        for (i, c) in self.clients.iter().enumerate() {
            let y = 22.0 + i as f64 * LANE;
            let _ = write!(
                svg,
                r#"<g class="lane" data-client="{c}"><line class="lane-line" x1="{LEFT}" x2="{}" y1="{}" y2="{}"/><text class="lane-name" x="4" y="{}">c{c}</text></g>"#,
                LEFT + self.width,
                y + LANE / 2.0,
                y + LANE / 2.0,
                y + BAR
            );
        }
    }

    /// A bar an operation, in its client's lane, classed by its outcome and by its part in
    /// a violation (`minimal`, `stuck`).
    fn operations<O, R>(
        &self,
        svg: &mut String,
        history: &History<O, R>,
        ops: &[Operation<O, R>],
        minimal: &[u64],
        stuck: Option<u64>,
    ) where
        O: Display,
        R: Display + Answer,
    {
        // When and why each client gave up on an operation whose outcome is unknown.
        let gave_up: BTreeMap<u64, (Nanos, &str)> = history
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Unknown { id, why, at, .. } => Some((*id, (*at, why.as_str()))),
                _ => None,
            })
            .collect();
        for o in ops {
            let from = at(&history.events[o.call]);
            let (to, outcome, answer) = match (&o.ret, o.done) {
                (Some(ret), Some(done)) => {
                    let kind = if ret.is_ok() { "ok" } else { "fail" };
                    (at(&history.events[done]), kind, format!("{kind} {ret}"))
                }
                _ => {
                    let (at, why) = gave_up
                        .get(&o.id)
                        .copied()
                        .unwrap_or((self.end, "still open at the end"));
                    (at, "unknown", format!("unknown: {why}"))
                }
            };
            let mut class = format!("op {outcome}");
            if minimal.contains(&o.id) {
                class.push_str(" minimal");
            }
            if stuck == Some(o.id) {
                class.push_str(" stuck");
            }
            let info = format!(
                "#{} c{} {} -> {answer} [{} .. {}]",
                o.id,
                o.client,
                o.op,
                At(from).to_string().trim(),
                At(to).to_string().trim()
            );
            let y = 22.0 + self.lane(o.client) as f64 * LANE + (LANE - BAR) / 2.0;
            let _ = write!(
                svg,
                r#"<rect class="{class}" id="op-{}" x="{}" y="{y}" width="{}" height="{BAR}" data-info="{}"><title>{}</title></rect>"#,
                o.id,
                self.x(from),
                (self.x(to) - self.x(from)).max(2.0),
                esc(&info),
                esc(&info)
            );
            if outcome == "unknown" {
                // It may still take effect, until the end of the run: an open line below the bar.
                let _ = write!(
                    svg,
                    r#"<line class="open" x1="{}" x2="{}" y1="{y2}" y2="{y2}"/>"#,
                    self.x(to),
                    self.x(self.end),
                    y2 = y + BAR + 1.0
                );
            }
        }
    }
}

/// The violation's section: what failed, the operation that could not be placed, and the
/// model states the search stopped in.
fn violation(what: &str, stuck: Option<u64>, states: &[String]) -> String {
    let mut violation = String::new();
    let _ = write!(
        violation,
        r#"<section id="violation"><h2>Violation</h2><p id="what">{}</p>"#,
        esc(what)
    );
    if let Some(id) = stuck {
        let _ = write!(
            violation,
            r##"<p>Could not be placed: <a id="stuck-op" href="#op-{id}">#{id}</a> (red); outlined: the minimal failing history.</p>"##
        );
    }
    if !states.is_empty() {
        violation.push_str(r#"<p>Model state(s) where the search stopped:</p><ul id="states">"#);
        for s in states {
            let _ = write!(violation, "<li><code>{}</code></li>", esc(s));
        }
        violation.push_str("</ul>");
    }
    violation.push_str("</section>");
    violation
}

fn verdict_name(v: &Verdict) -> &'static str {
    match v {
        Verdict::Ok => "ok",
        Verdict::Violation(_) => "violation",
        Verdict::Unknown(_) => "unknown",
    }
}

fn at<O, R>(e: &Event<O, R>) -> Nanos {
    match e {
        Event::Invoke { at, .. }
        | Event::Return { at, .. }
        | Event::Unknown { at, .. }
        | Event::Fault { at, .. } => *at,
    }
}

/// The faults as bands: (index, kind, start, end, what). A partition lasts until the heal of
/// the same groups, a crash until the restart of the host, a latency or message-fault change
/// until the next one; anything not undone lasts to `end`, and a clock jump is an instant.
fn bands<O, R>(history: &History<O, R>, end: Nanos) -> Vec<(usize, String, Nanos, Nanos, String)> {
    let mut open: BTreeMap<String, usize> = BTreeMap::new();
    let mut out: Vec<(usize, String, Nanos, Nanos, String)> = Vec::new();
    for e in &history.events {
        let Event::Fault { at, what } = e else {
            continue;
        };
        let (verb, rest) = what.split_once(' ').unwrap_or((what, ""));
        let (key, undoes) = match verb {
            "heal" => (format!("partition {rest}"), true),
            "restart" => (format!("crash {rest}"), true),
            "latency" | "messages" => (verb.to_string(), open.contains_key(verb)),
            _ => (what.clone(), false),
        };
        if undoes {
            if let Some(i) = open.remove(&key) {
                out[i].3 = *at;
                out[i].4 = format!("{} .. {what} at {}", out[i].4, At(*at).to_string().trim());
                continue;
            }
        }
        let lasting = matches!(verb, "partition" | "crash" | "latency" | "messages");
        if lasting {
            open.insert(key, out.len());
        }
        let what = format!("{what} at {}", At(*at).to_string().trim());
        out.push((
            out.len(),
            verb.to_string(),
            *at,
            if lasting { end } else { *at },
            what,
        ));
    }
    out
}

/// A step between time ticks (1, 2 or 5 times a power of ten milliseconds) that gives at
/// most about ten of them.
fn tick(end: Nanos) -> Nanos {
    let mut base: Nanos = 1_000_000;
    loop {
        for m in [1, 2, 5] {
            if end / (base * m) <= 10 {
                return base * m;
            }
        }
        base *= 10;
    }
}

/// Text escaped for HTML content and attribute values.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = r#"
body { font: 14px system-ui, sans-serif; margin: 1em; color: #222; }
h1 { font-size: 1.2em; }
#verdict.violation { color: #b00; font-weight: bold; }
#verdict.ok { color: #070; }
#violation { border-left: 4px solid #d33; padding: 0 1em; background: #fff5f5; }
#info { position: sticky; top: 0; background: #ffd; border: 1px solid #cc9; padding: 4px 8px; min-height: 1.3em; font-family: monospace; }
#scroll { overflow-x: auto; border: 1px solid #ddd; }
.tick { stroke: #eee; }
.time { font-size: 10px; fill: #888; }
.lane-line { stroke: #f0f0f0; }
.lane-name { font-size: 12px; fill: #444; }
.op { stroke: #555; stroke-width: 0.5; }
.op.ok { fill: #8fc98f; }
.op.fail { fill: #e7c26b; }
.op.unknown { fill: #b8b8f0; stroke-dasharray: 3 2; }
.open { stroke: #99c; stroke-dasharray: 2 3; }
.op.minimal { stroke: #000; stroke-width: 2; }
.op.stuck { fill: #e33; stroke: #700; stroke-width: 3; }
.op:hover, .fault:hover { stroke: #00f; stroke-width: 2; }
.fault { fill-opacity: 0.15; }
.fault.partition { fill: #f80; }
.fault.crash { fill: #f00; }
.fault.latency { fill: #08f; }
.fault.messages { fill: #0a8; }
.fault.clock { fill: #a0a; fill-opacity: 0.6; }
.legend .key { display: inline-block; width: 1.4em; height: 0.8em; margin: 0 0.3em 0 1em; border: 1px solid #555; }
.key.ok { background: #8fc98f; } .key.fail { background: #e7c26b; } .key.unknown { background: #c8c8e8; }
.key.minimal { border: 2px solid #000; } .key.stuck { background: #e33; } .key.band { background: #fdd; }
"#;

/// Shows the hovered element's details; says what was drawn, once the page has loaded.
const SCRIPT: &str = r#"
(function () {
  var info = document.getElementById('info');
  document.querySelectorAll('[data-info]').forEach(function (el) {
    el.addEventListener('mouseover', function () { info.textContent = el.getAttribute('data-info'); });
  });
  var n = function (sel) { return document.querySelectorAll(sel).length; };
  document.getElementById('drawn').textContent =
    n('.op') + ' operations in ' + n('.lane') + ' lanes, ' + n('.fault') + ' faults, ' +
    n('.op.stuck') + ' could not be placed';
  var stuck = document.querySelector('.op.stuck');
  if (stuck) { info.textContent = stuck.getAttribute('data-info'); }
})();
"#;

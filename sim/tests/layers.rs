//! The layer rule of `sim/src`: a module imports only modules of its own layer or below, so
//! data flows one way (scenario file → plan → world → history → checker → report) and the
//! lower layers never learn which protocols exist.
//!
//! | layer | modules |
//! |---|---|
//! | 1 foundations | history, faults, time, check, report, interop, watchdog, progress |
//! | 2 inputs | scenario, plan |
//! | 3 engine | protocol, backend, world, live |
//! | 4 protocols | protocols (one folder each, and the registry) |
//! | 5 drivers | campaign, coverage, sweep, shrink, regressions, bench, suite, main |

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layer of a top-level module of the crate.
fn layer(module: &str) -> Option<u8> {
    Some(match module {
        "history" | "faults" | "time" | "check" | "report" | "interop" | "watchdog"
        | "progress" => 1,
        "scenario" | "plan" => 2,
        "protocol" | "backend" | "world" | "live" => 3,
        "protocols" => 4,
        "campaign" | "coverage" | "sweep" | "shrink" | "regressions" | "bench" | "suite"
        | "main" | "lib" => 5,
        _ => return None,
    })
}

/// The crate modules a file's code names (`crate::x`, `use crate::{x, y}`), comments left out.
fn imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
                None => vec![rest],
            };
            for name in names {
                let module: String = name
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !module.is_empty() {
                    found.insert(module);
                }
            }
        }
    }
    found
}

/// Every upward import of the file at `path` (below `src`), as `file -> module`.
fn upward(src: &Path, path: &Path, code: &str) -> Vec<String> {
    let relative = path.strip_prefix(src).unwrap();
    let top = relative.components().next().unwrap().as_os_str();
    let top = Path::new(top).with_extension("");
    let top = top.to_str().unwrap();
    let mine = layer(top).unwrap_or_else(|| panic!("{top}: no layer; add it to layers.rs"));
    imports(code)
        .into_iter()
        .filter(|m| layer(m).is_some_and(|theirs| theirs > mine))
        .map(|m| {
            format!(
                "{} (layer {mine}) imports {m} (layer {})",
                relative.display(),
                layer(&m).unwrap()
            )
        })
        .collect()
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    all.sort();
    let breaches: Vec<String> = all
        .iter()
        .flat_map(|f| upward(&src, f, &std::fs::read_to_string(f).unwrap()))
        .collect();
    assert!(
        breaches.is_empty(),
        "upward imports:\n{}",
        breaches.join("\n")
    );
}

#[test]
fn an_upward_import_is_found() {
    let src = Path::new("/src");
    let code =
        "use crate::history::History;\nuse crate::{faults, protocols::kv};\n// crate::sweep\n";
    let found = upward(src, Path::new("/src/check/clock.rs"), code);
    assert_eq!(
        found,
        ["check/clock.rs (layer 1) imports protocols (layer 4)"]
    );
    let found = upward(
        src,
        Path::new("/src/scenario/mod.rs"),
        "let x = crate::world::TICK;",
    );
    assert_eq!(found, ["scenario/mod.rs (layer 2) imports world (layer 3)"]);
}

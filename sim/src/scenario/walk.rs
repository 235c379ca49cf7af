//! Which scenario files to run: the files named and the folders walked for `*.toml`, and
//! which seeds (`"0..64"`, `"7"`), as files and the command line give them.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::MAX_SEEDS;

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

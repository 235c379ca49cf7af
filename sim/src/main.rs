//! `squall`: run scenarios, replay a seed, list what there is.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use squall::report::Outcome;
use squall::scenario::{self, Scenario};
use squall::{backends, live, sweep};

/// A deterministic simulation test harness: holds a backend to a reference model of its
/// protocol under a simulated network and clock with faults.
#[derive(Parser)]
#[command(name = "squall", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List scenario files (under ./scenarios) or backends, one per line.
    List {
        #[arg(value_enum, default_value = "scenarios")]
        what: Listing,
    },
    /// Run scenarios over seeds; one line per run.
    Run {
        /// Scenario files or folders (every *.toml below a folder).
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Run every scenario of this backend's protocol against it.
        #[arg(long)]
        backend: Option<String>,
        /// One seed.
        #[arg(long, conflicts_with = "seeds")]
        seed: Option<u64>,
        /// A range of seeds, A..B (B excluded); each scenario's own `seeds` by default.
        #[arg(long, value_parser = scenario::parse_seeds)]
        seeds: Option<std::ops::Range<u64>>,
        /// Simulations run at once, one a thread.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Run only shard I of N (1-based): the seeds s with s % N == I - 1.
        #[arg(long, value_parser = parse_shard)]
        shard: Option<(u64, u64)>,
        /// Run every seed twice and fail on any difference in the history.
        #[arg(long)]
        check_determinism: bool,
        #[command(flatten)]
        limits: Limits,
        /// Live backends: use the server at ADDR (host:port, any host) instead of starting one.
        #[arg(long, value_name = "ADDR", value_parser = parse_server)]
        server: Option<std::net::SocketAddr>,
    },
    /// Measure the checkers against stateright, and the harness's throughput; prints the
    /// tables of BENCHMARKS.md. Run it from the repository root.
    Bench {
        /// Only check this input (`etcd/FILE.log`, `kv-10k`, `kv-100k`, `register-2k`) and
        /// print the time and verdict: for profiling.
        #[arg(long)]
        only: Option<String>,
        /// With `--only`: check with stateright instead of squall.
        #[arg(long, requires = "only")]
        stateright: bool,
    },
    /// Run one seed again and print its history.
    Replay {
        scenario: PathBuf,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        backend: Option<String>,
        /// Also write the history as JSON to this file.
        #[arg(long)]
        history: Option<PathBuf>,
        #[command(flatten)]
        limits: Limits,
        /// Live backends: use the server at ADDR (host:port, any host) instead of starting one.
        #[arg(long, value_name = "ADDR", value_parser = parse_server)]
        server: Option<std::net::SocketAddr>,
    },
}

/// What overrides the scenarios' `[limits]`.
#[derive(clap::Args)]
struct Limits {
    /// Wall-clock time a run may take (e.g. 60s) before it is stopped as an error; each
    /// scenario's `[limits] budget` (10m by default) otherwise.
    #[arg(long, value_parser = humantime::parse_duration)]
    budget: Option<std::time::Duration>,
}

impl Limits {
    fn apply(&self, scenarios: &mut [(Scenario, String)]) {
        for (s, _) in scenarios {
            s.limits.budget = self.budget.unwrap_or(s.limits.budget);
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Listing {
    Scenarios,
    Backends,
}

/// Exit statuses of the command-line contract.
const HOLDS: u8 = 0;
const FAILED: u8 = 1;
const BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let status = match cli.command {
        Command::List { what } => list(what),
        Command::Run {
            scenarios,
            backend,
            seed,
            seeds,
            jobs,
            shard,
            check_determinism,
            limits,
            server,
        } => {
            // Set once, first thing: it cannot already be set.
            let _ = server.map(live::use_server);
            let seeds = seed.map(|s| s..s + 1).or(seeds);
            run(
                &scenarios,
                backend.as_deref(),
                seeds,
                jobs,
                shard,
                check_determinism,
                &limits,
            )
        }
        Command::Replay {
            scenario,
            seed,
            backend,
            history,
            limits,
            server,
        } => {
            // Set once, first thing: it cannot already be set.
            let _ = server.map(live::use_server);
            replay(
                &scenario,
                seed,
                backend.as_deref(),
                history.as_deref(),
                &limits,
            )
        }
        Command::Bench { only, stateright } => bench(only.as_deref(), stateright),
    };
    ExitCode::from(status)
}

fn bench(only: Option<&str>, stateright: bool) -> u8 {
    let done = match only {
        Some(input) => squall::bench::one(input, stateright),
        None => squall::bench::run(),
    };
    match done {
        Ok(()) => HOLDS,
        Err(e) => {
            eprintln!("{e}");
            BAD_INPUT
        }
    }
}

fn list(what: Listing) -> u8 {
    match what {
        Listing::Backends => {
            for b in backends::all() {
                println!("{}\t{}\t{}", b.name, b.protocols.join(","), b.kind);
            }
        }
        Listing::Scenarios => match scenario::files(&[PathBuf::from("scenarios")]) {
            Ok(files) => {
                for f in files {
                    println!("{}", f.display());
                }
            }
            Err(e) => {
                eprintln!("squall: {e}");
                return BAD_INPUT;
            }
        },
    }
    HOLDS
}

fn run(
    paths: &[PathBuf],
    backend: Option<&str>,
    seeds: Option<std::ops::Range<u64>>,
    jobs: usize,
    shard: Option<(u64, u64)>,
    determinism: bool,
    limits: &Limits,
) -> u8 {
    let scenarios = match load(paths, backend, limits) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("squall: {e}");
            return BAD_INPUT;
        }
    };
    // One server of each kind live runs need, for the whole command; stopped when it ends.
    let mut flavors: Vec<_> = scenarios
        .iter()
        .filter_map(|(s, b)| live::flavor(s, b))
        .collect();
    flavors.dedup();
    let shared = flavors.into_iter().map(live::Server::shared);
    let _servers = match shared.collect::<Result<Vec<_>, _>>() {
        Ok(servers) => servers,
        Err(e) => {
            eprintln!("squall: {e}");
            return FAILED;
        }
    };
    let mut status = HOLDS;
    for (s, backend) in &scenarios {
        let range = seeds.clone().unwrap_or_else(|| s.seeds.clone());
        let chosen: Vec<u64> = range
            .filter(|seed| shard.is_none_or(|(i, n)| seed % n == i - 1))
            .collect();
        let header = format!("# scenario {} ({}, {})", s.path.display(), s.name, backend);
        if let Err(why) = sweep::applicable(s, backend) {
            println!("{header}: not applicable to {backend}: {why}");
            continue;
        }
        println!("{header}");
        sweep::sweep(s, backend, &chosen, jobs, determinism, |run| {
            print!("{}", run.report(&s.path));
            if run.verdict != Outcome::Ok {
                status = FAILED;
            }
        });
    }
    status
}

fn replay(
    path: &Path,
    seed: u64,
    backend: Option<&str>,
    history: Option<&Path>,
    limits: &Limits,
) -> u8 {
    let (s, backend) = match load(&[path.to_path_buf()], backend, limits) {
        Ok(mut s) if s.len() == 1 => s.remove(0),
        Ok(_) => {
            eprintln!("squall: replay takes one scenario file whose protocol the backend serves");
            return BAD_INPUT;
        }
        Err(e) => {
            eprintln!("squall: {e}");
            return BAD_INPUT;
        }
    };
    let (run, json) = sweep::run_keeping(&s, &backend, seed, history.is_some());
    print!("{}", run.history);
    print!("{}", run.report(&s.path));
    if let (Some(file), Some(json)) = (history, json) {
        if let Err(e) = std::fs::write(file, json) {
            eprintln!("squall: cannot write {}: {e}", file.display());
            return BAD_INPUT;
        }
    }
    if run.verdict == Outcome::Ok {
        HOLDS
    } else {
        FAILED
    }
}

/// Load the scenarios under `paths`, each with the backend to run it against: the one
/// named, for the scenarios of its protocol, or the scenario's own.
fn load(
    paths: &[PathBuf],
    backend: Option<&str>,
    limits: &Limits,
) -> Result<Vec<(Scenario, String)>, String> {
    let named = match backend {
        Some(name) => Some(backends::find(name).ok_or_else(|| {
            format!("unknown backend {name:?}; `squall list backends` lists them")
        })?),
        None => None,
    };
    let mut out = Vec::new();
    for file in scenario::files(paths)? {
        let s = Scenario::load(&file).map_err(|e| e.to_string())?;
        match named {
            Some(b) if b.serves(&s.protocol) => {
                let name = b.name.to_string();
                out.push((s, name));
            }
            Some(_) => {}
            None => {
                let name = s.backend.clone();
                out.push((s, name));
            }
        }
    }
    if out.is_empty() {
        return Err(match named {
            Some(b) => format!(
                "no scenario under the given paths is of a protocol {} serves ({})",
                b.name,
                b.protocols.join(", ")
            ),
            None => "no scenario files under the given paths".into(),
        });
    }
    limits.apply(&mut out);
    Ok(out)
}

/// `--server`: a `host:port` that resolves.
fn parse_server(s: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            format!("{s:?} is not a server address; write host:port, e.g. 127.0.0.1:4222")
        })
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("{s:?} is not a shard; write I/N with 1 <= I <= N, e.g. 2/4");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if i == 0 || i > n {
        return Err(bad());
    }
    Ok((i, n))
}

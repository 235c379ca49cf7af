//! `squall`: run scenarios, replay a seed, list what there is.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use squall::backend::Backend;
use squall::check::{self, linear};
use squall::interop::{jepsen, Format};
use squall::progress::Progress;
use squall::protocols::Registry;
use squall::report::{Outcome, Run, Tally};
use squall::scenario::{self, Scenario};
use squall::sweep::{self, Keep, Sweep};
use squall::{campaign, live, regressions};
use squall_models::register::Register;

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
    Run(RunArgs),
    /// Measure the checkers against stateright, and the harness's throughput; prints the
    /// tables of BENCHMARKS.md. Run it from the repository root. Needs the `bench` feature
    /// (on by default).
    Bench {
        /// Only check this input (`etcd/FILE.log`, `kv-10k`, `kv-100k`, `register-2k`) and
        /// print the time and verdict: for profiling.
        #[arg(long)]
        only: Option<String>,
        /// With `--only`: check with stateright instead of squall.
        #[arg(long, requires = "only")]
        stateright: bool,
    },
    /// Run scenarios and count, of every answer each protocol's model can give (each error
    /// its own), how often the runs reached it; one line an answer. Exit 1 if one that
    /// should be reached was not, or a run failed.
    Coverage {
        /// Scenario files or folders (every *.toml below a folder).
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Run every scenario of this backend's protocol against it.
        #[arg(long)]
        backend: Option<String>,
        /// A range of seeds, A..B (B excluded); each scenario's own `seeds` by default.
        #[arg(long, value_parser = scenario::parse_seeds)]
        seeds: Option<std::ops::Range<u64>>,
        /// Simulations run at once, one a thread.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
    },
    /// Run one seed again and print its history.
    Replay {
        scenario: PathBuf,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        backend: Option<String>,
        /// Also write the history to this file: as Jepsen EDN if it ends in .edn, else as
        /// squall's JSON, unless --format says otherwise.
        #[arg(long)]
        history: Option<PathBuf>,
        #[command(flatten)]
        limits: BudgetArg,
        /// Live backends: use the server at ADDR (host:port, any host) instead of starting one.
        #[arg(long, value_name = "ADDR", value_parser = parse_server)]
        server: Option<std::net::SocketAddr>,
        /// The format of --history.
        #[arg(long, value_enum, requires = "history")]
        format: Option<Format>,
        /// Also write the run as an HTML timeline to this file.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Cut a failing seed's plan down to the smallest that still fails; print it and write
    /// it as a scenario file that replays it.
    Shrink {
        scenario: PathBuf,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        backend: Option<String>,
        /// The file to write; shrunk/STEM-BACKEND-seedN.toml by default.
        #[arg(long)]
        out: Option<PathBuf>,
        /// At most this many candidate plans are run.
        #[arg(long, default_value_t = 2000)]
        tries: u32,
    },
    /// Check recorded histories (Jepsen logs, or Jepsen EDN if the name ends in .edn)
    /// against a model; one line per file.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum)]
        model: Checked,
        /// Also write the (one) history to this file, as --history of replay does.
        #[arg(long)]
        history: Option<PathBuf>,
        /// The format of --history.
        #[arg(long, value_enum, requires = "history")]
        format: Option<Format>,
    },
}

/// The models `squall check` holds histories to.
#[derive(Clone, Copy, ValueEnum)]
enum Checked {
    /// One register with read, write and compare-and-set, initially empty (Jepsen's etcd
    /// histories).
    Register,
}

#[derive(Args)]
struct RunArgs {
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
    /// Start no new seed after the first run that does not hold.
    #[arg(long)]
    fail_fast: bool,
    /// Add each failing (backend, seed) to the scenario's regression seeds (NAME.seeds
    /// beside NAME.toml), which the conformance tests run again.
    #[arg(long)]
    save_failures: bool,
    /// Which runs get their line on stdout; by default all of them for up to 1000 runs,
    /// only failing ones above that (the summary counts them all).
    #[arg(long, value_enum)]
    runs: Option<Runs>,
    #[command(flatten)]
    limits: BudgetArg,
    /// Live backends: use the server at ADDR (host:port, any host) instead of starting one.
    #[arg(long, value_name = "ADDR", value_parser = parse_server)]
    server: Option<std::net::SocketAddr>,
}

/// Which runs `squall run` prints.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Runs {
    All,
    Failures,
}

/// Up to how many runs `squall run` prints every run by default.
const PRINT_ALL_UP_TO: u64 = 1000;

/// What overrides the scenarios' `[limits]`.
#[derive(clap::Args)]
struct BudgetArg {
    /// Wall-clock time a run may take (e.g. 60s) before it is stopped as an error; each
    /// scenario's `[limits] budget` (10m by default) otherwise.
    #[arg(long, value_parser = humantime::parse_duration)]
    budget: Option<std::time::Duration>,
}

impl BudgetArg {
    fn apply(&self, scenarios: &mut [(Scenario, Backend)]) {
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
        Command::Run(args) => {
            // Set once, first thing: it cannot already be set.
            let _ = args.server.map(live::use_server);
            run(args)
        }
        Command::Replay {
            scenario,
            seed,
            backend,
            history,
            format,
            html,
            limits,
            server,
        } => {
            // Set once, first thing: it cannot already be set.
            let _ = server.map(live::use_server);
            replay(
                &scenario,
                seed,
                backend.as_deref(),
                (history, format, html),
                &limits,
            )
        }
        Command::Coverage {
            scenarios,
            backend,
            seeds,
            jobs,
        } => coverage(&scenarios, backend.as_deref(), seeds, jobs),
        Command::Bench { only, stateright } => bench(only.as_deref(), stateright),
        Command::Check {
            files,
            model: Checked::Register,
            history,
            format,
        } => check(&files, history, format),
        Command::Shrink {
            scenario,
            seed,
            backend,
            out,
            tries,
        } => shrink(&scenario, seed, backend.as_deref(), out, tries),
    };
    ExitCode::from(status)
}

#[cfg(feature = "bench")]
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

/// A `squall` built without the `bench` feature has the subcommand, to say what it needs.
#[cfg(not(feature = "bench"))]
fn bench(_only: Option<&str>, _stateright: bool) -> u8 {
    eprintln!(
        "squall: bench needs the `bench` feature (stateright, porcupine-rs); build squall with \
         its default features, or `--features bench`"
    );
    BAD_INPUT
}

fn list(what: Listing) -> u8 {
    match what {
        Listing::Backends => {
            for b in Registry::shipped().backends() {
                println!("{}\t{}\t{}", b.name(), b.protocols().join(","), b.kind());
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

/// Exit status of a sweep stopped by Ctrl-C that found no failure (128 + SIGINT).
const INTERRUPTED: u8 = 130;

fn run(args: RunArgs) -> u8 {
    let scenarios = match load(&args.scenarios, args.backend.as_deref(), &args.limits) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("squall: {e}");
            return BAD_INPUT;
        }
    };
    // Stopped when the command ends.
    let _servers = match campaign::servers(&scenarios) {
        Ok(servers) => servers,
        Err(e) => {
            eprintln!("squall: {e}");
            return FAILED;
        }
    };
    let sweep = Sweep {
        jobs: args.jobs,
        determinism: args.check_determinism,
        fail_fast: args.fail_fast,
        ..Sweep::default()
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    on_ctrl_c(&sweep, &interrupted);
    let seeds = campaign::Seeds {
        range: args.seed.map(|s| s..s + 1).or(args.seeds),
        shard: args.shard,
    };
    let total = scenarios
        .iter()
        .map(|(s, _)| seeds.of(s).len() as u64)
        .sum();
    let every = args.runs.unwrap_or(match total <= PRINT_ALL_UP_TO {
        true => Runs::All,
        false => Runs::Failures,
    }) == Runs::All;
    let mut progress = Progress::new(total);
    let tally = campaign::run(&scenarios, &seeds, &sweep, every, &mut Shown(&mut progress));
    let stopped = match (interrupted.load(Ordering::SeqCst), sweep.stopped()) {
        (true, _) => Some(format!(
            "interrupted (Ctrl-C) after {} of {total} runs",
            tally.runs()
        )),
        (false, true) => Some(format!(
            "stopped at the first failure (--fail-fast) after {} of {total} runs",
            tally.runs()
        )),
        (false, false) => None,
    };
    progress.print(&tally.summary(stopped.as_deref()));
    if args.save_failures {
        save_failures(&tally);
    }
    match (tally.failed.is_empty(), interrupted.load(Ordering::SeqCst)) {
        (false, _) => FAILED,
        (true, true) => INTERRUPTED,
        (true, false) => HOLDS,
    }
}

fn coverage(
    paths: &[PathBuf],
    backend: Option<&str>,
    seeds: Option<std::ops::Range<u64>>,
    jobs: usize,
) -> u8 {
    let scenarios = match load(paths, backend, &BudgetArg { budget: None }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("squall: {e}");
            return BAD_INPUT;
        }
    };
    let seeds = campaign::Seeds {
        range: seeds,
        shard: None,
    };
    let total = scenarios
        .iter()
        .map(|(s, _)| seeds.of(s).len() as u64)
        .sum();
    let sweep = Sweep {
        jobs,
        ..Sweep::default()
    };
    let mut progress = Progress::new(total);
    let mut coverage = squall::coverage::Coverage::default();
    coverage.measure(&scenarios, &seeds, &sweep, &mut Shown(&mut progress));
    print!("{}", coverage.table());
    let missing = coverage.missing();
    progress.print(&coverage.tally.summary(None));
    println!("# {} answer(s) not reached", missing.len());
    match missing.is_empty() && coverage.tally.failed.is_empty() {
        true => HOLDS,
        false => FAILED,
    }
}

/// The progress bar, as a campaign reports to it.
struct Shown<'a>(&'a mut Progress);

impl campaign::Sink for Shown<'_> {
    fn print(&mut self, text: &str) {
        self.0.print(text);
    }

    fn tick(&mut self, failed: bool) {
        self.0.tick(failed);
    }

    fn finish(&mut self) {
        self.0.finish();
    }
}

/// On Ctrl-C, stop the sweep: runs under way finish and everything found is reported. A
/// second Ctrl-C quits at once.
fn on_ctrl_c(sweep: &Sweep, interrupted: &Arc<AtomicBool>) {
    let (stop, interrupted) = (sweep.stop.clone(), interrupted.clone());
    let handler = move || {
        if interrupted.swap(true, Ordering::SeqCst) {
            std::process::exit(INTERRUPTED.into());
        }
        stop.store(true, Ordering::SeqCst);
        eprintln!("squall: interrupted; finishing the runs under way (Ctrl-C again quits now)");
    };
    if let Err(e) = ctrlc::set_handler(handler) {
        eprintln!("squall: cannot catch Ctrl-C ({e}); an interrupted sweep reports nothing");
    }
}

/// Add every failing run's seed to its scenario's regression seeds, and say so.
fn save_failures(tally: &Tally) {
    for (scenario, saved) in campaign::save_failures(&Registry::shipped(), tally) {
        match saved {
            Ok(added) => eprintln!(
                "squall: {added} new regression seed(s) in {}",
                regressions::path(&scenario).display()
            ),
            Err(e) => eprintln!("squall: {e}"),
        }
    }
}

fn replay(
    path: &Path,
    seed: u64,
    backend: Option<&str>,
    (history, format, html): (Option<PathBuf>, Option<Format>, Option<PathBuf>),
    limits: &BudgetArg,
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
    let keep = Keep {
        history: history.as_deref().map(|f| format.unwrap_or(Format::of(f))),
        html: html.is_some(),
    };
    let (run, kept) = sweep::run_keeping(&s, &backend, seed, keep);
    print!("{}", run.history);
    print!("{}", run.report(&s.path));
    let files = [(history, kept.history), (html, kept.html)];
    if !write_all(files) {
        return BAD_INPUT;
    }
    if run.verdict == Outcome::Ok {
        HOLDS
    } else {
        FAILED
    }
}

fn shrink(path: &Path, seed: u64, backend: Option<&str>, out: Option<PathBuf>, tries: u32) -> u8 {
    let (s, backend) = match load(&[path.to_path_buf()], backend, &BudgetArg { budget: None }) {
        Ok(mut s) if s.len() == 1 => s.remove(0),
        Ok(_) => {
            eprintln!("squall: shrink takes one scenario file whose protocol the backend serves");
            return BAD_INPUT;
        }
        Err(e) => {
            eprintln!("squall: {e}");
            return BAD_INPUT;
        }
    };
    let out = out.unwrap_or_else(|| {
        let stem = s.path.file_stem().unwrap_or_default().to_string_lossy();
        let file = format!(
            "{stem}-{}-seed{seed}.toml",
            backend.name().replace('/', "-")
        );
        Path::new("shrunk").join(file)
    });
    let registry = Registry::shipped();
    let shrunk = match squall::shrink::shrink(&registry, &s, &backend, seed, tries, &out) {
        Ok(shrunk) => shrunk,
        Err(e) => {
            eprintln!("squall: {e}");
            return FAILED;
        }
    };
    println!("{}", shrunk.original);
    println!(
        "shrunk in {} candidate runs to {} operations ({} per client) and {} faults:",
        shrunk.tried,
        shrunk.ops.iter().sum::<usize>(),
        shrunk
            .ops
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        shrunk.scenario.specs.len()
    );
    print!("{}", shrunk.plan);
    println!("history:");
    print!("{}", shrunk.run.history);
    print!("{}", shrunk.run.report(&out));
    let written = out
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&out, &shrunk.file));
    if let Err(e) = written {
        eprintln!("squall: cannot write {}: {e}", out.display());
        return BAD_INPUT;
    }
    println!("wrote {}", out.display());
    FAILED
}

/// Write each file that was asked for and has contents; false if one could not be written.
fn write_all(files: impl IntoIterator<Item = (Option<PathBuf>, Option<String>)>) -> bool {
    let mut ok = true;
    for (file, text) in files {
        if let (Some(file), Some(text)) = (file, text) {
            if let Err(e) = std::fs::write(&file, text) {
                eprintln!("squall: cannot write {}: {e}", file.display());
                ok = false;
            }
        }
    }
    ok
}

/// `squall check`: each file's verdict against the register model, as a line
/// `FILE verdict=V ops=K history=HEX`, and for a violation why and the minimal failing
/// history. Exit 0 all hold, 1 a violation or an undecided check, 2 a file that cannot be
/// read.
fn check(files: &[PathBuf], history: Option<PathBuf>, format: Option<Format>) -> u8 {
    if history.is_some() && files.len() != 1 {
        eprintln!("squall: --history takes one history to check");
        return BAD_INPUT;
    }
    let mut status = HOLDS;
    for file in files {
        let h = match jepsen::read(file) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("squall: {e}");
                return BAD_INPUT;
            }
        };
        let verdict = check::linearizable(&Register, &h.operations(), &linear::Budget::default());
        let run = Run::judged(0, "register", &h, verdict);
        println!(
            "{} verdict={} ops={} history={}",
            file.display(),
            run.verdict_name(),
            run.ops,
            run.hash
        );
        print!("{}", run.details());
        if run.verdict != Outcome::Ok {
            status = FAILED;
        }
        let out = history
            .as_ref()
            .map(|f| format.unwrap_or(Format::of(f)).write(&h));
        if !write_all([(history.clone(), out)]) {
            return BAD_INPUT;
        }
    }
    status
}

/// Load the scenarios under `paths` with their backends ([`campaign::load`]), their
/// budgets as `limits` overrides.
fn load(
    paths: &[PathBuf],
    backend: Option<&str>,
    limits: &BudgetArg,
) -> Result<Vec<(Scenario, Backend)>, String> {
    let mut out = campaign::load(&Registry::shipped(), paths, backend)?;
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

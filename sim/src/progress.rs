//! A sweep's progress on stderr, kept apart from the run lines on stdout: a bar on a
//! terminal (seeds a second, failures so far, time left), plain lines elsewhere so that CI
//! logs stay readable — one at every tenth of the seeds (at most one per 100) and at least
//! every ten seconds,
//! and a last one when the sweep ends. Wall-clock time is read here, outside any
//! simulation, and never reaches a history.

use std::io::{IsTerminal, Write as _};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is printed at least.
const EVERY: Duration = Duration::from_secs(10);

pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    failed: u64,
    start: Instant,
    /// When the last plain line was printed, and at how many seeds.
    last: (Instant, u64),
}

impl Progress {
    /// Progress over `total` seeds: a bar if stderr is a terminal, else plain lines.
    pub fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let style = ProgressStyle::with_template(
                "{bar:30} {pos}/{len} seeds  {per_sec}  {msg}  ETA {eta}",
            )
            .expect("the template is valid");
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                .with_style(style)
                .with_message("0 failed")
        });
        let now = Instant::now();
        Progress {
            bar,
            total,
            done: 0,
            failed: 0,
            start: now,
            last: (now, 0),
        }
    }

    /// Print `text` on stdout without tearing the bar, and flush it: a run's result is
    /// out as soon as it is known, whatever happens to the runs after it.
    pub fn print(&self, text: &str) {
        let out = || {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
        };
        match &self.bar {
            Some(bar) => bar.suspend(out),
            None => out(),
        }
    }

    /// One more seed done; `failed` if its run did not hold.
    pub fn tick(&mut self, failed: bool) {
        self.done += 1;
        self.failed += u64::from(failed);
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                if failed {
                    bar.set_message(format!("{} failed", self.failed));
                }
            }
            None => {
                let step = (self.total / 10).max(100);
                let crossed = self.done / step != self.last.1 / step;
                if crossed || self.last.0.elapsed() >= EVERY {
                    self.line();
                }
            }
        }
    }

    /// The sweep ended (finished or stopped): a last line.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.last.1 != self.done || self.done == 0 {
            self.line();
        }
    }

    fn line(&mut self) {
        let elapsed = self.start.elapsed();
        let rate = self.done as f64 / elapsed.as_secs_f64().max(1e-3);
        let eta = match self.total - self.done {
            left if left > 0 && rate > 0.0 => format!(
                ", ETA {}",
                humantime::format_duration(Duration::from_secs((left as f64 / rate) as u64))
            ),
            _ => String::new(),
        };
        eprintln!(
            "squall: progress {}/{} seeds ({}%), {rate:.0} seeds/s, {} failed, {:.1}s{eta}",
            self.done,
            self.total,
            self.done * 100 / self.total.max(1),
            self.failed,
            elapsed.as_secs_f64()
        );
        self.last = (Instant::now(), self.done);
    }
}

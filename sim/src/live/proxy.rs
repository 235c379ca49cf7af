//! The TCP proxy between one client and the server: what live mode has for a network.
//!
//! Every chunk read is held for a latency drawn between the link's minimum and maximum (in
//! order: a chunk never overtakes the one before it), or dropped while its direction is
//! cut. A connection that lost bytes cannot be trusted to frame messages again, so healing
//! resets it (both sockets closed) and the client reconnects, as it would after a real
//! partition outlasted its TCP connection.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Which way bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

/// A listening proxy; dropping it closes every connection through it.
pub struct Proxy {
    addr: SocketAddr,
    link: Rc<RefCell<Link>>,
    accept: JoinHandle<()>,
}

/// What the proxy does to bytes now.
struct Link {
    latency: (Duration, Duration),
    cut_up: bool,
    cut_down: bool,
    rng: ChaCha8Rng,
    conns: Vec<Conn>,
}

/// One proxied connection: a reader and a writer task each way, and whether either way
/// lost bytes.
struct Conn {
    tasks: Vec<JoinHandle<()>>,
    lost: Rc<RefCell<bool>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The tasks own the sockets: aborting them closes both.
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Proxy {
    /// Listen on a free loopback port and forward to `server`. Runs on the current
    /// `LocalSet`.
    pub async fn start(
        server: SocketAddr,
        latency: (Duration, Duration),
        rng: ChaCha8Rng,
    ) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let link = Rc::new(RefCell::new(Link {
            latency,
            cut_up: false,
            cut_down: false,
            rng,
            conns: Vec::new(),
        }));
        let accept = tokio::task::spawn_local(accept(listener, server, link.clone()));
        Ok(Proxy { addr, link, accept })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drop every chunk going `way` from now on.
    pub fn cut(&self, way: Way) {
        let mut link = self.link.borrow_mut();
        match way {
            Way::Up => link.cut_up = true,
            Way::Down => link.cut_down = true,
        }
    }

    /// Let chunks going `way` through again; reset the connections that lost bytes.
    pub fn heal(&self, way: Way) {
        let mut link = self.link.borrow_mut();
        match way {
            Way::Up => link.cut_up = false,
            Way::Down => link.cut_down = false,
        }
        link.conns.retain(|c| !*c.lost.borrow());
    }

    /// The maximum latency of both ways.
    pub fn set_max_latency(&self, max: Duration) {
        let mut link = self.link.borrow_mut();
        link.latency.1 = max.max(link.latency.0);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.link.borrow_mut().conns.clear();
    }
}

async fn accept(listener: TcpListener, server: SocketAddr, link: Rc<RefCell<Link>>) {
    while let Ok((client, _)) = listener.accept().await {
        // A server that does not answer is like a cut link: the client times out.
        let Ok(upstream) = TcpStream::connect(server).await else {
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let (client_r, client_w) = client.into_split();
        let (server_r, server_w) = upstream.into_split();
        let lost = Rc::new(RefCell::new(false));
        let mut tasks = Vec::with_capacity(4);
        for (from, to, way) in [
            (client_r, server_w, Way::Up),
            (server_r, client_w, Way::Down),
        ] {
            let (tx, rx) = mpsc::unbounded_channel();
            let read = pump(from, tx, way, link.clone(), lost.clone());
            tasks.push(tokio::task::spawn_local(read));
            tasks.push(tokio::task::spawn_local(deliver(rx, to)));
        }
        let mut l = link.borrow_mut();
        l.conns
            .retain(|c| !c.tasks.iter().all(JoinHandle::is_finished));
        l.conns.push(Conn { tasks, lost });
    }
}

/// Read `from` and pass each chunk on with the time to deliver it, or drop it while cut.
async fn pump(
    mut from: OwnedReadHalf,
    tx: mpsc::UnboundedSender<(Instant, Vec<u8>)>,
    way: Way,
    link: Rc<RefCell<Link>>,
    lost: Rc<RefCell<bool>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut last = Instant::now();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let delay = {
            let mut l = link.borrow_mut();
            let cut = match way {
                Way::Up => l.cut_up,
                Way::Down => l.cut_down,
            };
            if cut {
                *lost.borrow_mut() = true;
                continue;
            }
            let (min, max) = l.latency;
            l.rng.random_range(min..=max)
        };
        last = last.max(Instant::now() + delay);
        if tx.send((last, buf[..n].to_vec())).is_err() {
            break;
        }
    }
}

/// Write each chunk when its time comes; at the end of the stream, close this way (the
/// other may still be open).
async fn deliver(mut rx: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>, mut to: OwnedWriteHalf) {
    while let Some((at, bytes)) = rx.recv().await {
        tokio::time::sleep_until(at).await;
        if to.write_all(&bytes).await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}

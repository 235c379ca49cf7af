//! Backends that misbehave, so that the harness's own defences are tested as any mutant is:
//! each must end as an `error` verdict with its seed and replay line, and the sweep must go
//! on to its other seeds.
//!
//! They serve the KV protocol to `kv/reference`'s client: the client is real, the server
//! misbehaves on the first request it reads. They are registered, not test-only, so that the
//! command line itself is tested against them (a busy-looping run must not keep `squall`
//! from exiting), and so that a user can see what squall makes of each.

use std::rc::Rc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;
use turmoil::net::{TcpListener, TcpStream};

use super::reference::Reference;
use super::{KvBackend, KvClient};
use crate::backend::{Backend, Kind};
use crate::protocols::kv::Kv;
use crate::world::{Node, Software, PORT};

/// How a backend misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// Panics handling a request, in the task serving its connection.
    Panic,
    /// Takes a lock and awaits forever holding it: every later request waits on the lock.
    Deadlock,
    /// Spins without ever yielding: the simulation's thread is stuck, simulated time stops.
    BusyLoop,
    /// Answers every request with a frame that is not a message.
    Garbage,
    /// Reads requests and never answers.
    Silent,
}

impl How {
    pub const ALL: [How; 5] = [
        How::Panic,
        How::Deadlock,
        How::BusyLoop,
        How::Garbage,
        How::Silent,
    ];

    /// The backend's name, and what it does.
    fn named(self) -> (&'static str, &'static str) {
        match self {
            How::Panic => ("kv/misbehave-panic", "panics handling a request"),
            How::Deadlock => ("kv/misbehave-deadlock", "awaits forever holding a lock"),
            How::BusyLoop => (
                "kv/misbehave-busy-loop",
                "spins without yielding: simulated time stops",
            ),
            How::Garbage => (
                "kv/misbehave-garbage",
                "answers every request with a garbled frame",
            ),
            How::Silent => ("kv/misbehave-silent", "reads requests and never answers"),
        }
    }

    /// It, as a backend serving `kv`.
    pub fn backend(self) -> Backend {
        let (name, about) = self.named();
        Backend::new(name, Kind::Misbehaving, about).serves::<Kv>(move |_| Rc::new(self))
    }
}

impl KvBackend for How {
    fn serve(&self, _node: Node) -> Software {
        Box::pin(serve(*self))
    }

    fn client(&self, node: Node) -> Box<dyn KvClient> {
        KvBackend::client(&Reference::default(), node)
    }
}

async fn serve(how: How) -> turmoil::Result {
    let listener = TcpListener::bind(("0.0.0.0", PORT)).await?;
    let lock = Rc::new(Mutex::new(()));
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::task::spawn_local(connection(stream, how, lock.clone()));
    }
}

async fn connection(mut stream: TcpStream, how: How, lock: Rc<Mutex<()>>) -> std::io::Result<()> {
    loop {
        let len = stream.read_u32().await?;
        let mut request = vec![0; len.min(1 << 20) as usize];
        stream.read_exact(&mut request).await?;
        match how {
            How::Panic => panic!("kv/misbehave-panic: a request made the server panic"),
            How::Deadlock => {
                let _held = lock.lock().await;
                std::future::pending::<()>().await;
            }
            How::BusyLoop => loop {
                std::hint::spin_loop();
            },
            How::Garbage => stream.write_all(b"\0\0\0\x07garbage").await?,
            How::Silent => {}
        }
    }
}

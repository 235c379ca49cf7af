//! Connections that carry whole messages: frames of a big-endian `u32` length and a
//! `serde_json` body, over turmoil TCP.
//!
//! This is where message faults strike ([`crate::world::fate`]): while a scenario's
//! `messages` fault is on, a frame may be lost (the connection stays open, as over a lossy
//! datagram network), sent twice, or held back to go after the next frame on its
//! connection. A backend over frames must therefore tell a lost, repeated or late message
//! from a fresh one, as one over UDP must.
//!
//! Latency is drawn here too: turmoil carries every frame at the scenario's minimum
//! latency, and each frame waits its own draw above that before it is written, in order on
//! its connection. Fates and latencies are drawn frame by frame from the tick it is sent in
//! ([`crate::world::fate`]), so that a shrinker's cut of one operation does not move the
//! latency of every later message, as drawing them from turmoil's one stream would.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
// tokio's Instant: inside a simulation turmoil drives it, so it reads simulated time.
use tokio::time::{sleep_until, Instant};
use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use turmoil::net::TcpStream;

use crate::world::{fate, Fate, PORT};

/// A bound on a frame, so that a garbled length cannot ask for gigabytes.
const MAX_FRAME: u32 = 64 << 20;

/// A connection carrying messages `M`. A task of its own reads whole frames into a queue,
/// so a caller that gives up waiting (a timeout, a cancelled call) never leaves a frame half
/// read; another writes each frame once its latency has passed, so a sender never waits.
pub struct Conn<M> {
    out: mpsc::UnboundedSender<(Instant, Vec<u8>)>,
    /// When the last frame queued goes: a frame never overtakes an earlier one.
    last: Instant,
    frames: mpsc::UnboundedReceiver<M>,
    reader: AbortHandle,
    /// Frames held back by a message fault, to go after the next frame sent.
    held: Vec<u8>,
    /// The hosts' addresses, `from->to`, which a message's fate is drawn from.
    link: String,
    /// The tick of the latest frame sent and how many were sent in it, which tell apart the
    /// draws of frames sent together.
    tick: (Instant, u32),
}

impl<M: Serialize + DeserializeOwned + 'static> Conn<M> {
    /// Connect to a server host's port.
    pub async fn connect(host: &str) -> io::Result<Conn<M>> {
        Ok(Conn::new(TcpStream::connect((host, PORT)).await?))
    }

    pub fn new(stream: TcpStream) -> Conn<M> {
        let ip =
            |a: io::Result<std::net::SocketAddr>| a.map_or(String::new(), |a| a.ip().to_string());
        let link = format!("{}->{}", ip(stream.local_addr()), ip(stream.peer_addr()));
        let (mut read, write) = stream.into_split();
        let (tx, frames) = mpsc::unbounded_channel();
        let reader = tokio::task::spawn_local(async move {
            while let Ok(msg) = read_frame(&mut read).await {
                if tx.send(msg).is_err() {
                    break;
                }
            }
        })
        .abort_handle();
        let (out, queue) = mpsc::unbounded_channel();
        // Not aborted with the connection: what was sent goes out, then the stream closes.
        tokio::task::spawn_local(write_frames(write, queue));
        Conn {
            out,
            last: Instant::now(),
            frames,
            reader,
            held: Vec::new(),
            link,
            tick: (Instant::now(), 0),
        }
    }

    /// Send one frame, after its latency and unless a message fault decides otherwise; a
    /// turmoil write is a single segment, so what is written goes whole or not at all. An
    /// error says the connection is broken.
    pub async fn send(&mut self, msg: &M) -> io::Result<()> {
        let body = serde_json::to_vec(msg)?;
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        let now = Instant::now();
        self.tick = match self.tick {
            (t, n) if t == now => (t, n + 1),
            _ => (now, 0),
        };
        let (fate, delay) = fate(&self.link, self.tick.1);
        match fate {
            Fate::Sent => {}
            Fate::Lost => return Ok(()),
            Fate::Twice => frame.extend_from_within(..),
            Fate::Held => {
                self.held.extend_from_slice(&frame);
                return Ok(());
            }
        }
        frame.append(&mut self.held);
        self.last = self.last.max(now + delay);
        self.out
            .send((self.last, frame))
            .map_err(|_| io::ErrorKind::BrokenPipe.into())
    }

    /// The next frame, or `None` once the connection is closed or garbled.
    pub async fn recv(&mut self) -> Option<M> {
        self.frames.recv().await
    }
}

impl<M> Drop for Conn<M> {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Write each frame queued when its time comes, until the queue ends or a write fails.
async fn write_frames(
    mut write: OwnedWriteHalf,
    mut queue: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
) {
    while let Some((at, frame)) = queue.recv().await {
        // A sleep that is already over would still wait for the next tick.
        if at > Instant::now() {
            sleep_until(at).await;
        }
        if write.write_all(&frame).await.is_err() {
            return;
        }
    }
}

async fn read_frame<M: DeserializeOwned>(read: &mut OwnedReadHalf) -> io::Result<M> {
    let len = read.read_u32().await?;
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "frame too long"));
    }
    let mut body = vec![0; len as usize];
    read.read_exact(&mut body).await?;
    Ok(serde_json::from_slice(&body)?)
}

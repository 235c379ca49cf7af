//! Connections that carry whole messages: frames of a big-endian `u32` length and a
//! `serde_json` body, over turmoil TCP.
//!
//! This is where message faults strike ([`crate::world::fate`]): while a scenario's
//! `messages` fault is on, a frame may be lost (the connection stays open, as over a lossy
//! datagram network), sent twice, or held back to go after the next frame on its
//! connection. A backend over frames must therefore tell a lost, repeated or late message
//! from a fresh one, as one over UDP must.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use turmoil::net::TcpStream;

use crate::world::{fate, Fate, PORT};

/// A bound on a frame, so that a garbled length cannot ask for gigabytes.
const MAX_FRAME: u32 = 64 << 20;

/// A connection carrying messages `M`. A task of its own reads whole frames into a queue,
/// so a caller that gives up waiting (a timeout, a cancelled call) never leaves a frame half
/// read.
pub struct Conn<M> {
    write: OwnedWriteHalf,
    frames: mpsc::UnboundedReceiver<M>,
    reader: AbortHandle,
    /// Frames held back by a message fault, to go after the next frame sent.
    held: Vec<u8>,
    /// The hosts' addresses, `from->to`, which a message's fate is drawn from.
    link: String,
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
        Conn {
            write,
            frames,
            reader,
            held: Vec::new(),
            link,
        }
    }

    /// Send one frame, unless a message fault decides otherwise; a turmoil write is a
    /// single segment, so what is written goes whole or not at all.
    pub async fn send(&mut self, msg: &M) -> io::Result<()> {
        let body = serde_json::to_vec(msg)?;
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        match fate(&self.link, &frame) {
            Fate::Sent => {}
            Fate::Lost => return Ok(()),
            Fate::Twice => frame.extend_from_within(..),
            Fate::Held => {
                self.held.extend_from_slice(&frame);
                return Ok(());
            }
        }
        frame.append(&mut self.held);
        self.write.write_all(&frame).await
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

async fn read_frame<M: DeserializeOwned>(read: &mut OwnedReadHalf) -> io::Result<M> {
    let len = read.read_u32().await?;
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "frame too long"));
    }
    let mut body = vec![0; len as usize];
    read.read_exact(&mut body).await?;
    Ok(serde_json::from_slice(&body)?)
}

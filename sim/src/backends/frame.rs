//! Frames over turmoil TCP: a big-endian `u32` length and a `serde_json` body. Backends
//! built on it send their own message type.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use turmoil::net::TcpStream;

use crate::world::PORT;

/// A bound on a frame, so that a garbled length cannot ask for gigabytes.
const MAX_FRAME: u32 = 64 << 20;

/// A connection. A task of its own reads whole frames into a queue, so a caller that gives
/// up waiting (a timeout, a cancelled call) never leaves a frame half read.
pub struct Conn<M> {
    write: OwnedWriteHalf,
    frames: mpsc::UnboundedReceiver<M>,
    reader: AbortHandle,
}

impl<M: Serialize + DeserializeOwned + 'static> Conn<M> {
    pub async fn connect(host: &str) -> io::Result<Conn<M>> {
        Ok(Conn::new(TcpStream::connect((host, PORT)).await?))
    }

    pub fn new(stream: TcpStream) -> Conn<M> {
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
        }
    }

    /// Send one frame; a turmoil write is a single segment, so it goes whole or not at all.
    pub async fn send(&mut self, msg: &M) -> io::Result<()> {
        let body = serde_json::to_vec(msg)?;
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
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

//! Response bodies written on a blocking thread (encoding is CPU work) and handed over
//! in chunks through a bounded channel, so a slow client slows the writer down.

use std::io::{self, Write};

use axum::body::Bytes;
use futures::Stream;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_stream::wrappers::ReceiverStream;

const CHUNK_BYTES: usize = 256 * 1024;
const CHUNKS_AHEAD: usize = 4;

/// The body that `write` produces. An error after the first byte aborts the body, so a
/// client never mistakes a truncated response for a complete one. The permit is held
/// until writing ends.
pub(crate) fn written(
    permit: OwnedSemaphorePermit,
    write: impl FnOnce(&mut Chunks) -> io::Result<()> + Send + 'static,
) -> impl Stream<Item = io::Result<Bytes>> {
    let (sender, receiver) = mpsc::channel(CHUNKS_AHEAD);
    tokio::task::spawn_blocking(move || {
        let _download = permit;
        let mut body = Chunks { sender: sender.clone(), buffer: Vec::with_capacity(CHUNK_BYTES) };
        if let Err(error) = write(&mut body).and_then(|()| body.flush()) {
            tracing::warn!(%error, "streaming a response failed");
            let _ = sender.blocking_send(Err(error));
        }
    });
    ReceiverStream::new(receiver)
}

/// A `Write` that sends full chunks to the response body, blocking while it is full.
pub(crate) struct Chunks {
    sender: mpsc::Sender<io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl Write for Chunks {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_BYTES)));
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

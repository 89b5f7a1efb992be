//! Connections whose reader stops taking bytes are closed. A response that cannot write
//! for the write timeout ends with an error; hyper then drops its body, which releases
//! the download slot and the encoding thread behind it (see [`crate::body`]). Without
//! this, 64 clients that stop reading would hold every download slot for ever.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// A listener whose connections fail a write that makes no progress for `timeout`.
pub struct WriteDeadline<L> {
    listener: L,
    timeout: Duration,
}

impl<L> WriteDeadline<L> {
    pub fn new(listener: L, timeout: Duration) -> Self {
        Self { listener, timeout }
    }
}

impl<L: Listener> Listener for WriteDeadline<L> {
    type Io = Deadlined<L::Io>;
    type Addr = L::Addr;

    fn accept(&mut self) -> impl Future<Output = (Self::Io, Self::Addr)> + Send {
        let timeout = self.timeout;
        let accepted = self.listener.accept();
        async move {
            let (io, address) = accepted.await;
            (Deadlined { io, timeout, stalled: None }, address)
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// One connection; the timer runs only while a write waits, so idle keep-alive
/// connections are left alone.
pub struct Deadlined<T> {
    io: T,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> Deadlined<T> {
    /// The outcome of a write attempt: progress resets the timer; waiting past the
    /// deadline fails the write.
    fn waited<R>(&mut self, cx: &mut Context<'_>, attempt: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match attempt {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let stalled = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                ready!(stalled.as_mut().poll(cx));
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the client took nothing for {} s", timeout.as_secs_f32()),
                )))
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Deadlined<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Deadlined<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let attempt = Pin::new(&mut self.io).poll_write(cx, buf);
        self.waited(cx, attempt)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let attempt = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.waited(cx, attempt)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let attempt = Pin::new(&mut self.io).poll_flush(cx);
        self.waited(cx, attempt)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let attempt = Pin::new(&mut self.io).poll_shutdown(cx);
        self.waited(cx, attempt)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn a_write_nobody_reads_fails_after_the_timeout_and_progress_resets_it() {
        let (server, mut client) = tokio::io::duplex(1024);
        let timeout = Duration::from_millis(200);
        let mut server = Deadlined { io: server, timeout, stalled: None };
        // Progress: what the client reads keeps the connection alive past the timeout.
        let reader = tokio::spawn(async move {
            let mut taken = vec![0u8; 4096];
            client.read_exact(&mut taken).await.map(|_| client)
        });
        server.write_all(&[7u8; 4096]).await.expect("written while the client reads");
        let _client = reader.await.expect("reader").expect("read");
        // A stall: the buffer fills, then the write fails with TimedOut.
        let started = tokio::time::Instant::now();
        let error = server.write_all(&vec![7u8; 1 << 20]).await.expect_err("a stalled write fails");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= timeout);
    }
}

//! Serving the router on a TCP listener with the bounds a server shared by every tenant needs,
//! which `axum::serve` does not set: each connection is an HTTP/1.1 connection of hyper with a
//! timer, so a client that sends its request head too slowly is cut off
//! ([`HEADER_READ_TIMEOUT`], also for an idle kept-alive connection); at most
//! [`MAX_CONNECTIONS`] are open at once (further ones wait in the listen queue); and a
//! shutdown is prompt: idle connections and those whose first request has not fully arrived
//! are closed at once, requests being answered get [`SHUTDOWN_GRACE`] to finish.
//!
//! The request body has its own bound, [`BODY_READ_TIMEOUT`](super::BODY_READ_TIMEOUT), kept
//! by the handler that reads it (it answers 408 with a JSON error).
//!
//! hyper answers a request it cannot parse by itself, with an empty body (400, 414 for a URI
//! over 64 KiB, 431 for a head over [`MAX_HEAD_BYTES`] or over 100 headers). So that those
//! answers carry the `{error, message}` body every other error has, each connection's writes
//! go through `Answering`, which gives such an answer its JSON body. It recognises them by
//! what only hyper's own answers have: one of those three statuses with `connection: close`
//! and `content-length: 0` (every answer of the router carries a body).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{service_fn, Service};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::protocol::ErrorBody;

/// How long a client may take to send a request's head (request line and headers), from the
/// moment the server waits for it: on a new connection, and on a kept-alive one between
/// requests. Then the connection is closed. A node sends its head at once; 10 s covers a
/// slow mobile link and keeps a client that trickles headers from holding a connection.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The most connections served at once; further connections wait in the listen queue until
/// one closes. Each costs a task and buffers (at most [`MAX_HEAD_BYTES`] for a head, the
/// body limit for a push), and a file descriptor: 512 stays well under the common limit of
/// 1024 open files per process, with room for the database, its WAL and the log. Terminals
/// sync in short rounds, so this serves many times as many terminals; slow clients cannot hold
/// them for long ([`HEADER_READ_TIMEOUT`], the body timeout).
pub const MAX_CONNECTIONS: usize = 512;

/// How long requests being answered may take to finish after a shutdown begins; then the
/// server stops without their answers (their transactions committed or did not, and nodes
/// send again what got no answer). Short, so a stop (a deploy, an orchestrator's SIGTERM with
/// its own deadline, often 30 s) is not held up by slow clients.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The largest request head (request line and headers) read, in bytes; larger ones answer
/// 431. A node's head is well under 2 KiB (its token is a few hundred bytes); 128 KiB holds
/// the longest URI hyper takes (64 KiB, 414 beyond) with room for headers.
pub const MAX_HEAD_BYTES: usize = 128 * 1024;

/// The bounds of [`serve`]; the defaults are this module's constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeOptions {
    /// How long a request head may take to arrive ([`HEADER_READ_TIMEOUT`]).
    pub header_read_timeout: Duration,
    /// The most connections open at once ([`MAX_CONNECTIONS`]); at least 1.
    pub max_connections: usize,
    /// How long requests being answered may finish after shutdown begins
    /// ([`SHUTDOWN_GRACE`]).
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            shutdown_grace: SHUTDOWN_GRACE,
        }
    }
}

/// How [`serve`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stopped {
    /// Every connection closed within the grace period.
    Drained,
    /// The grace period ran out with these connections still answering; they were closed.
    GraceExpired {
        /// Connections closed without their answers.
        connections: usize,
    },
}

/// Serves `router` on `listener` until `shutdown` completes, within `options`' bounds; then
/// stops taking connections, closes the idle ones and those whose first request has not fully
/// arrived, lets requests being answered finish for at most the grace period, and returns.
///
/// Accept errors (a connection reset before it was taken, no file descriptors left) are
/// logged and retried, never returned: a server stops only when told to.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Stopped {
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut warned_full: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        if slots.available_permits() == 0
            && warned_full.is_none_or(|at| at.elapsed() >= Duration::from_secs(60))
        {
            warned_full = Some(Instant::now());
            tracing::warn!(
                max_connections = options.max_connections,
                "every connection slot is taken; new connections wait until one closes"
            );
        }
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                // The semaphore is never closed.
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
        };
        connections.spawn(connection(
            stream,
            router.clone(),
            options,
            stopping.clone(),
            slot,
        ));
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(options.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    match drained {
        Ok(()) => Stopped::Drained,
        Err(_) => {
            let left = connections.len();
            connections.abort_all();
            Stopped::GraceExpired { connections: left }
        }
    }
}

/// After a failed accept: errors of one connection (it was reset before it was taken) are
/// skipped; others (no file descriptors left) are logged and retried after a pause, so the
/// loop does not spin.
async fn accept_failed(e: &io::Error) {
    use io::ErrorKind as K;
    if matches!(
        e.kind(),
        K::ConnectionAborted | K::ConnectionReset | K::ConnectionRefused | K::Interrupted
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept connections; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Serves one connection until it closes, or until a shutdown closes it (at once if no
/// request of it was ever started, else after the request being answered).
async fn connection(
    stream: TcpStream,
    router: Router,
    options: ServeOptions,
    mut stopping: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    // Whether a request of this connection reached the router: before that, nothing of it is
    // in flight, and a shutdown closes it without waiting for its head.
    let started = Arc::new(AtomicBool::new(false));
    let service = {
        let started = Arc::clone(&started);
        let router = TowerToHyperService::new(router);
        service_fn(move |request: Request<Incoming>| {
            started.store(true, Ordering::Relaxed);
            router.call(request)
        })
    };
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_header_size(MAX_HEAD_BYTES);
    let conn = http.serve_connection(TokioIo::new(Answering::new(stream)), service);
    tokio::pin!(conn);
    tokio::select! {
        served = conn.as_mut() => {
            if let Err(e) = served {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        _ = stopping.wait_for(|stop| *stop) => {}
    }
    if !started.load(Ordering::Relaxed) {
        return;
    }
    // hyper closes an idle connection at once and finishes a request being answered first.
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended with an error during shutdown");
    }
}

/// A connection's socket that gives hyper's own error answers (400, 414, 431 with an empty
/// body) the JSON body of every other error: see the module documentation.
struct Answering<T> {
    inner: T,
    /// A rewritten answer still to be sent, and how much of it was.
    pending: Vec<u8>,
    sent: usize,
}

impl<T> Answering<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            sent: 0,
        }
    }
}

impl<T: AsyncWrite + Unpin> Answering<T> {
    /// Sends what is left of a rewritten answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.pending = Vec::new();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Answering<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Answering<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some((head, answer)) = with_json_body(buf) {
            // The head is taken as written; its replacement goes out now or on the next write,
            // flush or shutdown, before anything else.
            this.pending = answer;
            if let Poll::Ready(Err(e)) = this.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(head));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            if with_json_body(first).is_some() {
                return Pin::new(this).poll_write(cx, first);
            }
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// If `buf` starts with one of hyper's own error answers (400, 414 or 431, `connection:
/// close`, `content-length: 0`), the length of that head and the same answer with a JSON
/// error body.
fn with_json_body(buf: &[u8]) -> Option<(usize, Vec<u8>)> {
    let rest = buf
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| buf.strip_prefix(b"HTTP/1.0 "))?;
    let (code, message) = match rest.get(..4)? {
        b"400 " => (
            "bad_request",
            "the request is not valid HTTP/1.1: its request line or a header cannot be read",
        ),
        b"414 " => (
            "uri_too_long",
            "the request's URI is longer than this server reads (64 KiB)",
        ),
        b"431 " => (
            "headers_too_large",
            "the request's headers are larger than this server reads (at most 100 headers \
             and 128 KiB with the request line)",
        ),
        _ => return None,
    };
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
    let status = lines.next()?;
    let headers: Vec<&str> = lines.collect();
    let has = |wanted: &str| headers.iter().any(|h| h.eq_ignore_ascii_case(wanted));
    if !has("content-length: 0") || !has("connection: close") {
        return None;
    }
    let body = serde_json::to_vec(&ErrorBody {
        error: code.to_owned(),
        message: message.to_owned(),
    })
    .ok()?;
    let mut answer = format!("{status}\r\n");
    for h in headers
        .iter()
        .filter(|h| !h.eq_ignore_ascii_case("content-length: 0"))
    {
        answer.push_str(h);
        answer.push_str("\r\n");
    }
    answer.push_str(&format!(
        "content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    ));
    let mut answer = answer.into_bytes();
    answer.extend_from_slice(&body);
    Some((end, answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_own_error_answers_get_a_json_body() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n\
                     content-length: 0\r\ndate: Fri, 04 Dec 2026 12:46:21 GMT\r\n\r\n";
        let (taken, answer) = with_json_body(head).expect("rewritten");
        assert_eq!(taken, head.len());
        let answer = String::from_utf8(answer).expect("text");
        let (head, body) = answer.split_once("\r\n\r\n").expect("a body");
        assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("date: ") && head.contains("connection: close"));
        let body: ErrorBody = serde_json::from_str(body).expect("an error body");
        assert_eq!(body.error, "headers_too_large");
    }

    #[test]
    fn answers_of_the_router_pass_unchanged() {
        for head in [
            // A body of its own.
            &b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 52\r\n\r\n"[..],
            // Another status.
            b"HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            // Kept alive.
            b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n",
            // Not a head at all.
            b"{\"operations\": []}",
            b"HTTP/1.1 431 ",
        ] {
            assert!(with_json_body(head).is_none(), "{head:?}");
        }
    }
}

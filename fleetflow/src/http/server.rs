//! The HTTP listener every subcommand serves its router on: hyper's HTTP/1 server with a
//! deadline for a request's head, so a client that opens a connection and trickles (or never
//! finishes) its headers is closed instead of holding a socket and a task for ever. Bodies are
//! bounded by each route's own limits.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::error::AppError;

/// How long a client may take to send a request's head (its request line and headers). hyper
/// starts the same clock when a kept-alive connection waits for its next request, so this is
/// also how long a connection may stay idle: longer than a fleet's usual post interval would
/// keep a socket per device open for nothing, shorter would race clients reusing a connection.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);

/// How long shutdown waits for open requests (an ingest request waits for its delivery
/// reports) before it goes on to flush and stop.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` until `shutdown` completes, then lets the open connections
/// finish their requests (the server's graceful shutdown).
pub async fn serve_http(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()>) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: keep serving the connections we have.
                    tracing::warn!(%error, "accepting an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small answers (acks, live views) go out at once.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "HTTP connection ended");
            }
        });
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "HTTP connections still open {DRAIN_TIMEOUT:?} after shutdown began: closing them"
        );
    }
}

/// Binds the HTTP listener; returns it with the address it got (port 0 picks one).
pub async fn bind(
    http: std::net::SocketAddr,
) -> Result<(TcpListener, std::net::SocketAddr), AppError> {
    let listener = TcpListener::bind(http)
        .await
        .map_err(AppError::io(format!("listen on {http}")))?;
    let addr = listener
        .local_addr()
        .map_err(AppError::io("listener address"))?;
    Ok((listener, addr))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests, flushing Kafka");
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use axum::routing::get;

    use super::*;

    /// Issue 35: a partial request head is not kept open past the deadline.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_head_that_never_ends_is_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let router = Router::new().route("/", get(|| async { "ok" }));
        tokio::spawn(serve_http(listener, router, std::future::pending()));
        let closed = tokio::task::spawn_blocking(move || {
            let mut slow = TcpStream::connect(addr).expect("connect");
            slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .expect("write");
            slow.set_read_timeout(Some(HEADER_READ_TIMEOUT * 4))
                .expect("timeout");
            let mut answer = Vec::new();
            // The server answers 408 or just closes; either way the read ends, not times out.
            slow.read_to_end(&mut answer).expect("closed by the server");
            let mut ok = TcpStream::connect(addr).expect("connect");
            ok.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .expect("write");
            let mut body = String::new();
            ok.read_to_string(&mut body).expect("answer");
            body
        })
        .await
        .expect("client");
        assert!(closed.starts_with("HTTP/1.1 200"), "{closed}");
    }
}

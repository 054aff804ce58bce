//! Plain HTTP requests on a listener's port (health checks, metrics, static files), told
//! apart from WebSocket upgrades by their request head.

use std::{
    fmt,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf},
    net::TcpStream,
};

/// The longest request head read before deciding (larger ones are not upgrades we serve).
const MAX_HEAD: usize = 16 * 1024;

/// Serves the plain HTTP requests that reach a [`Server`](super::Server): every request that
/// is not a WebSocket upgrade. The embedder brings the HTTP implementation (the relay uses
/// hyper); weft only hands over the connection.
pub trait HttpService: Send + Sync + fmt::Debug + 'static {
    /// Serves `connection` (its request head is still to be read) until it is done.
    fn serve(&self, connection: HttpConnection) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// A TCP connection whose first bytes were read to route it, and are read again first.
pub struct HttpConnection {
    head: Vec<u8>,
    read: usize,
    stream: TcpStream,
    peer: Option<SocketAddr>,
}

impl fmt::Debug for HttpConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConnection")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl HttpConnection {
    /// The address of the client.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }
}

impl AsyncRead for HttpConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.read < this.head.len() {
            let rest = &this.head[this.read..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.read += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for HttpConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Reads `stream`'s request head (up to [`MAX_HEAD`] bytes) and says whether it asks for a
/// WebSocket upgrade; the connection replays the head to whoever reads it next. A head
/// that is cut short or unparsable counts as an upgrade, so that the WebSocket handshake
/// reports what is wrong with it.
pub(crate) async fn read_head(mut stream: TcpStream) -> io::Result<(HttpConnection, bool)> {
    let peer = stream.peer_addr().ok();
    let mut head = Vec::with_capacity(1024);
    let upgrade = loop {
        let before = head.len();
        if before >= MAX_HEAD || stream.read_buf(&mut head).await? == 0 {
            break true;
        }
        // Parsed again only once a blank line may have arrived, so that a head sent a byte
        // at a time costs one parse, not one per byte.
        let fresh = &head[before.saturating_sub(3)..];
        let blank_line =
            fresh.windows(2).any(|w| w == b"\n\n") || fresh.windows(3).any(|w| w == b"\n\r\n");
        if !blank_line {
            continue;
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&head) {
            Ok(httparse::Status::Complete(_)) => break asks_for_websocket(&request),
            Ok(httparse::Status::Partial) => {}
            Err(_) => break true,
        }
    };
    let connection = HttpConnection {
        head,
        read: 0,
        stream,
        peer,
    };
    Ok((connection, upgrade))
}

fn asks_for_websocket(request: &httparse::Request<'_, '_>) -> bool {
    request.headers.iter().any(|header| {
        header.name.eq_ignore_ascii_case("upgrade")
            && String::from_utf8_lossy(header.value)
                .split(',')
                .any(|protocol| protocol.trim().eq_ignore_ascii_case("websocket"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::{
        io::AsyncWriteExt,
        net::{TcpListener, TcpStream},
    };

    async fn routed(request: &[u8]) -> (bool, Vec<u8>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let request = request.to_vec();
        let client = tokio::spawn(async move {
            let mut stream = TcpStream::connect(address).await.expect("connect");
            // In two writes, so the head arrives in pieces.
            let (first, rest) = request.split_at(request.len() / 2);
            stream.write_all(first).await.expect("write");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            stream.write_all(rest).await.expect("write");
            stream.shutdown().await.expect("shutdown");
        });
        let (stream, _) = listener.accept().await.expect("accept");
        let (mut connection, upgrade) = read_head(stream).await.expect("head");
        let mut replayed = Vec::new();
        connection.read_to_end(&mut replayed).await.expect("replay");
        client.await.expect("client");
        (upgrade, replayed)
    }

    #[tokio::test]
    async fn upgrades_and_plain_requests_are_told_apart_and_replayed_whole() {
        let upgrade = b"GET /?token=x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\nSec-WebSocket-Version: 13\r\n\r\n";
        assert_eq!(routed(upgrade).await, (true, upgrade.to_vec()));
        let plain = b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(routed(plain).await, (false, plain.to_vec()));
        let garbage = b"\x00\x01\x02 not http\r\n\r\n";
        assert!(
            routed(garbage).await.0,
            "unparsable goes to the WebSocket handshake"
        );
    }
}

//! Turning a connection away: `503 Service Unavailable`, then a close that does not lose the answer.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// How long a refused client has to finish sending its request and read the
/// answer before the socket is dropped anyway.
const LINGER: Duration = Duration::from_secs(1);

/// How much of a refused client's request is read (and thrown away) at most.
const MAX_DRAINED: usize = 64 * 1024;

/// Answers a connection the server will not serve, such as one past its
/// connection cap, with `503 Service Unavailable` (`reason` as the plain
/// text body, `Connection: close`, `Retry-After: 1`), then closes it.
///
/// The answer is written once the request's head has arrived (or after half
/// a second without it): a client such as hyper's takes an answer that
/// comes before it has sent its request for a broken connection, and loses
/// it. The rest of the request is then read and thrown away, for up to a
/// second in all (and 64 KiB), so that closing the socket with it unread
/// does not make the kernel reset the connection under the answer.
/// [`Server`](crate::Server) does this to every connection past its cap.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9000").await?;
/// let (tcp, _remote) = listener.accept().await?;
/// tokio::spawn(rpcpeer_ws::refuse_connection(tcp, "at capacity, try again later".into()));
/// # Ok(())
/// # }
/// ```
///
/// # Cancel safety
/// Dropping the future drops the connection, perhaps before the answer is
/// out; nothing else is left behind.
pub async fn refuse_connection<I: AsyncRead + AsyncWrite + Unpin>(mut tcp: I, reason: String) {
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n\
         Connection: close\r\n\
         Retry-After: 1\r\n\r\n{reason}\n",
        reason.len() + 1
    );
    let deadline = Instant::now() + LINGER;
    let mut scratch = [0u8; 4096];
    let mut drained = 0;
    // The request's head: up to its blank line, or as much of it as the
    // scratch buffer holds.
    let head = async {
        let mut seen = 0;
        loop {
            match tcp.read(&mut scratch[seen..]).await? {
                0 => return Ok::<_, std::io::Error>(()),
                n => {
                    drained += n;
                    seen += n;
                    if scratch[..seen].windows(4).any(|w| w == b"\r\n\r\n") || seen == scratch.len()
                    {
                        return Ok(());
                    }
                }
            }
        }
    };
    // NB: an error or a silent client is answered all the same.
    let _ = tokio::time::timeout_at(Instant::now() + LINGER / 2, head).await;
    let answered = async {
        tcp.write_all(response.as_bytes()).await?;
        tcp.shutdown().await?;
        while drained < MAX_DRAINED {
            match tcp.read(&mut scratch).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<_, std::io::Error>(())
    };
    // Whatever happens (a client that never reads, one that resets), the
    // connection is dropped at the deadline at the latest: nothing to report.
    let _ = tokio::time::timeout_at(deadline, answered).await;
}

//! What each TCP connection of ours is set to, accepted or connected.

use tokio::net::TcpStream;

/// The unsent bytes the kernel holds for a connection before a writer must
/// wait. A writer blocked on it is woken once the peer has taken half.
#[cfg(any(target_os = "linux", target_os = "android"))]
const NOTSENT_LOWAT: u32 = 32 << 10;

/// `TCP_NODELAY`: latency matters more than packet count for small JSON
/// messages. On Linux, `TCP_NOTSENT_LOWAT` too: without it, a writer blocked
/// on a full send buffer (of up to 4 MiB) is woken only once about a third
/// of it is free, so a peer that reads slowly but steadily (64 KiB/s) shows
/// no progress for longer than the write timeout and is cut off as one that
/// reads nothing. With it, the writer is woken once 16 KiB of what it wrote
/// has left, and so each time the peer's kernel takes more. A failure to
/// set that only costs that accuracy, and is ignored; the error returned is
/// `TCP_NODELAY`'s.
pub(crate) fn tune(tcp: &TcpStream) -> std::io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = socket2::SockRef::from(tcp).set_tcp_notsent_lowat(NOTSENT_LOWAT);
    tcp.set_nodelay(true)
}

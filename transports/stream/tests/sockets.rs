//! Real sockets and processes: TCP, Unix sockets and a child process, in both framings.

use std::io;

use futures::{Sink, SinkExt, Stream, StreamExt};
use rpcpeer_stream::{connect_tcp, Framed, Framing, TcpListener};

const FRAMINGS: [Framing; 2] = [Framing::Newline, Framing::ContentLength];

/// Fails the test instead of hanging it when a frame never comes: a guard,
/// not a wait (every test here finishes in milliseconds).
async fn within_deadline<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(std::time::Duration::from_secs(30), test)
        .await
        .expect("test timed out");
}

/// Checks, at compile time, that a type is what the core runs over.
fn assert_transport<T>()
where
    T: Stream<Item = io::Result<String>> + Sink<String, Error = io::Error> + Send + Unpin + 'static,
{
}

#[test]
fn every_helper_returns_a_transport() {
    assert_transport::<Framed<tokio::net::TcpStream>>();
    assert_transport::<Framed<rpcpeer_stream::Stdio>>();
    assert_transport::<Framed<rpcpeer_stream::ChildIo>>();
    #[cfg(unix)]
    assert_transport::<Framed<tokio::net::UnixStream>>();
}

/// Sends two frames from `a` to `b` and one back, then checks that `b` sees
/// the end of the stream once `a` is gone.
async fn converse<A, B>(mut a: A, mut b: B, framing: Framing)
where
    A: Stream<Item = io::Result<String>> + Sink<String, Error = io::Error> + Unpin,
    B: Stream<Item = io::Result<String>> + Sink<String, Error = io::Error> + Unpin,
{
    let request = r#"{"jsonrpc":"2.0","method":"greet","params":["héllo ✓"],"id":1}"#;
    let notification = r#"{"jsonrpc":"2.0","method":"note"}"#;
    a.send(request.to_owned()).await.expect("send request");
    a.send(notification.to_owned())
        .await
        .expect("send notification");
    assert_eq!(
        b.next().await.expect("frame").expect("no error"),
        request,
        "{framing}"
    );
    assert_eq!(
        b.next().await.expect("frame").expect("no error"),
        notification,
        "{framing}"
    );

    let reply = r#"{"jsonrpc":"2.0","result":"✓","id":1}"#;
    b.send(reply.to_owned()).await.expect("send reply");
    assert_eq!(
        a.next().await.expect("frame").expect("no error"),
        reply,
        "{framing}"
    );

    drop(a);
    assert!(
        b.next().await.is_none(),
        "{framing}: the stream ends when the peer closes"
    );
}

#[tokio::test]
async fn tcp_frames_flow_both_ways_in_both_framings() {
    within_deadline(async {
        for framing in FRAMINGS {
            let listener = TcpListener::bind("127.0.0.1:0", framing)
                .await
                .expect("bind");
            assert_eq!(listener.framing(), framing);
            let addr = listener.local_addr().expect("local_addr");
            let (accepted, client) = tokio::join!(listener.accept(), connect_tcp(addr, framing));
            let (server, peer) = accepted.expect("accept");
            let client = client.expect("connect");
            assert_eq!(peer, client.get_ref().local_addr().expect("client addr"));
            assert!(
                server.get_ref().nodelay().expect("nodelay"),
                "accepted socket has NODELAY"
            );
            assert!(
                client.get_ref().nodelay().expect("nodelay"),
                "connected socket has NODELAY"
            );
            converse(client, server, framing).await;
        }
    })
    .await;
}

#[tokio::test]
async fn tcp_listener_applies_its_max_frame_len() {
    within_deadline(async {
        for framing in FRAMINGS {
            let listener = TcpListener::bind("127.0.0.1:0", framing)
                .await
                .expect("bind")
                .with_max_frame_len(8);
            assert_eq!(listener.max_frame_len(), 8);
            let addr = listener.local_addr().expect("local_addr");
            let (accepted, client) = tokio::join!(listener.accept(), connect_tcp(addr, framing));
            let (mut server, _) = accepted.expect("accept");
            let mut client = client.expect("connect");
            // The client keeps the default limit, so only the server refuses.
            client.send("[1,2,3,4,5]".to_owned()).await.expect("send");
            let err = server
                .next()
                .await
                .expect("an item")
                .expect_err("over the limit");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{framing}: {err}");
            assert!(err.to_string().contains("8 byte limit"), "{framing}: {err}");
            assert!(
                server.next().await.is_none(),
                "{framing}: the stream ends after the error"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn tcp_listener_from_std_accepts() {
    within_deadline(async {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let listener =
            TcpListener::from_std(std_listener, Framing::ContentLength).expect("from_std");
        let addr = listener.local_addr().expect("local_addr");
        let (accepted, client) =
            tokio::join!(listener.accept(), connect_tcp(addr, Framing::ContentLength));
        let (server, _) = accepted.expect("accept");
        converse(client.expect("connect"), server, Framing::ContentLength).await;
    })
    .await;
}

#[cfg(unix)]
mod unix {
    use std::path::PathBuf;

    use rpcpeer_stream::{connect_unix, UnixListener};

    use super::*;

    /// A socket path in the temp dir, unique to this process and test, that
    /// is removed when dropped.
    struct SocketPath(PathBuf);

    impl SocketPath {
        fn new(name: &str) -> Self {
            let file = format!("rpcpeer-stream-{}-{name}.sock", std::process::id());
            let path = std::env::temp_dir().join(file);
            // Left by an earlier run that died with this same pid.
            let _ = std::fs::remove_file(&path);
            SocketPath(path)
        }
    }

    impl Drop for SocketPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[tokio::test]
    async fn unix_frames_flow_both_ways_in_both_framings() {
        within_deadline(async {
            for framing in FRAMINGS {
                let path = SocketPath::new(&format!("both-ways-{framing}"));
                let listener = UnixListener::bind(&path.0, framing).expect("bind");
                assert_eq!(
                    listener.local_addr().expect("local_addr").as_pathname(),
                    Some(path.0.as_path())
                );
                let (accepted, client) =
                    tokio::join!(listener.accept(), connect_unix(&path.0, framing));
                let (server, _) = accepted.expect("accept");
                converse(server, client.expect("connect"), framing).await;
            }
        })
        .await;
    }

    #[tokio::test]
    async fn unix_listener_applies_its_max_frame_len() {
        within_deadline(async {
            let path = SocketPath::new("max-frame-len");
            let listener = UnixListener::bind(&path.0, Framing::Newline)
                .expect("bind")
                .with_max_frame_len(4);
            let (accepted, client) =
                tokio::join!(listener.accept(), connect_unix(&path.0, Framing::Newline));
            let (mut server, _) = accepted.expect("accept");
            client
                .expect("connect")
                .send("[1,2]".to_owned())
                .await
                .expect("send");
            let err = server
                .next()
                .await
                .expect("an item")
                .expect_err("over the limit");
            assert!(err.to_string().contains("4 byte limit"), "{err}");
        })
        .await;
    }
}

/// A child process as the peer, over its stdin and stdout.
#[cfg(unix)]
mod child {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn child_echoes_frames_and_dies_with_its_handle() {
        within_deadline(async {
            for framing in FRAMINGS {
                // `cat` writes back what it reads: an echo peer on stdin/stdout.
                let mut cmd = tokio::process::Command::new("cat");
                let (mut conn, child) =
                    rpcpeer_stream::spawn_child(&mut cmd, framing).expect("spawn cat");
                for frame in [r#"{"a":"héllo ✓"}"#, "[1,2,3]"] {
                    conn.send(frame.to_owned()).await.expect("send");
                    assert_eq!(
                        conn.next().await.expect("frame").expect("no error"),
                        frame,
                        "{framing}"
                    );
                }
                // kill_on_drop: dropping the handle kills `cat`, which closes its
                // stdout, even though its stdin is still open.
                drop(child);
                // A guard, not a wait: without kill_on_drop this would hang.
                let end = tokio::time::timeout(Duration::from_secs(30), conn.next()).await;
                assert!(
                    matches!(end, Ok(None)),
                    "{framing}: the stream ends with the child"
                );
            }
        })
        .await;
    }

    #[tokio::test]
    async fn spawning_a_missing_program_fails() {
        within_deadline(async {
            let mut cmd = tokio::process::Command::new("rpcpeer-stream-no-such-program");
            let err = rpcpeer_stream::spawn_child(&mut cmd, Framing::Newline).expect_err("spawned");
            assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        })
        .await;
    }
}

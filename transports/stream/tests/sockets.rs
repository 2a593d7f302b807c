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

/// Sends a message over the limit of 8 bytes and one within it: the first
/// is refused with an error that names the limit, the second arrives.
async fn assert_skips_over_8_bytes<A, B>(mut from: A, mut to: B, framing: Framing)
where
    A: Sink<String, Error = io::Error> + Unpin,
    B: Stream<Item = io::Result<String>> + Unpin,
{
    from.send("[1,2,3,4,5]".to_owned()).await.expect("send");
    from.send("[6]".to_owned()).await.expect("send");
    let err = to
        .next()
        .await
        .expect("an item")
        .expect_err("over the limit");
    assert_eq!(err.kind(), io::ErrorKind::FileTooLarge, "{framing}: {err}");
    let expected = match framing {
        Framing::Newline => "message exceeds the limit of 8 bytes",
        Framing::ContentLength => "message of 11 bytes exceeds the limit of 8 bytes",
    };
    assert_eq!(err.to_string(), expected, "{framing}");
    assert_eq!(
        to.next().await.expect("a frame").expect("no error"),
        "[6]",
        "{framing}: the connection goes on"
    );
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
            let (server, _) = accepted.expect("accept");
            // The client keeps the default limit, so only the server refuses.
            assert_skips_over_8_bytes(client.expect("connect"), server, framing).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_connected_transport_takes_a_limit_too() {
    within_deadline(async {
        for framing in FRAMINGS {
            let listener = TcpListener::bind("127.0.0.1:0", framing)
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("local_addr");
            let (accepted, client) = tokio::join!(listener.accept(), connect_tcp(addr, framing));
            let (server, _) = accepted.expect("accept");
            let client = client.expect("connect").with_max_frame_len(8);
            assert_skips_over_8_bytes(server, client, framing).await;
        }
    })
    .await;
}

/// Whether the listener closed this connection without a word: the client
/// reads the end of the stream (or a reset, had it sent anything).
async fn refused(mut client: Framed<tokio::net::TcpStream>) -> bool {
    match client.next().await {
        None => true,
        Some(Err(err)) => err.kind() == io::ErrorKind::ConnectionReset,
        Some(Ok(frame)) => panic!("a refused connection got a frame: {frame}"),
    }
}

#[tokio::test]
async fn tcp_listener_refuses_connections_past_its_cap_until_one_closes() {
    within_deadline(async {
        let listener = TcpListener::bind("127.0.0.1:0", Framing::Newline)
            .await
            .expect("bind")
            .with_max_connections(2);
        assert_eq!(listener.max_connections(), 2);
        let addr = listener.local_addr().expect("local_addr");
        let listener = std::sync::Arc::new(listener);

        let mut held = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..2 {
            let (accepted, client) =
                tokio::join!(listener.accept(), connect_tcp(addr, Framing::Newline));
            held.push(accepted.expect("accept").0);
            clients.push(client.expect("connect"));
        }

        // The third: accepted by the kernel, then closed by the listener,
        // whose accept goes on waiting.
        let next = tokio::spawn({
            let listener = listener.clone();
            async move { listener.accept().await }
        });
        let third = connect_tcp(addr, Framing::Newline).await.expect("connect");
        assert!(refused(third).await, "the third connection is refused");
        assert!(
            !next.is_finished(),
            "a refused connection is not handed out"
        );

        // One of the two closes (its transport is dropped): its place is free.
        drop(held.pop());
        let mut fourth = connect_tcp(addr, Framing::Newline).await.expect("connect");
        let (mut server, _) = next.await.expect("accept task").expect("accept");
        fourth.send("[4]".to_owned()).await.expect("send");
        assert_eq!(
            server.next().await.expect("a frame").expect("no error"),
            "[4]"
        );
        // The connection that stayed open was never disturbed.
        server
            .send("[\"still here\"]".to_owned())
            .await
            .expect("send");
        assert_eq!(
            fourth.next().await.expect("a frame").expect("no error"),
            "[\"still here\"]"
        );
    })
    .await;
}

#[tokio::test]
async fn tcp_listener_closes_an_idle_connection() {
    within_deadline(async {
        let listener = TcpListener::bind("127.0.0.1:0", Framing::Newline)
            .await
            .expect("bind")
            .with_idle_timeout(Some(std::time::Duration::from_millis(200)));
        assert_eq!(
            TcpListener::bind("127.0.0.1:0", Framing::Newline)
                .await
                .expect("bind")
                .idle_timeout(),
            None
        );
        let addr = listener.local_addr().expect("local_addr");
        let (accepted, client) =
            tokio::join!(listener.accept(), connect_tcp(addr, Framing::Newline));
        let (mut server, _) = accepted.expect("accept");
        let _client = client.expect("connect");
        let err = server
            .next()
            .await
            .expect("an item")
            .expect_err("idle connection");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(server.next().await.is_none(), "the stream ends");
    })
    .await;
}

#[tokio::test]
async fn tcp_listener_closes_a_connection_that_trickles_a_message_it_never_ends() {
    within_deadline(async {
        let listener = TcpListener::bind("127.0.0.1:0", Framing::Newline)
            .await
            .expect("bind")
            .with_idle_timeout(Some(std::time::Duration::from_millis(200)));
        let addr = listener.local_addr().expect("local_addr");
        let (accepted, client) =
            tokio::join!(listener.accept(), tokio::net::TcpStream::connect(addr));
        let (mut server, _) = accepted.expect("accept");
        let mut client = client.expect("connect");
        let trickle = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            // A byte every 20 ms of a line that never ends, until the
            // server hangs up.
            while client.write_all(b"x").await.is_ok() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        });
        let err = server
            .next()
            .await
            .expect("an item")
            .expect_err("trickling connection");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        drop(server);
        trickle
            .await
            .expect("the trickle stops once the server hangs up");
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
            for framing in FRAMINGS {
                let path = SocketPath::new(&format!("max-frame-len-{framing}"));
                let listener = UnixListener::bind(&path.0, framing)
                    .expect("bind")
                    .with_max_frame_len(8);
                let (accepted, client) =
                    tokio::join!(listener.accept(), connect_unix(&path.0, framing));
                let (server, _) = accepted.expect("accept");
                assert_skips_over_8_bytes(client.expect("connect"), server, framing).await;
            }
        })
        .await;
    }

    #[tokio::test]
    async fn unix_listener_refuses_connections_past_its_cap_until_one_closes() {
        within_deadline(async {
            let path = SocketPath::new("max-connections");
            let listener = UnixListener::bind(&path.0, Framing::Newline)
                .expect("bind")
                .with_max_connections(1)
                .with_idle_timeout(None);
            assert_eq!(listener.max_connections(), 1);
            assert_eq!(listener.idle_timeout(), None);
            let listener = std::sync::Arc::new(listener);
            let (accepted, _first) =
                tokio::join!(listener.accept(), connect_unix(&path.0, Framing::Newline));
            let (held, _) = accepted.expect("accept");

            let next = tokio::spawn({
                let listener = listener.clone();
                async move { listener.accept().await }
            });
            let mut second = connect_unix(&path.0, Framing::Newline)
                .await
                .expect("connect");
            assert!(second.next().await.is_none(), "the second is refused");

            drop(held);
            let mut third = connect_unix(&path.0, Framing::Newline)
                .await
                .expect("connect");
            let (mut server, _) = next.await.expect("accept task").expect("accept");
            third.send("[3]".to_owned()).await.expect("send");
            assert_eq!(
                server.next().await.expect("a frame").expect("no error"),
                "[3]"
            );
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
    async fn a_child_transport_takes_a_limit() {
        within_deadline(async {
            for framing in FRAMINGS {
                // `cat` echoes: the over-long frame comes back, and is refused.
                let mut cmd = tokio::process::Command::new("cat");
                let (conn, _child) =
                    rpcpeer_stream::spawn_child(&mut cmd, framing).expect("spawn cat");
                let conn = conn.with_max_frame_len(8);
                assert_eq!(conn.codec().max_frame_len(), 8);
                let (sink, stream) = conn.split();
                assert_skips_over_8_bytes(sink, stream, framing).await;
            }
        })
        .await;
    }

    #[tokio::test]
    async fn closing_the_sink_ends_the_childs_stdin_and_its_output_is_still_read() {
        within_deadline(async {
            // `cat` echoes until its stdin ends, then the program says so.
            let mut cmd = tokio::process::Command::new("sh");
            cmd.args(["-c", "cat; echo '\"ended\"'"]);
            let (mut conn, mut child) =
                rpcpeer_stream::spawn_child(&mut cmd, Framing::Newline).expect("spawn sh");
            conn.send("[1]".to_owned()).await.expect("send");
            conn.close().await.expect("close");
            assert_eq!(conn.next().await.expect("frame").expect("no error"), "[1]");
            assert_eq!(
                conn.next().await.expect("frame").expect("no error"),
                "\"ended\""
            );
            assert!(conn.next().await.is_none());
            assert!(child.wait().await.expect("wait").success());
            let err = conn
                .send("[2]".to_owned())
                .await
                .expect_err("sent after close");
            assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
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

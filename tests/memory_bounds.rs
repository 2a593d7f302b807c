//! The bounds that keep a connection's memory within bytes, whatever the size of the messages:
//! calls read and not answered, the outbox, our own commands, and a peer that stops reading.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{serve_with, within, Wire};
use futures::{SinkExt, StreamExt};
use rpcpeer::transport::memory_pair;
use rpcpeer::{Config, Context, Driver, Error, ErrorObject, Router};
use rpcpeer_stream::Framing;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A router whose `big` answers `size` bytes and counts the replies it made.
fn big_replies(size: usize) -> (Router, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let mut router = Router::new();
    router.method("big", move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ErrorObject>("x".repeat(size))
        }
    });
    (router, calls)
}

/// A peer that sends and never reads: the driver stops taking work once
/// its outbox holds its byte bound, then cuts the peer off after the write
/// timeout. With the old bound of 1,024 frames and no timeout it would
/// have run a thousand handlers and held their replies for good.
#[tokio::test]
async fn a_peer_that_never_reads_is_bounded_by_outbox_bytes_then_cut_off() {
    let (router, calls) = big_replies(1_000);
    let (server, mut client) = memory_pair();
    let config = Config::default()
        .max_outbox_bytes(10_000)
        .write_timeout(Duration::from_millis(300));
    let (_peer, driver) = Driver::builder(server, router).config(config).build();
    let driver = tokio::spawn(driver);

    // The memory transport holds 64 frames each way; the client sends until
    // the server stops reading, and never reads a reply.
    let sender = tokio::spawn(async move {
        for i in 0..2_000 {
            let req = format!(r#"{{"jsonrpc":"2.0","method":"big","id":{i}}}"#);
            if client.send(req).await.is_err() {
                break;
            }
        }
        client
    });

    let ended = within("the driver cutting off a peer that does not read", driver)
        .await
        .expect("driver task");
    let Err(Error::Transport(err)) = ended else {
        panic!("expected the write timeout, got {ended:?}");
    };
    assert!(err.to_string().contains("read nothing"), "{err}");
    // 64 replies in the transport, twice the outbox's 10 replies, and a
    // few in between; never the 2,000 asked for.
    let ran = calls.load(Ordering::SeqCst);
    assert!(ran <= 64 + 2 * 10 + 4, "{ran} handlers ran");
    sender.abort();
}

/// Over TCP, with 1 MiB requests whose replies are 1 MiB: the server reads
/// a bounded number of them (socket buffers plus the byte bounds), then
/// closes the connection when the client still reads nothing.
#[tokio::test]
async fn megabyte_requests_from_a_client_that_never_reads_are_bounded_over_tcp() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let mut router = Router::new();
    router.method("echo", move |p: (String,)| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, ErrorObject>(p.0) }
    });
    let config = Config::default()
        .max_outbox_bytes(1 << 20)
        .max_incoming_bytes(1 << 20)
        .write_timeout(Duration::from_millis(500));
    let addr = serve_with(router, Framing::Newline, config, 4 << 20).await;

    let mut socket = TcpStream::connect(addr).await.expect("connect");
    let payload = "y".repeat(1 << 20);
    let request =
        format!(r#"{{"jsonrpc":"2.0","method":"echo","params":["{payload}"],"id":1}}"#) + "\n";
    let mut sent = 0;
    let outcome = within("the server closing on a client that does not read", async {
        loop {
            if let Err(err) = socket.write_all(request.as_bytes()).await {
                return err;
            }
            sent += 1;
        }
    })
    .await;
    let ran = calls.load(Ordering::SeqCst);
    // Loopback buffers take a few MiB each way; the old bounds (1,024
    // replies, 1,024 queued calls) would have taken a gigabyte.
    assert!(
        ran < 64,
        "{ran} of {sent} requests ran before reading stopped"
    );
    assert!(
        matches!(
            outcome.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ),
        "{outcome}"
    );
}

/// A batch counts as many calls as it has entries against `max_queued`:
/// with one handler slot taken and a batch of five waiting, the queue of
/// five is full, and a request read while we wait for the peer is answered
/// "busy" (before, the batch counted as one call).
#[tokio::test]
async fn a_batch_counts_its_entries_against_the_queue_bound() {
    let mut router = Router::new();
    router.method("hold", |cx: Context| async move {
        // Waits on a call back that the raw client never answers.
        let _: Result<Value, _> = cx.peer().request("never", ()).await;
        Ok::<_, ErrorObject>(true)
    });
    router.method("ping", || async { Ok::<_, ErrorObject>("pong") });
    let config = Config::default().max_in_flight(1).max_queued(5);
    let addr = serve_with(router, Framing::Newline, config, 1 << 20).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;

    wire.send(r#"{"jsonrpc":"2.0","method":"hold","id":0}"#)
        .await;
    let callback = wire.recv().await;
    assert_eq!(callback["method"], "never", "{callback}");
    let batch: Vec<String> = (1..=5)
        .map(|i| format!(r#"{{"jsonrpc":"2.0","method":"hold","id":{i}}}"#))
        .collect();
    wire.send(&format!("[{}]", batch.join(","))).await;
    let busy = wire
        .call(r#"{"jsonrpc":"2.0","method":"ping","id":"p"}"#)
        .await;
    assert_eq!(busy["id"], "p", "{busy}");
    assert_eq!(busy["error"]["code"], -32000, "{busy}");
    let message = busy["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("5 calls"), "{message}");
}

/// The bytes of params waiting in the command queue are bounded: with the
/// peer not reading, `try_notify` of 100 KiB params fails `Full` after about
/// the byte bound's worth, long before the queue's 256 commands.
#[tokio::test]
async fn queued_notifications_are_bounded_in_bytes() {
    let (server, _client) = memory_pair();
    let config = Config::default()
        .max_outbox_bytes(100_000)
        .max_command_bytes(300_000);
    let (peer, driver) = Driver::builder(server, Router::new())
        .config(config)
        .build();
    tokio::spawn(driver);
    let params = ["z".repeat(100_000)];
    let mut accepted = 0;
    let refused = within("try_notify refusing", async {
        loop {
            match peer.try_notify("push", &params) {
                Ok(()) => accepted += 1,
                Err(err) => return err,
            }
            // Let the driver move what it can into the outbox and transport.
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(matches!(refused, Error::Full { .. }), "{refused}");
    // 64 frames in the memory transport, two outboxes' worth, three in the
    // command queue; a bound by count alone would take 256 + 64 + 1,024.
    assert!(accepted <= 64 + 2 + 3 + 2, "{accepted} accepted");
}

/// Notifications queued all at once, then held back in the command queue by
/// the outbox's bound, all go out in order once the peer reads: the driver
/// comes back to the queue when the outbox has room again, with no other
/// notification queued since to wake it.
#[tokio::test]
async fn notifications_held_back_by_the_outbox_all_go_out_once_the_peer_reads() {
    let (server, client) = memory_pair();
    let config = Config::default().max_outbox_bytes(10_000);
    let (peer, driver) = Driver::builder(server, Router::new())
        .config(config)
        .build();
    tokio::spawn(driver);
    let sent = 200;
    for n in 0..sent {
        // NB: `try_notify`, so that every one is queued before the driver
        // has run: 64 fit in the memory transport, about 10 in the outbox.
        peer.try_notify("push", [n.to_string().repeat(500)])
            .expect("room in the command queue");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_tx, mut rx) = client.split();
    for n in 0..sent {
        let frame = within("a notification", rx.next())
            .await
            .expect("open")
            .expect("frame");
        let message: Value = serde_json::from_str(&frame).expect("json");
        assert_eq!(message["params"][0], n.to_string().repeat(500), "in order");
    }
}

/// A memory transport stays usable to read replies after the bounds apply.
#[tokio::test]
async fn a_slow_reader_that_catches_up_gets_every_reply() {
    let (router, calls) = big_replies(5_000);
    let (server, client) = memory_pair();
    let config = Config::default().max_outbox_bytes(20_000);
    let (_peer, driver) = Driver::builder(server, router).config(config).build();
    tokio::spawn(driver);
    let (mut tx, mut rx) = client.split();
    let sender = tokio::spawn(async move {
        for i in 0..500 {
            let req = format!(r#"{{"jsonrpc":"2.0","method":"big","id":{i}}}"#);
            tx.send(req).await.expect("send");
        }
    });
    let mut seen = 0;
    while seen < 500 {
        let reply = within("a reply", rx.next())
            .await
            .expect("open")
            .expect("frame");
        let reply: Value = serde_json::from_str(&reply).expect("json");
        assert_eq!(
            reply["id"], seen,
            "replies in order for a sequential handler"
        );
        seen += 1;
    }
    sender.await.expect("sender");
    assert_eq!(calls.load(Ordering::SeqCst), 500);
}

/// A client that fills the queue (so the server stops reading it) and goes
/// away is noticed once the calls it left behind answer: the writes fail,
/// and the connection, its handlers and its queue are freed.
#[tokio::test]
async fn a_client_that_fills_its_queue_and_leaves_is_noticed() {
    let mut router = Router::new();
    router.method("nap", || async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, ErrorObject>("x".repeat(1000))
    });
    let listener = rpcpeer_stream::TcpListener::bind("127.0.0.1:0", Framing::Newline)
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = Config::default().max_in_flight(2).max_queued(4);
    let server = tokio::spawn(async move {
        let (transport, _) = listener.accept().await.expect("accept");
        Driver::builder(transport, router)
            .config(config)
            .build()
            .1
            .await
    });
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    let mut requests = String::new();
    for i in 0..2_000 {
        requests += &format!("{{\"jsonrpc\":\"2.0\",\"method\":\"nap\",\"id\":{i}}}\n");
    }
    socket.write_all(requests.as_bytes()).await.expect("write");
    drop(socket);
    let ended = within("the server noticing the client left", server)
        .await
        .expect("driver task");
    let Err(Error::Transport(err)) = ended else {
        panic!("expected a failed write, got {ended:?}");
    };
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ),
        "{err}"
    );
}

/// A batch whose calls wait is polled per call woken, not per batch woken:
/// polling every entry at each wake-up cost a batch of 1,024 calls that end
/// last-first some 500,000 polls.
#[tokio::test]
async fn a_batch_of_waiting_calls_is_polled_in_linear_time_over_tcp() {
    let n = 1024;
    let (router, chain) = common::chain_router(n);
    let addr = serve_with(router, Framing::Newline, Config::default(), 1 << 20).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    let batch: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"jsonrpc":"2.0","method":"chain","params":[{i},{n}],"id":{i}}}"#))
        .collect();
    let reply = wire.call(&format!("[{}]", batch.join(","))).await;
    let ids: Vec<Value> = reply
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| r["result"].clone())
        .collect();
    assert_eq!(ids, (0..n).map(Value::from).collect::<Vec<_>>());
    let polls = chain.polls.load(Ordering::Relaxed);
    assert!(polls <= 4 * n, "{polls} polls for {n} calls");
}

/// A driver's future is the driver: `run` and `run_until` keep no second
/// copy of it (an `async fn` keeps its argument and the future it awaits,
/// and each idle connection paid for three drivers).
#[test]
fn running_a_driver_keeps_one_copy_of_it() {
    let (a, _b) = memory_pair();
    let (_peer, driver) = Driver::new(a, Router::new());
    let size = std::mem::size_of_val(&driver);
    let run = driver.run();
    assert!(std::mem::size_of_val(&run) <= size);
    let (a, _b) = memory_pair();
    let (_peer, driver) = Driver::new(a, Router::new());
    let run_until = driver.run_until(std::future::pending());
    let until = std::mem::size_of_val(&run_until);
    assert!(
        until < size + 64,
        "run_until's future is {until} bytes for a driver of {size}"
    );
}

/// A client that reads slowly but steadily (64 KiB/s here) against a server
/// that has far more to send is not cut off by the write timeout. Its
/// kernel opens the window again only once it has read most of its receive
/// buffer (128 KiB here, so about every 2 s); the server must then be woken
/// to write. Linux wakes a writer blocked on a full send buffer (4 MiB
/// here) only once about a third of it is free, some 20 s at this rate,
/// unless the socket asks to be woken as its unsent bytes drain
/// (`TCP_NOTSENT_LOWAT`).
#[tokio::test]
async fn a_client_that_reads_slowly_but_steadily_is_not_cut_off() {
    use tokio::io::AsyncReadExt;

    let mut router = Router::new();
    router.method("flood", |cx: Context| async move {
        let chunk = "z".repeat(1000);
        while cx.peer().notify("chunk", [&chunk]).await.is_ok() {}
        Ok::<_, ErrorObject>(())
    });
    let config = Config::default().write_timeout(Duration::from_secs(5));
    let addr = serve_with(router, Framing::Newline, config, 4 << 20).await;
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    socket
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"flood\",\"id\":1}\n")
        .await
        .expect("send");
    let mut piece = vec![0_u8; 16 << 10];
    for _ in 0..48 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        within("a piece", socket.read_exact(&mut piece))
            .await
            .expect("the server closed the connection while the client read");
    }
    // Then quickly through what the buffers hold (a few MiB): a connection
    // cut off while the client read slowly ends there.
    let mut read = 0_usize;
    while read < 64 << 20 {
        let n = within("more", socket.read(&mut piece)).await.expect("read");
        assert!(
            n > 0,
            "cut off: the stream ended {read} bytes after the slow reads"
        );
        read += n;
    }
}

//! One conversation replayed over every byte-stream transport: TCP in both
//! framings and a Unix socket (a child process's stdio: `tests/child_stdio.rs`).

mod common;

use common::within;
use rpcpeer::{Context, Driver, ErrorObject, Peer, Router};
use rpcpeer_stream::Framing;

fn remote(err: rpcpeer::Error) -> ErrorObject {
    ErrorObject::new(-32000, err.to_string())
}

/// The serving side: `add`, and `greet`, which calls the caller back.
fn server_router() -> Router {
    let mut router = Router::new();
    router.method("add", |(a, b): (i64, i64)| async move {
        Ok::<_, ErrorObject>(a + b)
    });
    router.method("greet", |cx: Context| async move {
        let name: String = cx.peer().request("name", ()).await.map_err(remote)?;
        cx.peer().notify("seen", [&name]).await.map_err(remote)?;
        Ok::<_, ErrorObject>(format!("hello, {name}"))
    });
    router
}

fn client_router(
    seen: tokio::sync::mpsc::UnboundedSender<String>,
) -> Router<tokio::sync::mpsc::UnboundedSender<String>> {
    let mut router = Router::with_state(seen);
    router.method("name", || async { Ok::<_, ErrorObject>("ada") });
    router.notification(
        "seen",
        |(name,): (String,), cx: Context<tokio::sync::mpsc::UnboundedSender<String>>| async move {
            let _ = cx.state().send(name);
        },
    );
    router
}

/// The conversation: a call, a callback with a pushed notification, a batch.
async fn converse(peer: &Peer, seen: &mut tokio::sync::mpsc::UnboundedReceiver<String>) {
    assert_eq!(
        within("add", peer.request::<i64>("add", (40, 2)))
            .await
            .unwrap(),
        42
    );
    assert_eq!(
        within("greet", peer.request::<String>("greet", ()))
            .await
            .unwrap(),
        "hello, ada"
    );
    assert_eq!(within("seen", seen.recv()).await.as_deref(), Some("ada"));
    let mut batch = rpcpeer::Batch::new();
    batch.request("add", (1, 2)).request("add", (3, 4));
    let answers = within("batch", peer.batch(batch)).await.unwrap();
    let sums: Vec<String> = answers
        .into_iter()
        .map(|a| a.unwrap().get().to_owned())
        .collect();
    assert_eq!(sums, ["3", "7"]);
}

async fn client_over<T: rpcpeer::transport::Transport>(transport: T) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (peer, driver) = Driver::new(transport, client_router(tx));
    let driver = tokio::spawn(driver);
    converse(&peer, &mut rx).await;
    within("close", peer.close()).await;
    within("driver", driver).await.unwrap().unwrap();
}

#[tokio::test]
async fn the_conversation_over_tcp_in_both_framings() {
    for framing in common::FRAMINGS {
        let addr = common::serve(server_router(), framing).await;
        client_over(rpcpeer_stream::connect_tcp(addr, framing).await.unwrap()).await;
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_conversation_over_a_unix_socket() {
    let path = std::env::temp_dir().join(format!("rpcpeer-test-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = rpcpeer_stream::UnixListener::bind(&path, Framing::ContentLength).unwrap();
    tokio::spawn(async move {
        while let Ok((transport, _)) = listener.accept().await {
            tokio::spawn(Driver::new(transport, server_router()).1);
        }
    });
    client_over(
        rpcpeer_stream::connect_unix(&path, Framing::ContentLength)
            .await
            .unwrap(),
    )
    .await;
    let _ = std::fs::remove_file(&path);
}

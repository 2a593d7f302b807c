//! A TCP server whose handlers also call back the client that called them.
//!
//! Run `cargo run --example tcp_server`, then in another terminal
//! `cargo run --example tcp_client`.

use rpcpeer::stream::{Framing, TcpListener};
use rpcpeer::{Context, Driver, ErrorObject, Router};
use serde::Deserialize;

#[derive(Deserialize)]
struct Subtract {
    minuend: i64,
    subtrahend: i64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".into());

    let mut router = Router::new();
    router
        .method("subtract", |p: Subtract| async move {
            Ok::<_, ErrorObject>(p.minuend - p.subtrahend)
        })
        .doc("Subtracts subtrahend from minuend; params by position or by name.");
    router
        .method("countdown", |(from,): (u32,), cx: Context| async move {
            // Pushes a notification per step to the caller, then answers.
            for n in (1..=from).rev() {
                cx.peer()
                    .notify("tick", [n])
                    .await
                    .map_err(|e| ErrorObject::new(-32000, e.to_string()))?;
            }
            Ok::<_, ErrorObject>("liftoff")
        })
        .doc("Sends `tick` notifications from `from` down to 1.");

    let listener = TcpListener::bind(&addr, Framing::Newline).await?;
    println!("listening on tcp://{}", listener.local_addr()?);
    loop {
        let (transport, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            // One connection's trouble (out of file descriptors, say), not
            // the listener's: a pause, so as not to spin, then accept on.
            Err(err) => {
                eprintln!("accept: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let (_client, driver) = Driver::new(transport, router.clone());
        tokio::spawn(async move {
            if let Err(err) = driver.await {
                eprintln!("{remote}: {err}");
            }
        });
    }
}

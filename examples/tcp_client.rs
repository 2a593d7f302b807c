//! The client for `tcp_server`: calls it, and serves the `tick`
//! notifications it pushes back.
//!
//! Run `cargo run --example tcp_server` first, then `cargo run --example tcp_client`.

use rpcpeer::stream::{connect_tcp, Framing};
use rpcpeer::{Driver, Router};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".into());

    let mut router = Router::new();
    router.notification("tick", |(n,): (u32,)| async move { println!("tick {n}") });

    let transport = connect_tcp(&addr, Framing::Newline).await?;
    let (server, driver) = Driver::new(transport, router);
    tokio::spawn(driver);

    let by_position: i64 = server.request("subtract", [42, 23]).await?;
    let by_name: i64 = server
        .request(
            "subtract",
            serde_json::json!({"subtrahend": 23, "minuend": 42}),
        )
        .await?;
    println!("subtract: {by_position} and {by_name}");
    let done: String = server.request("countdown", [3]).await?;
    println!("countdown: {done}");
    server.close().await;
    Ok(())
}

//! The chat client for `chat_server`: joins under a name, sends each line
//! you type, prints what the others say.
//!
//! `cargo run --example chat_client -- NAME [ws://127.0.0.1:7080/]`

use rpcpeer::{Driver, ErrorObject, Router};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next().ok_or("usage: chat_client NAME [URL]")?;
    let url = args.next().unwrap_or_else(|| "ws://127.0.0.1:7080/".into());

    let mut router = Router::new();
    router.notification(
        "handleMessage",
        |(from, text): (String, String)| async move {
            println!("<{from}> {text}");
        },
    );
    router.notification("userLeft", |(who,): (String,)| async move {
        println!("* {who} left")
    });
    // The server may call us too; answer a ping so it can tell we are here.
    router.method("ping", || async { Ok::<_, ErrorObject>("pong") });

    let transport = rpcpeer::ws::connect(&url, &Default::default()).await?;
    let (server, driver) = Driver::new(transport, router);
    let driver = tokio::spawn(driver);
    server.request::<bool>("join", [&name]).await?;
    println!("joined as {name}; type a line to send it, Ctrl-D to leave");

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if !line.trim().is_empty() {
            server.request::<u32>("postMessage", [line]).await?;
        }
    }
    server.close().await;
    driver.await??;
    Ok(())
}

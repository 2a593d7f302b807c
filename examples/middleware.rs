//! Tower middleware around a server's calls: a logging layer of our own, a rate limit and a timeout.
//!
//! ```sh
//! cargo run --example middleware
//! ```
//!
//! Serves on 127.0.0.1 (a free port), calls itself, prints what each layer did, and exits.

use std::time::{Duration, Instant};

use rpcpeer::middleware::Call;
use rpcpeer::stream::{connect_tcp, Framing, TcpListener};
use rpcpeer::{Driver, Error, ErrorObject, Router};
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut router = Router::new();
    router.method("echo", |(text,): (String,)| async move {
        Ok::<_, ErrorObject>(text)
    });
    router.method("slow", || async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok::<_, ErrorObject>("done")
    });
    // Outermost first: each call is logged, goes under the rate limit (5
    // calls a second, for all connections together), then has 200 ms to
    // answer. As everywhere in tower, the whole stack must be ready before
    // any layer sees a call: a call that waits its turn under the limit is
    // logged when its turn comes, and its 200 ms start then.
    router.layer(
        ServiceBuilder::new()
            .map_request(|call: Call| {
                match call.id() {
                    Some(id) => println!("  layer: {} (id {id})", call.method()),
                    None => println!("  layer: {} (a notification)", call.method()),
                }
                call
            })
            .rate_limit(5, Duration::from_secs(1))
            .timeout(Duration::from_millis(200)),
    );

    let listener = TcpListener::bind("127.0.0.1:0", Framing::Newline).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((transport, _)) => {
                    tokio::spawn(Driver::new(transport, router.clone()).1);
                }
                // One connection's trouble (out of file descriptors, say):
                // pause, accept on.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });

    let (server, driver) = Driver::new(connect_tcp(addr, Framing::Newline).await?, Router::new());
    tokio::spawn(driver);

    println!("8 calls at once, at most 5 a second:");
    let start = Instant::now();
    let calls = (0..8).map(|i| {
        let server = server.clone();
        async move {
            let echoed: String = server.request("echo", [format!("call {i}")]).await?;
            println!(
                "  {echoed} answered after {} ms",
                start.elapsed().as_millis()
            );
            Ok::<_, Error>(())
        }
    });
    futures::future::try_join_all(calls).await?;

    println!("a call that takes longer than the timeout:");
    match server.request::<String>("slow", ()).await {
        Err(Error::Remote { source, .. }) => {
            println!("  answered {}: {}", source.code, source.message);
        }
        other => println!("  unexpected: {other:?}"),
    }
    server.close().await;
    Ok(())
}

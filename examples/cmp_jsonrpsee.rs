//! The jsonrpsee comparison server for `benches/side_by_side.sh`: jsonrpsee 0.26, WebSocket and HTTP on one port, with the demo's `echo`, `sleep` and `update`.
//!
//! `cargo run --release --example cmp_jsonrpsee [ADDR]` (default
//! `127.0.0.1:0`) prints `listening on ws://ADDR/` and serves until killed.
//!
//! The methods answer what `rpcpeer serve`'s demo answers, so that every
//! server in the comparison sends the same bytes' worth of results:
//! `echo [x]` gives `x`, `sleep [ms]` waits and gives `ms`. (Params by
//! position only: the demo's `echo {"value": x}` is not mirrored here, since
//! the load sends an array.)
//!
//! Notifications: jsonrpsee's method table never runs a handler for one.
//! Its default RPC service answers an incoming notification with nothing and
//! calls nothing (`RpcService::notification` in jsonrpsee-server); only an
//! RPC middleware of our own could see them. We keep jsonrpsee's own path,
//! which does less work than running a handler, so the notification
//! comparison errs in jsonrpsee's favour. `update` is registered as a method
//! all the same, so the notifications name a method this server has.

use std::io::Write;
use std::time::Duration;

use jsonrpsee::server::{Server, ServerConfig};
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::RpcModule;
use serde_json::value::RawValue;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());

    // Every setting is jsonrpsee's default but one: `max_connections`,
    // 100 by default, which would refuse most of the 1,000 idle connections
    // the memory test opens (plus the load generator's own). The rest
    // already allow the load: `message_buffer_capacity` (1024 messages
    // queued per connection) is above the 64 calls in flight, batches are
    // unlimited, and request and response bodies may be 10 MiB.
    let config = ServerConfig::builder().max_connections(10_000).build();
    let server = Server::builder().set_config(config).build(&addr).await?;
    let local = server.local_addr()?;

    let mut module = RpcModule::new(());
    // A raw value, like rpcpeer's echo: the param is copied, never turned
    // into a `serde_json::Value` tree.
    module.register_method("echo", |params, _, _| params.one::<Box<RawValue>>())?;
    module.register_async_method("sleep", |params, _, _| async move {
        let ms: u64 = params.one()?;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok::<_, ErrorObjectOwned>(ms)
    })?;
    module.register_method("update", |_, _, _| ())?;

    let handle = server.start(module);
    // Whoever reads stdout connects as soon as it sees this line.
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on ws://{local}/")?;
        stdout.flush()?;
    }
    handle.stopped().await;
    Ok(())
}

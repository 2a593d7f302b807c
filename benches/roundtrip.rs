//! Round trips through a whole connection, client peer to server peer and
//! back: one request over the in-memory pair, loopback TCP (both framings)
//! and WebSocket; a batch of 100 over TCP; and rpcpeer against jsonrpsee over
//! WebSocket at 4 connections x 64 requests in flight, each library with its
//! own client and server, in one run.
//!
//! `cargo bench --bench roundtrip`; compare the `ws_4x64` lines as a ratio.
//! `-- one_request` or `-- batch` runs just those cases.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures::future::join_all;
use jsonrpsee::core::client::ClientT;
use rpcpeer::stream::{connect_tcp, Framing, TcpListener};
use rpcpeer::ws_server::WsServer;
use rpcpeer::{Batch, Driver, ErrorObject, Peer, Router};

const CONNECTIONS: usize = 4;
const IN_FLIGHT: usize = 64;
const BATCH_LEN: usize = 100;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn add_router() -> Router {
    let mut router = Router::new();
    router.method("add", |(a, b): (i64, i64)| async move {
        Ok::<_, ErrorObject>(a + b)
    });
    router
}

/// Serves `add` on 127.0.0.1:0 over TCP and returns a client peer connected to it.
async fn tcp_client(framing: Framing) -> Peer {
    let listener = TcpListener::bind("127.0.0.1:0", framing)
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let router = add_router();
        while let Ok((transport, _)) = listener.accept().await {
            let (_peer, driver) = Driver::new(transport, router.clone());
            tokio::spawn(driver);
        }
    });
    let transport = connect_tcp(addr, framing).await.expect("connect");
    let (peer, driver) = Driver::new(transport, Router::new());
    tokio::spawn(driver);
    peer
}

/// Serves `add` on 127.0.0.1:0 over WebSocket and returns a client peer connected to it.
async fn ws_client() -> Peer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(WsServer::new(add_router()).serve(listener));
    let transport = rpcpeer::ws::connect(&format!("ws://{addr}/"), &Default::default())
        .await
        .expect("connect");
    let (peer, driver) = Driver::new(transport, Router::new());
    tokio::spawn(driver);
    peer
}

fn one_request(c: &mut Criterion) {
    let rt = runtime();
    let (clients, _memory_server): (Vec<(&str, Peer)>, Peer) = rt.block_on(async {
        let (memory, server) = rpcpeer::testing::connected_pair(Router::new(), add_router());
        let clients = vec![
            ("memory", memory),
            ("tcp_newline", tcp_client(Framing::Newline).await),
            (
                "tcp_content_length",
                tcp_client(Framing::ContentLength).await,
            ),
            ("ws", ws_client().await),
        ];
        (clients, server)
    });
    let mut group = c.benchmark_group("one_request");
    for (name, client) in &clients {
        group.bench_function(*name, |b| {
            b.to_async(&rt).iter(|| async {
                client
                    .request::<i64>("add", black_box((1, 2)))
                    .await
                    .expect("a reply")
            })
        });
    }
    group.finish();
}

fn batch(c: &mut Criterion) {
    let rt = runtime();
    let client = rt.block_on(tcp_client(Framing::Newline));
    let mut group = c.benchmark_group("batch_100");
    group.throughput(Throughput::Elements(BATCH_LEN as u64));
    group.bench_function("tcp_newline", |b| {
        b.to_async(&rt).iter(|| async {
            // Built inside the measurement: a caller builds one per call too.
            let mut batch = Batch::new();
            for n in 0..BATCH_LEN as i64 {
                batch.request("add", (n, 1));
            }
            let answers = client.batch(batch).await.expect("the batch was sent");
            for answer in answers {
                answer.expect("a reply");
            }
        })
    });
    group.finish();
}

fn ws_side_by_side(c: &mut Criterion) {
    let rt = runtime();
    let rpcpeer_clients: Vec<Peer> = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(rpcpeer::ws_server::WsServer::new(add_router()).serve(listener));
        let mut clients = Vec::new();
        for _ in 0..CONNECTIONS {
            let transport = rpcpeer::ws::connect(&format!("ws://{addr}/"), &Default::default())
                .await
                .expect("connect");
            let (peer, driver) = rpcpeer::Driver::new(transport, Router::new());
            tokio::spawn(driver);
            clients.push(peer);
        }
        clients
    });
    let jsonrpsee_clients = rt.block_on(async {
        let server = jsonrpsee::server::Server::builder()
            .build("127.0.0.1:0")
            .await
            .expect("jsonrpsee server");
        let addr = server.local_addr().expect("addr");
        let mut module = jsonrpsee::RpcModule::new(());
        module
            .register_method("add", |params, _, _| {
                let (a, b): (i64, i64) = params.parse()?;
                Ok::<_, jsonrpsee::types::ErrorObjectOwned>(a + b)
            })
            .expect("register");
        let handle = server.start(module);
        std::mem::forget(handle); // runs for the whole benchmark
        let mut clients = Vec::new();
        for _ in 0..CONNECTIONS {
            let client = jsonrpsee::ws_client::WsClientBuilder::default()
                .max_concurrent_requests(IN_FLIGHT * 2)
                .build(format!("ws://{addr}"))
                .await
                .expect("jsonrpsee client");
            clients.push(client);
        }
        clients
    });

    let mut group = c.benchmark_group("ws_4x64");
    group.throughput(Throughput::Elements((CONNECTIONS * IN_FLIGHT) as u64));
    group.bench_function("rpcpeer", |b| {
        b.to_async(&rt).iter(|| {
            let calls = rpcpeer_clients.iter().flat_map(|peer| {
                (0..IN_FLIGHT as i64).map(move |n| peer.request::<i64>("add", (n, 1)))
            });
            async move {
                for answer in join_all(calls).await {
                    answer.expect("a reply");
                }
            }
        })
    });
    group.bench_function("jsonrpsee", |b| {
        b.to_async(&rt).iter(|| {
            let calls = jsonrpsee_clients.iter().flat_map(|client| {
                (0..IN_FLIGHT as i64)
                    .map(move |n| client.request::<i64, _>("add", jsonrpsee::rpc_params![n, 1]))
            });
            async move {
                for answer in join_all(calls).await {
                    answer.expect("a reply");
                }
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Tens of microseconds per iteration: two seconds gives enough samples.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = one_request, batch
}
// Criterion's defaults, as the side-by-side has always been measured.
criterion_group!(side_by_side, ws_side_by_side);
criterion_main!(benches, side_by_side);

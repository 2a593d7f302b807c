//! Round trips: parsing alone, a request over an in-memory pair, and
//! rpcpeer against jsonrpsee over WebSocket at 4 connections x 64 requests
//! in flight, each library with its own client and server, in one run.
//!
//! `cargo bench --bench roundtrip`; compare the `ws_4x64` lines as a ratio.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures::future::join_all;
use jsonrpsee::core::client::ClientT;
use rpcpeer::{ErrorObject, Peer, Router};

const CONNECTIONS: usize = 4;
const IN_FLIGHT: usize = 64;

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

fn parse(c: &mut Criterion) {
    let text = r#"{"jsonrpc":"2.0","method":"subtract","params":{"minuend":42,"subtrahend":23},"id":1234}"#;
    c.bench_function("parse/request", |b| {
        b.iter(|| rpcpeer::message::parse(black_box(text)))
    });
}

fn memory_pair(c: &mut Criterion) {
    let rt = runtime();
    let (client, _server) =
        rt.block_on(async { rpcpeer::testing::connected_pair(Router::new(), add_router()) });
    c.bench_function("memory/one_request", |b| {
        b.to_async(&rt)
            .iter(|| async { client.request::<i64>("add", (1, 2)).await.expect("a reply") })
    });
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

criterion_group!(benches, parse, memory_pair, ws_side_by_side);
criterion_main!(benches);

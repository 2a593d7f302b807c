//! Router dispatch without a socket: `Router::handle_text` from request text
//! to reply text, for a typed handler (params by position and by name), an
//! unknown method, invalid params and a batch of 100.
//!
//! `cargo bench --bench dispatch` (add `-- batch` to run one case).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rpcpeer::{ErrorObject, Router, Session};
use serde::Deserialize;

const BATCH_LEN: usize = 100;

#[derive(Deserialize)]
struct Subtract {
    minuend: i64,
    subtrahend: i64,
}

fn router() -> Router {
    let mut router = Router::new();
    router.method("subtract", |p: Subtract| async move {
        Ok::<_, ErrorObject>(p.minuend - p.subtrahend)
    });
    router
}

fn batch_text() -> String {
    let items: Vec<String> = (0..BATCH_LEN)
        .map(|id| {
            format!(r#"{{"jsonrpc":"2.0","method":"subtract","params":[42,{id}],"id":{id}}}"#)
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn dispatch(c: &mut Criterion) {
    // One thread: nothing here spawns, and a second worker would only add
    // wake-up noise to a sub-microsecond path.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let router = router();
    let session = Session::new();
    let batch = batch_text();

    // What each reply must contain, so that a case cannot quietly measure
    // another path (a typo turning "by name" into -32602, say).
    let cases = [
        (
            "by_position",
            r#"{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}"#,
            r#""result":19"#,
        ),
        (
            "by_name",
            r#"{"jsonrpc":"2.0","method":"subtract","params":{"minuend":42,"subtrahend":23},"id":1}"#,
            r#""result":19"#,
        ),
        (
            "unknown_method",
            r#"{"jsonrpc":"2.0","method":"divide","params":[42,23],"id":1}"#,
            "-32601",
        ),
        (
            "invalid_params",
            r#"{"jsonrpc":"2.0","method":"subtract","params":{"minuend":"42","subtrahend":23},"id":1}"#,
            "-32602",
        ),
    ];

    let mut group = c.benchmark_group("dispatch");
    for (name, text, expected) in cases {
        let reply = rt
            .block_on(router.handle_text(text, &session))
            .expect("a reply");
        assert!(reply.contains(expected), "{name}: unexpected reply {reply}");
        group.bench_function(name, |b| {
            b.to_async(&rt)
                .iter(|| async { router.handle_text(text, &session).await.expect("a reply") })
        });
    }

    let reply = rt
        .block_on(router.handle_text(&batch, &session))
        .expect("a reply");
    assert_eq!(
        reply.matches(r#""result":"#).count(),
        BATCH_LEN,
        "batch: unexpected reply {reply}"
    );
    group.throughput(Throughput::Elements(BATCH_LEN as u64));
    group.bench_function("batch_100", |b| {
        b.to_async(&rt)
            .iter(|| async { router.handle_text(&batch, &session).await.expect("a reply") })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = dispatch
}
criterion_main!(benches);

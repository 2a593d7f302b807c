//! Progress reports for one call, over real TCP on 127.0.0.1: `Peer::request_with_progress` against `Progress` in the handler, and the corners (late reports, wrong reports, a caller that drops the call or reads only the answer).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{connect, serve, within, Wire, FRAMINGS};
use futures::StreamExt;
use rpcpeer::progress::{Progress, ProgressToken};
use rpcpeer::{Config, Context, Driver, Error, ErrorObject, ParamsError, Router};
use rpcpeer_stream::Framing;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Count {
    upto: u32,
    work_done_token: Option<ProgressToken>,
}

/// `count` reports 1..=upto, then answers "counted upto".
fn counting() -> Router {
    let mut router = Router::new();
    router.method("count", |p: Count, cx: Context| async move {
        let progress = Progress::new(cx.peer().clone(), p.work_done_token);
        for n in 1..=p.upto {
            progress.report(n).await?;
        }
        Ok::<_, ErrorObject>(format!("counted {}", p.upto))
    });
    router
}

#[tokio::test]
async fn reports_arrive_in_order_before_the_answer_then_stop() {
    for framing in FRAMINGS {
        let addr = serve(counting(), framing).await;
        let (peer, _driver) = connect(addr, framing, Router::new()).await;
        // Past the caller's 16 waiting reports and the 32 places of the
        // server's command queue, so both hold back on the way.
        let mut call = peer.request_with_progress::<u32, String>("count", json!({"upto": 200}));
        let mut reports = Vec::new();
        while let Some(report) = within("the reports", call.next()).await {
            reports.push(report.expect("a report that decodes"));
        }
        assert_eq!(reports, (1..=200).collect::<Vec<_>>(), "{framing:?}");
        assert_eq!(
            within("the answer", call.answer()).await.unwrap(),
            "counted 200"
        );
    }
}

#[tokio::test]
async fn awaiting_only_the_answer_drops_the_reports_and_does_not_hang() {
    let addr = serve(counting(), Framing::Newline).await;
    let (peer, _driver) = connect(addr, Framing::Newline, Router::new()).await;
    let call = peer.request_with_progress::<u32, String>("count", json!({"upto": 500}));
    assert_eq!(
        within("the answer", call.answer()).await.unwrap(),
        "counted 500"
    );
    // The connection goes on.
    let call = peer.request_with_progress::<u32, String>("count", json!({"upto": 2}));
    assert_eq!(
        within("the answer", call.answer()).await.unwrap(),
        "counted 2"
    );
}

#[tokio::test]
async fn the_wire_carries_lsp_work_done_progress() {
    // A raw server: what the caller sends, and that reports under its
    // token reach the call while one under another token does not.
    let listener = rpcpeer_stream::TcpListener::bind("127.0.0.1:0", Framing::Newline)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let mut client = Router::with_state(seen_tx);
    client.notification(
        "$/progress",
        |p: Value, cx: Context<mpsc::UnboundedSender<Value>>| async move {
            let _ = cx.state().send(p);
        },
    );
    let (peer, _driver) = {
        let accept = tokio::spawn(async move { listener.accept().await.unwrap().0 });
        let connected = connect(addr, Framing::Newline, client).await;
        let socket = accept.await.unwrap();
        let mut wire = Wire::accepted(socket);
        tokio::spawn(async move {
            let call = wire.recv().await;
            let id = call["id"].clone();
            let token = call["params"]["workDoneToken"].clone();
            assert_eq!(call["method"], "index");
            assert_eq!(call["params"]["root"], "/src");
            assert!(token.as_str().is_some_and(|t| !t.is_empty()), "{call}");
            let report = |token: &Value, v: u32| {
                json!({"jsonrpc":"2.0","method":"$/progress","params":{"token":token,"value":v}})
                    .to_string()
            };
            wire.send(&report(&token, 1)).await;
            wire.send(&report(&json!("someone-else"), 99)).await;
            wire.send(&report(&token, 2)).await;
            wire.send(&json!({"jsonrpc":"2.0","result":"indexed","id":id}).to_string())
                .await;
            // After the answer: no longer the call's, and dropped; the
            // router still gets another token's.
            wire.send(&report(&token, 3)).await;
            wire.send(&report(&json!("someone-else-again"), 4)).await;
            // Keeps the connection open until the test ends.
            let _ = wire.recv_text().await;
        });
        connected
    };
    let mut call = peer.request_with_progress::<u32, String>("index", json!({"root": "/src"}));
    let mut reports = Vec::new();
    while let Some(report) = within("the reports", call.next()).await {
        reports.push(report.unwrap());
    }
    assert_eq!(reports, [1, 2]);
    assert_eq!(call.await.unwrap(), "indexed");
    // The router had the others, in order.
    let other = within("the other token's report", seen.recv())
        .await
        .unwrap();
    assert_eq!(other["token"], "someone-else");
    let next = within("the next report for the router", seen.recv())
        .await
        .unwrap();
    assert_eq!(next, json!({"token": "someone-else-again", "value": 4}));
}

#[tokio::test]
async fn a_report_of_the_wrong_type_is_an_error_item_and_the_rest_go_on() {
    let mut server = Router::new();
    server.method("mixed", |p: Count, cx: Context| async move {
        let progress = Progress::<Value>::new(cx.peer().clone(), p.work_done_token);
        progress.report(json!(1)).await?;
        progress.report(json!("two")).await?;
        progress.report(json!(3)).await?;
        Ok::<_, ErrorObject>("done")
    });
    let addr = serve(server, Framing::Newline).await;
    let (peer, _driver) = connect(addr, Framing::Newline, Router::new()).await;
    let call = peer.request_with_progress::<u32, String>("mixed", json!({"upto": 0}));
    let items: Vec<_> = within("the reports", call.collect::<Vec<_>>()).await;
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].as_ref().ok(), Some(&1));
    match &items[1] {
        Err(Error::DecodeReport { method, .. }) => assert_eq!(method, "mixed"),
        other => panic!("expected a report that does not decode, got {other:?}"),
    }
    assert_eq!(items[2].as_ref().ok(), Some(&3));
}

#[tokio::test]
async fn params_by_position_or_with_a_token_are_refused_before_sending() {
    let addr = serve(counting(), Framing::Newline).await;
    let (peer, _driver) = connect(addr, Framing::Newline, Router::new()).await;
    let mut call = peer.request_with_progress::<u32, String>("count", [3]);
    // No reports for a call that was never sent, and the reason.
    assert!(within("the reports", call.next()).await.is_none());
    match call.await {
        Err(Error::EncodeParams {
            source: ParamsError::NotByName { found },
            ..
        }) => assert_eq!(found, "[3]"),
        other => panic!("expected params by name to be asked for, got {other:?}"),
    }
    let taken = json!({"upto": 1, "workDoneToken": "mine"});
    match peer
        .request_with_progress::<u32, String>("count", taken)
        .await
    {
        Err(Error::EncodeParams {
            source: ParamsError::TokenTaken,
            ..
        }) => {}
        other => panic!("expected the token to be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn a_handler_without_a_token_reports_nowhere() {
    let addr = serve(counting(), Framing::Newline).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    // A plain request: the handler's reports go nowhere, and the answer is all.
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"count","params":{"upto":3},"id":1}"#)
        .await;
    assert_eq!(reply, json!({"jsonrpc":"2.0","result":"counted 3","id":1}));
}

#[tokio::test]
async fn dropping_the_call_cancels_the_handler() {
    let release = Arc::new(Notify::new());
    let (cancelled_tx, mut cancelled) = mpsc::unbounded_channel();
    let mut server = Router::with_state((release.clone(), cancelled_tx));
    server.method(
        "long",
        |p: Count, cx: Context<(Arc<Notify>, mpsc::UnboundedSender<()>)>| async move {
            // The future is dropped on a cancel: its token says so to
            // whatever it started.
            let token = cx.cancellation().clone();
            let cancelled = cx.state().1.clone();
            tokio::spawn(async move {
                token.cancelled().await;
                let _ = cancelled.send(());
            });
            let progress = Progress::new(cx.peer().clone(), p.work_done_token);
            progress.report(1u32).await?;
            cx.state().0.notified().await;
            Ok::<_, ErrorObject>("finished")
        },
    );
    let addr = serve(server, Framing::Newline).await;
    let (peer, _driver) = connect(addr, Framing::Newline, Router::new()).await;
    let mut call = peer.request_with_progress::<u32, String>("long", json!({"upto": 0}));
    assert_eq!(
        within("the first report", call.next())
            .await
            .unwrap()
            .unwrap(),
        1
    );
    drop(call);
    within("the handler's cancellation", cancelled.recv())
        .await
        .expect("the handler saw its token fire");
    release.notify_one();
}

/// `slow`: reports `n` times, `gap` apart, then falls silent `silence`
/// before it answers.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Slow {
    n: u32,
    gap_ms: u64,
    silence_ms: u64,
    work_done_token: Option<ProgressToken>,
}

fn slow_pair(timeout: Duration) -> (rpcpeer::Peer, mpsc::UnboundedReceiver<()>) {
    let (cancelled_tx, cancelled) = mpsc::unbounded_channel();
    let mut server = Router::with_state(cancelled_tx);
    server.method(
        "slow",
        |p: Slow, cx: Context<mpsc::UnboundedSender<()>>| async move {
            let token = cx.cancellation().clone();
            let cancelled = cx.state().clone();
            tokio::spawn(async move {
                token.cancelled().await;
                let _ = cancelled.send(());
            });
            let progress = Progress::new(cx.peer().clone(), p.work_done_token);
            for i in 0..p.n {
                tokio::time::sleep(Duration::from_millis(p.gap_ms)).await;
                progress.report(i).await?;
            }
            tokio::time::sleep(Duration::from_millis(p.silence_ms)).await;
            Ok::<_, ErrorObject>("answered")
        },
    );
    let (a, b) = rpcpeer::transport::memory_pair();
    tokio::spawn(Driver::new(a, server).1);
    let config = Config::default().request_timeout(Some(timeout));
    let (client, driver) = Driver::builder(b, Router::new()).config(config).build();
    tokio::spawn(driver);
    (client, cancelled)
}

// NB: on tokio's paused clock, which moves to the next timer whenever
// every task waits: the timings below are exact, not raced against a
// loaded machine. The in-memory pair has no I/O for the clock to wait on.
#[tokio::test(start_paused = true)]
async fn the_request_timeout_counts_from_the_last_report() {
    let (client, _cancelled) = slow_pair(Duration::from_secs(1));
    // Eight reports 600 ms apart: 4.8 s in all, never 1 s without one.
    let params = json!({"n": 8, "gapMs": 600, "silenceMs": 600});
    // Awaited alone, the reports still keep it alive.
    let call = client.request_with_progress::<u32, String>("slow", params.clone());
    assert_eq!(call.await.unwrap(), "answered");
    let mut call = client.request_with_progress::<u32, String>("slow", params);
    let mut reports = Vec::new();
    while let Some(report) = call.next().await {
        reports.push(report.unwrap());
    }
    assert_eq!(reports, (0..8).collect::<Vec<_>>());
    assert_eq!(call.answer().await.unwrap(), "answered");
}

#[tokio::test(start_paused = true)]
async fn a_call_silent_for_the_timeout_fails_and_is_cancelled() {
    let (client, mut cancelled) = slow_pair(Duration::from_secs(1));
    let params = json!({"n": 2, "gapMs": 600, "silenceMs": 5000});
    let mut call = client.request_with_progress::<u32, String>("slow", params);
    let mut reports = Vec::new();
    while let Some(report) = call.next().await {
        reports.push(report.unwrap());
    }
    assert_eq!(reports, [0, 1]);
    match call.answer().await {
        Err(Error::Timeout { method, after }) => {
            assert_eq!((method.as_str(), after), ("slow", Duration::from_secs(1)));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    cancelled.recv().await.expect("the handler's token fired");
    // Awaiting the answer alone counts from the start.
    let params = json!({"n": 0, "gapMs": 0, "silenceMs": 5000});
    let call = client.request_with_progress::<u32, String>("slow", params);
    assert!(matches!(call.answer().await, Err(Error::Timeout { .. })));
}

#[tokio::test]
async fn a_caller_over_http_gets_the_answer_and_no_reports() {
    // A one-shot HTTP POST cannot carry reports: the handler's reports
    // are skipped, and do not fail the call, token or not.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(rpcpeer::ws_server::WsServer::new(counting()).serve(listener));
    let body =
        r#"{"jsonrpc":"2.0","method":"count","params":{"upto":3,"workDoneToken":"t"},"id":1}"#;
    let answer = within(
        "the HTTP answer",
        rpcpeer::ws::post(
            &format!("http://{addr}/"),
            body.into(),
            &rpcpeer::ws::Config::default(),
        ),
    )
    .await
    .expect("an HTTP answer");
    let reply: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(reply, json!({"jsonrpc":"2.0","result":"counted 3","id":1}));
}

#[tokio::test]
async fn a_caller_that_reads_too_slowly_is_told_how_many_reports_it_lost() {
    let done = Arc::new(Notify::new());
    let mut server = Router::with_state(done.clone());
    server.method("flood", |p: Count, cx: Context<Arc<Notify>>| async move {
        let progress = Progress::new(cx.peer().clone(), p.work_done_token);
        for n in 0..p.upto {
            // 40 characters each: 300 of them are 12 KiB of reports.
            progress.report(format!("{n:>40}")).await?;
        }
        cx.state().notify_one();
        Ok::<_, ErrorObject>("flooded")
    });
    server.method("ping", || async { Ok::<_, ErrorObject>("pong") });
    let addr = serve(server, Framing::Newline).await;
    // The caller's unread reports may hold 1 KiB: about 24 of these.
    let config = Config::default().max_incoming_bytes(1024);
    let (peer, _driver) = common::connect_with(addr, Framing::Newline, Router::new(), config).await;
    let mut call = peer.request_with_progress::<String, String>("flood", json!({"upto": 300}));
    let (mut read, mut lost) = (0, 0);
    let mut tally = |item: Result<String, Error>| match item {
        Ok(_) => read += 1,
        Err(Error::ReportsLost { method, lost: n }) => {
            assert_eq!(method, "flood");
            lost += n;
        }
        Err(other) => panic!("unexpected {other}"),
    };
    // The first poll sends the call; nothing is read until the flood is over.
    if let std::task::Poll::Ready(Some(item)) = futures::poll!(call.next()) {
        tally(item);
    }
    // Once the handler is done and a later call answered, the client has
    // taken in every report and the answer: frames are read in order.
    within("the flood", done.notified()).await;
    assert_eq!(
        within("ping", peer.request::<String>("ping", ()))
            .await
            .unwrap(),
        "pong"
    );
    while let Some(item) = within("the reports", call.next()).await {
        tally(item);
    }
    assert!(lost > 0 && read > 0, "read {read}, lost {lost}");
    assert_eq!(read + lost, 300, "each report read or counted lost");
    assert_eq!(
        within("the answer", call.answer()).await.unwrap(),
        "flooded"
    );
}

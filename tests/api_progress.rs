//! `#[rpcpeer::api]` with a `Progress<T>` param: the handler reports through it, the generated client gets a `ProgressCall`; over TCP on 127.0.0.1.

mod common;

use common::{connect, serve, within, Wire};
use futures::StreamExt;
use rpcpeer::progress::Progress;
use rpcpeer::{Context, Error, ErrorObject, Router};
use rpcpeer_stream::Framing;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// One step of an indexing run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Indexed {
    /// Files done so far.
    pub done: u32,
}

/// A server that indexes, saying how far it got.
#[rpcpeer::api]
pub trait Indexer {
    /// Indexes `files` files, reporting after each.
    async fn index(&self, files: u32, progress: Progress<Indexed>) -> Result<u32, ErrorObject>;

    /// Progress and the call's context, with no other params.
    #[rpc(name = "index/all")]
    async fn index_all(&self, progress: Progress<Indexed>, cx: Context) -> String;
}

struct Server;

impl Indexer for Server {
    async fn index(&self, files: u32, progress: Progress<Indexed>) -> Result<u32, ErrorObject> {
        for done in 1..=files {
            progress.report(Indexed { done }).await?;
        }
        Ok(files)
    }

    async fn index_all(&self, progress: Progress<Indexed>, cx: Context) -> String {
        let wanted = progress.is_wanted();
        let _ = progress.report(Indexed { done: 7 }).await;
        format!("{} by {} (reports wanted: {wanted})", cx.method(), "all")
    }
}

#[tokio::test]
async fn the_generated_client_gets_the_reports_in_order_then_the_answer() {
    let addr = serve(Server.into_router(), Framing::Newline).await;
    let (peer, _driver) = connect(addr, Framing::Newline, Router::new()).await;
    let client = IndexerClient::new(peer);
    let mut call = client.index(40);
    let mut reports = Vec::new();
    while let Some(report) = within("the reports", call.next()).await {
        reports.push(report.unwrap().done);
    }
    assert_eq!(reports, (1..=40).collect::<Vec<_>>());
    assert_eq!(within("the answer", call.answer()).await.unwrap(), 40);

    let mut call = client.index_all();
    assert_eq!(
        within("the report", call.next()).await.map(|r| r.unwrap()),
        Some(Indexed { done: 7 })
    );
    assert_eq!(
        within("the answer", call.answer()).await.unwrap(),
        "index/all by all (reports wanted: true)"
    );
}

#[tokio::test]
async fn the_token_travels_by_name_and_a_plain_caller_gets_no_reports() {
    let addr = serve(Server.into_router(), Framing::Newline).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    // Params by name without a token: no reports, just the answer.
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"index","params":{"files":3},"id":1}"#)
        .await;
    assert_eq!(reply, json!({"jsonrpc":"2.0","result":3,"id":1}));
    // With a token of the caller's own (a number, as LSP allows): the
    // reports carry it, and come before the answer.
    wire.send(
        r#"{"jsonrpc":"2.0","method":"index","params":{"files":2,"workDoneToken":5},"id":2}"#,
    )
    .await;
    for done in 1..=2 {
        assert_eq!(
            wire.recv().await,
            json!({"jsonrpc":"2.0","method":"$/progress","params":{"token":5,"value":{"done":done}}})
        );
    }
    assert_eq!(
        wire.recv().await,
        json!({"jsonrpc":"2.0","result":2,"id":2})
    );
    // A token that is no token is the params' fault, said as such.
    let reply = wire
        .call(
            r#"{"jsonrpc":"2.0","method":"index","params":{"files":1,"workDoneToken":[1]},"id":3}"#,
        )
        .await;
    assert_eq!(
        reply["error"]["code"],
        ErrorObject::INVALID_PARAMS,
        "{reply}"
    );
}

#[tokio::test]
async fn a_peer_that_closes_mid_call_ends_the_reports_and_fails_the_answer() {
    // A raw server that reports once and hangs up.
    let listener = rpcpeer_stream::TcpListener::bind("127.0.0.1:0", Framing::Newline)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (io, _) = listener.accept().await.unwrap();
        let mut wire = Wire::accepted(io);
        let call = wire.recv().await;
        let token = call["params"]["workDoneToken"].clone();
        wire.send(
            &json!({"jsonrpc":"2.0","method":"$/progress","params":{"token":token,"value":{"done":1}}})
                .to_string(),
        )
        .await;
    });
    let (peer, _driver) = connect(addr, Framing::Newline, Router::new()).await;
    let mut call = IndexerClient::new(peer).index(3);
    assert_eq!(
        within("the report", call.next()).await.map(|r| r.unwrap()),
        Some(Indexed { done: 1 })
    );
    assert!(within("the end of the reports", call.next())
        .await
        .is_none());
    match within("the answer", call.answer()).await {
        Err(Error::Closed { .. }) => {}
        other => panic!("expected the call to fail with the connection, got {other:?}"),
    }
}

/// An application's own type that happens to be called `Progress`.
mod app {
    /// How far a job got.
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    pub struct Progress {
        /// Percent.
        pub percent: u32,
    }
}

/// A trait whose param is the application's `Progress`, not rpcpeer's.
#[rpcpeer::api]
pub trait Jobs {
    /// Records how far a job got, and echoes it.
    async fn record(&self, progress: app::Progress) -> app::Progress;
}

struct JobServer;

impl Jobs for JobServer {
    async fn record(&self, progress: app::Progress) -> app::Progress {
        progress
    }
}

#[tokio::test]
async fn a_param_of_a_type_named_progress_without_an_argument_travels_on_the_wire() {
    let addr = serve(JobServer.into_router(), Framing::Newline).await;
    let mut wire = Wire::connect(addr, Framing::Newline).await;
    let reply = wire
        .call(r#"{"jsonrpc":"2.0","method":"record","params":[{"percent":40}],"id":1}"#)
        .await;
    assert_eq!(
        reply,
        json!({"jsonrpc":"2.0","result":{"percent":40},"id":1})
    );
    let (peer, _driver) = connect(addr, Framing::Newline, Router::new()).await;
    let echoed = JobsClient::new(peer)
        .record(app::Progress { percent: 7 })
        .await;
    assert_eq!(echoed.unwrap(), app::Progress { percent: 7 });
}

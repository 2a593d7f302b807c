//! Connections through the rpcpeer library: `Peer` calls, batches, notifications, chat pushes and the server's callbacks, ended by a close or by dropping the driver.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use rpcpeer::transport::Transport;
use rpcpeer::{Batch, Driver, Error, ErrorObject, Peer, Router};
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::stats::{OpenGuard, Stats};
use crate::workload::{notification, Call, Ending, Op, Rng, Script, MIRROR};
use crate::{think, Over, Plan};

/// Runs one connection as `script` says.
pub(crate) async fn session(
    over: Over,
    plan: &Plan,
    rng: &mut Rng,
    stats: &Arc<Stats>,
    script: Script,
) {
    let failed = match over {
        Over::Tcp => {
            let connect =
                rpcpeer::stream::connect_tcp(plan.tcp.as_str(), rpcpeer::stream::Framing::Newline);
            match tokio::time::timeout(plan.reply_timeout, connect).await {
                Ok(Ok(transport)) => {
                    run(transport, plan, rng, stats, script).await;
                    None
                }
                Ok(Err(err)) => Some(err.to_string()),
                Err(_) => Some("no connection within the reply timeout".to_owned()),
            }
        }
        Over::Ws => {
            let config = rpcpeer::ws::Config::default();
            let connect = rpcpeer::ws::connect(&plan.ws, &config);
            match tokio::time::timeout(plan.reply_timeout, connect).await {
                Ok(Ok(transport)) => {
                    run(transport, plan, rng, stats, script).await;
                    None
                }
                Ok(Err(err)) => Some(err.to_string()),
                Err(_) => Some("no connection within the reply timeout".to_owned()),
            }
        }
    };
    if let Some(err) = failed {
        stats.error(format!("library {over:?}: cannot connect: {err}"));
        // A refused connection would otherwise be retried in a tight loop.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Our side's methods: the target of `callback`, and the chat's pushes.
fn router(stats: &Arc<Stats>) -> Router {
    let mut router = Router::new();
    let counted = stats.clone();
    router.method(MIRROR, move |params: Value| {
        Stats::add(&counted.callbacks, 1);
        async move { Ok::<_, ErrorObject>(params) }
    });
    for push in ["handleMessage", "userLeft"] {
        let counted = stats.clone();
        router.notification(push, move |_: Value| {
            Stats::add(&counted.pushes, 1);
            async {}
        });
    }
    router
}

async fn run<T: Transport<F>, F: AsRef<str>>(
    transport: T,
    plan: &Plan,
    rng: &mut Rng,
    stats: &Arc<Stats>,
    script: Script,
) {
    let _open = OpenGuard::new(stats);
    let (peer, driver) = Driver::new(transport, router(stats));
    let driver = tokio::spawn(driver);
    let conn = Conn { peer, plan, stats };
    let joined = rng.chance(plan.join_percent) && conn.call(&Call::join(script.name)).await;
    for _ in 0..script.ops {
        if plan.over() {
            break;
        }
        think(plan, rng).await;
        let alive = match Op::pick(rng, joined) {
            // The library speaks 2.0 only; a 1.0 call is the raw sockets' part.
            Op::Call | Op::Version1 => conn.call(&Call::random(rng)).await,
            Op::Pipelined => {
                let calls: Vec<Call> = (0..rng.range(2, 8)).map(|_| Call::random(rng)).collect();
                let alive = futures::future::join_all(calls.iter().map(|c| conn.call(c))).await;
                alive.into_iter().all(|a| a)
            }
            Op::Notify => conn.notify(rng).await,
            Op::Batch => conn.batch(rng).await,
            Op::Callback => conn.call(&Call::callback(rng)).await,
            Op::Post => conn.call(&Call::post(rng)).await,
        };
        if !alive {
            driver.abort();
            return;
        }
    }
    conn.end(script.ending, driver, rng).await;
}

/// A connection and what its calls are counted in.
struct Conn<'a> {
    peer: Peer,
    plan: &'a Plan,
    stats: &'a Stats,
}

impl Conn<'_> {
    /// Makes `call` and checks its reply; false when the connection is
    /// gone or the reply never came (the session then ends).
    async fn call(&self, call: &Call) -> bool {
        Stats::add(&self.stats.calls, 1);
        let request = self.peer.request::<Value>(call.method, &call.params);
        match tokio::time::timeout(self.plan.reply_timeout, request).await {
            Ok(reply) => self.check(call, reply),
            Err(_) => {
                self.stats.error(format!(
                    "library: `{}` got no reply within {:?}",
                    call.method, self.plan.reply_timeout
                ));
                false
            }
        }
    }

    /// Counts `reply` as checked or as an error; false when the
    /// connection failed.
    fn check(&self, call: &Call, reply: Result<Value, Error>) -> bool {
        let checked = match &reply {
            Ok(value) => call.check(Ok(value)),
            Err(Error::Remote { source, .. }) => call.check(Err((source.code, &source.message))),
            Err(err) => {
                self.stats
                    .error(format!("library: `{}`: {err}", call.method));
                return false;
            }
        };
        match checked {
            Ok(()) => Stats::add(&self.stats.checked, 1),
            Err(wrong) => self.stats.error(format!("library: {wrong}")),
        }
        true
    }

    async fn notify(&self, rng: &mut Rng) -> bool {
        let (method, params) = notification(rng);
        Stats::add(&self.stats.notifications, 1);
        match self.peer.notify(method, params).await {
            Ok(()) => true,
            Err(err) => {
                self.stats
                    .error(format!("library: notification `{method}`: {err}"));
                false
            }
        }
    }

    /// A batch of 2 to 10 entries, about one in four a notification.
    async fn batch(&self, rng: &mut Rng) -> bool {
        let mut batch = Batch::new();
        let mut calls = Vec::new();
        for _ in 0..rng.range(2, 10) {
            if rng.chance(25) {
                let (method, params) = notification(rng);
                batch.notify(method, params);
                Stats::add(&self.stats.notifications, 1);
            } else {
                let call = Call::random(rng);
                batch.request(call.method, &call.params);
                calls.push(call);
            }
        }
        Stats::add(&self.stats.batches, 1);
        Stats::add(&self.stats.calls, calls.len() as u64);
        let answers =
            match tokio::time::timeout(self.plan.reply_timeout, self.peer.batch(batch)).await {
                Ok(Ok(answers)) => answers,
                Ok(Err(err)) => {
                    self.stats.error(format!("library: batch: {err}"));
                    return false;
                }
                Err(_) => {
                    self.stats.error(format!(
                        "library: a batch got no reply within {:?}",
                        self.plan.reply_timeout
                    ));
                    return false;
                }
            };
        if answers.len() != calls.len() {
            self.stats.error(format!(
                "library: a batch of {} requests got {} answers",
                calls.len(),
                answers.len()
            ));
            return false;
        }
        calls.iter().zip(answers).all(|(call, answer)| {
            let reply = answer.and_then(|raw| {
                serde_json::from_str(raw.get()).map_err(|source| Error::DecodeReply {
                    method: call.method.to_owned(),
                    source,
                })
            });
            self.check(call, reply)
        })
    }

    /// Ends the connection as planned.
    async fn end(&self, ending: Ending, driver: JoinHandle<Result<(), Error>>, rng: &mut Rng) {
        match ending {
            Ending::Graceful => {
                Stats::add(&self.stats.graceful, 1);
                if tokio::time::timeout(self.plan.reply_timeout, self.peer.close())
                    .await
                    .is_err()
                {
                    self.stats
                        .error("library: a graceful close did not finish in time".to_owned());
                    driver.abort();
                    return;
                }
                match driver.await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => self
                        .stats
                        .error(format!("library: a graceful close ended with: {err}")),
                    Err(err) => self
                        .stats
                        .error(format!("library: the driver task failed: {err}")),
                }
            }
            Ending::MidCall | Ending::MidFrame => {
                Stats::add(&self.stats.mid_call, 1);
                let calls: Vec<Call> = (0..rng.range(1, 6)).map(|_| Call::slow(rng)).collect();
                Stats::add(&self.stats.calls, calls.len() as u64);
                let mut running: FuturesUnordered<_> = calls
                    .iter()
                    .map(|call| {
                        let peer = &self.peer;
                        async move { (call, peer.request::<Value>(call.method, &call.params).await) }
                    })
                    .collect();
                // Long enough for the calls to be written and started, not
                // to be answered (they sleep at least 20 ms).
                let cut = tokio::time::sleep(Duration::from_millis(rng.range(1, 15)));
                tokio::pin!(cut);
                loop {
                    tokio::select! {
                        () = &mut cut => break,
                        Some((call, reply)) = running.next() => { self.check(call, reply); }
                        else => break,
                    }
                }
                // Dropping the task drops the socket: no close frame, no
                // FIN after a drained write side, replies unread.
                driver.abort();
                while let Some((call, reply)) = running.next().await {
                    match reply {
                        Err(Error::Closed { .. } | Error::Transport(_)) => {
                            Stats::add(&self.stats.interrupted, 1)
                        }
                        reply => {
                            self.check(call, reply);
                        }
                    }
                }
            }
            Ending::Idle => {
                Stats::add(&self.stats.dropped_idle, 1);
                driver.abort();
            }
        }
    }
}

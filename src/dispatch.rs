//! Running one incoming call: find the handler, guard it against panics and cancellation, encode the reply.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use crate::context::Context;
use crate::error::ErrorObject;
use crate::handler::{BoxFuture, Outcome};
use crate::message::{encode_response, parse, Frame, Id, Message, Version};
use crate::peer::Peer;
use crate::router::{Concurrency, Router};
use crate::session::Session;

/// An incoming request or notification, ready to run.
pub(crate) struct Call {
    pub(crate) version: Version,
    /// `None` for a notification.
    pub(crate) id: Option<Id>,
    name: Arc<str>,
    work: Result<BoxFuture<Outcome>, ErrorObject>,
    cancel: CancellationToken,
    pub(crate) concurrency: Concurrency,
}

impl Call {
    /// Looks the method up and builds the handler's future (params are
    /// decoded here, once). Nothing runs until [`Call::run`] is polled.
    pub(crate) fn prepare<S: Send + Sync + 'static>(
        router: &Router<S>,
        version: Version,
        id: Option<Id>,
        method: String,
        params: Option<Box<serde_json::value::RawValue>>,
        peer: &Peer,
        session: &Session,
    ) -> Self {
        let is_notification = id.is_none();
        let (name, handler, concurrency) = match router.lookup(&method) {
            Some(entry) => (
                entry.name.clone(),
                Some(entry.handler.clone()),
                entry.info.concurrency(is_notification),
            ),
            None => (
                Arc::from(method),
                router.fallback_handler().cloned(),
                if is_notification {
                    Concurrency::InOrder
                } else {
                    Concurrency::Concurrent
                },
            ),
        };
        let cancel = CancellationToken::new();
        let work = match handler {
            Some(handler) => {
                let cx = Context {
                    method: name.clone(),
                    id: id.clone(),
                    version,
                    peer: peer.clone(),
                    session: session.clone(),
                    state: router.state().clone(),
                    cancel: cancel.clone(),
                };
                Ok(handler(params, cx))
            }
            None => Err(ErrorObject::method_not_found(&name)),
        };
        Self {
            version,
            id,
            name,
            work,
            cancel,
            concurrency,
        }
    }

    /// The token that `$/cancelRequest` cancels.
    pub(crate) fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Runs the handler to completion and returns the reply to write
    /// (`None` for a notification). Always yields a reply for a request: a
    /// panic becomes -32603, a cancellation -32800.
    pub(crate) async fn run(self) -> Option<String> {
        let outcome = match self.work {
            Err(err) => Err(err),
            Ok(fut) => {
                tokio::select! {
                    // NB: biased towards the handler, so a handler that has
                    // finished wins over a cancel that arrives in the same poll
                    // ("unless it had already finished").
                    biased;
                    outcome = AssertUnwindSafe(fut).catch_unwind() => match outcome {
                        Ok(outcome) => outcome,
                        Err(panic) => {
                            let msg = panic
                                .downcast_ref::<&str>()
                                .copied()
                                .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                                .unwrap_or("non-string panic payload");
                            tracing::error!(method = %self.name, "handler panicked: {msg}");
                            Err(ErrorObject::internal_error())
                        }
                    },
                    () = self.cancel.cancelled() => Err(ErrorObject::request_cancelled()),
                }
            }
        };
        match self.id {
            Some(id) => Some(encode_response(self.version, &id, outcome.as_deref())),
            None => {
                if let Err(err) = outcome {
                    // A notification's error has nowhere to go but the log.
                    tracing::debug!(method = %self.name, "notification failed: {err}");
                }
                None
            }
        }
    }
}

/// Joins the replies of a batch's entries into one array, or `None` when
/// every entry was a notification (spec §6: then nothing is returned).
pub(crate) fn join_batch(replies: impl IntoIterator<Item = Option<String>>) -> Option<String> {
    let mut out = String::new();
    for reply in replies.into_iter().flatten() {
        out.push(if out.is_empty() { '[' } else { ',' });
        out.push_str(&reply);
    }
    if out.is_empty() {
        None
    } else {
        out.push(']');
        Some(out)
    }
}

/// One frame in, its reply out, without a connection (HTTP, tests).
pub(crate) async fn handle_text<S: Send + Sync + 'static>(
    router: &Router<S>,
    text: &str,
    session: &Session,
) -> Option<String> {
    let peer = Peer::detached();
    let run = |item: Result<Message, crate::message::Rejected>| -> BoxFuture<Option<String>> {
        match item {
            Err(rejected) => Box::pin(std::future::ready(Some(rejected.reply()))),
            Ok(Message::Request(r)) => Box::pin(
                Call::prepare(
                    router,
                    r.version,
                    Some(r.id),
                    r.method,
                    r.params,
                    &peer,
                    session,
                )
                .run(),
            ),
            Ok(Message::Notification(n)) => Box::pin(
                Call::prepare(router, n.version, None, n.method, n.params, &peer, session).run(),
            ),
            Ok(Message::Response(resp)) => {
                tracing::debug!(id = %resp.id, "response with no request behind it, dropped");
                Box::pin(std::future::ready(None))
            }
        }
    };
    match parse(text) {
        Frame::Single(item) => run(item).await,
        Frame::Batch(items) => {
            join_batch(futures::future::join_all(items.into_iter().map(run)).await)
        }
    }
}

//! `DriverBuilder`: the one way to build a [`Driver`] with more than a transport and a router.

use std::sync::Arc;

use crate::config::Config;
use crate::driver::Driver;
use crate::error::{ErrorObject, Unreadable};
use crate::outgoing::Hooks;
use crate::peer::Peer;
use crate::router::Router;
use crate::session::Session;
use crate::transport::{CloseFrames, CloseHooks};

/// Builds a [`Driver`] with its own [`Config`], a [`Session`] filled before
/// the first message, or close frames; made by [`Driver::builder`].
/// ([`Driver::new`] is the builder with nothing set.)
///
/// ```
/// use std::time::Duration;
/// use rpcpeer::{transport::memory_pair, Config, Driver, Router, Session};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #[derive(Clone, Debug, PartialEq)]
/// struct Origin(&'static str);
///
/// let (ours, _theirs) = memory_pair();
/// let session = Session::new();
/// session.insert(Origin("in-process"));
/// let (peer, driver) = Driver::builder(ours, Router::new())
///     .config(Config::default().request_timeout(Some(Duration::from_secs(5))))
///     .session(session)
///     .build();
/// assert_eq!(driver.session().get::<Origin>(), Some(Origin("in-process")));
/// # drop((peer, driver));
/// # }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct DriverBuilder<T, S = ()> {
    transport: T,
    router: Router<S>,
    config: Config,
    session: Option<Session>,
    close_frames: Option<CloseHooks<T>>,
    hooks: Hooks,
}

// No bound on the transport here: `Driver::builder` has them.
impl<T, S: Send + Sync + 'static> DriverBuilder<T, S> {
    pub(crate) fn new(transport: T, router: Router<S>) -> Self {
        Self {
            transport,
            router,
            config: Config::default(),
            session: None,
            close_frames: None,
            hooks: Hooks::default(),
        }
    }

    /// The connection's limits and timeouts (default: [`Config::default`]).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The session the connection's handlers share, for what is known
    /// before the first message (the remote address, an identity from a
    /// handshake). Default: an empty one.
    pub fn session(mut self, session: Session) -> Self {
        self.session = Some(session);
        self
    }

    /// Calls `hook` with every error the peer sends whose id is null.
    ///
    /// That is a peer's word that it could not read a message of ours
    /// (JSON-RPC 2.0 §5: a parse error or an invalid request, whose id it
    /// could not find), and no pending call can be matched to it: the
    /// message might have been any call or notification in flight. So no
    /// call fails of it (one whose frame was longer than a size limit the
    /// error names excepted), and without a hook it is only logged. A
    /// program that knows which message it was, such as one that sent a
    /// single request, can fail that request at once rather than wait for
    /// its timeout.
    ///
    /// The hook runs on the driver's task, between messages: keep it short
    /// (send what it is given on a channel).
    ///
    /// ```
    /// use futures::SinkExt;
    /// use rpcpeer::{transport::memory_pair, Driver, Router};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ours, mut theirs) = memory_pair();
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let (_peer, driver) = Driver::builder(ours, Router::new())
    ///     .on_null_id_error(move |err| {
    ///         let _ = tx.send(err.clone());
    ///     })
    ///     .build();
    /// tokio::spawn(driver);
    /// // What a server answers to a message it cannot parse.
    /// let text = r#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}"#;
    /// theirs.send(text.to_owned()).await.unwrap();
    /// assert_eq!(rx.recv().await.unwrap().code, -32700);
    /// # }
    /// ```
    pub fn on_null_id_error(mut self, hook: impl Fn(&ErrorObject) + Send + Sync + 'static) -> Self {
        self.hooks.null_id = Some(Arc::new(hook));
        self
    }

    /// Calls `hook` with each message of the peer's that the driver could
    /// not read: why ([`Unreadable`]: too large, not JSON, JSON but no valid
    /// request or response, or fatal to the connection) and the error it
    /// was answered (-32700 or -32600, id null unless the id could be read).
    ///
    /// Such a message names no call of ours that can be trusted, so no call
    /// fails of it, with one exception, of which the hook is not told: an
    /// answer-like message under the id of a pending call fails that call
    /// with [`Error::InvalidReply`](crate::Error::InvalidReply). Without a
    /// hook it is only answered and logged at `debug`. A program that knows
    /// what it waits for can do better: one that sent a single request can
    /// take a message too large to read for its lost answer, and fail at
    /// once rather than at its timeout (a guess: the peer may have sent
    /// something else that large). Text that is not JSON may be a
    /// program's stray output, and an invalid message a malformed call of
    /// the peer's own: neither need be an answer.
    ///
    /// The hook runs on the driver's task, between messages: keep it short
    /// (send what it is given on a channel).
    ///
    /// ```
    /// use futures::SinkExt;
    /// use rpcpeer::{transport::memory_pair, Driver, Router, Unreadable};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ours, mut theirs) = memory_pair();
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let (_peer, driver) = Driver::builder(ours, Router::new())
    ///     .on_unreadable(move |why, err| {
    ///         let _ = tx.send((why, err.code));
    ///     })
    ///     .build();
    /// tokio::spawn(driver);
    /// theirs.send("hello".to_owned()).await.unwrap();
    /// assert_eq!(rx.recv().await.unwrap(), (Unreadable::NotJson, -32700));
    /// theirs.send(r#"{"jsonrpc":"2.0","method":42,"id":1}"#.to_owned()).await.unwrap();
    /// assert_eq!(rx.recv().await.unwrap(), (Unreadable::Invalid, -32600));
    /// # }
    /// ```
    pub fn on_unreadable(
        mut self,
        hook: impl Fn(Unreadable, &ErrorObject) + Send + Sync + 'static,
    ) -> Self {
        self.hooks.unreadable = Some(Arc::new(hook));
        self
    }

    /// The driver and the [`Peer`] handle that calls the other side.
    pub fn build(self) -> (Peer, Driver<T, S>) {
        Driver::from_parts(
            self.transport,
            self.router,
            self.config,
            self.session.unwrap_or_default(),
            self.close_frames,
            self.hooks,
        )
    }
}

impl<T: CloseFrames, S: Send + Sync + 'static> DriverBuilder<T, S> {
    /// Uses the transport's close frames (see [`CloseFrames`]; a WebSocket
    /// has them): [`Peer::close_with`] sends its code and reason, and the
    /// peer's close frame reaches [`Error::Closed`](crate::Error::Closed).
    /// Without this, closing the transport says nothing but "closed".
    ///
    /// With close frames, a driver that closes first then reads (and drops)
    /// what the peer still sends until the peer's close frame, for at most
    /// 1 s (and never past [`Config::drain_timeout`](crate::Config::drain_timeout)),
    /// as RFC 6455 §7.1.1 asks: a socket closed with input unread is reset,
    /// and the peer could lose our close frame.
    pub fn close_frames(mut self) -> Self {
        self.close_frames = Some(CloseHooks::new());
        self
    }
}

//! `DriverBuilder`: the one way to build a [`Driver`] with more than a transport and a router.

use crate::config::Config;
use crate::driver::Driver;
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

    /// The driver and the [`Peer`] handle that calls the other side.
    pub fn build(self) -> (Peer, Driver<T, S>) {
        Driver::from_parts(
            self.transport,
            self.router,
            self.config,
            self.session.unwrap_or_default(),
            self.close_frames,
        )
    }
}

impl<T: CloseFrames, S: Send + Sync + 'static> DriverBuilder<T, S> {
    /// Uses the transport's close frames (see [`CloseFrames`]; a WebSocket
    /// has them): [`Peer::close_with`] sends its code and reason, and the
    /// peer's close frame reaches [`Error::Closed`](crate::Error::Closed).
    /// Without this, closing the transport says nothing but "closed".
    pub fn close_frames(mut self) -> Self {
        self.close_frames = Some(CloseHooks::new());
        self
    }
}

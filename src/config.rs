//! Every limit and timeout of a connection, with its default.

use std::time::Duration;

use crate::message::Version;

/// How long one of our requests waits for its reply by default.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of one connection's [`Driver`](crate::Driver). Each limit is
/// documented with its default and with what happens when it is reached.
///
/// ```
/// use std::time::Duration;
/// use rpcpeer::Config;
///
/// let config = Config::default()
///     .max_in_flight(16)
///     .request_timeout(Some(Duration::from_secs(10)));
/// assert_eq!(config.get_max_in_flight(), 16);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) max_in_flight: usize,
    pub(crate) max_queued: usize,
    pub(crate) max_outbox: usize,
    pub(crate) max_batch_len: usize,
    pub(crate) command_queue: usize,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) drain_timeout: Duration,
    pub(crate) version: Option<Version>,
    pub(crate) cancel_method: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_in_flight: 128,
            max_queued: 1024,
            max_outbox: 1024,
            max_batch_len: 1024,
            command_queue: 256,
            request_timeout: Some(DEFAULT_REQUEST_TIMEOUT),
            drain_timeout: Duration::from_secs(5),
            version: None,
            cancel_method: Some("$/cancelRequest".to_owned()),
        }
    }
}

impl Config {
    /// Handlers that may run at once on one connection (default 128).
    /// Calls past it wait in a queue (see [`Config::max_queued`]).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Calls that may wait for a free handler slot (default 1024). When the
    /// queue is full the driver stops reading the transport, so a client
    /// that pipelines thousands of requests is slowed down by TCP flow
    /// control, never refused; it goes on reading only while one of our own
    /// requests waits for a reply (so a handler calling back can never
    /// deadlock), and then answers requests that find the queue full with
    /// -32000 "server busy".
    pub fn max_queued(mut self, n: usize) -> Self {
        // At least one: with no room at all nothing would ever be read.
        self.max_queued = n.max(1);
        self
    }

    /// Frames waiting to be written (default 1024). When the peer stops
    /// reading and this fills, the driver stops taking new work until the
    /// transport drains: memory stays bounded.
    pub fn max_outbox(mut self, n: usize) -> Self {
        self.max_outbox = n.max(1);
        self
    }

    /// Entries one incoming batch may have (default 1024); a larger batch is
    /// answered with one -32600 error.
    pub fn max_batch_len(mut self, n: usize) -> Self {
        self.max_batch_len = n.max(1);
        self
    }

    /// Calls and notifications from [`Peer`](crate::Peer) handles waiting to
    /// reach the driver (default 256); `notify` waits for room, `try_notify` fails.
    pub fn command_queue(mut self, n: usize) -> Self {
        self.command_queue = n.max(1);
        self
    }

    /// How long one of our requests ([`Peer::request`](crate::Peer::request),
    /// [`Peer::request_raw`](crate::Peer::request_raw), each call of a
    /// [`Peer::batch`](crate::Peer::batch), a handler calling its caller
    /// back) waits for its reply (default 30 s). Past it the call fails with
    /// [`Error::Timeout`](crate::Error::Timeout), is removed from the pending
    /// table (a late reply is ignored, logged at debug level) and the peer is
    /// told to cancel it; a handler waiting on it gets the error and can
    /// finish, freeing its slot. `None` waits for ever, for peers whose calls
    /// may legitimately take long (a language server's, say);
    /// [`Peer::request_with_timeout`](crate::Peer::request_with_timeout) sets
    /// one call's limit.
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long running handlers may go on after the connection stops
    /// reading (peer hung up, or [`Peer::close`](crate::Peer::close)) before
    /// they are cancelled (default 5 s).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// The version our own requests and notifications use: `None` (the
    /// default) follows the version the peer last wrote in, starting with 2.0.
    pub fn version(mut self, version: Option<Version>) -> Self {
        self.version = version;
        self
    }

    /// The notification that cancels a request, in both directions (default
    /// `$/cancelRequest` with params `{"id": …}`, as LSP and StreamJsonRpc
    /// use); `None` turns cancellation messages off.
    pub fn cancel_method(mut self, method: Option<String>) -> Self {
        self.cancel_method = method;
        self
    }

    /// See [`Config::max_in_flight`].
    pub fn get_max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// See [`Config::request_timeout`].
    pub fn get_request_timeout(&self) -> Option<Duration> {
        self.request_timeout
    }
}

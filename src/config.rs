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
    pub(crate) max_incoming_bytes: usize,
    pub(crate) max_outbox: usize,
    pub(crate) max_outbox_bytes: usize,
    pub(crate) write_timeout: Duration,
    pub(crate) max_batch_len: usize,
    pub(crate) max_depth: usize,
    pub(crate) command_queue: usize,
    pub(crate) max_command_bytes: usize,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) drain_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) version: Option<Version>,
    pub(crate) cancel_method: Option<String>,
}

/// The default of [`Config::max_batch_len`], which HTTP requests share.
pub(crate) const DEFAULT_MAX_BATCH_LEN: usize = 1024;

impl Default for Config {
    fn default() -> Self {
        Self {
            max_in_flight: 128,
            max_queued: 1024,
            max_incoming_bytes: 4 << 20,
            max_outbox: 1024,
            max_outbox_bytes: 4 << 20,
            write_timeout: Duration::from_secs(30),
            max_batch_len: DEFAULT_MAX_BATCH_LEN,
            max_depth: crate::message::DEFAULT_MAX_DEPTH,
            command_queue: 256,
            max_command_bytes: 1 << 20,
            request_timeout: Some(DEFAULT_REQUEST_TIMEOUT),
            drain_timeout: Duration::from_secs(5),
            idle_timeout: None,
            version: None,
            cancel_method: Some("$/cancelRequest".to_owned()),
        }
    }
}

impl Config {
    /// Handlers that may run at once on one connection (default 128).
    /// Calls past it wait in a queue (see [`Config::max_queued`]).
    ///
    /// A handler that waits on its own call to the peer holds its slot
    /// while it waits. When the peer's answer needs a call back to us (a
    /// callback that calls back) and every slot is held that way, that
    /// call waits for a slot that only its own chain would free, until the
    /// request timeout: a protocol whose callbacks nest needs more slots
    /// than its concurrent chains hold at once.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Calls that may wait for a free handler slot (default 1024; a batch
    /// counts as many calls as it has entries). When the
    /// queue is full the driver stops reading the transport, so a client
    /// that pipelines thousands of requests is slowed down by TCP flow
    /// control, never refused; it goes on reading only while one of our own
    /// requests waits for a reply (so a handler waiting on a callback
    /// still gets its answer), and then answers requests that find the queue full with
    /// -32000 "server busy".
    pub fn max_queued(mut self, n: usize) -> Self {
        // At least one: with no room at all nothing would ever be read.
        self.max_queued = n.max(1);
        self
    }

    /// Bytes of the peer's calls read and not yet answered, waiting or
    /// running, counted as the frames they came in (default 4 MiB), with
    /// the replies a batch holds from when it is read (those of entries
    /// that are invalid, name no method or are answered as they are read)
    /// until it is answered. Past
    /// it the driver stops reading as for a full queue (see
    /// [`Config::max_queued`]), so the memory a connection's calls hold
    /// follows this bound, not the size or number of the messages. A call
    /// larger than the bound is still read when the connection holds
    /// nothing else.
    ///
    /// The same bound holds the progress reports of each of our
    /// [`ProgressCall`](crate::progress::ProgressCall)s that its caller has
    /// not read yet: further ones are dropped and counted, and the call's
    /// stream yields [`Error::ReportsLost`](crate::Error::ReportsLost).
    pub fn max_incoming_bytes(mut self, n: usize) -> Self {
        self.max_incoming_bytes = n.max(1);
        self
    }

    /// Frames waiting to be written (default 1024). When the peer stops
    /// reading and this fills, the driver stops taking new work until the
    /// transport drains: memory stays bounded.
    pub fn max_outbox(mut self, n: usize) -> Self {
        self.max_outbox = n.max(1);
        self
    }

    /// Bytes waiting to be written (default 4 MiB), with the same effect as
    /// [`Config::max_outbox`]: the outbox holds at most this much plus one
    /// reply before the driver stops taking new work, and at most twice it
    /// before it stops reading too.
    pub fn max_outbox_bytes(mut self, n: usize) -> Self {
        self.max_outbox_bytes = n.max(1);
        self
    }

    /// How long the outbox may stay full with nothing written before the
    /// peer is taken as not reading and the connection is closed (default
    /// 30 s). A peer that reads slowly but steadily is not cut off: the
    /// clock restarts whenever a frame is written. What "steadily" means is
    /// up to the peer's kernel, which takes more only once its application
    /// has read much of its receive buffer: a peer that reads r bytes a
    /// second through a buffer of R bytes shows progress about every R / r
    /// seconds (128 KiB at 64 KiB/s: every 2 s).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Entries one incoming batch may have (default 1024); a larger batch is
    /// answered with one -32600 error (none when all its entries are
    /// notifications, spec §6) and none of it runs. An array of
    /// answers only (to a batch of ours, which may be longer) is taken
    /// whole: it costs no more than the calls of ours it answers. HTTP requests
    /// have the same limit, set by
    /// [`HttpOptions::max_batch_len`](crate::http::HttpOptions::max_batch_len)
    /// (feature `ws`).
    pub fn max_batch_len(mut self, n: usize) -> Self {
        self.max_batch_len = n.max(1);
        self
    }

    /// How deep arrays and objects may nest in an incoming message, params
    /// included (default 128, serde_json's own limit). A deeper call is
    /// answered -32600 under its id and not run; a deeper notification gets
    /// no reply (spec §4.1) and is logged.
    pub fn max_depth(mut self, levels: usize) -> Self {
        self.max_depth = levels.max(1);
        self
    }

    /// Calls and notifications from [`Peer`](crate::Peer) handles waiting to
    /// reach the driver (default 256); `notify` waits for room, `try_notify` fails.
    pub fn command_queue(mut self, n: usize) -> Self {
        self.command_queue = n.max(1);
        self
    }

    /// Bytes of params those calls and notifications may hold together
    /// (default 1 MiB), with the same effect as [`Config::command_queue`].
    /// One larger than the bound waits until the queue is empty, then goes.
    pub fn max_command_bytes(mut self, n: usize) -> Self {
        self.max_command_bytes = n.max(1);
        self
    }

    /// How long one of our requests ([`Peer::request`](crate::Peer::request),
    /// each call of a
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

    /// How long a connection may go with no message read or written and
    /// nothing in flight (no call of the peer's running or queued, none of
    /// ours waiting for its reply) before it is closed (default: no limit;
    /// the servers of this crate and the `rpcpeer` command set 5 minutes).
    /// Only whole messages count, so a peer that trickles a message it
    /// never ends is idle too; a call that runs for hours is not.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
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

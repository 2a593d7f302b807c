//! The link to Redis: pushes, joins and departures as scripts; the subscription that brings them back; reconnection, catch-up and presence.
//!
//! Two connections: one multiplexed for commands (concurrent pushes share
//! it), one subscribed to the channels of the rooms that have members on
//! this node. When the subscribed one drops, messages may be missed: the
//! link goes down, reconnects with backoff, resubscribes, and catches every
//! room up from its history before it counts as connected again.

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use futures::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use redis::{AsyncConnectionConfig, Client, Msg, RedisError};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::cursor::{Resync, Verdict};
use super::scripts::Scripts;
use super::{meta_params, Room, RoomError, Shared};
use crate::excerpt::excerpt;
use crate::group::{Member, MemberId, MemberInfo};

/// The default of [`RedisConfig::presence_ttl`].
pub const DEFAULT_PRESENCE_TTL: Duration = Duration::from_secs(15);
/// The default of [`RedisConfig::history_len`].
pub const DEFAULT_HISTORY_LEN: usize = 1000;
/// The default of [`RedisConfig::idle_expiry`].
pub const DEFAULT_IDLE_EXPIRY: Duration = Duration::from_secs(3600);
/// The default of [`RedisConfig::command_timeout`].
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Where Redis is, and how this node uses it (see [`Rooms::redis`](super::Rooms::redis)).
///
/// ```
/// use std::time::Duration;
/// use rpcpeer::rooms::RedisConfig;
///
/// let config = RedisConfig::new("redis://127.0.0.1:6379", "web-1")
///     .prefix("chat")
///     .presence_ttl(Duration::from_secs(10));
/// assert_eq!(config.node(), "web-1");
/// ```
#[derive(Debug, Clone)]
pub struct RedisConfig {
    url: String,
    node: String,
    prefix: String,
    presence_ttl: Duration,
    history_len: usize,
    idle_expiry: Duration,
    command_timeout: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    resync_method: Arc<str>,
}

impl RedisConfig {
    /// Redis at `url` (`redis://[user:password@]host:port[/db]`), this node
    /// named `node` (each node its own name: it tells members apart and
    /// which node's members to drop when a node dies).
    pub fn new(url: &str, node: &str) -> Self {
        Self {
            url: url.to_owned(),
            node: node.to_owned(),
            prefix: "rpcpeer".to_owned(),
            presence_ttl: DEFAULT_PRESENCE_TTL,
            history_len: DEFAULT_HISTORY_LEN,
            idle_expiry: DEFAULT_IDLE_EXPIRY,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            resync_method: super::RESYNC_METHOD.into(),
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// What every key and channel name starts with (default `rpcpeer`):
    /// nodes that share a Redis and a prefix share their rooms.
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }

    /// How long a member stays present without its node refreshing it
    /// (default [`DEFAULT_PRESENCE_TTL`], 15 s). Each node refreshes its
    /// members every third of it, so the members of a node that died leave
    /// every room, with the departure announcement, within the TTL plus a
    /// third of it. At least 30 ms.
    pub fn presence_ttl(mut self, ttl: Duration) -> Self {
        self.presence_ttl = ttl.max(Duration::from_millis(30));
        self
    }

    /// How many of a room's latest messages Redis keeps for nodes that
    /// missed them (default [`DEFAULT_HISTORY_LEN`], 1,000). A node cut off
    /// for longer than that many messages tells its members to
    /// resynchronise.
    pub fn history_len(mut self, len: usize) -> Self {
        self.history_len = len.max(1);
        self
    }

    /// How long a room's keys stay in Redis once no node has members in it
    /// (default [`DEFAULT_IDLE_EXPIRY`], 1 h).
    pub fn idle_expiry(mut self, expiry: Duration) -> Self {
        self.idle_expiry = expiry.max(self.presence_ttl);
        self
    }

    /// How long a command (a push, say) may wait for Redis's answer before
    /// it fails, and a connection attempt before it is given up (default
    /// [`DEFAULT_COMMAND_TIMEOUT`], 2 s).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The wait before the first reconnection attempt, doubled after each
    /// failure up to `max` (default 100 ms to 5 s).
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max.max(min);
        self
    }

    /// The notification members get when they must resynchronise (default
    /// [`RESYNC_METHOD`](super::RESYNC_METHOD)).
    pub fn resync_method(mut self, method: &str) -> Self {
        self.resync_method = method.into();
        self
    }
}

/// The state of a node's link to Redis.
///
/// ```
/// use rpcpeer::group::SlowMember;
/// use rpcpeer::rooms::{LinkState, RedisConfig, RoomOptions, Rooms};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpcpeer::rooms::RoomError> {
/// // Nothing listens on port 1: the link stays down and pushes reach this
/// // node's members only.
/// let config = RedisConfig::new("redis://127.0.0.1:1", "web-1");
/// let rooms = Rooms::redis(RoomOptions::new(64, SlowMember::DropOldest), config)?;
/// assert_eq!(rooms.link_state(), Some(LinkState::Down));
/// assert_eq!(Rooms::new(RoomOptions::new(64, SlowMember::DropOldest)).link_state(), None);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Redis cannot be reached (or has not been yet): pushes reach this
    /// node's members only, and fail with
    /// [`RoomError::LocalOnly`](super::RoomError::LocalOnly).
    Down,
    /// Reconnected; resubscribing and filling each room's gap from its
    /// history. Pushes go through Redis again.
    CatchingUp,
    /// Subscribed and caught up.
    Connected,
}

impl fmt::Display for LinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkState::Down => "down",
            LinkState::CatchingUp => "catching up",
            LinkState::Connected => "connected",
        })
    }
}

/// A push as it is published and kept in the history.
#[derive(Serialize)]
struct PushEvent<'a> {
    k: &'static str,
    node: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    except: Option<u64>,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a RawValue>,
}

/// Any event, as it comes back (see `scripts` for the kinds).
#[derive(Deserialize)]
struct Event {
    k: String,
    #[serde(default)]
    node: String,
    except: Option<u64>,
    method: Option<String>,
    params: Option<Box<RawValue>>,
    who: Option<MemberInfo>,
}

/// The params of the resynchronise notification.
#[derive(Serialize)]
struct ResyncParams<'a> {
    room: &'a str,
    missed: Option<u64>,
}

pub(crate) struct Broker {
    client: Client,
    config: RedisConfig,
    scripts: Scripts,
    /// Some while the link is up.
    commands: RwLock<Option<MultiplexedConnection>>,
    sink: Mutex<Option<PubSubSink>>,
    state: watch::Sender<LinkState>,
    /// Why the link last went down, for the errors of local-only pushes.
    down_reason: Mutex<String>,
    /// Epoch names: unique per call, so that a room Redis lost never gets
    /// its old epoch back.
    seed: RandomState,
    epochs: AtomicU64,
    /// [`RoomOptions`](super::RoomOptions)' announcements.
    joined: Option<Arc<str>>,
    left: Option<Arc<str>>,
    /// Departures Redis has not heard of (the link was down, or the command
    /// failed), as (room, member key): registered once the link is back.
    /// Otherwise the member's presence would wait for a sweep, which runs
    /// only in a room where some node still has members: the next to join
    /// there would be told of a departure from before it came.
    unregistered: Mutex<VecDeque<(Arc<str>, String)>>,
}

/// Departures kept for registration at most; past it the oldest wait for
/// a sweep, as all did before.
const MAX_UNREGISTERED: usize = 100_000;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each use is one assignment or read: a panic cannot leave it half-changed.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Broker {
    pub(crate) fn new(
        config: RedisConfig,
        joined: Option<Arc<str>>,
        left: Option<Arc<str>>,
    ) -> Result<Self, RoomError> {
        let client = Client::open(config.url.as_str())
            .map_err(|err| RoomError::BadUrl(format!("{}: {err}", config.url)))?;
        Ok(Self {
            client,
            config,
            scripts: Scripts::new(),
            commands: RwLock::new(None),
            sink: Mutex::new(None),
            state: watch::channel(LinkState::Down).0,
            down_reason: Mutex::new("not connected yet".to_owned()),
            unregistered: Mutex::new(VecDeque::new()),
            seed: RandomState::new(),
            epochs: AtomicU64::new(0),
            joined,
            left,
        })
    }

    pub(crate) fn node(&self) -> &str {
        &self.config.node
    }

    pub(crate) fn state(&self) -> LinkState {
        *self.state.borrow()
    }

    pub(crate) fn watch(&self) -> watch::Receiver<LinkState> {
        self.state.subscribe()
    }

    fn set_state(&self, state: LinkState, reason: Option<&str>) {
        let changed = self.state.send_if_modified(|now| {
            let changed = *now != state;
            *now = state;
            changed
        });
        if let Some(reason) = reason {
            *lock(&self.down_reason) = reason.to_owned();
        }
        if changed {
            match (state, reason) {
                (LinkState::Down, Some(reason)) => {
                    tracing::warn!(node = %self.config.node, "redis link down: {reason}; pushes reach this node's members only until it is back");
                }
                _ => tracing::info!(node = %self.config.node, "redis link {state}"),
            }
        }
    }

    /// The command connection, unless the link is down.
    fn usable(&self) -> Option<MultiplexedConnection> {
        if self.state() == LinkState::Down {
            return None;
        }
        self.commands
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn sink(&self) -> Option<PubSubSink> {
        lock(&self.sink).clone()
    }

    fn keys(&self, room: &str) -> [String; 4] {
        let p = &self.config.prefix;
        ["seq", "log", "presence", "who"].map(|part| format!("{p}:room:{room}:{part}"))
    }

    fn channel(&self, room: &str) -> String {
        format!("{}:room:{room}", self.config.prefix)
    }

    fn room_of<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel
            .strip_prefix(self.config.prefix.as_str())?
            .strip_prefix(":room:")
    }

    fn member_key(&self, id: MemberId) -> String {
        format!("{}@{}", id.get(), self.config.node)
    }

    fn info(&self, member: &Member) -> String {
        let info = MemberInfo {
            node: self.config.node.clone(),
            id: member.id(),
            meta: RawValue::to_owned(&member.meta()),
        };
        // A struct of a string, a number and raw JSON always serializes.
        serde_json::to_string(&info).unwrap_or_default()
    }

    /// Invokes a script that publishes, with the arguments every such
    /// script takes first.
    fn sequenced<'a>(&self, script: &'a redis::Script, room: &str) -> redis::ScriptInvocation<'a> {
        let mut call = script.prepare_invoke();
        for key in self.keys(room) {
            call.key(key);
        }
        let epoch = self.seed.hash_one((
            self.epochs.fetch_add(1, Ordering::Relaxed),
            &self.config.node,
        ));
        call.arg(format!("{epoch:016x}"))
            .arg(self.config.history_len)
            .arg(self.channel(room))
            .arg(self.config.idle_expiry.as_millis() as u64);
        call
    }

    pub(crate) async fn push(
        &self,
        room: &str,
        local: Option<&Arc<Room>>,
        except: Option<MemberId>,
        method: &str,
        params: Option<Box<RawValue>>,
    ) -> Result<(), RoomError> {
        let Some(mut con) = self.usable() else {
            // NB: delivered here at once and never kept for later: the
            // other nodes miss it, and the caller hears so.
            let delivered = local.map_or(0, |local| {
                let handed = local
                    .group
                    .push_raw(method.into(), params.map(Arc::from), except);
                // The sender's own forwarding task counts, and skips it.
                handed.saturating_sub(usize::from(except.is_some()))
            });
            return Err(RoomError::LocalOnly {
                room: room.to_owned(),
                delivered,
                reason: lock(&self.down_reason).clone(),
            });
        };
        let event = PushEvent {
            k: "m",
            node: &self.config.node,
            except: except.map(MemberId::get),
            method,
            params: params.as_deref(),
        };
        let event = serde_json::to_string(&event).map_err(|err| RoomError::Broker {
            room: room.to_owned(),
            reason: err.to_string(),
        })?;
        self.sequenced(&self.scripts.push, room)
            .arg(event)
            .invoke_async::<(String, u64)>(&mut con)
            .await
            .map(drop)
            .map_err(|err| RoomError::Broker {
                room: room.to_owned(),
                reason: err.to_string(),
            })
    }

    /// A member joined `room` on this node (`created`: the first).
    pub(crate) async fn joined(&self, room: &Room, member: &Member, created: bool) {
        if let Err(err) = self.try_joined(room, member, created).await {
            // The link task registers it when it resynchronises.
            tracing::debug!(room = %excerpt(&room.name), "redis: join not registered yet: {err}");
        }
    }

    async fn try_joined(
        &self,
        room: &Room,
        member: &Member,
        created: bool,
    ) -> Result<(), RedisError> {
        let Some(mut con) = self.usable() else {
            return Ok(());
        };
        if created {
            if let Some(mut sink) = self.sink() {
                // NB: subscribed before the join is numbered, so every
                // message after it comes through the subscription.
                sink.subscribe(self.channel(&room.name)).await?;
            }
        }
        let (epoch, seq): (String, u64) = self
            .sequenced(&self.scripts.join, &room.name)
            .arg(self.member_key(member.id()))
            .arg(self.info(member))
            .arg(self.config.presence_ttl.as_millis() as u64)
            .invoke_async(&mut con)
            .await?;
        let unsynced = {
            let mut cursor = lock(&room.cursor);
            let unsynced = !cursor.is_synced();
            // The member's own `j` is the first message for this node.
            cursor.start(&epoch, seq.saturating_sub(1));
            unsynced
        };
        if unsynced {
            // What was published between the subscription and the cursor.
            self.catch_up(room).await?;
        }
        Ok(())
    }

    /// A member left `room` on this node (`last`: it was the last).
    pub(crate) async fn departed(&self, room: &Room, member: &Member, last: bool) {
        let key = self.member_key(member.id());
        let Some(mut con) = self.usable() else {
            self.unregistered(&room.name, key);
            return;
        };
        let left = self
            .sequenced(&self.scripts.leave, &room.name)
            .arg(&key)
            .invoke_async::<i64>(&mut con)
            .await;
        if let Err(err) = left {
            tracing::debug!(room = %excerpt(&room.name), "redis: departure not registered, to be once the link is back: {err}");
            self.unregistered(&room.name, key);
        }
        if last {
            if let Some(mut sink) = self.sink() {
                if let Err(err) = sink.unsubscribe(self.channel(&room.name)).await {
                    tracing::debug!(room = %excerpt(&room.name), "redis: unsubscribe failed: {err}");
                }
            }
        }
    }

    /// Keeps a departure Redis has not heard of, for [`Broker::register_departures`].
    fn unregistered(&self, room: &Arc<str>, key: String) {
        let mut waiting = lock(&self.unregistered);
        if waiting.len() >= MAX_UNREGISTERED {
            waiting.pop_front();
        }
        waiting.push_back((room.clone(), key));
    }

    /// Registers the departures kept while the link was down: each is
    /// announced unless a sweep did already (the LEAVE script tells).
    ///
    /// NB: a failure of the link puts that departure and all the rest back
    /// for the next connection. Had the link broken again, each would
    /// otherwise wait out the command timeout in turn, while this node,
    /// which listens only once they are done, neither hears the rooms nor
    /// notices that it should reconnect. Any other failure is that
    /// departure's own: it alone is put back.
    async fn register_departures(&self) {
        let waiting = std::mem::take(&mut *lock(&self.unregistered));
        if waiting.is_empty() {
            return;
        }
        tracing::info!(node = %self.config.node, count = waiting.len(), "redis: registering departures from while the link was down");
        let mut waiting = waiting.into_iter();
        while let Some((room, key)) = waiting.next() {
            let (err, link) = match self.usable() {
                None => ("the link is down".to_owned(), true),
                Some(mut con) => match self
                    .sequenced(&self.scripts.leave, &room)
                    .arg(&key)
                    .invoke_async::<i64>(&mut con)
                    .await
                {
                    Ok(_) => continue,
                    Err(err) => {
                        let link = err.is_io_error()
                            || err.is_connection_dropped()
                            || err.is_timeout()
                            || err.is_unrecoverable_error();
                        (err.to_string(), link)
                    }
                },
            };
            tracing::debug!(room = %excerpt(&room), "redis: departure still not registered: {err}");
            self.unregistered(&room, key);
            if link {
                for (room, key) in waiting {
                    self.unregistered(&room, key);
                }
                return;
            }
        }
    }

    pub(crate) async fn set_meta(&self, room: &Room, member: &Member) -> Result<(), RoomError> {
        let Some(mut con) = self.usable() else {
            return Err(RoomError::Unreachable {
                room: room.name.to_string(),
                reason: lock(&self.down_reason).clone(),
            });
        };
        let [_, _, presence, who] = self.keys(&room.name);
        self.scripts
            .set_meta
            .key(presence)
            .key(who)
            .arg(self.member_key(member.id()))
            .arg(self.info(member))
            .invoke_async::<i64>(&mut con)
            .await
            .map(drop)
            .map_err(|err| RoomError::Broker {
                room: room.name.to_string(),
                reason: err.to_string(),
            })
    }

    pub(crate) async fn members(&self, room: &str) -> Result<Vec<MemberInfo>, RoomError> {
        let Some(mut con) = self.usable() else {
            return Err(RoomError::Unreachable {
                room: room.to_owned(),
                reason: lock(&self.down_reason).clone(),
            });
        };
        let [_, _, presence, who] = self.keys(room);
        let infos: Vec<String> = self
            .scripts
            .members
            .key(presence)
            .key(who)
            .invoke_async(&mut con)
            .await
            .map_err(|err| RoomError::Broker {
                room: room.to_owned(),
                reason: err.to_string(),
            })?;
        Ok(infos
            .iter()
            .filter_map(|info| serde_json::from_str(info).ok())
            .collect())
    }

    /// Fills `room`'s gap from its history, or tells its members to
    /// resynchronise when the history cannot.
    async fn catch_up(&self, room: &Room) -> Result<(), RedisError> {
        let Some(mut con) = self.usable() else {
            return Ok(());
        };
        let (epoch, last) = {
            let cursor = lock(&room.cursor);
            let (epoch, last) = cursor.position();
            (epoch.to_owned(), last)
        };
        let [seq_key, log_key, _, _] = self.keys(&room.name);
        let (head_epoch, head, from, entries): (String, u64, u64, Vec<String>) = self
            .scripts
            .catch_up
            .key(seq_key)
            .key(log_key)
            .arg(last)
            .arg(epoch)
            .arg(self.config.history_len)
            .invoke_async(&mut con)
            .await?;
        let entries: Vec<(u64, &str)> = entries
            .chunks_exact(2)
            .filter_map(|pair| Some((entry_seq(&pair[0])?, pair[1].as_str())))
            .collect();
        let mut cursor = lock(&room.cursor);
        let first = entries.first().map(|&(seq, _)| seq);
        let resync = cursor.caught_up(&head_epoch, head, from, first);
        let due: Vec<&str> = (entries.into_iter())
            .filter(|&(seq, _)| cursor.delivered(seq))
            .map(|(_, event)| event)
            .collect();
        // NB: pushed at once, more than a member may fall behind would be
        // cut by the room's slow-member policy, which drops the oldest
        // first: the resync notice, then the start of the gap, with nothing
        // said. The members are told what they missed instead.
        let (max_pushes, max_bytes) = room.group.backlog_limits();
        let pushes = due.len() + usize::from(resync.is_some());
        if pushes > max_pushes || due.iter().map(|event| event.len()).sum::<usize>() > max_bytes {
            let missed = match resync {
                Some(Resync::Lost) => None,
                Some(Resync::Trimmed { missed }) => Some(missed + due.len() as u64),
                None => Some(due.len() as u64),
            };
            self.resync(room, missed);
            return Ok(());
        }
        if let Some(resync) = resync {
            self.resync(
                room,
                match resync {
                    Resync::Trimmed { missed } => Some(missed),
                    Resync::Lost => None,
                },
            );
        }
        for event in due {
            self.deliver(room, event);
        }
        Ok(())
    }

    /// Tells `room`'s members to resynchronise, having missed `missed`
    /// messages (`None`: an unknown number).
    fn resync(&self, room: &Room, missed: Option<u64>) {
        tracing::info!(room = %excerpt(&room.name), ?missed, "redis: messages missed beyond the history, or more than a member may fall behind; members told to resynchronise");
        let params = ResyncParams {
            room: &room.name,
            missed,
        };
        if let Ok(params) = serde_json::value::to_raw_value(&params) {
            room.group.push_raw(
                self.config.resync_method.clone(),
                Some(Arc::from(params)),
                None,
            );
        }
    }

    /// Hands one event to this node's members of `room`.
    fn deliver(&self, room: &Room, event: &str) {
        let event: Event = match serde_json::from_str(event) {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!(room = %excerpt(&room.name), "redis: an event that is not ours, skipped: {err}");
                return;
            }
        };
        let mine = |node: &str| node == self.config.node;
        match (event.k.as_str(), event.method, event.who) {
            ("m", Some(method), _) => {
                let except = event.except.filter(|_| mine(&event.node)).map(member_id);
                room.group
                    .push_raw(method.into(), event.params.map(Arc::from), except);
            }
            ("j", _, Some(who)) => {
                if let Some(method) = &self.joined {
                    let except = mine(&who.node).then_some(who.id);
                    room.group
                        .push_raw(method.clone(), meta_params(&who.meta), except);
                }
            }
            // NB: one of this node's members that is still here was swept
            // by another node while this one was cut off from Redis (its
            // presence went stale): it never left, this node's refresh puts
            // it back, and its neighbours here never saw it go.
            ("l", _, Some(who)) if mine(&who.node) && room.group.contains(who.id) => {
                tracing::info!(room = %excerpt(&room.name), member = who.id.get(), "redis: a member of this node was swept while the link was down; it is put back");
            }
            ("l", _, Some(who)) => {
                if let Some(method) = &self.left {
                    room.group
                        .push_raw(method.clone(), meta_params(&who.meta), None);
                }
            }
            _ => {
                tracing::warn!(room = %excerpt(&room.name), kind = %event.k, "redis: an event of an unknown kind, skipped")
            }
        }
    }
}

impl Broker {
    /// Keeps the link up until `stop`: connects, resubscribes and catches
    /// up, then delivers what the subscription brings and refreshes this
    /// node's presence, until the link drops; then again, after a backoff.
    pub(crate) async fn run(self: Arc<Self>, shared: Arc<Shared>, stop: CancellationToken) {
        let mut backoff = self.config.min_backoff;
        let mut failures = 0u64;
        let mut ever_connected = false;
        loop {
            let connected = tokio::select! {
                () = stop.cancelled() => return,
                connected = self.connect() => connected,
            };
            let reason = match connected {
                Ok(stream) => {
                    failures = 0;
                    ever_connected = true;
                    backoff = self.config.min_backoff;
                    self.set_state(LinkState::CatchingUp, None);
                    match self.resync_all(&shared).await {
                        Ok(()) => {
                            self.set_state(LinkState::Connected, None);
                            self.register_departures().await;
                            self.listen(&shared, stream, &stop).await
                        }
                        Err(err) => format!("catching up failed: {err}"),
                    }
                }
                Err(err) => {
                    failures += 1;
                    let url = &self.config.url;
                    // NB: the link starts down, so a first attempt that
                    // fails changes no state and would go unlogged; a link
                    // that stays down is said again now and then.
                    if failures == 1 && !ever_connected {
                        tracing::warn!(node = %self.config.node, "redis: cannot connect to {url}: {err}; pushes reach this node's members only until it is reachable");
                    } else if failures % 20 == 0 {
                        tracing::warn!(node = %self.config.node, "redis: still unreachable after {failures} attempts in a row: {err}");
                    } else if failures > 1 {
                        tracing::debug!(node = %self.config.node, "redis: reconnection attempt {failures} failed: {err}");
                    }
                    format!("cannot connect to {url}: {err}")
                }
            };
            *self
                .commands
                .write()
                .unwrap_or_else(PoisonError::into_inner) = None;
            *lock(&self.sink) = None;
            if stop.is_cancelled() {
                // The rooms were dropped: no link lost, nothing to warn of.
                self.state.send_replace(LinkState::Down);
                tracing::debug!(node = %self.config.node, "redis link closed: the rooms are gone");
                return;
            }
            self.set_state(LinkState::Down, Some(&reason));
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(self.config.max_backoff);
        }
    }

    async fn connect(&self) -> Result<PubSubStream, RedisError> {
        let limit = Some(self.config.command_timeout);
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(limit)
            .set_response_timeout(limit);
        let commands = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let pubsub =
            tokio::time::timeout(self.config.command_timeout, self.client.get_async_pubsub())
                .await
                .map_err(|_| timed_out("connecting"))??;
        let (sink, stream) = pubsub.split();
        *self
            .commands
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(commands);
        *lock(&self.sink) = Some(sink);
        Ok(stream)
    }

    /// After a (re)connection: every room with members here is subscribed
    /// again, caught up, and its members' presence refreshed.
    async fn resync_all(&self, shared: &Shared) -> Result<(), RedisError> {
        let _membership = shared.membership.lock().await;
        let rooms: Vec<Arc<Room>> = shared.rooms().values().cloned().collect();
        if let Some(mut sink) = self.sink() {
            for room in &rooms {
                sink.subscribe(self.channel(&room.name)).await?;
            }
        }
        for room in &rooms {
            self.catch_up(room).await?;
        }
        self.refresh_rooms(&rooms).await
    }

    /// Refreshes this node's members of `rooms` and sweeps out the expired
    /// ones of every node. The caller holds the membership lock, so no
    /// member that has left is refreshed back into presence.
    async fn refresh_rooms(&self, rooms: &[Arc<Room>]) -> Result<(), RedisError> {
        let Some(mut con) = self.usable() else {
            return Ok(());
        };
        for room in rooms {
            let mut call = self.sequenced(&self.scripts.refresh, &room.name);
            call.arg(self.config.presence_ttl.as_millis() as u64);
            for mut info in room.group.members() {
                info.node.clone_from(&self.config.node);
                call.arg(self.member_key(info.id));
                call.arg(serde_json::to_string(&info).unwrap_or_default());
            }
            let swept: i64 = call.invoke_async(&mut con).await?;
            if swept > 0 {
                tracing::info!(room = %excerpt(&room.name), swept, "redis: members whose presence expired have left");
            }
        }
        Ok(())
    }

    /// Delivers what the subscription brings until the link drops; returns
    /// why it did.
    async fn listen(
        &self,
        shared: &Shared,
        mut stream: PubSubStream,
        stop: &CancellationToken,
    ) -> String {
        let mut tick = tokio::time::interval(self.config.presence_ttl / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => return "stopping".to_owned(),
                msg = stream.next() => match msg {
                    Some(msg) => self.on_message(shared, &msg).await,
                    None => return "the subscribed connection was lost".to_owned(),
                },
                _ = tick.tick() => {
                    if let Err(err) = self.tick(shared).await {
                        return err.to_string();
                    }
                }
            }
        }
    }

    /// The periodic work: a ping on the subscribed connection (a link that
    /// died silently fails it), and the presence refresh.
    async fn tick(&self, shared: &Shared) -> Result<(), RedisError> {
        if let Some(mut sink) = self.sink() {
            tokio::time::timeout(self.config.command_timeout, sink.ping::<redis::Value>())
                .await
                .map_err(|_| timed_out("ping"))??;
        }
        let _membership = shared.membership.lock().await;
        let rooms: Vec<Arc<Room>> = shared.rooms().values().cloned().collect();
        self.refresh_rooms(&rooms).await
    }

    async fn on_message(&self, shared: &Shared, msg: &Msg) {
        let Some(room) = self.room_of(msg.get_channel_name()) else {
            return;
        };
        // Not ours any more: its last member left while this was on its way.
        let Some(room) = shared.room(room) else {
            return;
        };
        let Ok(payload) = msg.get_payload::<String>() else {
            tracing::warn!(room = %excerpt(&room.name), "redis: a message that is not text, skipped");
            return;
        };
        let mut parts = payload.splitn(3, ' ');
        let (Some(epoch), Some(Ok(seq)), Some(event)) = (
            parts.next(),
            parts.next().map(str::parse::<u64>),
            parts.next(),
        ) else {
            tracing::warn!(room = %excerpt(&room.name), "redis: a message that is not ours, skipped");
            return;
        };
        let verdict = {
            let mut cursor = lock(&room.cursor);
            let verdict = cursor.accept(epoch, seq);
            if verdict == Verdict::Deliver {
                // NB: delivered under the cursor's lock, so a catch-up
                // running for a join cannot interleave its entries.
                self.deliver(&room, event);
            }
            verdict
        };
        if verdict == Verdict::Gap {
            if let Err(err) = self.catch_up(&room).await {
                tracing::debug!(room = %excerpt(&room.name), "redis: filling a gap failed: {err}");
            }
        }
    }
}

/// The number in a history entry's id, `<seq>-0`.
fn entry_seq(id: &str) -> Option<u64> {
    id.split_once('-')?.0.parse().ok()
}

fn timed_out(what: &str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what}: no answer from Redis in time"),
    ))
}

fn member_id(id: u64) -> MemberId {
    MemberId::from_raw(id)
}

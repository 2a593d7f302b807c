//! Named rooms: broadcast groups created on first join and dropped when empty, within one process or spread over several through Redis.
//!
//! Each room is a [`Group`] on each node that has members in it, so the
//! slow-member policy, the backlog bounds and the cost of a push to local
//! members are the group's. With Redis ([`Rooms::redis`], feature `redis`),
//! a push goes to Redis first, which numbers it and publishes it to every
//! node with members in the room (this one included): every node delivers
//! the room's pushes in the one order Redis gave them.

#[cfg(feature = "redis")]
mod broker;
#[cfg(feature = "redis")]
mod cursor;
#[cfg(feature = "redis")]
mod scripts;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use serde_json::value::RawValue;

use crate::error::{Error, ErrorObject};
use crate::excerpt::excerpt;
use crate::group::{Group, Member, MemberId, MemberInfo, SlowMember, DEFAULT_MAX_BACKLOG_BYTES};
use crate::peer::{to_params, Peer};

#[cfg(feature = "redis")]
pub use broker::{
    LinkState, RedisConfig, DEFAULT_COMMAND_TIMEOUT, DEFAULT_HISTORY_LEN, DEFAULT_IDLE_EXPIRY,
    DEFAULT_PRESENCE_TTL,
};

/// The notification a node's members get when the room's history could not
/// fill a gap in what the node received, or the gap is longer than a
/// member may fall behind (see [`RedisConfig::resync_method`]):
/// params `{"room": name, "missed": n}`, `missed` being `null` when it is
/// unknown (Redis lost the room's history). The member should fetch the
/// state it shows afresh.
pub const RESYNC_METHOD: &str = "rpcpeer.resync";

/// How the rooms' groups are made, and what they announce.
///
/// ```
/// use rpcpeer::group::SlowMember;
/// use rpcpeer::rooms::{RoomOptions, Rooms};
///
/// // Up to 256 pushes behind before a member is dropped; joins and
/// // departures told to the room's members.
/// let options = RoomOptions::new(256, SlowMember::Disconnect)
///     .max_backlog_bytes(1 << 20)
///     .announce_joins("userJoined")
///     .announce_departures("userLeft");
/// let rooms = Rooms::new(options);
/// assert!(rooms.local_rooms().is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct RoomOptions {
    capacity: usize,
    slow: SlowMember,
    max_backlog_bytes: usize,
    joined: Option<Arc<str>>,
    left: Option<Arc<str>>,
}

impl RoomOptions {
    /// Each room is a [`Group::new`]`(capacity, slow)`; nothing is
    /// announced.
    pub fn new(capacity: usize, slow: SlowMember) -> Self {
        Self {
            capacity,
            slow,
            max_backlog_bytes: DEFAULT_MAX_BACKLOG_BYTES,
            joined: None,
            left: None,
        }
    }

    /// [`Group::set_max_backlog_bytes`] for each room.
    pub fn max_backlog_bytes(mut self, bytes: usize) -> Self {
        self.max_backlog_bytes = bytes;
        self
    }

    /// When a member joins, the room's other members get `method` with
    /// params `[metadata]`.
    pub fn announce_joins(mut self, method: &str) -> Self {
        self.joined = Some(method.into());
        self
    }

    /// When a member leaves (by [`RoomMember::leave`], because its
    /// connection closed, because it was too slow, or because its node
    /// stopped refreshing its presence), the room's members get `method`
    /// with params `[metadata]`.
    pub fn announce_departures(mut self, method: &str) -> Self {
        self.left = Some(method.into());
        self
    }
}

/// Why a room operation failed.
///
/// ```
/// use rpcpeer::group::SlowMember;
/// use rpcpeer::rooms::{RoomError, RoomOptions, Rooms};
/// use rpcpeer::{Context, ErrorObject, Router, Session};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let rooms = Rooms::new(RoomOptions::new(64, SlowMember::DropOldest));
/// let mut router = Router::with_state(rooms);
/// router.method("join", |cx: Context<Rooms>| async move {
///     match cx.state().join("lobby", cx.peer().clone(), ()).await {
///         Ok(_member) => Ok(true),
///         // A one-shot HTTP call has no connection to push to.
///         Err(err @ RoomError::NoConnection) => Err(ErrorObject::invalid_request(err.to_string())),
///         Err(err) => Err(ErrorObject::new(-32000, err.to_string())),
///     }
/// });
/// let reply = router.handle_text(r#"{"jsonrpc":"2.0","method":"join","id":1}"#, &Session::new()).await.unwrap();
/// assert!(reply.contains("need a connection"));
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    /// The peer has no connection to push to (a one-shot HTTP request).
    #[error("rooms need a connection (WebSocket or TCP) to push to; this call came without one (a one-shot HTTP request)")]
    NoConnection,
    /// The params of a push could not be encoded ([`Error::EncodeParams`]).
    #[error(transparent)]
    Params(Error),
    /// The member's metadata could not be encoded as JSON.
    #[error("could not encode the member's metadata: {0}")]
    Meta(#[source] serde_json::Error),
    /// Redis cannot be reached: the push went to this node's members of the
    /// room (`delivered` of them) and to no other node; it is not kept to
    /// be sent later.
    #[error(
        "room `{}`: Redis is unreachable ({reason}); the push reached this node's members only",
        excerpt(room)
    )]
    LocalOnly {
        /// The room.
        room: String,
        /// How many of this node's members it was handed to (the sender
        /// not counted; a member leaving at that moment may be).
        delivered: usize,
        /// The link's last error.
        reason: String,
    },
    /// Redis cannot be reached, so the room's members on other nodes cannot
    /// be listed.
    #[error("room `{}`: Redis is unreachable ({reason})", excerpt(room))]
    Unreachable {
        /// The room.
        room: String,
        /// The link's last error.
        reason: String,
    },
    /// Redis failed or did not answer the command in time: whether other
    /// nodes got the push is unknown (if Redis ran it, every node delivers
    /// it, this one included).
    #[error("room `{}`: Redis failed the command: {reason}", excerpt(room))]
    Broker {
        /// The room.
        room: String,
        /// What Redis or the connection said.
        reason: String,
    },
    /// The Redis URL could not be understood.
    #[error("not a Redis URL: {0}")]
    BadUrl(String),
    /// The room's name is longer than [`MAX_ROOM_NAME_LEN`].
    #[error("a room name holds at most {MAX_ROOM_NAME_LEN} bytes, not {len}")]
    NameTooLong {
        /// The name's length in bytes.
        len: usize,
    },
}

/// The longest room name, in bytes: a room's name is part of the keys and
/// channel it has in Redis, and of its log lines.
pub const MAX_ROOM_NAME_LEN: usize = 1024;

/// Refuses a room name over [`MAX_ROOM_NAME_LEN`].
fn check_name(room: &str) -> Result<(), RoomError> {
    if room.len() > MAX_ROOM_NAME_LEN {
        return Err(RoomError::NameTooLong { len: room.len() });
    }
    Ok(())
}

/// `?` in a handler: [`RoomError::NoConnection`] is -32004,
/// [`RoomError::NameTooLong`] -32602 (the name comes from the params), the
/// rest -32603 naming what failed.
impl From<RoomError> for ErrorObject {
    fn from(err: RoomError) -> Self {
        match err {
            RoomError::NoConnection => {
                ErrorObject::new(ErrorObject::NO_CONNECTION, err.to_string())
            }
            RoomError::NameTooLong { .. } => ErrorObject::new(
                ErrorObject::INVALID_PARAMS,
                format!("Invalid params: {err}"),
            ),
            other => ErrorObject::new(
                ErrorObject::INTERNAL_ERROR,
                format!("Internal error: {other}"),
            ),
        }
    }
}

/// One room on this node: its local group, and (with Redis) where the node
/// stands in its sequence.
pub(crate) struct Room {
    name: Arc<str>,
    group: Group,
    #[cfg(feature = "redis")]
    cursor: Mutex<cursor::Cursor>,
}

/// What every handle and the link task share.
pub(crate) struct Shared {
    options: RoomOptions,
    rooms: Mutex<HashMap<Arc<str>, Arc<Room>>>,
    /// Held across a join or a departure, and while the link resubscribes
    /// and refreshes, so that a room's subscription follows its local
    /// members (the first subscribes, the last unsubscribes) even when a
    /// join and the last departure race.
    membership: tokio::sync::Mutex<()>,
    /// The task of each member, which registers its departure once it
    /// leaves (see [`Rooms::settled`]).
    watchers: tokio_util::task::TaskTracker,
    /// The number of each room's first member on this node.
    first_member_id: u64,
}

impl Shared {
    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Arc<Room>>> {
        // Each use is one map operation: a panic cannot leave it half-changed.
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn room(&self, name: &str) -> Option<Arc<Room>> {
        self.rooms().get(name).cloned()
    }
}

/// Named rooms of peers: a chat's rooms, a document's editors.
///
/// A room is created by its first [`join`](Rooms::join) and dropped when
/// its last member leaves. Members carry the application's metadata (a
/// user name, say), which [`Rooms::members`] lists and the join and
/// departure announcements carry ([`RoomOptions`]).
///
/// [`Rooms::new`] keeps the rooms in this process. [`Rooms::redis`]
/// (feature `redis`) spreads each room over every process (node) that names
/// the same Redis and prefix: a push on one node reaches the members on
/// all of them, in the same order everywhere.
///
/// ```
/// use rpcpeer::group::SlowMember;
/// use rpcpeer::rooms::{RoomOptions, Rooms};
/// use rpcpeer::{testing::connected_pair, Router};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpcpeer::rooms::RoomError> {
/// let rooms = Rooms::new(RoomOptions::new(64, SlowMember::DropOldest).announce_departures("userLeft"));
/// let (ada_peer, _) = connected_pair(Router::new(), Router::new());
/// let (bob_peer, _) = connected_pair(Router::new(), Router::new());
/// let ada = rooms.join("lobby", ada_peer, "ada").await?;
/// let _bob = rooms.join("lobby", bob_peer, "bob").await?;
/// assert_eq!(rooms.members("lobby").await?.len(), 2);
/// ada.notify_others("handleMessage", ("ada", "hello")).await?; // bob gets it
/// ada.leave(); // bob gets userLeft ["ada"]
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Rooms {
    shared: Arc<Shared>,
    #[cfg(feature = "redis")]
    broker: Option<Arc<broker::Broker>>,
    /// Stops the link task when the last handle is gone.
    #[cfg(feature = "redis")]
    _stop: Option<Arc<tokio_util::sync::DropGuard>>,
}

impl fmt::Debug for Rooms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rooms")
            .field("node", &self.node())
            .field("rooms", &self.shared.rooms().len())
            .finish_non_exhaustive()
    }
}

/// One peer's membership of a room.
///
/// ```
/// use rpcpeer::group::SlowMember;
/// use rpcpeer::rooms::{RoomOptions, Rooms};
/// use rpcpeer::{testing::connected_pair, Router};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpcpeer::rooms::RoomError> {
/// let rooms = Rooms::new(RoomOptions::new(64, SlowMember::DropOldest));
/// let (ada_peer, _) = connected_pair(Router::new(), Router::new());
/// let ada = rooms.join("lobby", ada_peer, "ada").await?;
/// assert_eq!(ada.room(), "lobby");
/// assert_eq!(ada.meta().get(), r#""ada""#);
/// ada.set_meta("ada (away)").await?;
/// assert_eq!(rooms.members("lobby").await?[0].meta.get(), r#""ada (away)""#);
/// ada.leave();
/// ada.left().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RoomMember {
    member: Member,
    room: Arc<Room>,
    rooms: Rooms,
}

impl fmt::Debug for RoomMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoomMember")
            .field("room", &self.room.name)
            .field("id", &self.member.id())
            .finish_non_exhaustive()
    }
}

impl Rooms {
    /// Rooms within this process.
    pub fn new(options: RoomOptions) -> Self {
        Self::numbered_from(options, 1)
    }

    fn numbered_from(options: RoomOptions, first_member_id: u64) -> Self {
        Self {
            shared: Arc::new(Shared {
                options,
                rooms: Mutex::new(HashMap::new()),
                membership: tokio::sync::Mutex::new(()),
                watchers: tokio_util::task::TaskTracker::new(),
                first_member_id,
            }),
            #[cfg(feature = "redis")]
            broker: None,
            #[cfg(feature = "redis")]
            _stop: None,
        }
    }

    /// Rooms shared by every node that names the same Redis and prefix.
    ///
    /// Returns at once: a task connects to Redis, and reconnects with
    /// backoff whenever the link drops; [`Rooms::watch_link`] follows it.
    /// Until it is up, rooms work on this node alone (see
    /// [`RoomError::LocalOnly`]).
    ///
    /// # Errors
    /// [`RoomError::BadUrl`] when `config`'s URL is not a Redis URL.
    ///
    /// # Panics
    /// When called outside a tokio runtime (the link task is spawned).
    #[cfg(feature = "redis")]
    pub fn redis(options: RoomOptions, config: RedisConfig) -> Result<Self, RoomError> {
        // NB: a member is known in Redis by its number and its node's name,
        // and a node restarted under the same name (or a second one given
        // it by mistake) must not take the numbers of members it does not
        // have: their departures would never be announced. Numbering from
        // the microseconds since 1970 keeps each process's numbers past
        // those of any before it (one join per microsecond would be needed
        // to catch up), and under 2^53, which JavaScript reads exactly.
        let first_member_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |since| u64::try_from(since.as_micros()).unwrap_or(1));
        let mut rooms = Self::numbered_from(options, first_member_id);
        let options = &rooms.shared.options;
        let broker = Arc::new(broker::Broker::new(
            config,
            options.joined.clone(),
            options.left.clone(),
        )?);
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(broker.clone().run(rooms.shared.clone(), stop.clone()));
        rooms.broker = Some(broker);
        rooms._stop = Some(Arc::new(stop.drop_guard()));
        Ok(rooms)
    }

    /// This node's name (empty for rooms within one process).
    pub fn node(&self) -> &str {
        #[cfg(feature = "redis")]
        if let Some(broker) = &self.broker {
            return broker.node();
        }
        ""
    }

    /// Completes once every member that joined has left and its departure
    /// is registered: announced to the room and, with Redis, to the other
    /// nodes (or kept for when the link is back, while it is down). A
    /// server that stops gracefully awaits this once its connections have
    /// closed: exiting before would leave the other nodes to learn of its
    /// members' departures only when their presence expires.
    ///
    /// ```
    /// use rpcpeer::group::SlowMember;
    /// use rpcpeer::rooms::{RoomOptions, Rooms};
    /// use rpcpeer::{testing::connected_pair, Router};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rpcpeer::rooms::RoomError> {
    /// let rooms = Rooms::new(RoomOptions::new(64, SlowMember::DropOldest));
    /// let (ada, _) = connected_pair(Router::new(), Router::new());
    /// rooms.join("lobby", ada.clone(), "ada").await?;
    /// ada.close().await; // the server stops: its connections close
    /// rooms.settled().await;
    /// assert!(rooms.members("lobby").await?.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn settled(&self) {
        // NB: a closed tracker still takes tasks: a member that joins later
        // is waited for too, by whoever awaits this then.
        self.shared.watchers.close();
        self.shared.watchers.wait().await;
    }

    /// The state of the link to Redis; `None` for rooms within one process.
    #[cfg(feature = "redis")]
    pub fn link_state(&self) -> Option<LinkState> {
        self.broker.as_ref().map(|broker| broker.state())
    }

    /// Follows the state of the link to Redis (each change is also
    /// logged); `None` for rooms within one process.
    #[cfg(feature = "redis")]
    pub fn watch_link(&self) -> Option<tokio::sync::watch::Receiver<LinkState>> {
        self.broker.as_ref().map(|broker| broker.watch())
    }

    /// Adds `peer` to `room` (creating the room if it has no members on
    /// this node) with the application's `meta`; it gets every push to the
    /// room from now on until it leaves, which it does by itself when its
    /// connection closes.
    ///
    /// With Redis, the member is added to the room's presence (which other
    /// nodes list and announce) when Redis can be reached, and otherwise as
    /// soon as it can again; the join itself never fails for want of Redis.
    ///
    /// # Errors
    /// [`RoomError::NoConnection`] for a [detached](Peer::is_detached) peer,
    /// [`RoomError::Meta`] when `meta` is not JSON,
    /// [`RoomError::NameTooLong`] for a name over [`MAX_ROOM_NAME_LEN`].
    ///
    /// # Cancel safety
    /// Dropping the future before it completes may leave the peer joined
    /// (it leaves when its connection closes).
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub async fn join(
        &self,
        room: &str,
        peer: Peer,
        meta: impl Serialize,
    ) -> Result<RoomMember, RoomError> {
        check_name(room)?;
        if peer.is_detached() {
            return Err(RoomError::NoConnection);
        }
        let meta = serde_json::value::to_raw_value(&meta).map_err(RoomError::Meta)?;
        let _membership = self.shared.membership.lock().await;
        let (room, created) = {
            let mut rooms = self.shared.rooms();
            match rooms.get(room) {
                Some(existing) => (existing.clone(), false),
                None => {
                    let options = &self.shared.options;
                    let group = Group::numbered_from(
                        options.capacity,
                        options.slow,
                        self.shared.first_member_id,
                    );
                    group.set_max_backlog_bytes(options.max_backlog_bytes);
                    let name: Arc<str> = room.into();
                    let new = Arc::new(Room {
                        name: name.clone(),
                        group,
                        #[cfg(feature = "redis")]
                        cursor: Mutex::default(),
                    });
                    rooms.insert(name, new.clone());
                    (new, true)
                }
            }
        };
        let member = room
            .group
            .join_with(peer, meta)
            .map_err(|_| RoomError::NoConnection)?;
        #[cfg(feature = "redis")]
        if let Some(broker) = &self.broker {
            broker.joined(&room, &member, created).await;
        }
        if self.is_local() {
            if let Some(method) = &self.shared.options.joined {
                room.group.push_raw(
                    method.clone(),
                    meta_params(&member.meta()),
                    Some(member.id()),
                );
            }
        }
        let _ = created;
        let joined = RoomMember {
            member,
            room,
            rooms: self.clone(),
        };
        self.shared.watchers.spawn(joined.clone().watch());
        Ok(joined)
    }

    fn is_local(&self) -> bool {
        #[cfg(feature = "redis")]
        if self.broker.is_some() {
            return false;
        }
        true
    }

    /// Pushes a notification to every member of `room`, on every node.
    ///
    /// # Errors
    /// [`RoomError::Params`] when the params are not an array or object,
    /// [`RoomError::NameTooLong`] for a name over [`MAX_ROOM_NAME_LEN`];
    /// with Redis, [`RoomError::LocalOnly`] while Redis is unreachable (the
    /// push went to this node's members only) and [`RoomError::Broker`]
    /// when Redis failed the push.
    ///
    /// # Cancel safety
    /// Dropping the future may or may not leave the push sent.
    pub async fn notify(
        &self,
        room: &str,
        method: &str,
        params: impl Serialize,
    ) -> Result<(), RoomError> {
        check_name(room)?;
        let params = to_params(method, &params).map_err(RoomError::Params)?;
        let local = self.shared.room(room);
        self.push(room, local.as_ref(), None, method, params).await
    }

    async fn push(
        &self,
        room: &str,
        local: Option<&Arc<Room>>,
        except: Option<MemberId>,
        method: &str,
        params: Option<Box<RawValue>>,
    ) -> Result<(), RoomError> {
        #[cfg(feature = "redis")]
        if let Some(broker) = &self.broker {
            return broker.push(room, local, except, method, params).await;
        }
        let _ = room;
        if let Some(local) = local {
            local
                .group
                .push_raw(method.into(), params.map(Arc::from), except);
        }
        Ok(())
    }

    /// The members of `room`, on every node (with Redis: those whose
    /// presence has not expired), in no particular order.
    ///
    /// # Errors
    /// [`RoomError::NameTooLong`] for a name over [`MAX_ROOM_NAME_LEN`];
    /// with Redis, [`RoomError::Unreachable`] while Redis cannot be reached
    /// and [`RoomError::Broker`] when it failed the command.
    pub async fn members(&self, room: &str) -> Result<Vec<MemberInfo>, RoomError> {
        check_name(room)?;
        #[cfg(feature = "redis")]
        if let Some(broker) = &self.broker {
            return broker.members(room).await;
        }
        Ok(self
            .shared
            .room(room)
            .map(|room| room.group.members())
            .unwrap_or_default())
    }

    /// The rooms that have members on this node.
    pub fn local_rooms(&self) -> Vec<String> {
        self.shared
            .rooms()
            .keys()
            .map(|name| name.to_string())
            .collect()
    }

    /// A member has left its room's group: announce it, and drop the room
    /// when it was the last on this node.
    async fn departed(&self, room: &Arc<Room>, member: &Member) {
        let _membership = self.shared.membership.lock().await;
        let last = room.group.is_empty();
        if last {
            // NB: out of the map first, so the link no longer delivers to it
            // and the next join makes (and subscribes) a new one.
            let mut rooms = self.shared.rooms();
            if rooms.get(&room.name).is_some_and(|r| Arc::ptr_eq(r, room)) {
                rooms.remove(&room.name);
            }
        }
        #[cfg(feature = "redis")]
        if let Some(broker) = &self.broker {
            broker.departed(room, member, last).await;
            return;
        }
        if let Some(method) = &self.shared.options.left {
            room.group
                .push_raw(method.clone(), meta_params(&member.meta()), None);
        }
    }
}

/// `[meta]`: the params of a join or departure announcement. (A RawValue
/// is JSON, so the array always is: `None` cannot happen.)
pub(crate) fn meta_params(meta: &RawValue) -> Option<Arc<RawValue>> {
    RawValue::from_string(format!("[{}]", meta.get()))
        .ok()
        .map(Arc::from)
}

impl RoomMember {
    /// This member's id (unique on its node).
    pub fn id(&self) -> MemberId {
        self.member.id()
    }

    /// The room's name.
    pub fn room(&self) -> &str {
        &self.room.name
    }

    /// The metadata given when it joined, or by the last
    /// [`RoomMember::set_meta`].
    pub fn meta(&self) -> Arc<RawValue> {
        self.member.meta()
    }

    /// Replaces the member's metadata (a new user name, say), which the
    /// room's member list and the departure announcement then show.
    ///
    /// # Errors
    /// [`RoomError::Meta`] when `meta` is not JSON; with Redis,
    /// [`RoomError::Unreachable`] or [`RoomError::Broker`] when the other
    /// nodes could not be told now. The new metadata stands on this node all
    /// the same, and the other nodes get it at the next refresh of the
    /// presence (every third of the presence TTL) once Redis is reachable.
    pub async fn set_meta(&self, meta: impl Serialize) -> Result<(), RoomError> {
        let meta = serde_json::value::to_raw_value(&meta).map_err(RoomError::Meta)?;
        self.member.set_meta(meta);
        #[cfg(feature = "redis")]
        if let Some(broker) = &self.rooms.broker {
            return broker.set_meta(&self.room, &self.member).await;
        }
        Ok(())
    }

    /// Pushes to every other member of the room, on every node.
    ///
    /// Returns when the push has been handed to this node's members (rooms
    /// within one process) or written to Redis, which delivers it to every
    /// node (this one included) in the room's order.
    ///
    /// # Errors
    /// As [`Rooms::notify`].
    ///
    /// # Cancel safety
    /// As [`Rooms::notify`].
    pub async fn notify_others(
        &self,
        method: &str,
        params: impl Serialize,
    ) -> Result<(), RoomError> {
        let params = to_params(method, &params).map_err(RoomError::Params)?;
        self.rooms
            .push(
                &self.room.name,
                Some(&self.room),
                Some(self.id()),
                method,
                params,
            )
            .await
    }

    /// Leaves the room; pushes not yet forwarded are dropped.
    pub fn leave(&self) {
        self.member.leave();
    }

    /// Completes when the member has left: by [`RoomMember::leave`],
    /// because its connection closed, or because it was too slow.
    pub async fn left(&self) {
        self.member.left().await;
    }

    /// Waits for the departure, then announces it and drops the room if it
    /// is now empty on this node.
    async fn watch(self) {
        self.member.left().await;
        self.rooms.departed(&self.room, &self.member).await;
    }
}

//! Broadcast groups: push one notification to many peers, where one slow reader never stalls the rest.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::log_limit::LogLimit;
use crate::peer::{to_params, Peer};

/// What happens to a member that does not read its pushes fast enough.
///
/// ```
/// use rpcpeer::group::{Group, SlowMember};
///
/// // A chat room: a member 256 messages behind misses the oldest ones.
/// let room = Group::new(256, SlowMember::DropOldest);
/// // A feed each member must see whole: one that falls behind is cut off.
/// let feed = Group::new(1024, SlowMember::Disconnect);
/// # let _ = (room, feed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowMember {
    /// Its oldest pending pushes are dropped (and the drop is logged); it
    /// stays in the group and gets the newest ones.
    DropOldest,
    /// It is disconnected and leaves the group.
    Disconnect,
}

/// Identifies a member within its group (with [`Rooms`](crate::rooms::Rooms)
/// across nodes: within its node).
///
/// ```
/// use rpcpeer::group::{Group, SlowMember};
/// use rpcpeer::{testing::connected_pair, Router};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpcpeer::Error> {
/// let room = Group::new(64, SlowMember::DropOldest);
/// let (to_ada, _ada) = connected_pair(Router::new(), Router::new());
/// let (to_bob, _bob) = connected_pair(Router::new(), Router::new());
/// let ada = room.join(to_ada)?;
/// let bob = room.join(to_bob)?;
/// assert_ne!(ada.id(), bob.id());
/// assert!(room.contains(ada.id()));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MemberId(u64);

impl MemberId {
    /// The number itself, as [`MemberInfo`] serializes it.
    pub fn get(self) -> u64 {
        self.0
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn from_raw(id: u64) -> Self {
        Self(id)
    }
}

/// A member as its group lists it ([`Group::members`],
/// [`Rooms::members`](crate::rooms::Rooms::members)).
///
/// ```
/// use rpcpeer::group::{Group, SlowMember};
/// use rpcpeer::{testing::connected_pair, Router};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpcpeer::Error> {
/// let room = Group::new(64, SlowMember::DropOldest);
/// let (to_ada, _ada) = connected_pair(Router::new(), Router::new());
/// let ada = room.join(to_ada)?;
/// let listed = room.members();
/// assert_eq!(listed[0].id, ada.id());
/// assert_eq!(listed[0].meta.get(), "null"); // `Group::join` gives no metadata
/// assert_eq!(serde_json::to_value(&listed[0]).unwrap()["node"], "");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberInfo {
    /// The node the member is connected to: the node name given to
    /// [`Rooms`](crate::rooms::Rooms), empty for a plain [`Group`].
    pub node: String,
    /// Its id, unique within its node.
    pub id: MemberId,
    /// The application's metadata given when it joined (a user name, say),
    /// as JSON; `null` for [`Group::join`].
    pub meta: Box<RawValue>,
}

/// What the group and the member's handles share: its departure and its
/// metadata (which [`Member::set_meta`] may change).
struct Slot {
    gone: CancellationToken,
    meta: Mutex<Arc<RawValue>>,
}

impl Slot {
    fn meta(&self) -> Arc<RawValue> {
        // Each use is one assignment or clone: a panic cannot leave it half-changed.
        self.meta
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[derive(Clone)]
struct Push {
    method: Arc<str>,
    params: Option<Arc<RawValue>>,
    except: Option<MemberId>,
}

struct Inner {
    tx: broadcast::Sender<Push>,
    members: Mutex<HashMap<MemberId, Arc<Slot>>>,
    next_id: AtomicU64,
    slow: SlowMember,
    capacity: usize,
    max_backlog_bytes: AtomicUsize,
}

impl Push {
    fn bytes(&self) -> usize {
        self.method.len() + self.params.as_ref().map_or(0, |p| p.get().len())
    }
}

/// The default of [`Group::set_max_backlog_bytes`].
pub const DEFAULT_MAX_BACKLOG_BYTES: usize = 1 << 20;

/// Peers that receive the same notifications: a chat room, a topic.
///
/// Each push is serialized once and stored once. It is not ordered with the
/// answer of the call that made it: a push to the caller itself goes
/// through the member's own task and usually arrives after the answer,
/// where [`Context::peer`](crate::Context::peer)`().notify` keeps a
/// handler's notifications before its answer. Every member has its own
/// task that forwards pushes to its connection, so a member whose socket is
/// slow falls behind alone; past `capacity` pushes behind, or pushes of more
/// than [`Group::set_max_backlog_bytes`] bytes, the group's [`SlowMember`]
/// policy applies to it. What a slow member holds beyond that is bounded by
/// its connection's [`Config`](crate::Config) (`max_command_bytes` and
/// `max_outbox_bytes`), so memory does not follow the size of the posts. Members leave by [`Member::leave`],
/// or by themselves when their connection closes. Only a peer with a
/// connection can join: a handler answering a one-shot HTTP request gets
/// [`Error::NoConnection`], which `?` turns into the JSON-RPC error
/// [`ErrorObject::NO_CONNECTION`](crate::ErrorObject::NO_CONNECTION) (-32004).
///
/// ```
/// use rpcpeer::{group::{Group, SlowMember}, testing::connected_pair, Router};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpcpeer::Error> {
/// let room = Group::new(64, SlowMember::DropOldest);
/// let (to_client, _) = connected_pair(Router::new(), Router::new());
/// let member = room.join(to_client)?;
/// assert_eq!(room.len(), 1);
/// room.notify("handleMessage", ("ada", "hello"))?;
/// member.leave();
/// assert_eq!(room.len(), 0);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Group {
    inner: Arc<Inner>,
}

/// One peer's membership of a [`Group`].
///
/// ```
/// use rpcpeer::group::{Group, SlowMember};
/// use rpcpeer::{testing::connected_pair, Router};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpcpeer::Error> {
/// let room = Group::new(64, SlowMember::DropOldest);
/// // Each pair's first peer is the server's handle to push to a client.
/// let (to_ada, _ada) = connected_pair(Router::new(), Router::new());
/// let (to_bob, _bob) = connected_pair(Router::new(), Router::new());
/// let ada = room.join(to_ada)?;
/// let bob = room.join(to_bob)?;
/// ada.notify_others("said", ["hello"])?;
/// bob.leave();
/// bob.left().await;
/// assert!(!room.contains(bob.id()));
/// assert!(room.contains(ada.id()));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Member {
    id: MemberId,
    slot: Arc<Slot>,
    group: Group,
}

impl Group {
    /// An empty group in which a member may fall `capacity` pushes behind
    /// before `slow` applies to it.
    ///
    /// Behind counts what the group holds for the member. In front of that
    /// sit its connection's queues, which fill first: its command queue
    /// ([`Config::command_queue`](crate::Config::command_queue)), its
    /// outbox (bounded in frames and bytes) and the socket's buffers in
    /// both kernels. A member that stops reading is therefore thousands of
    /// small pushes behind, or a few MiB, before `slow` applies; it learns
    /// nothing of the pushes still queued there when it is disconnected.
    pub fn new(capacity: usize, slow: SlowMember) -> Self {
        Self::numbered_from(capacity, slow, 1)
    }

    /// [`Group::new`], its members numbered from `first_id` on.
    pub(crate) fn numbered_from(capacity: usize, slow: SlowMember, first_id: u64) -> Self {
        let capacity = capacity.max(1);
        let (tx, _) = broadcast::channel(capacity);
        Self {
            inner: Arc::new(Inner {
                tx,
                members: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(first_id),
                slow,
                capacity,
                max_backlog_bytes: AtomicUsize::new(DEFAULT_MAX_BACKLOG_BYTES),
            }),
        }
    }

    /// How many bytes of pushes (method and params) a member may fall
    /// behind before the [`SlowMember`] policy applies to it (default
    /// [`DEFAULT_MAX_BACKLOG_BYTES`], 1 MiB), whatever `capacity` says.
    /// Takes effect from the next push on.
    pub fn set_max_backlog_bytes(&self, bytes: usize) {
        self.inner
            .max_backlog_bytes
            .store(bytes.max(1), Ordering::Relaxed);
    }

    /// How far a member may fall behind before its [`SlowMember`] policy
    /// applies: in pushes, and in bytes.
    pub(crate) fn backlog_limits(&self) -> (usize, usize) {
        let bytes = self.inner.max_backlog_bytes.load(Ordering::Relaxed);
        (self.inner.capacity, bytes)
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<MemberId, Arc<Slot>>> {
        // Each use is one map operation: a panic cannot leave it half-changed.
        self.inner
            .members
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `peer`; it gets every push from now on until it leaves.
    ///
    /// # Errors
    /// [`Error::NoConnection`] when `peer` is [detached](Peer::is_detached)
    /// (a one-shot HTTP call): it could never receive a push, and it would
    /// vanish at once while the caller believed it had joined.
    ///
    /// # Panics
    /// When called outside a tokio runtime (the forwarding task is spawned).
    pub fn join(&self, peer: Peer) -> Result<Member, Error> {
        self.join_with(peer, RawValue::NULL.to_owned())
    }

    /// [`Group::join`] with the application's metadata about the member
    /// (a user name, say), which [`Group::members`] lists.
    ///
    /// ```
    /// use rpcpeer::{group::{Group, SlowMember}, testing::connected_pair, Router};
    /// use serde_json::value::to_raw_value;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let room = Group::new(64, SlowMember::DropOldest);
    /// let (to_client, _) = connected_pair(Router::new(), Router::new());
    /// let ada = room.join_with(to_client, to_raw_value("ada")?)?;
    /// assert_eq!(room.members()[0].meta.get(), r#""ada""#);
    /// assert_eq!(room.members()[0].id, ada.id());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Group::join`].
    ///
    /// # Panics
    /// As [`Group::join`].
    pub fn join_with(&self, peer: Peer, meta: Box<RawValue>) -> Result<Member, Error> {
        if peer.is_detached() {
            return Err(Error::NoConnection);
        }
        let id = MemberId(self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        let slot = Arc::new(Slot {
            gone: CancellationToken::new(),
            meta: Mutex::new(Arc::from(meta)),
        });
        // Subscribe before the member is visible, so no push sent after
        // `join` returns is missed.
        let rx = self.inner.tx.subscribe();
        self.slots().insert(id, slot.clone());
        let member = Member {
            id,
            slot,
            group: self.clone(),
        };
        tokio::spawn(forward(
            member.clone(),
            peer,
            rx,
            self.inner.slow,
            self.inner.capacity,
        ));
        Ok(member)
    }

    /// Pushes a notification to every member; returns how many members
    /// it was handed to: those of the moment, and possibly a few that have
    /// just left (a member counts until its forwarding task has ended).
    ///
    /// # Errors
    /// [`Error::EncodeParams`] when the params are not an array or object.
    pub fn notify(&self, method: &str, params: impl Serialize) -> Result<usize, Error> {
        self.push(method, &params, None)
    }

    /// Pushes to every member but `except` (the sender of a chat message).
    /// Returns the same count as [`Group::notify`], which includes `except`
    /// while it is a member (it skips the push when it comes).
    ///
    /// # Errors
    /// As [`Group::notify`].
    pub fn notify_except(
        &self,
        except: MemberId,
        method: &str,
        params: impl Serialize,
    ) -> Result<usize, Error> {
        self.push(method, &params, Some(except))
    }

    fn push(
        &self,
        method: &str,
        params: &impl Serialize,
        except: Option<MemberId>,
    ) -> Result<usize, Error> {
        let params = to_params(method, params)?.map(Arc::from);
        Ok(self.push_raw(method.into(), params, except))
    }

    /// A push whose params are already JSON (an array, an object, or none):
    /// what [`Rooms`](crate::rooms::Rooms) delivers from other nodes.
    pub(crate) fn push_raw(
        &self,
        method: Arc<str>,
        params: Option<Arc<RawValue>>,
        except: Option<MemberId>,
    ) -> usize {
        let push = Push {
            method,
            params,
            except,
        };
        // An error only means there are no members right now.
        self.inner.tx.send(push).unwrap_or(0)
    }

    /// How many members the group has.
    pub fn len(&self) -> usize {
        self.slots().len()
    }

    /// Every member, with its metadata, in no particular order.
    pub fn members(&self) -> Vec<MemberInfo> {
        self.slots()
            .iter()
            .map(|(&id, slot)| MemberInfo {
                node: String::new(),
                id,
                meta: RawValue::to_owned(&slot.meta()),
            })
            .collect()
    }

    /// Whether the group has no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `id` is still a member.
    pub fn contains(&self, id: MemberId) -> bool {
        self.slots().contains_key(&id)
    }
}

impl Member {
    /// This member's id in its group.
    pub fn id(&self) -> MemberId {
        self.id
    }

    /// The group this is a membership of.
    pub fn group(&self) -> &Group {
        &self.group
    }

    /// The metadata given when it joined, or by the last [`Member::set_meta`].
    pub fn meta(&self) -> Arc<RawValue> {
        self.slot.meta()
    }

    /// Replaces the member's metadata (a new user name, say).
    pub fn set_meta(&self, meta: Box<RawValue>) {
        *self
            .slot
            .meta
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Arc::from(meta);
    }

    /// Leaves the group; pushes not yet forwarded are dropped.
    pub fn leave(&self) {
        self.group.slots().remove(&self.id);
        self.slot.gone.cancel();
    }

    /// Completes when the member has left: by [`Member::leave`], because its
    /// connection closed, or because the group disconnected it as too slow.
    /// Announce departures from here.
    pub async fn left(&self) {
        self.slot.gone.cancelled().await;
    }

    /// Whether the member has left.
    pub fn has_left(&self) -> bool {
        self.slot.gone.is_cancelled()
    }

    /// Pushes to every other member of the group.
    ///
    /// Returns [`Group::notify_except`]'s count, which counts this member
    /// too (it skips the push): the members the push was handed to are
    /// that count less one, while this member has not left.
    ///
    /// # Errors
    /// As [`Group::notify`].
    pub fn notify_others(&self, method: &str, params: impl Serialize) -> Result<usize, Error> {
        self.group.notify_except(self.id, method, params)
    }
}

/// Moves pushes from the group to one member's connection until it leaves.
///
/// While a push waits for room in the member's connection, the task keeps
/// taking new pushes from the group into its own backlog, so it notices when
/// the member falls `capacity` pushes behind and applies the policy then
/// (a task that only waited on the send would never find out).
async fn forward(
    member: Member,
    peer: Peer,
    mut rx: broadcast::Receiver<Push>,
    slow: SlowMember,
    capacity: usize,
) {
    let mut backlog: VecDeque<Push> = VecDeque::new();
    let mut backlog_bytes = 0usize;
    let mut dropped = 0u64;
    'pushes: loop {
        let push = match backlog.pop_front() {
            Some(push) => {
                backlog_bytes -= push.bytes();
                push
            }
            None => tokio::select! {
                // NB: biased so that a member that left gets nothing more,
                // even when pushes are waiting.
                biased;
                () = member.slot.gone.cancelled() => break,
                () = peer.closed() => break,
                push = rx.recv() => match push {
                    Ok(push) if push.except == Some(member.id) => continue,
                    Ok(push) => push,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        dropped += missed;
                        match slow {
                            SlowMember::DropOldest => continue,
                            SlowMember::Disconnect => break,
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            },
        };
        let params = push.params.as_deref().map(RawValue::to_owned);
        let send = peer.notify_attempt(&push.method, params);
        tokio::pin!(send);
        loop {
            tokio::select! {
                biased;
                () = member.slot.gone.cancelled() => break 'pushes,
                sent = &mut send => {
                    if sent.is_err() {
                        break 'pushes;
                    }
                    break;
                }
                next = rx.recv() => {
                    match next {
                        Ok(next) if next.except == Some(member.id) => {}
                        Ok(next) => {
                            backlog_bytes += next.bytes();
                            backlog.push_back(next);
                        }
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            dropped += missed;
                            // A burst overran even the ring: as slow as it gets.
                            if slow == SlowMember::Disconnect {
                                break 'pushes;
                            }
                        }
                        // The group is gone: send what is left, then stop.
                        Err(broadcast::error::RecvError::Closed) => {}
                    }
                    let max_bytes = member.group.inner.max_backlog_bytes.load(Ordering::Relaxed);
                    // NB: one push always stays, however large: the bound is
                    // on falling behind, not on the size of a post.
                    while backlog.len() > capacity
                        || (backlog_bytes > max_bytes && backlog.len() > 1)
                    {
                        match slow {
                            SlowMember::DropOldest => {
                                if let Some(old) = backlog.pop_front() {
                                    backlog_bytes -= old.bytes();
                                }
                                dropped += 1;
                            }
                            SlowMember::Disconnect => {
                                dropped += backlog.len() as u64;
                                break 'pushes;
                            }
                        }
                    }
                }
            }
        }
        if dropped > 0 && slow == SlowMember::DropOldest {
            log_dropped(member.id, dropped);
            dropped = 0;
        }
    }
    // NB: also when the member's connection ended before a push after the
    // drop went out (a reader too slow for the write timeout, say).
    if dropped > 0 && slow == SlowMember::DropOldest {
        log_dropped(member.id, dropped);
    }
    if dropped > 0 && slow == SlowMember::Disconnect {
        // NB: as for the drops, one line per period for the whole process:
        // a burst to a group of slow members is one event, not hundreds.
        static DISCONNECTED: LogLimit = LogLimit::new();
        match DISCONNECTED.allow() {
            Some(more) => tracing::warn!(
                member = member.id.0,
                behind = dropped,
                "slow group member disconnected{more}"
            ),
            None => tracing::debug!(
                member = member.id.0,
                behind = dropped,
                "slow group member disconnected"
            ),
        }
        member.leave();
        // Bounded by the connection's drain timeout even if it never reads.
        peer.close().await;
    }
    member.leave();
}

/// A member's oldest pushes were dropped: logged at warn once per period for
/// the whole process (the others at debug, counted in the next line).
fn log_dropped(member: MemberId, dropped: u64) {
    static DROPPED: LogLimit = LogLimit::new();
    match DROPPED.allow() {
        Some(more) => tracing::warn!(
            member = member.0,
            dropped,
            "slow group member: oldest pushes dropped{more}"
        ),
        None => tracing::debug!(
            member = member.0,
            dropped,
            "slow group member: oldest pushes dropped"
        ),
    }
}

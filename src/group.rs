//! Broadcast groups: push one notification to many peers, where one slow reader never stalls the rest.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
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

/// Identifies a member within its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId(u64);

#[derive(Clone)]
struct Push {
    method: Arc<str>,
    params: Option<Arc<RawValue>>,
    except: Option<MemberId>,
}

struct Inner {
    tx: broadcast::Sender<Push>,
    members: Mutex<HashMap<MemberId, CancellationToken>>,
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
/// Each push is serialized once and stored once. Every member has its own
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
    gone: CancellationToken,
    group: Group,
}

impl Group {
    /// An empty group in which a member may fall `capacity` pushes behind
    /// before `slow` applies to it.
    pub fn new(capacity: usize, slow: SlowMember) -> Self {
        let capacity = capacity.max(1);
        let (tx, _) = broadcast::channel(capacity);
        Self {
            inner: Arc::new(Inner {
                tx,
                members: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
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

    fn members(&self) -> std::sync::MutexGuard<'_, HashMap<MemberId, CancellationToken>> {
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
        if peer.is_detached() {
            return Err(Error::NoConnection);
        }
        let id = MemberId(self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        let gone = CancellationToken::new();
        // Subscribe before the member is visible, so no push sent after
        // `join` returns is missed.
        let rx = self.inner.tx.subscribe();
        self.members().insert(id, gone.clone());
        let member = Member {
            id,
            gone: gone.clone(),
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
    /// there were.
    ///
    /// # Errors
    /// [`Error::EncodeParams`] when the params are not an array or object.
    pub fn notify(&self, method: &str, params: impl Serialize) -> Result<usize, Error> {
        self.push(method, &params, None)
    }

    /// Pushes to every member but `except` (the sender of a chat message).
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
        let push = Push {
            method: method.into(),
            params,
            except,
        };
        // An error only means there are no members right now.
        Ok(self.inner.tx.send(push).unwrap_or(0))
    }

    /// How many members the group has.
    pub fn len(&self) -> usize {
        self.members().len()
    }

    /// Whether the group has no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `id` is still a member.
    pub fn contains(&self, id: MemberId) -> bool {
        self.members().contains_key(&id)
    }
}

impl Member {
    /// This member's id in its group.
    pub fn id(&self) -> MemberId {
        self.id
    }

    /// Leaves the group; pushes not yet forwarded are dropped.
    pub fn leave(&self) {
        self.group.members().remove(&self.id);
        self.gone.cancel();
    }

    /// Completes when the member has left: by [`Member::leave`], because its
    /// connection closed, or because the group disconnected it as too slow.
    /// Announce departures from here.
    pub async fn left(&self) {
        self.gone.cancelled().await;
    }

    /// Pushes to every other member of the group.
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
                () = member.gone.cancelled() => break,
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
                () = member.gone.cancelled() => break 'pushes,
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
            tracing::warn!(
                member = member.id.0,
                dropped,
                "slow group member: oldest pushes dropped"
            );
            dropped = 0;
        }
    }
    if dropped > 0 && slow == SlowMember::Disconnect {
        tracing::warn!(
            member = member.id.0,
            behind = dropped,
            "slow group member disconnected"
        );
        member.leave();
        // Bounded by the connection's drain timeout even if it never reads.
        peer.close().await;
    }
    member.leave();
}

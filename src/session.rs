//! Per-connection state shared by every handler on that connection.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// A typed store that lives as long as one connection: the logged-in user,
/// a chat nickname, whatever the application keeps per peer. Cloning gives
/// another handle to the same store.
///
/// Handlers of one connection run concurrently, so the store is behind a
/// mutex; it is held only for the length of one `get`/`insert` and never
/// across an `.await`.
///
/// ```
/// use rpcpeer::Session;
///
/// #[derive(Clone, PartialEq, Debug)]
/// struct User(String);
///
/// let session = Session::new();
/// session.insert(User("ada".into()));
/// assert_eq!(session.get::<User>(), Some(User("ada".into())));
/// assert_eq!(session.remove::<User>(), Some(User("ada".into())));
/// assert!(!session.contains::<User>());
/// ```
#[derive(Clone, Default)]
pub struct Session {
    values: Arc<Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>>,
}

impl Session {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<TypeId, Box<dyn Any + Send + Sync>>) -> R) -> R {
        // A panic while holding the lock cannot leave a half-written map: every
        // operation is a single HashMap call.
        let mut map = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut map)
    }

    /// Stores `value`, replacing (and returning) any earlier value of its type.
    pub fn insert<T: Any + Send + Sync>(&self, value: T) -> Option<T> {
        self.with(|m| m.insert(TypeId::of::<T>(), Box::new(value)))
            .and_then(|old| old.downcast().ok().map(|b| *b))
    }

    /// A copy of the stored value of type `T`.
    pub fn get<T: Any + Send + Sync + Clone>(&self) -> Option<T> {
        self.with(|m| {
            m.get(&TypeId::of::<T>())
                .and_then(|v| v.downcast_ref::<T>())
                .cloned()
        })
    }

    /// The stored value of type `T`, storing `value` first if there is none.
    #[cfg(feature = "macros")]
    pub(crate) fn get_or_insert<T: Any + Send + Sync + Clone>(&self, value: T) -> T {
        self.with(|m| {
            m.entry(TypeId::of::<T>())
                .or_insert_with(|| Box::new(value.clone()))
                .downcast_ref::<T>()
                .cloned()
                // The map is keyed by the value's own type: never taken.
                .unwrap_or(value)
        })
    }

    /// Whether a value of type `T` is stored.
    pub fn contains<T: Any + Send + Sync>(&self) -> bool {
        self.with(|m| m.contains_key(&TypeId::of::<T>()))
    }

    /// Runs `f` on the stored value of type `T`, without copying it.
    pub(crate) fn read<T: Any + Send + Sync, R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        self.with(|m| {
            f(m.get(&TypeId::of::<T>())
                .and_then(|v| v.downcast_ref::<T>()))
        })
    }

    /// Changes the stored value of type `T` (made with `T::default()` if
    /// there is none) in one step, so that concurrent handlers cannot lose
    /// each other's changes.
    pub(crate) fn update<T: Any + Send + Sync + Default, R>(
        &self,
        f: impl FnOnce(&mut T) -> R,
    ) -> R {
        self.with(|m| {
            let slot = m
                .entry(TypeId::of::<T>())
                .or_insert_with(|| Box::new(T::default()));
            match slot.downcast_mut::<T>() {
                Some(value) => f(value),
                // The map is keyed by the value's own type: never taken.
                None => f(&mut T::default()),
            }
        })
    }

    /// Takes the stored value of type `T` out.
    pub fn remove<T: Any + Send + Sync>(&self) -> Option<T> {
        self.with(|m| m.remove(&TypeId::of::<T>()))
            .and_then(|old| old.downcast().ok().map(|b| *b))
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.with(|m| m.len());
        f.debug_struct("Session").field("values", &n).finish()
    }
}

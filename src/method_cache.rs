//! A connection's own copy of the name of each method it has called, so that its calls do not write to the router's.

use std::sync::Arc;

use foldhash::HashMap;

use crate::router::{Entry, Router};

/// The methods one connection has called, each with a copy of its name
/// that only this connection's calls clone.
///
/// Every call owns its method's name (its context, its logs and its reply
/// outlive the frame). Were that a clone of the router's `Arc<str>`, every
/// call on every connection would write the same reference count, and
/// with connections served on several cores, the cache line holding it
/// (and the name's bytes the lookup compares) would move between cores on
/// every call: with 4 connections on 2 cores, about 8% of a
/// notification's server CPU. Per call, the router's entries are now only
/// read; an entry's own count is written when a connection first calls
/// its method and when the connection ends.
///
/// Only methods the router has are kept, and none is ever dropped: a
/// peer that calls every method once holds a copy of every name (the
/// name, and about 40 bytes of table, each) until it disconnects. A
/// connection that calls nothing allocates nothing. A connection's router
/// never changes (changing a router gives it a table of its own), so what
/// is kept here never goes stale.
pub(crate) struct MethodCache<S> {
    /// Where each name's method is in `seen`.
    at: HashMap<Arc<str>, usize>,
    /// This connection's copy of the name, and the router's entry.
    seen: Vec<(Arc<str>, Arc<Entry<S>>)>,
    /// Where in `seen` the last method found is: a connection often calls
    /// one method many times in a row (a stream of updates), and one
    /// compare of its name costs less than hashing it.
    last: usize,
}

impl<S: Send + Sync + 'static> MethodCache<S> {
    pub(crate) fn new() -> Self {
        Self {
            at: HashMap::default(),
            seen: Vec::new(),
            last: 0,
        }
    }

    /// The method called `name`, as [`Router::lookup`] finds it, with this
    /// connection's copy of its name.
    pub(crate) fn lookup(
        &mut self,
        router: &Router<S>,
        name: &str,
    ) -> Option<(&Arc<str>, &Arc<Entry<S>>)> {
        let again = (self.seen.get(self.last)).is_some_and(|(seen, _)| **seen == *name);
        let at = if again {
            self.last
        } else if let Some(&at) = self.at.get(name) {
            at
        } else {
            let entry = router.lookup(name)?.clone();
            let name: Arc<str> = Arc::from(name);
            self.seen.push((name.clone(), entry));
            self.at.insert(name, self.seen.len() - 1);
            self.seen.len() - 1
        };
        self.last = at;
        self.seen.get(at).map(|(name, entry)| (name, entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorObject;

    #[test]
    fn a_name_is_copied_once_per_connection_and_found_again() {
        let mut router: Router = Router::new();
        router.method("ping", || async { Ok::<_, ErrorObject>("pong") });
        router.method("echo", |p: Vec<i64>| async move { Ok::<_, ErrorObject>(p) });
        let shared = router.lookup("ping").map(|e| e.name.clone());
        let mut cache = MethodCache::new();

        let (first, entry) = cache
            .lookup(&router, "ping")
            .map(|(n, e)| (n.clone(), e.clone()))
            .unwrap();
        assert_eq!(&*first, "ping");
        assert_eq!(&*entry.name, "ping");
        // Not the router's name: this connection's own copy.
        assert!(!Arc::ptr_eq(&first, &shared.unwrap()));
        let (again, _) = cache.lookup(&router, "ping").unwrap();
        assert!(Arc::ptr_eq(&first, again), "the copy is made once");
        assert_eq!(&**cache.lookup(&router, "echo").unwrap().0, "echo");
        assert!(cache.lookup(&router, "nope").is_none());
        // An unknown name is not kept.
        assert_eq!(cache.seen.len(), 2);
        // Back and forth: each name finds its own method, whether it was
        // the last one found or not.
        for name in [
            "ping", "ping", "echo", "ping", "nope", "echo", "echo", "ping",
        ] {
            let found = cache.lookup(&router, name);
            let names = found.map(|(own, entry)| (own.to_string(), entry.name.to_string()));
            let want = (name != "nope").then(|| (name.to_owned(), name.to_owned()));
            assert_eq!(names, want, "looking up {name}");
        }
        assert_eq!(cache.seen.len(), 2);
    }
}

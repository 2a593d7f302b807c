//! A test kit (feature `testing`): two connected peers in memory, for testing handlers without sockets.

use crate::driver::Driver;
use crate::peer::Peer;
use crate::router::Router;
use crate::transport::memory_pair;

/// Two peers joined in memory, each serving its own router, with their
/// drivers spawned on the current tokio runtime. Returns `(a, b)`: `a`
/// calls `b`'s methods and `b` calls `a`'s.
///
/// ```
/// use rpcpeer::{ErrorObject, Router, testing::connected_pair};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpcpeer::Error> {
/// let mut server = Router::new();
/// server.method("echo", |(x,): (String,)| async move { Ok::<_, ErrorObject>(x) });
/// let (client, _server) = connected_pair(Router::new(), server);
/// assert_eq!(client.request::<String>("echo", ["hi"]).await?, "hi");
/// # Ok(()) }
/// ```
///
/// # Panics
/// When called outside a tokio runtime.
pub fn connected_pair<A, B>(router_a: Router<A>, router_b: Router<B>) -> (Peer, Peer)
where
    A: Send + Sync + 'static,
    B: Send + Sync + 'static,
{
    let (ta, tb) = memory_pair();
    let (peer_a, driver_a) = Driver::new(ta, router_a);
    let (peer_b, driver_b) = Driver::new(tb, router_b);
    tokio::spawn(driver_a);
    tokio::spawn(driver_b);
    (peer_a, peer_b)
}

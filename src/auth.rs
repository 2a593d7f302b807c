//! Who a caller is: identities, the application's [`Authenticator`], and the throttle on failed logins.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use foldhash::HashMap;
use serde_json::value::RawValue;

use crate::error::ErrorObject;
use crate::excerpt::excerpt;
use crate::handler::BoxFuture;
use crate::session::Session;

/// Who a caller is, as the [`Authenticator`] said. Kept in the
/// connection's [`Session`] once a login succeeds (a server may also put
/// one there itself, from a client certificate, say).
///
/// ```
/// use rpcpeer::auth::Identity;
///
/// let ada = Identity::new("ada").with_role("admin");
/// assert!(ada.has_role("admin"));
/// assert!(!ada.has_role("auditor"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user's name.
    pub user: String,
    /// The roles the user has, for [`MethodConfig::role`](crate::MethodConfig::role).
    pub roles: Vec<String>,
}

impl Identity {
    /// A user with no roles.
    pub fn new(user: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            roles: Vec::new(),
        }
    }

    /// This identity with `role` added.
    pub fn with_role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }

    /// Whether the user has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// What a caller offers to prove who it is.
///
/// ```
/// use rpcpeer::auth::Credentials;
///
/// // `ada:secret`, base64-encoded (RFC 7617).
/// let basic = Credentials::from_authorization("Basic YWRhOnNlY3JldA==");
/// let expected = Credentials::Password { user: "ada".into(), password: "secret".into() };
/// assert_eq!(basic, Some(expected));
/// let bearer = Credentials::from_authorization("Bearer t0k3n").unwrap();
/// // Debug output never shows a secret.
/// assert_eq!(format!("{bearer:?}"), "Token(..)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A name and password: a login method's params, HTTP `Basic`, or the
    /// leading params of a call (see [`Router::credentials_in_params`](crate::Router::credentials_in_params)).
    Password {
        /// The name given.
        user: String,
        /// The password given.
        password: String,
    },
    /// A bearer token: `Authorization: Bearer …`, or `?token=…` on a
    /// WebSocket URL (browsers cannot set headers on a WebSocket).
    Token(String),
}

impl Credentials {
    /// The credentials in an `Authorization` header value: `Bearer <token>`
    /// or `Basic <base64 of user:password>` (RFC 6750, RFC 7617; the scheme
    /// without regard to case). `None` for any other scheme or a value that
    /// does not decode.
    pub fn from_authorization(value: &str) -> Option<Self> {
        let (scheme, rest) = value.trim().split_once(' ')?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
            return Some(Self::Token(rest.to_owned()));
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        Some(Self::Password {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }
}

/// Never prints a password or token: logs and panics must not leak them.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Password { user, .. } => f
                .debug_struct("Password")
                .field("user", user)
                .finish_non_exhaustive(),
            Self::Token(_) => f.write_str("Token(..)"),
        }
    }
}

/// Why an [`Authenticator`] said no.
///
/// ```
/// use rpcpeer::auth::{AuthError, Credentials, Identity};
///
/// /// Tokens are checked against a store that may be down.
/// async fn check(credentials: Credentials, store_up: bool) -> Result<Identity, AuthError> {
///     if !store_up {
///         // Not the caller's fault: no failed login is counted.
///         return Err(AuthError::Unavailable("the token store is down".into()));
///     }
///     match credentials {
///         Credentials::Token(token) if token == "t0k3n" => Ok(Identity::new("ada")),
///         _ => Err(AuthError::Rejected),
///     }
/// }
///
/// # futures::executor::block_on(async {
/// assert_eq!(check(Credentials::Token("t0k3n".into()), true).await, Ok(Identity::new("ada")));
/// assert_eq!(check(Credentials::Token("guess".into()), true).await, Err(AuthError::Rejected));
/// # });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Unknown user, wrong password, or a token that is not (or no longer)
    /// valid. Counts as a failed login for the throttle.
    #[error("unknown user, wrong password or invalid token")]
    Rejected,
    /// The credentials could not be checked (the user store is down, say):
    /// not the caller's fault, so it does not count as a failure.
    #[error("the credentials could not be checked: {0}")]
    Unavailable(String),
}

/// Decides who a caller is. The application provides one to
/// [`Router::authenticator`](crate::Router::authenticator); a closure
/// `Fn(Credentials) -> impl Future<Output = Result<Identity, AuthError>>`
/// is one.
///
/// ```
/// use rpcpeer::auth::{AuthError, Credentials, Identity};
/// use rpcpeer::{Context, ErrorObject, Router};
///
/// let mut router = Router::new();
/// router.authenticator(|credentials: Credentials| async move {
///     match credentials {
///         Credentials::Password { user, password } if user == "ada" && password == "secret" => {
///             Ok(Identity::new(user).with_role("admin"))
///         }
///         _ => Err(AuthError::Rejected),
///     }
/// });
/// router
///     .method("whoami", |cx: Context| async move {
///         Ok::<_, ErrorObject>(cx.identity().map(|id| id.user))
///     })
///     .authenticated();
/// ```
pub trait Authenticator: Send + Sync + 'static {
    /// Checks `credentials`: who they belong to, or why not.
    fn authenticate(&self, credentials: Credentials) -> BoxFuture<Result<Identity, AuthError>>;
}

impl<F, Fut> Authenticator for F
where
    F: Fn(Credentials) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Identity, AuthError>> + Send + 'static,
{
    fn authenticate(&self, credentials: Credentials) -> BoxFuture<Result<Identity, AuthError>> {
        Box::pin(self(credentials))
    }
}

/// Who may call a method; set with [`MethodConfig::authenticated`](crate::MethodConfig::authenticated)
/// and [`MethodConfig::role`](crate::MethodConfig::role).
///
/// ```
/// use rpcpeer::{auth::Access, ErrorObject, Router};
///
/// let mut router = Router::new();
/// router.method("audit", || async { Ok::<_, ErrorObject>("clean") }).role("auditor");
/// router.method("ping", || async { Ok::<_, ErrorObject>("pong") });
/// assert_eq!(router.method_info("audit").unwrap().access(), &Access::Role("auditor".into()));
/// assert_eq!(router.method_info("ping").unwrap().access(), &Access::Public);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Access {
    /// Anyone (the default).
    #[default]
    Public,
    /// Any authenticated caller.
    Authenticated,
    /// An authenticated caller with this role.
    Role(String),
}

/// The address of the peer a session belongs to. `ws_server::WsServer`
/// puts it in each connection's (and HTTP request's) session; a server of
/// its own should too, since failed logins are also counted per address.
///
/// ```
/// use rpcpeer::{auth::RemoteAddr, transport::memory_pair, Driver, Router, Session};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // As a server does for each connection it accepts:
/// let remote = RemoteAddr("192.0.2.7:50000".parse().unwrap());
/// let session = Session::new();
/// session.insert(remote);
/// let (transport, _other_end) = memory_pair();
/// let (_peer, driver) = Driver::builder(transport, Router::new()).session(session).build();
/// assert_eq!(driver.session().get::<RemoteAddr>(), Some(remote));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// How many failed logins are allowed before further attempts are refused
/// at once, without asking the [`Authenticator`]. Set with
/// [`Router::login_limits`](crate::Router::login_limits).
///
/// Failures are counted in fixed windows: after `per_connection` failures
/// within one `window` on one connection (or `per_address` from one
/// address), attempts are refused until the window that began with the
/// first failure ends. An attempt counts as a failure from its start
/// until it succeeds, so attempts made at once (a batch) cannot get past
/// the limit.
///
/// ```
/// use std::time::Duration;
/// use rpcpeer::{auth::LoginLimits, Router};
///
/// let mut router = Router::new();
/// // Three tries per connection every five minutes; the rest as by default.
/// router.login_limits(LoginLimits {
///     per_connection: 3,
///     window: Duration::from_secs(300),
///     ..LoginLimits::default()
/// });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failed logins one connection (or one HTTP request) may make per
    /// window. Default 5.
    pub per_connection: u32,
    /// Failed logins from one IP address (IPv6: one /64) per window, over
    /// all its connections. Default 20.
    pub per_address: u32,
    /// Default one minute.
    pub window: Duration,
    /// Addresses remembered at once (about 64 bytes each). Past it, expired
    /// windows are forgotten, then the oldest. Default 10,000.
    pub max_addresses: usize,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            per_connection: 5,
            per_address: 20,
            window: Duration::from_secs(60),
            max_addresses: 10_000,
        }
    }
}

/// What a login attempt is refused by (in [`LoginError::Throttled`]).
///
/// ```
/// use rpcpeer::auth::Scope;
///
/// assert_eq!(Scope::Address.to_string(), "address");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Too many failures on this connection.
    Connection,
    /// Too many failures from this address.
    Address,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connection => "connection",
            Self::Address => "address",
        })
    }
}

/// Why a login did not succeed ([`Context::login`](crate::Context::login)).
/// A login method can pass it on with `?`: it becomes the error object
/// the caller should see.
///
/// ```
/// use std::time::Duration;
/// use rpcpeer::auth::{LoginError, Scope};
/// use rpcpeer::ErrorObject;
///
/// let throttled = LoginError::Throttled { scope: Scope::Address, retry_after: Duration::from_secs(30) };
/// assert_eq!(throttled.to_string(), "too many failed logins from this address; retry in 30 s");
/// let answer = ErrorObject::from(throttled);
/// assert_eq!(answer.code, ErrorObject::TOO_MANY_LOGINS);
/// assert_eq!(answer.data.unwrap().get(), r#"{"retry_after":30}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The router has no [`Authenticator`].
    #[error("this server has no authenticator: nobody can log in")]
    NoAuthenticator,
    /// Refused by the throttle without asking the authenticator.
    #[error("too many failed logins from this {scope}; retry in {} s", retry_after.as_secs().max(1))]
    Throttled {
        /// What hit its limit.
        scope: Scope,
        /// How long until attempts are taken again.
        retry_after: Duration,
    },
    /// The authenticator said no.
    #[error("login failed: {0}")]
    Failed(#[from] AuthError),
}

impl From<LoginError> for ErrorObject {
    /// -32006 when throttled (with `data: {"retry_after": seconds}`),
    /// -32001 for rejected credentials, -32603 otherwise.
    fn from(err: LoginError) -> Self {
        let code = match &err {
            LoginError::Throttled { .. } => ErrorObject::TOO_MANY_LOGINS,
            LoginError::Failed(AuthError::Rejected) => ErrorObject::UNAUTHORIZED,
            _ => ErrorObject::INTERNAL_ERROR,
        };
        let object = ErrorObject::new(code, err.to_string());
        match err {
            LoginError::Throttled { retry_after, .. } => object.with_data(serde_json::json!({
                "retry_after": retry_after.as_secs().max(1)
            })),
            _ => object,
        }
    }
}

/// A fixed window of failures.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

impl Window {
    /// Counts one attempt, or says how long until one is taken.
    fn take(
        slot: &mut Option<Self>,
        now: Instant,
        limit: u32,
        len: Duration,
    ) -> Result<(), Duration> {
        if slot.is_some_and(|w| now.duration_since(w.start) >= len) {
            *slot = None;
        }
        let window = slot.get_or_insert(Window {
            start: now,
            failures: 0,
        });
        if window.failures >= limit {
            return Err((window.start + len).saturating_duration_since(now));
        }
        window.failures += 1;
        Ok(())
    }

    fn refund(slot: &mut Option<Self>) {
        if let Some(w) = slot {
            w.failures = w.failures.saturating_sub(1);
        }
    }
}

/// A connection's failures, kept in its session.
#[derive(Default)]
struct ConnectionFailures(Option<Window>);

/// An address as the throttle counts it: IPv6 by /64, the block one host
/// usually has to itself, so that it cannot get a fresh count per address.
fn address_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// A router's authentication: its authenticator and the throttle's state.
pub(crate) struct Auth {
    authenticator: Arc<dyn Authenticator>,
    pub(crate) limits: LoginLimits,
    pub(crate) credentials_in_params: bool,
    addresses: Mutex<HashMap<IpAddr, Window>>,
}

impl Auth {
    pub(crate) fn new(
        authenticator: Arc<dyn Authenticator>,
        limits: LoginLimits,
        in_params: bool,
    ) -> Self {
        Self {
            authenticator,
            limits,
            credentials_in_params: in_params,
            addresses: Mutex::default(),
        }
    }

    /// Checks `credentials` through the throttle and, on success, stores
    /// the identity in `session`.
    pub(crate) async fn login(
        &self,
        session: &Session,
        credentials: Credentials,
    ) -> Result<Identity, LoginError> {
        let address = session
            .get::<RemoteAddr>()
            .map(|RemoteAddr(a)| address_key(a.ip()));
        self.reserve(session, address)?;
        let result = self.authenticator.authenticate(credentials).await;
        if !matches!(result, Err(AuthError::Rejected)) {
            self.refund(session, address);
        }
        match result {
            Ok(identity) => {
                crate::observe::logged_in(&identity);
                session.insert(identity.clone());
                Ok(identity)
            }
            Err(err) => {
                tracing::info!(remote = ?address, "login failed: {err}");
                Err(err.into())
            }
        }
    }

    /// Counts an attempt as a failure on the connection and the address.
    fn reserve(&self, session: &Session, address: Option<IpAddr>) -> Result<(), LoginError> {
        let LoginLimits {
            per_connection,
            per_address,
            window,
            ..
        } = self.limits;
        let now = Instant::now();
        session
            .update(|f: &mut ConnectionFailures| {
                Window::take(&mut f.0, now, per_connection, window)
            })
            .map_err(|retry_after| LoginError::Throttled {
                scope: Scope::Connection,
                retry_after,
            })?;
        let Some(address) = address else {
            return Ok(());
        };
        let taken = self.with_addresses(|table| {
            if !table.contains_key(&address) && table.len() >= self.limits.max_addresses {
                make_room(table, now, window, self.limits.max_addresses);
            }
            let mut slot = table.get(&address).copied();
            let taken = Window::take(&mut slot, now, per_address, window);
            if let Some(w) = slot {
                table.insert(address, w);
            }
            taken
        });
        taken.map_err(|retry_after| {
            session.update(|f: &mut ConnectionFailures| Window::refund(&mut f.0));
            // A peer can retry at will (over new connections): one warn
            // line per period, the rest at debug.
            static THROTTLED: crate::log_limit::LogLimit = crate::log_limit::LogLimit::new();
            match THROTTLED.allow() {
                Some(more) => {
                    tracing::warn!(%address, "failed logins throttled for this address{more}")
                }
                None => tracing::debug!(%address, "failed logins throttled for this address"),
            }
            LoginError::Throttled {
                scope: Scope::Address,
                retry_after,
            }
        })
    }

    fn refund(&self, session: &Session, address: Option<IpAddr>) {
        session.update(|f: &mut ConnectionFailures| Window::refund(&mut f.0));
        if let Some(address) = address {
            self.with_addresses(|table| {
                let mut slot = table.get(&address).copied();
                Window::refund(&mut slot);
                if let Some(w) = slot {
                    table.insert(address, w);
                }
            });
        }
    }

    fn with_addresses<R>(&self, f: impl FnOnce(&mut HashMap<IpAddr, Window>) -> R) -> R {
        // Every change is a single insert or retain: a panic cannot leave
        // the table half-written.
        f(&mut self
            .addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }
}

/// Forgets expired windows; if that leaves the table full, the oldest one.
fn make_room(table: &mut HashMap<IpAddr, Window>, now: Instant, len: Duration, max: usize) {
    table.retain(|_, w| now.duration_since(w.start) < len);
    if table.len() >= max {
        if let Some(oldest) = table.iter().min_by_key(|(_, w)| w.start).map(|(a, _)| *a) {
            table.remove(&oldest);
        }
    }
}

/// Whether the caller of `method` in `session` has the access it needs:
/// -32001 without an identity, -32005 without the role.
pub(crate) fn check(access: &Access, method: &str, session: &Session) -> Result<(), ErrorObject> {
    session.read(|identity: Option<&Identity>| match (access, identity) {
        (Access::Public, _) => Ok(()),
        (_, None) => Err(unauthorized(method)),
        (Access::Authenticated, Some(_)) => Ok(()),
        (Access::Role(role), Some(id)) if id.has_role(role) => Ok(()),
        (Access::Role(role), Some(id)) => Err(ErrorObject::new(
            ErrorObject::FORBIDDEN,
            format!(
                "Forbidden: `{}` needs the role `{role}`, which `{}` does not have",
                excerpt(method),
                excerpt(&id.user)
            ),
        )),
    })
}

pub(crate) fn unauthorized(method: &str) -> ErrorObject {
    ErrorObject::new(
        ErrorObject::UNAUTHORIZED,
        format!(
            "Authentication required: `{}` needs an authenticated caller; log in first",
            excerpt(method)
        ),
    )
}

/// Leading `user, password` strings of a params array, and the params
/// without them; `None` when the params do not start with two strings.
pub(crate) fn split_credentials(
    params: Option<&RawValue>,
) -> Option<(Credentials, Option<Box<RawValue>>)> {
    let items: Vec<&RawValue> = serde_json::from_str(params?.get()).ok()?;
    let [user, password, rest @ ..] = items.as_slice() else {
        return None;
    };
    let user: String = serde_json::from_str(user.get()).ok()?;
    let password: String = serde_json::from_str(password.get()).ok()?;
    let rest = if rest.is_empty() {
        None
    } else {
        let text = format!(
            "[{}]",
            rest.iter().map(|r| r.get()).collect::<Vec<_>>().join(",")
        );
        Some(RawValue::from_string(text).ok()?)
    };
    Some((Credentials::Password { user, password }, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_headers_decode() {
        assert_eq!(
            Credentials::from_authorization("Bearer abc"),
            Some(Credentials::Token("abc".into()))
        );
        assert_eq!(
            Credentials::from_authorization("basic YWRhOnNlO2NyZXQ="),
            Some(Credentials::Password {
                user: "ada".into(),
                password: "se;cret".into()
            })
        );
        assert_eq!(Credentials::from_authorization("Digest x"), None);
        assert_eq!(Credentials::from_authorization("Basic !!"), None);
        assert_eq!(
            format!("{:?}", Credentials::Token("abc".into())),
            "Token(..)"
        );
    }

    #[test]
    fn a_window_refuses_past_its_limit_until_it_ends() {
        let (len, start) = (Duration::from_secs(60), Instant::now());
        let mut slot = None;
        for _ in 0..3 {
            assert_eq!(Window::take(&mut slot, start, 3, len), Ok(()));
        }
        let later = start + Duration::from_secs(20);
        assert_eq!(
            Window::take(&mut slot, later, 3, len),
            Err(Duration::from_secs(40))
        );
        Window::refund(&mut slot);
        assert_eq!(Window::take(&mut slot, later, 3, len), Ok(()));
        assert_eq!(Window::take(&mut slot, start + len, 3, len), Ok(()));
    }

    #[test]
    fn the_address_table_stays_within_its_bound() {
        let auth = Auth::new(
            Arc::new(|_: Credentials| async { Err(AuthError::Rejected) }),
            LoginLimits {
                max_addresses: 3,
                ..LoginLimits::default()
            },
            false,
        );
        for i in 0..10u8 {
            let session = Session::new();
            session.insert(RemoteAddr(SocketAddr::from(([10, 0, 0, i], 1))));
            let address = Some(IpAddr::from([10, 0, 0, i]));
            assert!(auth.reserve(&session, address).is_ok());
        }
        assert_eq!(auth.with_addresses(|t| t.len()), 3);
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        let a: IpAddr = "2001:db8::1".parse().unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "2001:db8::ffff:2".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(address_key(a), address_key(b));
    }

    #[test]
    fn leading_strings_are_taken_as_credentials() {
        let params = RawValue::from_string(r#"["ada", "pw", 1, {"x": 2}]"#.into()).ok();
        let (creds, rest) = split_credentials(params.as_deref()).unwrap_or_else(|| panic!("split"));
        assert_eq!(
            creds,
            Credentials::Password {
                user: "ada".into(),
                password: "pw".into()
            }
        );
        assert_eq!(rest.as_deref().map(RawValue::get), Some(r#"[1,{"x": 2}]"#));
        let params = RawValue::from_string(r#"["ada", 1]"#.into()).ok();
        assert!(split_credentials(params.as_deref()).is_none());
    }
}

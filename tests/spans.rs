//! What a connection tells `tracing`, captured by a subscriber of the test's own: spans around calls both ways, frames at `trace`.

mod common;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use common::{connect, serve, within};
use rpcpeer::auth::{AuthError, Credentials, Identity};
use rpcpeer::stream::Framing;
use rpcpeer::{Context, ErrorObject, Router};
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Record};
use tracing::{Event, Id, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

const NL: Framing = Framing::Newline;

type Fields = HashMap<String, String>;

#[derive(Debug, Clone)]
struct SpanSeen {
    name: String,
    fields: Fields,
}

#[derive(Debug, Clone)]
struct EventSeen {
    target: String,
    fields: Fields,
    /// The span it was logged in, with the fields that span had by then.
    span: Option<SpanSeen>,
}

/// Every span and event, with its fields as text.
#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<HashMap<u64, SpanSeen>>>,
    events: Arc<Mutex<Vec<EventSeen>>>,
}

struct Text<'a>(&'a mut Fields);

impl Visit for Text<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: LayerContext<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut Text(&mut fields));
        let name = attrs.metadata().name().to_owned();
        self.spans
            .lock()
            .unwrap()
            .insert(id.into_u64(), SpanSeen { name, fields });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: LayerContext<'_, S>) {
        if let Some(span) = self.spans.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Text(&mut span.fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, cx: LayerContext<'_, S>) {
        let mut fields = Fields::new();
        event.record(&mut Text(&mut fields));
        let span = cx.event_span(event).and_then(|span| {
            self.spans
                .lock()
                .unwrap()
                .get(&span.id().into_u64())
                .cloned()
        });
        self.events.lock().unwrap().push(EventSeen {
            target: event.metadata().target().to_owned(),
            fields,
            span,
        });
    }
}

impl Capture {
    fn spans(&self, name: &str) -> Vec<Fields> {
        let spans = self.spans.lock().unwrap();
        let mut found: Vec<_> = spans.iter().filter(|(_, s)| s.name == name).collect();
        found.sort_by_key(|(id, _)| **id);
        found.into_iter().map(|(_, s)| s.fields.clone()).collect()
    }

    fn span_of(&self, name: &str, method: &str) -> Fields {
        self.spans(name)
            .into_iter()
            .find(|f| f.get("method").map(String::as_str) == Some(method))
            .unwrap_or_else(|| panic!("no `{name}` span for `{method}`: {:?}", self.spans(name)))
    }

    /// The event whose message is `message`.
    fn event(&self, message: &str) -> EventSeen {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .find(|e| e.fields.get("message").map(String::as_str) == Some(message))
            .cloned()
            .unwrap_or_else(|| panic!("no event `{message}`"))
    }

    fn frames(&self) -> Vec<EventSeen> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter(|e| e.target == "rpcpeer::frames")
            .cloned()
            .collect()
    }
}

fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields.get(name).map(String::as_str)
}

/// A server whose handlers log from inside their calls and say which
/// connection they run on.
fn router() -> Router {
    let mut router = Router::new();
    router.authenticator(|credentials: Credentials| async move {
        match credentials {
            Credentials::Password { user, password } if password == "secret" => {
                Ok(Identity::new(user))
            }
            _ => Err(AuthError::Rejected),
        }
    });
    router.method("echo", |(x,): (Value,), cx: Context| async move {
        tracing::info!("inside echo");
        Ok::<_, ErrorObject>((x, cx.peer().connection_id()))
    });
    router.notification("note", |_: Value| async {
        tracing::info!("inside note");
    });
    router.method(
        "login",
        |(user, password): (String, String), cx: Context| async move {
            cx.login(Credentials::Password { user, password }).await?;
            Ok::<_, ErrorObject>(())
        },
    );
    router
        .method("whoami", |cx: Context| async move {
            tracing::info!("inside whoami");
            Ok::<_, ErrorObject>(cx.identity().map(|id| id.user))
        })
        .authenticated();
    router
}

#[tokio::test]
async fn every_call_runs_in_a_span_with_its_method_id_connection_and_caller() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let addr = serve(router(), NL).await;
    let (client, _driver) = connect(addr, NL, Router::new()).await;
    let (echoed, server_connection): (String, u64) = within("echo", client.request("echo", ["hi"]))
        .await
        .unwrap();
    assert_eq!(echoed, "hi");
    within("note", client.notify("note", [1])).await.unwrap();
    within("login", client.request::<()>("login", ("ada", "secret")))
        .await
        .unwrap();
    let me: Option<String> = within("whoami", client.request("whoami", ()))
        .await
        .unwrap();
    assert_eq!(me.as_deref(), Some("ada"));

    // The server's side: the span each handler ran in.
    let server = server_connection.to_string();
    let echo = capture.span_of("incoming", "echo");
    assert_eq!(field(&echo, "id"), Some("1"));
    assert_eq!(field(&echo, "connection"), Some(server.as_str()));
    assert_eq!(field(&echo, "caller"), None, "nobody logged in yet");
    let inside = capture.event("inside echo").span.expect("logged in a span");
    assert_eq!(inside.name, "incoming");
    assert_eq!(field(&inside.fields, "method"), Some("echo"));

    let note = capture.event("inside note").span.expect("logged in a span");
    assert_eq!(field(&note.fields, "method"), Some("note"));
    assert_eq!(field(&note.fields, "id"), None, "a notification has no id");
    assert_eq!(field(&note.fields, "connection"), Some(server.as_str()));

    // Who called: from the login on (the login's own span learns it too).
    assert_eq!(
        field(&capture.span_of("incoming", "login"), "caller"),
        Some("ada")
    );
    let whoami = capture
        .event("inside whoami")
        .span
        .expect("logged in a span");
    assert_eq!(field(&whoami.fields, "caller"), Some("ada"));
    assert_eq!(field(&whoami.fields, "id"), Some("3"));

    // The client's side: its calls, with their ids and its connection.
    let client_connection = client.connection_id().to_string();
    assert_ne!(client_connection, server);
    let out = capture.span_of("outgoing", "echo");
    assert_eq!(field(&out, "id"), Some("1"));
    assert_eq!(field(&out, "connection"), Some(client_connection.as_str()));
    let out = capture.span_of("outgoing", "note");
    assert_eq!(field(&out, "id"), None);
    assert_eq!(field(&out, "connection"), Some(client_connection.as_str()));
}

#[tokio::test]
async fn frames_in_and_out_are_traced_cut_to_an_excerpt() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let addr = serve(router(), NL).await;
    let (client, _driver) = connect(addr, NL, Router::new()).await;
    let small = r#"{"jsonrpc":"2.0","method":"echo","params":["hi"],"id":1}"#;
    let _: (String, u64) = within("echo", client.request("echo", ["hi"]))
        .await
        .unwrap();
    let big = "x".repeat(1 << 20);
    let (echoed, server): (String, u64) = within("a big echo", client.request("echo", [&big]))
        .await
        .unwrap();
    assert_eq!(echoed.len(), big.len());

    let frames = capture.frames();
    let on = |connection: u64, message: &str| -> Vec<String> {
        frames
            .iter()
            .filter(|e| field(&e.fields, "message") == Some(message))
            .filter(|e| field(&e.fields, "connection") == Some(&connection.to_string()))
            .filter_map(|e| e.fields.get("frame").cloned())
            .collect()
    };
    // Both directions on both ends, a small frame whole.
    assert_eq!(on(client.connection_id(), "sent")[0], small);
    assert_eq!(on(server, "received")[0], small);
    assert!(on(server, "sent")[0].starts_with(r#"{"jsonrpc":"2.0","result":["hi","#));
    assert_eq!(on(client.connection_id(), "received").len(), 2);
    // A frame of a MiB: its start and its length, never the whole of it.
    for big_frame in [
        &on(server, "received")[1],
        &on(client.connection_id(), "received")[1],
    ] {
        assert!(big_frame.len() < 200, "{} bytes logged", big_frame.len());
        assert!(big_frame.ends_with("bytes in all)"), "{big_frame}");
    }
}

#[tokio::test]
async fn with_the_levels_off_no_span_is_made() {
    let capture = Capture::default();
    let subscriber =
        tracing_subscriber::registry().with(capture.clone().with_filter(LevelFilter::INFO));
    let _guard = tracing::subscriber::set_default(subscriber);

    let addr = serve(router(), NL).await;
    let (client, _driver) = connect(addr, NL, Router::new()).await;
    let _: (String, u64) = within("echo", client.request("echo", ["hi"]))
        .await
        .unwrap();

    assert!(capture.spans.lock().unwrap().is_empty());
    assert!(capture.frames().is_empty());
    // Events at the levels on are still logged, outside any span of ours.
    assert!(capture.event("inside echo").span.is_none());
}

/// A burst that leaves many members behind is one event to the log, not
/// one line per member (the others go to debug, counted in the next line).
#[tokio::test]
async fn slow_group_members_are_logged_once_per_period_however_many() {
    use rpcpeer::group::{Group, SlowMember};
    use rpcpeer::transport::memory_pair;
    use rpcpeer::Driver;

    let capture = Capture::default();
    let subscriber =
        tracing_subscriber::registry().with(capture.clone().with_filter(LevelFilter::WARN));
    let _guard = tracing::subscriber::set_default(subscriber);

    let room = Group::new(1, SlowMember::Disconnect);
    let mut never_read = Vec::new();
    for _ in 0..10 {
        let (ours, theirs) = memory_pair();
        let (peer, driver) = Driver::new(ours, Router::new());
        tokio::spawn(driver);
        room.join(peer).unwrap();
        never_read.push(theirs);
    }
    for i in 0..2_000 {
        room.notify("tick", [i]).unwrap();
        if i % 64 == 0 {
            tokio::task::yield_now().await;
        }
    }
    within("every member to be disconnected", async {
        while !room.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    let events = capture.events.lock().unwrap();
    let lines: Vec<_> = events
        .iter()
        .filter_map(|e| e.fields.get("message"))
        .filter(|message| message.starts_with("slow group member"))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
}

/// A peer can call a panicking method at will: whichever way the handler
/// is written (here `sync_fn`, caught where the call is built), its panics
/// make one line at error per period, not one each.
#[tokio::test]
async fn handler_panics_are_logged_once_per_period() {
    let capture = Capture::default();
    let subscriber =
        tracing_subscriber::registry().with(capture.clone().with_filter(LevelFilter::ERROR));
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut server = Router::new();
    server.method(
        "boom",
        rpcpeer::sync_fn(|()| -> Result<(), ErrorObject> { panic!("boom") }),
    );
    let (client, _server) = rpcpeer::testing::connected_pair(Router::new(), server);
    for _ in 0..20 {
        let err = within("boom", client.request::<()>("boom", ())).await;
        assert!(err.is_err());
    }
    let events = capture.events.lock().unwrap();
    let lines = (events.iter())
        .filter_map(|e| e.fields.get("message"))
        .filter(|message| message.starts_with("handler panicked"))
        .count();
    assert_eq!(lines, 1);
}

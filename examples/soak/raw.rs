//! Connections on raw sockets: hand-written frames (newline-framed TCP, or WebSocket text messages), pipelined requests, batches, JSON-RPC 1.0, and drops in the middle of a call or of a frame.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::stats::{OpenGuard, Stats};
use crate::workload::{notification, Call, Ending, Op, Rng, Script, MIRROR};
use crate::{think, Over, Plan};

/// Runs one connection as `script` says.
pub(crate) async fn session(
    over: Over,
    plan: &Plan,
    rng: &mut Rng,
    stats: &Arc<Stats>,
    script: Script,
) {
    let link = match tokio::time::timeout(plan.reply_timeout, Link::connect(over, plan)).await {
        Ok(Ok(link)) => link,
        Ok(Err(err)) => return refused(stats, over, &err.to_string()).await,
        Err(_) => return refused(stats, over, "no connection within the reply timeout").await,
    };
    let _open = OpenGuard::new(stats);
    let mut conn = Conn {
        link,
        next_id: 0,
        pending: HashMap::new(),
        plan,
        stats,
    };
    if let Err(err) = conn.run(rng, script).await {
        stats.error(format!("raw {over:?}: {err}"));
    }
}

async fn refused(stats: &Stats, over: Over, why: &str) {
    stats.error(format!("raw {over:?}: cannot connect: {why}"));
    // A refused connection would otherwise be retried in a tight loop.
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The socket, framed by hand or by tungstenite.
enum Link {
    Tcp {
        read: BufReader<OwnedReadHalf>,
        write: OwnedWriteHalf,
    },
    Ws(Box<WebSocketStream<TcpStream>>),
}

impl Link {
    async fn connect(over: Over, plan: &Plan) -> io::Result<Link> {
        match over {
            Over::Tcp => {
                let socket = TcpStream::connect(&plan.tcp).await?;
                socket.set_nodelay(true)?;
                let (read, write) = socket.into_split();
                Ok(Link::Tcp {
                    read: BufReader::new(read),
                    write,
                })
            }
            Over::Ws => {
                let addr = plan.ws.trim_start_matches("ws://").trim_end_matches('/');
                let socket = TcpStream::connect(addr).await?;
                socket.set_nodelay(true)?;
                let (ws, _) = tokio_tungstenite::client_async(plan.ws.as_str(), socket)
                    .await
                    .map_err(io::Error::other)?;
                Ok(Link::Ws(Box::new(ws)))
            }
        }
    }

    /// Writes `frames` in one go: one write call on TCP, one flush on WebSocket.
    async fn send(&mut self, frames: &[String]) -> io::Result<()> {
        match self {
            Link::Tcp { write, .. } => {
                let mut bytes = String::new();
                for frame in frames {
                    bytes.push_str(frame);
                    bytes.push('\n');
                }
                write.write_all(bytes.as_bytes()).await
            }
            Link::Ws(ws) => {
                for frame in frames {
                    ws.feed(Message::text(frame.as_str()))
                        .await
                        .map_err(io::Error::other)?;
                }
                ws.flush().await.map_err(io::Error::other)
            }
        }
    }

    /// The next frame, or `None` once the server has closed.
    async fn recv(&mut self) -> io::Result<Option<String>> {
        match self {
            Link::Tcp { read, .. } => loop {
                let mut line = String::new();
                if read.read_line(&mut line).await? == 0 {
                    return Ok(None);
                }
                let frame = line.trim_end_matches(['\n', '\r']);
                if !frame.is_empty() {
                    return Ok(Some(frame.to_owned()));
                }
            },
            // tungstenite answers pings by itself while we read.
            Link::Ws(ws) => loop {
                match ws.next().await {
                    None | Some(Ok(Message::Close(_))) => return Ok(None),
                    Some(Ok(Message::Text(text))) => return Ok(Some(text.as_str().to_owned())),
                    Some(Ok(Message::Binary(bytes))) => {
                        return String::from_utf8(bytes.to_vec())
                            .map(Some)
                            .map_err(io::Error::other)
                    }
                    Some(Ok(_)) => {}
                    Some(Err(err)) => return Err(io::Error::other(err)),
                }
            },
        }
    }

    /// Writes the first `cut` bytes of `frame`, never its end.
    async fn send_partial(&mut self, frame: &str, cut: usize, mask: [u8; 4]) -> io::Result<()> {
        match self {
            Link::Tcp { write, .. } => write.write_all(&frame.as_bytes()[..cut]).await,
            Link::Ws(ws) => {
                // A masked text frame (RFC 6455 §5.2) whose header announces
                // the whole length and whose payload stops at `cut`.
                let len = frame.len();
                let mut bytes = vec![0x81];
                match u16::try_from(len) {
                    Ok(short) if short < 126 => bytes.push(0x80 | short as u8),
                    Ok(medium) => {
                        bytes.push(0x80 | 126);
                        bytes.extend_from_slice(&medium.to_be_bytes());
                    }
                    Err(_) => {
                        bytes.push(0x80 | 127);
                        bytes.extend_from_slice(&(len as u64).to_be_bytes());
                    }
                }
                bytes.extend_from_slice(&mask);
                bytes.extend(
                    frame
                        .bytes()
                        .take(cut)
                        .enumerate()
                        .map(|(i, b)| b ^ mask[i % 4]),
                );
                ws.get_mut().write_all(&bytes).await
            }
        }
    }

    /// Closes our side and reads until the server closes its own.
    async fn close(&mut self) -> io::Result<()> {
        match self {
            Link::Tcp { write, .. } => write.shutdown().await,
            Link::Ws(ws) => WebSocketStream::close(ws.as_mut(), None)
                .await
                .map_err(io::Error::other),
        }
    }
}

/// A request sent and not yet answered.
struct Pending {
    call: Call,
    /// Sent in JSON-RPC 1.0 form, so answered in it.
    version1: bool,
}

struct Conn<'a> {
    link: Link,
    next_id: u64,
    /// By the id's JSON text.
    pending: HashMap<String, Pending>,
    plan: &'a Plan,
    stats: &'a Stats,
}

impl Conn<'_> {
    async fn run(&mut self, rng: &mut Rng, script: Script) -> Result<(), String> {
        let joined = rng.chance(self.plan.join_percent);
        if joined {
            let frame = self.request(Call::join(script.name), rng, false);
            self.send(&[frame]).await?;
            self.settle().await?;
        }
        for _ in 0..script.ops {
            if self.plan.over() {
                break;
            }
            think(self.plan, rng).await;
            self.step(Op::pick(rng, joined), rng).await?;
        }
        self.end(script.ending, rng).await
    }

    async fn step(&mut self, op: Op, rng: &mut Rng) -> Result<(), String> {
        let frames = match op {
            Op::Call => vec![self.request(Call::random(rng), rng, false)],
            Op::Pipelined => (0..rng.range(2, 8))
                .map(|_| self.request(Call::random(rng), rng, false))
                .collect(),
            Op::Notify => vec![self.notification(rng)],
            Op::Batch => {
                let mut entries = Vec::new();
                for _ in 0..rng.range(1, 10) {
                    entries.push(if rng.chance(25) {
                        self.notification(rng)
                    } else {
                        self.request(Call::random(rng), rng, false)
                    });
                }
                Stats::add(&self.stats.batches, 1);
                vec![format!("[{}]", entries.join(","))]
            }
            Op::Callback => vec![self.request(Call::callback(rng), rng, false)],
            Op::Post => vec![self.request(Call::post(rng), rng, false)],
            Op::Version1 => vec![self.request(Call::random(rng), rng, true)],
        };
        self.send(&frames).await?;
        // After a notification nothing is awaited: a reply to it would
        // surface as an unknown id while settling a later call.
        self.settle().await
    }

    /// The text of a request for `call`, now pending; its id is a number
    /// or, one time in four, a string.
    fn request(&mut self, call: Call, rng: &mut Rng, version1: bool) -> String {
        self.next_id += 1;
        let id = if rng.chance(25) {
            json!(format!("r{}", self.next_id))
        } else {
            json!(self.next_id)
        };
        let text = if version1 {
            json!({ "method": call.method, "params": call.params, "id": id })
        } else {
            json!({ "jsonrpc": "2.0", "method": call.method, "params": call.params, "id": id })
        }
        .to_string();
        Stats::add(&self.stats.calls, 1);
        self.pending
            .insert(id.to_string(), Pending { call, version1 });
        text
    }

    fn notification(&mut self, rng: &mut Rng) -> String {
        let (method, params) = notification(rng);
        Stats::add(&self.stats.notifications, 1);
        json!({ "jsonrpc": "2.0", "method": method, "params": params }).to_string()
    }

    async fn send(&mut self, frames: &[String]) -> Result<(), String> {
        self.link
            .send(frames)
            .await
            .map_err(|err| format!("write failed: {err}"))
    }

    /// Reads until every pending request is answered, answering the
    /// server's calls and counting its pushes meanwhile.
    async fn settle(&mut self) -> Result<(), String> {
        while !self.pending.is_empty() {
            let frame = match tokio::time::timeout(self.plan.reply_timeout, self.link.recv()).await
            {
                Ok(Ok(Some(frame))) => frame,
                Ok(Ok(None)) => {
                    return Err(format!(
                        "the server closed with {} calls unanswered",
                        self.pending.len()
                    ))
                }
                Ok(Err(err)) => {
                    return Err(format!(
                        "read failed with {} calls unanswered: {err}",
                        self.pending.len()
                    ))
                }
                Err(_) => {
                    return Err(format!(
                        "{} calls got no reply within {:?}",
                        self.pending.len(),
                        self.plan.reply_timeout
                    ))
                }
            };
            self.on_frame(&frame).await?;
        }
        Ok(())
    }

    async fn on_frame(&mut self, frame: &str) -> Result<(), String> {
        let value: Value = serde_json::from_str(frame)
            .map_err(|err| format!("the server sent bad JSON ({err}): {frame}"))?;
        let messages = match value {
            Value::Array(items) if items.is_empty() => {
                return Err("the server sent an empty array".to_owned())
            }
            Value::Array(items) => items,
            other => vec![other],
        };
        let mut answers = Vec::new();
        for message in messages {
            if let Some(answer) = self.on_message(message)? {
                answers.push(answer);
            }
        }
        if !answers.is_empty() {
            self.send(&answers).await?;
        }
        Ok(())
    }

    /// Checks one message from the server; returns our answer to a call of its.
    fn on_message(&mut self, message: Value) -> Result<Option<String>, String> {
        if let Some(method) = message.get("method").and_then(Value::as_str) {
            // The server writes in the version we last wrote in: after a
            // 1.0 request its pushes are 1.0 notifications (`"id": null`)
            // and its calls have no `jsonrpc` member.
            let id = message.get("id").filter(|id| !id.is_null());
            let version1 = message.get("jsonrpc").is_none();
            return match (method, id) {
                (MIRROR, Some(id)) => {
                    Stats::add(&self.stats.callbacks, 1);
                    let params = message.get("params").cloned().unwrap_or(Value::Null);
                    let answer = if version1 {
                        json!({ "result": params, "error": null, "id": id })
                    } else {
                        json!({ "jsonrpc": "2.0", "result": params, "id": id })
                    };
                    Ok(Some(answer.to_string()))
                }
                ("handleMessage" | "userLeft", None) => {
                    Stats::add(&self.stats.pushes, 1);
                    Ok(None)
                }
                _ => Err(format!("the server sent an unexpected message: {message}")),
            };
        }
        let key = message.get("id").map(Value::to_string).unwrap_or_default();
        let Some(pending) = self.pending.remove(&key) else {
            return Err(format!(
                "a reply with an id we are not waiting for: {message}"
            ));
        };
        let version_right = if pending.version1 {
            message.get("jsonrpc").is_none()
                && message.get("error").is_some()
                && message.get("result").is_some()
        } else {
            message.get("jsonrpc") == Some(&json!("2.0"))
        };
        let error = message.get("error").filter(|e| !e.is_null());
        let reply = match error {
            Some(error) => Err((
                error
                    .get("code")
                    .and_then(Value::as_i64)
                    .unwrap_or(i64::MIN),
                error.get("message").and_then(Value::as_str).unwrap_or(""),
            )),
            None => Ok(message.get("result").unwrap_or(&Value::Null)),
        };
        match pending.call.check(reply) {
            Ok(()) if version_right => Stats::add(&self.stats.checked, 1),
            Ok(()) => self
                .stats
                .error(format!("raw: a reply in the wrong version form: {message}")),
            Err(wrong) => self.stats.error(format!("raw: {wrong}")),
        }
        Ok(None)
    }

    async fn end(&mut self, ending: Ending, rng: &mut Rng) -> Result<(), String> {
        match ending {
            Ending::Graceful => {
                Stats::add(&self.stats.graceful, 1);
                self.link
                    .close()
                    .await
                    .map_err(|err| format!("close failed: {err}"))?;
                // Whatever still comes (pushes) is read; then the server closes.
                loop {
                    match tokio::time::timeout(self.plan.reply_timeout, self.link.recv()).await {
                        Ok(Ok(Some(frame))) => self.on_frame(&frame).await?,
                        Ok(Ok(None)) => return Ok(()),
                        // Our close raced a push the server was writing.
                        Ok(Err(err)) if err.kind() == io::ErrorKind::ConnectionReset => {
                            return Ok(())
                        }
                        Ok(Err(err)) => return Err(format!("after our close: {err}")),
                        Err(_) => return Err("the server did not close after we did".to_owned()),
                    }
                }
            }
            Ending::MidCall => {
                Stats::add(&self.stats.mid_call, 1);
                let frames: Vec<String> = (0..rng.range(1, 6))
                    .map(|_| self.request(Call::slow(rng), rng, false))
                    .collect();
                self.send(&frames).await?;
                self.drop_pending();
                Ok(())
            }
            Ending::MidFrame => {
                Stats::add(&self.stats.mid_frame, 1);
                if rng.chance(50) {
                    let frame = self.request(Call::slow(rng), rng, false);
                    self.send(&[frame]).await?;
                }
                let call = Call::random(rng);
                let frame = json!({ "jsonrpc": "2.0", "method": call.method, "params": call.params, "id": 0 }).to_string();
                let cut = rng.range(1, frame.len() as u64 - 1) as usize;
                let mask = (rng.next_u64() as u32).to_be_bytes();
                self.link
                    .send_partial(&frame, cut, mask)
                    .await
                    .map_err(|err| format!("write failed: {err}"))?;
                self.drop_pending();
                Ok(())
            }
            Ending::Idle => {
                Stats::add(&self.stats.dropped_idle, 1);
                Ok(())
            }
        }
    }

    /// The calls our drop cuts off, counted as such (the socket itself is
    /// dropped by the caller).
    fn drop_pending(&mut self) {
        Stats::add(&self.stats.interrupted, self.pending.len() as u64);
        self.pending.clear();
    }
}

//! The workload: which calls and notifications to send, with what params, and the answer each must get.

use serde_json::{json, Value};

/// A small, fast generator (xorshift64*): the soak needs variety, not
/// statistical quality, and each task gets its own seed.
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator whose sequence depends on `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        // Never zero, which xorshift cannot leave.
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True `percent` times in a hundred.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A small signed integer.
    fn int(&mut self) -> i64 {
        self.range(0, 2_000_000) as i64 - 1_000_000
    }
}

/// What a reply must hold.
#[derive(Debug, Clone)]
pub(crate) enum Expect {
    /// This result, equal as JSON.
    Result(Value),
    /// An error object with this code.
    Error(i64),
}

/// A request of the demo's and the answer it must get.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// The method.
    pub(crate) method: &'static str,
    /// Its params: an array or an object.
    pub(crate) params: Value,
    /// The answer it must get.
    pub(crate) expect: Expect,
}

impl Call {
    /// One of the demo's quick methods, with random params; a few are
    /// calls whose right answer is an error.
    pub(crate) fn random(rng: &mut Rng) -> Call {
        match rng.below(100) {
            0..=29 => {
                let value = value(rng, 0);
                let params = if rng.chance(50) {
                    json!([value])
                } else {
                    json!({ "value": value })
                };
                Call::new("echo", params, Expect::Result(value))
            }
            30..=44 => {
                let terms: Vec<i64> = (0..rng.below(20)).map(|_| rng.int()).collect();
                let total: i64 = terms.iter().sum();
                Call::new("sum", json!(terms), Expect::Result(json!(total)))
            }
            45..=59 => {
                let (a, b) = (rng.int(), rng.int());
                let params = if rng.chance(50) {
                    json!([a, b])
                } else {
                    json!({ "subtrahend": b, "minuend": a })
                };
                Call::new("subtract", params, Expect::Result(json!(a - b)))
            }
            60..=69 => Call::new("get_data", json!([]), Expect::Result(json!(["hello", 5]))),
            70..=84 => {
                let ms = rng.range(0, 30);
                Call::new("sleep", json!([ms]), Expect::Result(json!(ms)))
            }
            85..=91 => {
                // Any code, the demo answers with exactly it.
                let code = rng.range(0, 40_000) as i64 - 20_000;
                let params = json!({ "code": code, "message": "soak", "data": value(rng, 1) });
                Call::new("fail", params, Expect::Error(code))
            }
            92..=95 => Call::new("whoami", json!([]), Expect::Error(-32001)),
            _ => Call::new("soak.no_such_method", json!([1]), Expect::Error(-32601)),
        }
    }

    /// A call that is still running a while after it is sent: what an
    /// abrupt disconnect cuts off.
    pub(crate) fn slow(rng: &mut Rng) -> Call {
        let ms = rng.range(20, 300);
        Call::new("sleep", json!({ "ms": ms }), Expect::Result(json!(ms)))
    }

    /// `callback`: the server calls our `soak.mirror` with these params
    /// and answers with what we returned.
    pub(crate) fn callback(rng: &mut Rng) -> Call {
        let params = json!([rng.int(), value(rng, 1)]);
        Call::new(
            "callback",
            json!({ "method": MIRROR, "params": params }),
            Expect::Result(params),
        )
    }

    /// `join` the chat under a name.
    pub(crate) fn join(name: String) -> Call {
        Call::new("join", json!([name]), Expect::Result(json!(true)))
    }

    /// `postMessage` to the chat (after `join`).
    pub(crate) fn post(rng: &mut Rng) -> Call {
        let text = format!("soak message {}", rng.next_u64());
        Call::new("postMessage", json!([text]), Expect::Result(json!(1)))
    }

    fn new(method: &'static str, params: Value, expect: Expect) -> Call {
        Call {
            method,
            params,
            expect,
        }
    }

    /// Whether `reply` (a result, or an error's code and message) is the
    /// one this call must get; `Err` says what was wrong.
    pub(crate) fn check(&self, reply: Result<&Value, (i64, &str)>) -> Result<(), String> {
        match (&self.expect, reply) {
            (Expect::Result(want), Ok(got)) if want == got => Ok(()),
            (Expect::Error(want), Err((got, _))) if *want == got => Ok(()),
            (want, got) => Err(format!(
                "`{}` {}: wanted {want:?}, got {}",
                self.method,
                cut(&self.params.to_string()),
                match got {
                    Ok(value) => format!("result {}", cut(&value.to_string())),
                    Err((code, message)) => format!("error {code} {}", cut(message)),
                },
            )),
        }
    }
}

/// The method on our side that `callback` calls: it returns its params.
pub(crate) const MIRROR: &str = "soak.mirror";

/// A notification the demo accepts and does nothing with.
pub(crate) fn notification(rng: &mut Rng) -> (&'static str, Value) {
    let method = ["update", "notify_hello", "notify_sum"][rng.below(3) as usize];
    (method, json!([rng.int(), value(rng, 1)]))
}

/// A random JSON value: numbers, strings with escapes and non-ASCII
/// text, nested arrays and objects; now and then a long string (tens of
/// KiB), so buffers grow and shrink.
pub(crate) fn value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth >= 3 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => json!(rng.int()),
        3 => json!(rng.int() as f64 / 4.0),
        4 => json!(text(rng)),
        5 | 6 => {
            let n = rng.below(6);
            Value::Array((0..n).map(|_| value(rng, depth + 1)).collect())
        }
        _ => {
            let n = rng.below(6);
            Value::Object(
                (0..n)
                    .map(|i| (format!("k{i}"), value(rng, depth + 1)))
                    .collect(),
            )
        }
    }
}

/// A string of mixed characters; one in 200 has 16,384 of them.
fn text(rng: &mut Rng) -> String {
    const PIECES: [&str; 8] = ["a", "soak ", "\"", "\\", "\n", "é", "日本", "🦀"];
    let len = if rng.chance(1) && rng.chance(50) {
        16_384
    } else {
        rng.below(40)
    };
    (0..len)
        .map(|_| PIECES[rng.below(PIECES.len() as u64) as usize])
        .collect()
}

/// What a connection does next.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    /// One request, then its reply.
    Call,
    /// Several requests at once (pipelined on a raw socket, concurrent
    /// futures through the library), then every reply.
    Pipelined,
    /// A notification: no reply may come.
    Notify,
    /// A batch of requests and notifications.
    Batch,
    /// `callback`: the server calls us back before it answers.
    Callback,
    /// `postMessage` to the chat, which pushes to every other member.
    Post,
    /// A JSON-RPC 1.0 request (no `jsonrpc` member), answered in 1.0 form.
    Version1,
}

impl Op {
    /// The next operation; `Post` only for a connection that joined the chat.
    pub(crate) fn pick(rng: &mut Rng, joined: bool) -> Op {
        match rng.below(100) {
            0..=44 => Op::Call,
            45..=54 => Op::Pipelined,
            55..=66 => Op::Notify,
            67..=79 => Op::Batch,
            80..=86 => Op::Callback,
            87..=92 if joined => Op::Post,
            87..=92 => Op::Call,
            _ => Op::Version1,
        }
    }
}

/// How a connection ends.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ending {
    /// A graceful close once every reply is in.
    Graceful,
    /// Dropped with calls still running on the server.
    MidCall,
    /// Dropped halfway through writing a frame (raw sockets only; the
    /// library writes whole frames, so there it is `MidCall`).
    MidFrame,
    /// Dropped while idle, without a close handshake.
    Idle,
}

impl Ending {
    /// Half the connections close gracefully, the rest are dropped.
    pub(crate) fn pick(rng: &mut Rng) -> Ending {
        match rng.below(100) {
            0..=49 => Ending::Graceful,
            50..=74 => Ending::MidCall,
            75..=89 => Ending::MidFrame,
            _ => Ending::Idle,
        }
    }
}

/// What one connection does: how many operations, its name in the chat
/// (should it join), and how it ends.
pub(crate) struct Script {
    /// Operations before the ending (fewer when the soak's time is up).
    pub(crate) ops: u64,
    /// The name it joins the chat under.
    pub(crate) name: String,
    /// How it ends.
    pub(crate) ending: Ending,
}

/// The start of a long text, for an error message.
fn cut(text: &str) -> String {
    match text.char_indices().nth(120) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

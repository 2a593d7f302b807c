//! The Lua scripts that keep a room in Redis: each change is one script, so it is numbered, kept in the history and published atomically.
//!
//! A room `R` under the prefix `P` is four keys and a channel:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:room:R:seq` | hash | `epoch` (a random name, new when Redis lost the room) and `seq` (the last number given) |
//! | `P:room:R:log` | stream | the last `history_len` messages, entry id `<seq>-0`, field `d` |
//! | `P:room:R:presence` | sorted set | one entry `<id>@<node>` per member, scored by when it expires (ms, Redis's clock) |
//! | `P:room:R:who` | hash | `<id>@<node>` → the member as JSON (`MemberInfo`) |
//!
//! Channel `P:room:R` carries `<epoch> <seq> <event>`, where the event is
//! the JSON that the history holds: `{"k":"m",…}` a push, `{"k":"j","who":…}`
//! a member that joined, `{"k":"l","who":…}` one that left.

use redis::Script;

/// Numbers an event, appends it to the history and publishes it.
/// `ARGV[1]` epoch for a room that has none, `ARGV[2]` history length,
/// `ARGV[3]` channel, `ARGV[4]` idle expiry (ms).
const SEQUENCE: &str = r"
local function sequence(event)
  local epoch = redis.call('HGET', KEYS[1], 'epoch')
  if not epoch then
    epoch = ARGV[1]
    redis.call('HSET', KEYS[1], 'epoch', epoch)
  end
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], seq .. '-0', 'd', event)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  redis.call('PUBLISH', ARGV[3], epoch .. ' ' .. seq .. ' ' .. event)
  return {epoch, seq}
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function keep()
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
end
";

/// A push. `ARGV[5]` the event. Returns `{epoch, seq}`.
const PUSH: &str = "return sequence(ARGV[5])";

/// A member joins. `ARGV[5]` its key, `ARGV[6]` its `MemberInfo`, `ARGV[7]`
/// the presence TTL (ms). Returns `{epoch, seq}` of its `j` event.
const JOIN: &str = r#"
redis.call('ZADD', KEYS[3], now_ms() + tonumber(ARGV[7]), ARGV[5])
redis.call('HSET', KEYS[4], ARGV[5], ARGV[6])
keep()
return sequence('{"k":"j","who":' .. ARGV[6] .. '}')
"#;

/// A member leaves. `ARGV[5]` its key. Publishes its `l` event unless a
/// sweep did already (it had expired).
const LEAVE: &str = r#"
local info = redis.call('HGET', KEYS[4], ARGV[5])
local removed = redis.call('ZREM', KEYS[3], ARGV[5])
redis.call('HDEL', KEYS[4], ARGV[5])
if removed == 1 and info then
  sequence('{"k":"l","who":' .. info .. '}')
end
return removed
"#;

/// A node's periodic refresh of one room. `ARGV[5]` the presence TTL (ms),
/// then its members as key, `MemberInfo` pairs. A member missing from the
/// set (swept while the node was cut off) is added again with a `j` event;
/// every member's `MemberInfo` is written again (a change of metadata made
/// while Redis was unreachable reaches the other nodes so); every member
/// past its expiry is removed with an `l` event, whichever node it was on.
/// Returns how many were removed.
const REFRESH: &str = r#"
local now = now_ms()
local expires = now + tonumber(ARGV[5])
for i = 6, #ARGV, 2 do
  local added = redis.call('ZADD', KEYS[3], expires, ARGV[i]) == 1
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
  if added then
    sequence('{"k":"j","who":' .. ARGV[i + 1] .. '}')
  end
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, member in ipairs(dead) do
  local info = redis.call('HGET', KEYS[4], member)
  redis.call('ZREM', KEYS[3], member)
  redis.call('HDEL', KEYS[4], member)
  if info then
    sequence('{"k":"l","who":' .. info .. '}')
  end
end
keep()
return #dead
"#;

/// What a node that may have missed messages needs. KEYS: `seq`, `log`.
/// `ARGV[1]` the last number it delivered, `ARGV[2]` the epoch it was in,
/// `ARGV[3]` at most this many entries. Returns `{epoch, head, from,
/// {id, event, id, event, …}}`: the history after `from`, which is
/// `ARGV[1]`, or 0 when the epoch is not the node's (its numbers mean
/// nothing there).
const CATCH_UP: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'epoch') or ''
local head = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local from = ARGV[1]
if epoch ~= ARGV[2] then from = '0' end
local entries = {}
if head > tonumber(from) then
  for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '(' .. from .. '-0', '+', 'COUNT', ARGV[3])) do
    table.insert(entries, entry[1])
    table.insert(entries, entry[2][2])
  end
end
return {epoch, head, tonumber(from), entries}
";

/// The members whose presence has not expired, as `MemberInfo` JSON.
/// KEYS: `presence`, `who`.
const MEMBERS: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  local info = redis.call('HGET', KEYS[2], member)
  if info then table.insert(out, info) end
end
return out
";

/// A member's new metadata. KEYS: `presence`, `who`. `ARGV[1]` its key,
/// `ARGV[2]` its `MemberInfo`. Nothing when it is not present (the next
/// refresh adds it with this metadata).
const SET_META: &str = r"
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
return 1
";

/// The scripts, hashed once. `Script` runs `EVALSHA` and, when Redis does
/// not know the hash (it restarted), `EVAL`.
pub(crate) struct Scripts {
    pub(crate) push: Script,
    pub(crate) join: Script,
    pub(crate) leave: Script,
    pub(crate) refresh: Script,
    pub(crate) catch_up: Script,
    pub(crate) members: Script,
    pub(crate) set_meta: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        let sequenced = |body: &str| Script::new(&format!("{SEQUENCE}\n{body}"));
        Self {
            push: sequenced(PUSH),
            join: sequenced(JOIN),
            leave: sequenced(LEAVE),
            refresh: sequenced(REFRESH),
            catch_up: Script::new(CATCH_UP),
            members: Script::new(MEMBERS),
            set_meta: Script::new(SET_META),
        }
    }
}

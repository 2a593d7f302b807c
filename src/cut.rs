//! What a message skipped for its size says of itself: its id, and whether it is a call or an answer, read from its first and last bytes.
//!
//! A framing that skips a message over its limit keeps its first and last
//! bytes (`rpcpeer_stream::Oversized`). A JSON-RPC message names its id at
//! one end or the other: `{"jsonrpc":"2.0","id":7,…` as many peers write
//! it, `…,"id":7}` as serde's field order and ours put it. From them the
//! driver answers a call too large under its own id, and fails at once the
//! call of ours that an answer too large was meant for, where it would
//! otherwise wait out its timeout.
//!
//! Only what is certain is read. From the front, the object's members are
//! followed one by one (strings, escapes and nesting included) as far as
//! the bytes go; from the back, the members right before the closing brace
//! whose values are plain (a string, a number, a literal), one after the
//! other: the closing brace is outside every string, so the member before
//! it is too, and each `,` found outside strings vouches for the member
//! before it. A nested value stops the reading, as does a string whose
//! start may lie before the bytes kept.

use crate::envelope::is_whitespace;
use crate::message::Id;

/// What a message cut short says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cut {
    /// Its id, as written.
    pub(crate) id: Id,
    /// It has `result` or `error` and no `method`: an answer to the call
    /// with this id. Otherwise it has `method`: a call.
    pub(crate) answer: bool,
}

/// Reads a message from its first bytes `head` and last bytes `tail`;
/// `None` when no valid id is found, or it names neither `method` nor
/// `result` or `error`.
pub(crate) fn read(head: &[u8], tail: &[u8]) -> Option<Cut> {
    let front = Front::read(head);
    let back = Back::read(tail);
    let id = front.id.or(back.id)?;
    let id = std::str::from_utf8(id).ok()?;
    // NB: checked as JSON first: `from_text` takes valid JSON only.
    serde_json::from_str::<&serde_json::value::RawValue>(id).ok()?;
    let id = Id::from_text(id)?;
    let answer = match (front.method || back.method, front.outcome || back.outcome) {
        (true, _) => false,
        (false, true) => true,
        (false, false) => return None,
    };
    Some(Cut { id, answer })
}

/// The members read from the front of an object.
#[derive(Debug, Default)]
struct Front<'a> {
    method: bool,
    /// `result` or `error`.
    outcome: bool,
    /// The text of `id`, when it is complete within the bytes.
    id: Option<&'a [u8]>,
}

impl<'a> Front<'a> {
    fn read(bytes: &'a [u8]) -> Self {
        let mut front = Front::default();
        let mut at = skip_ws(bytes, 0);
        if bytes.get(at) != Some(&b'{') {
            return front;
        }
        at += 1;
        loop {
            at = skip_ws(bytes, at);
            let Some(key_end) = string_end(bytes, at) else {
                return front;
            };
            let key = &bytes[at + 1..key_end - 1];
            at = skip_ws(bytes, key_end);
            if bytes.get(at) != Some(&b':') {
                return front;
            }
            at = skip_ws(bytes, at + 1);
            match key {
                b"method" => front.method = true,
                b"result" | b"error" => front.outcome = true,
                _ => {}
            }
            let Some(value_end) = value_end(bytes, at) else {
                return front;
            };
            if key == b"id" {
                front.id = Some(&bytes[at..value_end]);
            }
            at = skip_ws(bytes, value_end);
            if bytes.get(at) != Some(&b',') {
                return front;
            }
            at += 1;
        }
    }
}

fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).copied().is_some_and(is_whitespace) {
        at += 1;
    }
    at
}

/// Just past the string that starts at `at`; `None` when there is none, or
/// it goes on past the bytes.
fn string_end(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let mut i = at + 1;
    loop {
        match bytes.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// Just past the value that starts at `at`; `None` when it goes on past
/// the bytes (or is not one).
fn value_end(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at)? {
        b'"' => string_end(bytes, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match bytes.get(i)? {
                    b'"' => {
                        i = string_end(bytes, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let len = bytes[at..]
                .iter()
                .position(|&b| is_whitespace(b) || matches!(b, b',' | b'}' | b']'))?;
            (len > 0).then_some(at + len)
        }
    }
}

/// The members read back from the closing brace of an object.
#[derive(Debug, Default)]
struct Back<'a> {
    method: bool,
    /// `result` (plain); an `error` is an object, which stops the reading.
    outcome: bool,
    id: Option<&'a [u8]>,
}

impl<'a> Back<'a> {
    fn read(bytes: &'a [u8]) -> Self {
        let mut back = Back::default();
        let Some(end) = bytes.iter().rposition(|&b| !is_whitespace(b)) else {
            return back;
        };
        if bytes[end] != b'}' {
            return back;
        }
        let mut at = end;
        while let Some((key, value, before)) = member_before(bytes, at) {
            match key {
                b"id" => back.id = back.id.or(Some(value)),
                b"method" => back.method = true,
                b"result" => back.outcome = true,
                _ => {}
            }
            if bytes[before] == b'{' {
                break;
            }
            at = before;
        }
        back
    }
}

/// The member whose plain value ends right before `at` (a `}` or `,`
/// outside every string): its key's text, its value's, and where the `,`
/// or `{` before it is. `None` when it is not certain: a nested value, a
/// string or number whose start may lie before the bytes, anything but a
/// `,` or `{` before the key.
fn member_before(bytes: &[u8], at: usize) -> Option<(&[u8], &[u8], usize)> {
    let value_last = bytes[..at].iter().rposition(|&b| !is_whitespace(b))?;
    let value_start = if bytes[value_last] == b'"' {
        opening_quote(bytes, value_last)?
    } else {
        let plain = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-');
        let before = bytes[..=value_last].iter().rposition(|b| !plain(b));
        let start = before.map_or(0, |at| at + 1);
        // NB: cut inside a number or a literal, its start is not seen.
        if before.is_none() || start > value_last {
            return None;
        }
        start
    };
    let colon = bytes[..value_start]
        .iter()
        .rposition(|&b| !is_whitespace(b))?;
    if bytes[colon] != b':' {
        return None;
    }
    let key_last = bytes[..colon].iter().rposition(|&b| !is_whitespace(b))?;
    if bytes[key_last] != b'"' {
        return None;
    }
    let key_start = opening_quote(bytes, key_last)?;
    // A member starts after `{` or `,`: anything else means the quotes
    // were not what they seemed.
    let before = bytes[..key_start]
        .iter()
        .rposition(|&b| !is_whitespace(b))?;
    matches!(bytes[before], b',' | b'{').then_some((
        &bytes[key_start + 1..key_last],
        &bytes[value_start..=value_last],
        before,
    ))
}

/// The quote that opens the string whose closing quote is at `close`: the
/// nearest one before it that no backslash escapes (an even run of them
/// before it, escaping each other). `None` when that run reaches the
/// first byte kept: a backslash cut off before it would flip its meaning.
fn opening_quote(bytes: &[u8], close: usize) -> Option<usize> {
    let mut i = close;
    loop {
        i = bytes[..i].iter().rposition(|&b| b == b'"')?;
        let backslashes = bytes[..i].iter().rev().take_while(|&&b| b == b'\\').count();
        if backslashes == i {
            return None;
        }
        if backslashes % 2 == 0 {
            return Some(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(head: &str, tail: &str) -> Option<Cut> {
        read(head.as_bytes(), tail.as_bytes())
    }

    #[test]
    fn the_id_is_read_at_either_end() {
        let ours = cut(r#"{"jsonrpc":"2.0","result":"xxxx"#, r#"xxxx","id":7}"#);
        assert_eq!(
            ours,
            Some(Cut {
                id: Id::from(7u64),
                answer: true
            })
        );
        let theirs = cut(
            r#"{"jsonrpc": "2.0", "id": "a\"b", "method": "m", "params": [[1,"#,
            "2]]}",
        );
        assert_eq!(
            theirs.map(|c| (c.id, c.answer)),
            Some((Id::from(r#"a"b"#), false))
        );
        // 1.0: no `jsonrpc`; an error with a null result.
        let old = cut(
            r#"{"result": null, "error": {"code": 1, "message": "xx"#,
            "xx\"}, \"id\": 3 }\n",
        );
        assert_eq!(old.map(|c| (c.id, c.answer)), Some((Id::from(3u64), true)));
    }

    #[test]
    fn members_after_the_params_are_read_back_from_the_end() {
        // `params` first, as some peers write: `method` and `id` at the back.
        for tail in [
            r#"aa"],"jsonrpc":"2.0","method":"echo","id":5}"#,
            r#"aa"],"id":5,"jsonrpc":"2.0","method":"echo"}"#,
            r#"aa"] , "method" : "echo" , "id" : 5 }"#,
        ] {
            let call = cut(r#"{"params":["aa"#, tail);
            assert_eq!(
                call,
                Some(Cut {
                    id: Id::from(5u64),
                    answer: false
                }),
                "{tail}"
            );
        }
        let answer = cut(r#"{"jsonrpc":"2.0","result":["aa"#, r#"aa"],"id":"r"}"#);
        assert_eq!(answer.map(|c| c.answer), Some(true));
        // A nested value stops the reading: what is behind it is unknown.
        assert_eq!(
            cut(r#"{"params":["aa"#, r#"aa"],"method":"m","x":[1],"id":5}"#),
            None
        );
        // A key whose opening quote is the first byte kept, or follows
        // only backslashes there, may be the end of a longer string.
        assert_eq!(cut(r#"{"params":["aa"#, r#""method":"m","id":5}"#), None);
        assert_eq!(cut(r#"{"params":["aa"#, r#"\"method":"m","id":5}"#), None);
        // The reading stops there, with what it was sure of.
        assert_eq!(
            cut(r#"{"params":["aa"#, r#""x":"m","method":"m","id":5}"#).map(|c| c.answer),
            Some(false)
        );
    }

    #[test]
    fn only_what_is_certain_is_read() {
        // The id at neither end.
        assert_eq!(
            cut(
                r#"{"jsonrpc":"2.0","method":"m","params":["xx"#,
                r#"xx"],"id":[1],"x":2}"#
            ),
            None
        );
        // An `"id":1}` inside a string is escaped, or not at the end.
        assert_eq!(
            cut(
                r#"{"jsonrpc":"2.0","method":"m","params":["xx"#,
                r#"x\",\"id\":1}"]}"#
            ),
            None
        );
        assert_eq!(
            cut(r#"{"jsonrpc":"2.0","result":"xx"#, r#"x \\"id":1}"#),
            None
        );
        // Nested: an inner object's last member is no top-level id.
        assert_eq!(
            cut(r#"{"jsonrpc":"2.0","result":[{"a":"xx"#, r#"xx","id":1}]}"#),
            None
        );
        // Cut inside the id's number: its start is not seen.
        assert_eq!(cut(r#"{"jsonrpc":"2.0","result":"#, "1234}"), None);
        // Neither a call nor an answer, or no valid id.
        assert_eq!(
            cut(r#"{"jsonrpc":"2.0","params":["xx"#, r#"xx"],"id":1}"#),
            None
        );
        assert_eq!(
            cut(
                r#"{"jsonrpc":"2.0","method":"m","id":{"a":1},"params":"#,
                "]}"
            ),
            None
        );
        assert_eq!(cut(r#"{"method":"m","params":"#, r#","id":nul}"#), None);
        assert_eq!(cut("[1,2,", "3]"), None);
    }
}

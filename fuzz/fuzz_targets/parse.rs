//! Arbitrary UTF-8 through `message::parse` and `parse_within`: no panic;
//! every rejected message's reply is one well-formed JSON-RPC error object
//! (-32700 with a null id for text that is not JSON, -32600 otherwise), in
//! the version the message was read in and with its id; invalid JSON is
//! never classified, valid JSON is never a parse error, a batch has one
//! entry per element; a depth limit only ever refuses, never changes, what
//! a message or a batch entry reads as, and a call it refuses keeps its id
//! while a notification goes unanswered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpcpeer::message::{encode_response, parse, parse_within, Frame, Message, Rejected};
use rpcpeer::{ErrorObject, Version};
use rpcpeer_fuzz::{check_reply, elements, is_json, Form};
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let frame = parse(text);
    match &frame {
        Frame::Single(item) => check_item(item, false),
        Frame::Batch(items) => {
            assert!(
                !items.is_empty(),
                "an empty batch read as a batch: {text:?}"
            );
            for item in items {
                check_item(item, true);
            }
        }
    }
    check_classification(text, &frame);
    for max_depth in [0, 1, 2, 3, 5] {
        check_within(&frame, &parse_within(text, max_depth), max_depth, text);
    }
});

/// A depth limit only ever refuses an item (a message, or a batch's
/// entry), never changes what one reads as: a call it refuses keeps its id,
/// an answer too, and a notification goes unanswered.
fn check_within(whole: &Frame<'_>, within: &Frame<'_>, max_depth: usize, text: &str) {
    let pairs: Vec<_> = match (whole, within) {
        (Frame::Single(a), Frame::Single(b)) => vec![(a, b)],
        (Frame::Batch(a), Frame::Batch(b)) if a.len() == b.len() => a.iter().zip(b).collect(),
        _ => panic!("a depth limit of {max_depth} changed the shape of {text:?}"),
    };
    for (read, limited) in pairs {
        match (read, limited) {
            (_, Err(refusal)) if refused_for_depth(refusal, max_depth) => match read {
                Ok(Message::Request(req)) => assert_eq!(refusal.id, req.id, "{text:?}"),
                Ok(Message::Response(resp)) => {
                    assert_eq!(refusal.id, resp.id, "{text:?}");
                    assert!(refusal.response.is_some(), "{text:?}");
                }
                Ok(Message::Notification(_)) => {
                    assert!(
                        refusal.reply().is_none(),
                        "a notification answered: {text:?}"
                    )
                }
                // Refused at the default depth as well.
                Err(_) => {}
            },
            // NB: serde_json words a parse error by what it was reading.
            (Err(a), Err(b)) => assert_eq!(a.error.code, b.error.code, "{text:?}"),
            _ => assert_eq!(
                format!("{read:?}"),
                format!("{limited:?}"),
                "a depth limit of {max_depth} changed what {text:?} reads as"
            ),
        }
    }
}

/// Whether `rejected` refuses a message nested past `max_depth`.
fn refused_for_depth(rejected: &Rejected, max_depth: usize) -> bool {
    let refused = rejected.error.message.contains("deeper than the limit");
    if refused {
        assert!(rejected
            .error
            .message
            .contains(&format!("limit of {max_depth} levels")));
        assert_eq!(rejected.error.code, ErrorObject::INVALID_REQUEST);
    }
    refused
}

/// Whether `frame` refuses a message, or an entry of a batch, for its depth.
fn frame_refused_for_depth(frame: &Frame<'_>, max_depth: usize) -> bool {
    let refused = |item: &Result<Message<'_>, Rejected>| matches!(item, Err(rejected) if refused_for_depth(rejected, max_depth));
    match frame {
        Frame::Single(item) => refused(item),
        Frame::Batch(items) => items.iter().any(refused),
    }
}

/// What the text is decides what kind of frame it reads as.
fn check_classification(text: &str, frame: &Frame<'_>) {
    let depth_refused = frame_refused_for_depth(frame, rpcpeer::message::DEFAULT_MAX_DEPTH);
    if !is_json(text) {
        let Frame::Single(Err(rejected)) = frame else {
            panic!("{text:?} is not JSON, yet it was read as a message");
        };
        assert!(
            depth_refused || rejected.error.code == ErrorObject::PARSE_ERROR,
            "{text:?} is not JSON but got {}",
            rejected.error
        );
        return;
    }
    if depth_refused {
        return;
    }
    let start = text
        .trim_start_matches([' ', '\t', '\r', '\n'])
        .as_bytes()
        .first();
    // RFC 8259 §8.2: a lone surrogate escape is JSON, but what a reader
    // makes of it is up to the reader; serde_json refuses one in a member
    // name, and so a message whose envelope has one is a parse error.
    let odd_name = start == Some(&b'{') && has_surrogate_escape(text);
    if let (false, Frame::Single(Err(rejected))) = (odd_name, frame) {
        assert_ne!(
            rejected.error.code,
            ErrorObject::PARSE_ERROR,
            "{text:?} is JSON, yet got a parse error: {}",
            rejected.error
        );
    }
    match start {
        Some(b'[') => {
            let count = elements(text).map(|items| items.len()).unwrap_or_else(|e| {
                panic!("{text:?} is JSON starting with `[` but not an array: {e}")
            });
            match frame {
                Frame::Batch(items) => assert_eq!(items.len(), count, "{text:?}"),
                Frame::Single(Err(rejected)) if count == 0 => {
                    assert_eq!(rejected.error.code, ErrorObject::INVALID_REQUEST)
                }
                Frame::Single(_) => panic!("the array {text:?} was not read as a batch"),
            }
        }
        Some(b'{') => assert!(matches!(frame, Frame::Single(_)), "{text:?}"),
        _ => assert!(
            matches!(frame, Frame::Single(Err(r)) if r.error.code == ErrorObject::INVALID_REQUEST),
            "{text:?} is not an object or an array, yet was not refused with -32600"
        ),
    }
}

/// Whether `text` may hold a `\u` escape of a UTF-16 surrogate (D800 to
/// DFFF); an escaped backslash before a `u` counts too, which only makes
/// the check looser.
fn has_surrogate_escape(text: &str) -> bool {
    text.as_bytes().windows(4).any(|w| {
        w[0] == b'\\'
            && w[1] == b'u'
            && w[2].eq_ignore_ascii_case(&b'd')
            && matches!(w[3].to_ascii_lowercase(), b'8'..=b'9' | b'a'..=b'f')
    })
}

fn check_item(item: &Result<Message<'_>, Rejected>, in_batch: bool) {
    match item {
        Err(rejected) => check_rejected(rejected),
        Ok(Message::Request(request)) => {
            check_params(request.params);
            if in_batch {
                assert_eq!(request.version, Version::V2, "batch entries are 2.0");
            }
            // Every readable id goes back out as valid JSON.
            let null = RawValue::from_string("null".to_owned()).unwrap_or_else(|_| unreachable!());
            let reply = encode_response(request.version, &request.id, Ok(&null));
            let checked = check_reply(&reply);
            assert_eq!(checked.code, None);
            assert_eq!(checked.form, form(request.version));
            assert_eq!(checked.id, id_text(&request.id), "the id changed: {reply}");
        }
        Ok(Message::Notification(notification)) => {
            check_params(notification.params);
            if in_batch {
                assert_eq!(notification.version, Version::V2, "batch entries are 2.0");
            }
        }
        Ok(Message::Response(response)) => {
            let text = match &response.outcome {
                Ok(result) => result.get().to_owned(),
                Err(error) => serde_json::to_string(error).unwrap_or_default(),
            };
            assert!(is_json(&text), "a response's outcome is not JSON: {text}");
            assert!(is_json(&id_text(&response.id)));
        }
    }
}

/// Spec §4.2: params, when present, are an array or an object.
fn check_params(params: Option<&RawValue>) {
    if let Some(params) = params {
        assert!(
            matches!(params.get().as_bytes().first(), Some(b'[' | b'{')),
            "params that are not structured got through: {}",
            params.get()
        );
    }
}

fn check_rejected(rejected: &Rejected) {
    let Some(reply) = rejected.reply() else {
        // Only a valid notification refused for its nesting goes unanswered.
        assert_eq!(rejected.error.code, ErrorObject::INVALID_REQUEST);
        return;
    };
    let checked = check_reply(&reply);
    assert_eq!(checked.form, form(rejected.version), "{reply}");
    assert_eq!(checked.id, id_text(&rejected.id), "{reply}");
    let code = checked
        .code
        .unwrap_or_else(|| panic!("a rejection without an error: {reply}"));
    assert_eq!(code, rejected.error.code);
    assert!(
        code == ErrorObject::PARSE_ERROR || code == ErrorObject::INVALID_REQUEST,
        "a message is refused with -32700 or -32600, not {code}: {reply}"
    );
    if code == ErrorObject::PARSE_ERROR {
        assert!(
            rejected.id.is_null(),
            "text that is not JSON has no id: {reply}"
        );
    }
}

fn form(version: Version) -> Form {
    match version {
        Version::V1 => Form::V1,
        Version::V2 => Form::V2,
    }
}

fn id_text(id: &rpcpeer::Id) -> String {
    serde_json::to_string(id).unwrap_or_else(|e| panic!("id {id} does not serialize: {e}"))
}

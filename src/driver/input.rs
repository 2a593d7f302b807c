//! What the transport's input says besides frames: a read error, or its end.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures::{Sink, Stream};

use super::Driver;
use crate::cut::Cut;
use crate::error::{ErrorObject, Unreadable};
use crate::message::{encode_response, Id, Version};
use crate::transport::CloseFrame;

/// What a read error means for the connection.
#[derive(Debug)]
enum ReadFailure {
    /// One message was lost and the framing is intact: answer it, read on.
    Skipped(Unreadable, ErrorObject),
    /// The framing is lost: answer, then close once what runs has answered.
    Unframed(ErrorObject),
    /// Anything else: the transport failed, and the connection with it.
    Broken,
}

impl ReadFailure {
    fn of(err: &io::Error) -> Self {
        // The message's id is unknown here (what a skipped message's own
        // bytes say of it is read by the caller).
        if err.kind() == io::ErrorKind::FileTooLarge {
            // The transport skipped a message over its size limit and reads
            // on (the stream framings do; WebSocket closes instead). Spec
            // §5.1: -32600, not -32700, since nothing was parsed and the
            // JSON may well be valid: it is the message that is not
            // acceptable.
            return Self::Skipped(Unreadable::TooLarge, ErrorObject::invalid_request(err));
        }
        if crate::transport::is_not_utf8(err) {
            // Spec §5.1: text that is not JSON is -32700.
            let reply = ErrorObject::parse_error(format_args!("the message is not UTF-8 ({err})"));
            return Self::Skipped(Unreadable::NotJson, reply);
        }
        if err.kind() == io::ErrorKind::InvalidData {
            // An unreadable frame, or a WebSocket message over its limit.
            return Self::Unframed(ErrorObject::parse_error(err));
        }
        if truncated(err) {
            // A frame the peer's end of stream cut short: the peer may only
            // have shut down its side, and reads on. Spec §5.1: an
            // unfinished message is no JSON, -32700.
            return Self::Unframed(ErrorObject::parse_error(err));
        }
        Self::Broken
    }
}

/// What a message skipped for its size says of itself, when its transport
/// kept its first and last bytes (those of `rpcpeer-stream` do).
#[cfg(feature = "stream")]
fn cut_of(err: &io::Error) -> Option<Cut> {
    let skipped = err.get_ref()?.downcast_ref::<rpcpeer_stream::Oversized>()?;
    crate::cut::read(skipped.head(), skipped.tail())
}

#[cfg(not(feature = "stream"))]
fn cut_of(_: &io::Error) -> Option<Cut> {
    None
}

/// Whether the stream ended inside a frame of the stream framings, as
/// opposed to any other early end (a TLS stream cut without its
/// `close_notify`, say), which is no message of the peer's to answer.
#[cfg(feature = "stream")]
fn truncated(err: &io::Error) -> bool {
    err.get_ref()
        .is_some_and(|inner| inner.is::<rpcpeer_stream::Truncated>())
}

#[cfg(not(feature = "stream"))]
fn truncated(_: &io::Error) -> bool {
    false
}

impl<T, S, F> Driver<T, S>
where
    T: Stream<Item = io::Result<F>> + Sink<String, Error = io::Error> + Unpin,
    F: AsRef<str>,
    S: Send + Sync + 'static,
{
    pub(super) fn on_read_error(&mut self, err: io::Error) {
        let reply = match ReadFailure::of(&err) {
            ReadFailure::Skipped(why, reply) => {
                tracing::debug!("an incoming message was skipped: {}", reply.message);
                // NB: what its first and last bytes say of it, when the
                // transport kept them: an answer too large fails its call
                // at once (and is not answered, as any unreadable answer);
                // a call is refused under its own id. Always in 2.0 form:
                // the `jsonrpc` member may be in the part skipped.
                let too_large = format!("too large to read ({err})");
                let id = match cut_of(&err) {
                    // Spec §5: a response is never answered, too large or
                    // not. It fails the call of ours it answers, if any.
                    Some(cut) if cut.answer => {
                        if !self.outgoing.invalid_answer(&cut.id, &too_large) {
                            self.outgoing.stray_answer(&cut.id, &too_large);
                        }
                        return;
                    }
                    Some(cut) => cut.id,
                    None => Id::null(),
                };
                self.outgoing.unreadable(why, &reply);
                self.outbox
                    .push(encode_response(Version::V2, &id, Err(&reply)));
                return;
            }
            ReadFailure::Unframed(reply) => {
                self.outgoing.unreadable(Unreadable::Fatal, &reply);
                Some(reply)
            }
            ReadFailure::Broken => None,
        };
        // NB: a peer that closes with a frame and drops its socket at once,
        // our input unread, makes the kernel reset the connection: the
        // frame is read, and the reset comes next, as this error.
        let why = match self.read_peer_close() {
            Some(frame) => format!("{err}, after the peer's {frame}"),
            None => err.to_string(),
        };
        self.outgoing.close_reason = Some(why.into());
        self.input_ended = true;
        match reply {
            Some(reply) => {
                self.outbox
                    .push(encode_response(Version::V2, &Id::null(), Err(&reply)));
                self.begin_shutdown();
            }
            None => self.abort(),
        }
        self.failure = Some(err);
    }

    /// The close frame the peer sent, when the transport has close frames
    /// and one came: kept for the calls that fail with the connection, and
    /// shown to every `Peer` from now on.
    pub(super) fn read_peer_close(&mut self) -> Option<Arc<CloseFrame>> {
        if self.outgoing.peer_close.is_none() {
            let frame = (self.close_frames.as_ref())
                .and_then(|hooks| (hooks.peer)(&self.transport))
                .map(Arc::new);
            if let Some(frame) = &frame {
                self.handles.peer_closed_with(frame.clone());
            }
            self.outgoing.peer_close = frame;
        }
        self.outgoing.peer_close.clone()
    }

    /// The peer's side of the stream ended.
    pub(super) fn on_end_of_input(&mut self, cx: &mut TaskContext<'_>) {
        self.input_ended = true;
        let why = match self.read_peer_close() {
            Some(frame) => format!("the peer closed the connection ({frame})"),
            None => "the peer closed the connection".to_owned(),
        };
        self.outgoing.close_reason.get_or_insert_with(|| why.into());
        // NB: over a byte stream this may be a half-close: the peer still
        // reads, so what runs finishes and is answered (the drain). A
        // transport that takes nothing more once its input ended (a
        // WebSocket after the peer's close frame, RFC 6455 §5.5.1) says so
        // from `poll_ready`: no answer could be delivered, so the calls are
        // cancelled now rather than run to the drain deadline for nobody,
        // and the connection ends as cleanly as the peer ended it.
        if let Poll::Ready(Err(err)) = Pin::new(&mut self.transport).poll_ready(cx) {
            tracing::debug!("the peer closed the connection, which takes no more frames: {err}");
            self.abort();
            self.outbox.clear();
        } else {
            self.begin_shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_over_the_limit_is_an_invalid_request_and_reading_goes_on() {
        let err = io::Error::new(io::ErrorKind::FileTooLarge, "message of 9 bytes");
        let ReadFailure::Skipped(Unreadable::TooLarge, reply) = ReadFailure::of(&err) else {
            panic!("not skipped as too large: {:?}", ReadFailure::of(&err));
        };
        assert_eq!(reply.code, ErrorObject::INVALID_REQUEST);
        assert!(reply.message.contains("message of 9 bytes"), "{reply:?}");
    }

    #[test]
    fn a_message_that_is_not_utf8_is_a_parse_error_and_reading_goes_on() {
        let utf8 = String::from_utf8(vec![b'"', 0xff, b'"'])
            .expect_err("not UTF-8")
            .utf8_error();
        let err = io::Error::new(io::ErrorKind::InvalidData, utf8);
        let ReadFailure::Skipped(Unreadable::NotJson, reply) = ReadFailure::of(&err) else {
            panic!("not skipped as not JSON: {:?}", ReadFailure::of(&err));
        };
        assert_eq!(reply.code, ErrorObject::PARSE_ERROR);
        assert!(reply.message.contains("not UTF-8"), "{reply:?}");
    }

    #[test]
    fn lost_framing_is_a_parse_error_that_closes() {
        let err = io::Error::new(io::ErrorKind::InvalidData, "Content-Length: x");
        let ReadFailure::Unframed(reply) = ReadFailure::of(&err) else {
            panic!("not unframed: {:?}", ReadFailure::of(&err));
        };
        assert_eq!(reply.code, ErrorObject::PARSE_ERROR);
        assert!(reply.message.contains("Content-Length: x"), "{reply:?}");
    }

    #[test]
    fn any_other_error_breaks_the_connection() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(
            matches!(ReadFailure::of(&reset), ReadFailure::Broken),
            "{:?}",
            ReadFailure::of(&reset)
        );
    }
}

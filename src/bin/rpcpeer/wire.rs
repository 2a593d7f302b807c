//! `Wire`: the one transport type of the client commands' connections, which keeps a WebSocket's close frames.
//!
//! The other transports are boxed as they come; a WebSocket is kept as
//! itself, so that the driver can read the close frame the peer ends with
//! (a server's 1009 names the size limit a message went over) and send
//! its own.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Sink, SinkExt, Stream, StreamExt};
use rpcpeer::transport::{CloseFrames, Transport};
use rpcpeer::ws::{MaybeTlsStream, WsTransport};
use tokio::net::TcpStream;

pub(crate) enum Wire {
    /// A byte stream in a framing, or a child's stdio.
    Framed(Box<dyn Transport>),
    /// Boxed too: a WebSocket's state is some 1.6 KB, a box one pointer.
    WebSocket(Box<WsTransport<MaybeTlsStream<TcpStream>>>),
}

impl Wire {
    /// As a plain transport, for what needs no close frames (`bench`): a
    /// framed stream unwrapped, so it costs no more than before.
    pub(crate) fn into_transport(self) -> Box<dyn Transport> {
        match self {
            Wire::Framed(io) => io,
            ws @ Wire::WebSocket(_) => Box::new(ws),
        }
    }
}

impl Stream for Wire {
    type Item = io::Result<String>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut() {
            Wire::Framed(io) => io.poll_next_unpin(cx),
            // Frames as `String`, the type every other transport yields.
            Wire::WebSocket(ws) => ws
                .poll_next_unpin(cx)
                .map(|frame| frame.map(|text| text.map(|text| text.to_string()))),
        }
    }
}

impl Sink<String> for Wire {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Framed(io) => io.poll_ready_unpin(cx),
            Wire::WebSocket(ws) => ws.poll_ready_unpin(cx),
        }
    }

    fn start_send(self: Pin<&mut Self>, frame: String) -> io::Result<()> {
        match self.get_mut() {
            Wire::Framed(io) => io.start_send_unpin(frame),
            Wire::WebSocket(ws) => ws.start_send_unpin(frame),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Framed(io) => io.poll_flush_unpin(cx),
            Wire::WebSocket(ws) => ws.poll_flush_unpin(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Framed(io) => io.poll_close_unpin(cx),
            Wire::WebSocket(ws) => ws.poll_close_unpin(cx),
        }
    }
}

impl CloseFrames for Wire {
    fn set_close_frame(&mut self, code: u16, reason: &str) -> io::Result<()> {
        match self {
            // A byte stream just closes: it has no frame to say why.
            Wire::Framed(_) => Ok(()),
            Wire::WebSocket(ws) => ws.set_close_frame(code, reason),
        }
    }

    fn peer_close_frame(&self) -> Option<(u16, String)> {
        match self {
            Wire::Framed(_) => None,
            Wire::WebSocket(ws) => ws.close_frame(),
        }
    }
}

//! An editor and a language server, two processes over stdio with
//! Content-Length framing, each calling the other through the client
//! `#[rpcpeer::api]` writes for the other's trait: progress reports in
//! LSP's form, and a request the editor cancels.
//!
//! ```sh
//! cargo run --example editor_and_server
//! ```
//!
//! Run plainly it is the editor, which starts itself again with `server`
//! as the language server.

mod api;
mod editor;
mod server;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("server") {
        return match server::run().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("server: {err}");
                ExitCode::FAILURE
            }
        };
    }
    match editor::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("editor: {err}");
            ExitCode::FAILURE
        }
    }
}

//! The editor: starts the server as a child process and talks to it over the child's stdin and stdout.

use std::time::Duration;

use futures::StreamExt;
use rpcpeer::stream::Framing;
use rpcpeer::{Driver, ErrorObject};
use tokio::sync::mpsc;

use crate::api::{
    Editor, LanguageServerClient, ShowMessageParams, WorkDoneProgress, WorkDoneProgressCreateParams,
};

/// Passes what the server tells it to the editor's main loop, which prints it.
struct Screen {
    lines: mpsc::UnboundedSender<String>,
}

impl Editor for Screen {
    async fn show_message(&self, params: ShowMessageParams) {
        let _ = self.lines.send(format!("message: {}", params.message));
    }

    async fn create_progress(
        &self,
        params: WorkDoneProgressCreateParams,
    ) -> Result<(), ErrorObject> {
        let _ = self
            .lines
            .send(format!("progress {} created", params.token));
        Ok(())
    }

    async fn progress(&self, token: String, value: WorkDoneProgress) {
        let line = match value {
            WorkDoneProgress::Begin { title, .. } => format!("progress {token} begin: {title}"),
            WorkDoneProgress::Report { percentage } => {
                format!("progress {token} report: {}%", percentage.unwrap_or(0))
            }
            WorkDoneProgress::End { message } => {
                format!("progress {token} end: {}", message.unwrap_or_default())
            }
        };
        let _ = self.lines.send(line);
    }
}

/// Prints what the server says until a line starting with `until` (which
/// it returns).
async fn print_until(
    lines: &mut mpsc::UnboundedReceiver<String>,
    until: &str,
) -> Result<String, String> {
    loop {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.recv())
            .await
            .map_err(|_| format!("nothing said within 10 s while waiting for `{until}`"))?
            .ok_or("the connection ended")?;
        println!("{line}");
        if line.starts_with(until) {
            return Ok(line);
        }
    }
}

pub(crate) async fn run() -> Result<(), String> {
    let (tx, mut lines) = mpsc::unbounded_channel();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("server");
    let (transport, mut child) = rpcpeer::stream::spawn_child(&mut cmd, Framing::ContentLength)
        .map_err(|e| e.to_string())?;
    let (peer, driver) = Driver::new(transport, Screen { lines: tx }.into_router());
    let driver = tokio::spawn(driver);
    let server = LanguageServerClient::new(peer.clone());

    let name = server
        .initialize("editor".into())
        .await
        .map_err(|e| e.to_string())?;
    println!("initialized: {name}");
    print_until(&mut lines, "message: hello").await?;

    let text = "one two three\nfour five\nsix";
    let words = server
        .count_words(text.into())
        .await
        .map_err(|e| e.to_string())?;
    println!("words: {words}");
    // The server's driver writes a handler's notifications before its
    // reply, and ours hands each to its handler as it is read: the reports
    // are all on the screen's queue by now, printed after the answer.
    print_until(&mut lines, "progress count end").await?;

    // The typed form: the reports of this one call, in order, then the answer.
    let mut measuring = server.line_lengths(text.into());
    while let Some(report) = measuring.next().await {
        let report = report.map_err(|e| e.to_string())?;
        println!("measured line {} of {}", report.line, report.of);
    }
    let lengths = measuring.await.map_err(|e| e.to_string())?;
    println!("line lengths: {lengths:?}");

    // Gives up on the indexing once it has begun: dropping the call's
    // future tells the server (`$/cancelRequest`), whose handler stops.
    let mut index = Box::pin(server.index());
    tokio::select! {
        answer = &mut index => return Err(format!("index answered: {answer:?}")),
        begun = print_until(&mut lines, "progress index begin") => { begun?; }
    }
    println!("cancelling the indexing");
    drop(index);
    print_until(&mut lines, "message: indexing cancelled").await?;

    server.shutdown().await.map_err(|e| e.to_string())?;
    // Closing our end closes the server's stdin: it exits by itself.
    peer.close().await;
    driver
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let status = child.wait().await.map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("the server exited with {status}"));
    }
    println!("server exited");
    Ok(())
}

//! The `rpcpeer` binary as a user runs it: `rpcpeer serve` on 127.0.0.1
//! port 0, and commands run to their end.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The binary under test, built by cargo for this test.
pub const BIN: &str = env!("CARGO_BIN_EXE_rpcpeer");

/// Turns a hang into a failure. Not a timing assertion: nothing here
/// should take more than a fraction of this (a browser's start included).
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within 30 s (a hang)"))
}

/// Waits until process `pid` has ended: gone, or a zombie that nobody has
/// reaped yet (which has ended all the same).
pub async fn ended(pid: u32) {
    let over = || match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // NB: after the name in parentheses, which may hold anything.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    };
    within(&format!("pid {pid} to end"), async {
        while !over() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// A running `rpcpeer serve --tcp 127.0.0.1:0 --ws 127.0.0.1:0 …`, killed
/// when dropped.
pub struct Serve {
    pub child: Child,
    /// The TCP listener's `host:port`.
    pub tcp: String,
    /// The WebSocket/HTTP listener's `host:port`.
    pub ws: String,
}

impl Serve {
    /// Starts it with `more` arguments and waits for both `listening on`
    /// lines.
    pub async fn start(more: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0"])
            .args(more)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn rpcpeer serve");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let (mut tcp, mut ws) = (None, None);
        while tcp.is_none() || ws.is_none() {
            let line = within("a `listening on` line", lines.next_line())
                .await
                .expect("read serve's stdout")
                .expect("serve printed its `listening on` lines");
            if let Some(addr) = line.strip_prefix("listening on tcp://") {
                tcp = Some(addr.to_owned());
            } else if let Some(addr) = line
                .strip_prefix("listening on ws://")
                .or_else(|| line.strip_prefix("listening on http://"))
            {
                ws = Some(addr.trim_end_matches('/').to_owned());
            }
        }
        Self {
            child,
            tcp: tcp.unwrap_or_default(),
            ws: ws.unwrap_or_default(),
        }
    }
}

/// Runs `rpcpeer ARGS` to its end.
pub async fn rpcpeer(args: &[&str]) -> Output {
    let output = Command::new(BIN).args(args).kill_on_drop(true).output();
    within("rpcpeer to finish", output)
        .await
        .expect("run rpcpeer")
}

/// `rpcpeer ARGS`, to be started in a process group of its own, as under a
/// job control shell's `&`: outside a terminal's foreground, where an
/// `--exec` program gets a group of its own. (Run from a terminal, a test
/// would otherwise put its programs in rpcpeer's group.)
#[cfg(unix)]
pub fn background(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).process_group(0).kill_on_drop(true);
    command
}

/// A finished command's stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A finished command's stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

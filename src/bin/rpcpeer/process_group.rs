//! A program run by `--exec` or `bridge`: in a process group of its own, so that ending it ends what it started too, and watched by a task that sees it exit.

use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};

/// Makes `command` start its program as the leader of a new process group,
/// unless rpcpeer runs in the foreground of a terminal; says which.
///
/// NB: in a group of its own, the program's children join it, so
/// [`Group`] reaches a server that `sh -c` started. At a terminal the
/// program stays in rpcpeer's group instead: in any other, it would be
/// stopped (SIGTTIN) as soon as it read the terminal (a password prompt of
/// `ssh`, say), and there the terminal ends what is left itself (Ctrl-C,
/// the hangup when it closes).
pub(crate) fn own_group(command: &mut Command) -> bool {
    #[cfg(unix)]
    if !in_terminal_foreground() {
        command.process_group(0);
        return true;
    }
    let _ = command;
    false
}

/// Whether this process is in the foreground process group of its
/// controlling terminal.
#[cfg(unix)]
fn in_terminal_foreground() -> bool {
    std::fs::File::open("/dev/tty")
        .ok()
        .and_then(|tty| nix::unistd::tcgetpgrp(&tty).ok())
        .is_some_and(|foreground| foreground == nix::unistd::getpgrp())
}

/// How long a process the program started has, once the program exited,
/// to leave its group before the rest of the group is killed.
const LEAVING: Duration = Duration::from_secs(1);

/// A started program, waited for by a task of its own; dropping this kills
/// it, with what is left of its group.
pub(crate) struct Program {
    /// How it ended, once it has (`Some(None)`: its status could not be read).
    ended: watch::Receiver<Option<Option<ExitStatus>>>,
    kill: Option<oneshot::Sender<()>>,
}

impl Program {
    /// Starts watching `child`, which [`own_group`] gave a group of its own
    /// if `own`. Needs the tokio runtime.
    pub(crate) fn watch(mut child: Child, own: bool) -> Self {
        let group = Group::of(&child, own);
        let (ended_tx, ended) = watch::channel(None);
        let (kill, mut killed) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let (status, asked) = tokio::select! {
                status = child.wait() => (status, false),
                // Asked, or this `Program` dropped.
                _ = &mut killed => {
                    let _ = child.start_kill();
                    (child.wait().await, true)
                }
            };
            let _ = ended_tx.send(Some(status.ok()));
            // NB: the group goes with the program: a process it started
            // that still holds its stdout would keep its end from being
            // seen, and whoever waits for it waiting. Not at once: a
            // launcher that exits as soon as it has forked (`setsid`) must
            // leave its child time to leave the group.
            if !asked {
                tokio::select! {
                    () = tokio::time::sleep(LEAVING) => {}
                    _ = killed => {}
                }
            }
            drop(group);
        });
        Program {
            ended,
            kill: Some(kill),
        }
    }

    /// Waits for the program to end: its exit status, when it could be read.
    pub(crate) async fn ended(&mut self) -> Option<ExitStatus> {
        let ended = self.ended.wait_for(Option::is_some).await.ok()?;
        (*ended).flatten()
    }

    /// Kills the program, and what is left of its group; [`Program::ended`]
    /// says when it is over.
    pub(crate) fn kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }
}

/// The process group of a program started with [`own_group`]: dropping it
/// kills every process still in the group.
///
/// Killing only the program (as `kill_on_drop` does) would leave its own
/// children running, holding the stderr they share with us, so whoever
/// waits for our output to end would wait for them too.
struct Group {
    #[cfg(unix)]
    leader: Option<nix::unistd::Pid>,
}

impl Group {
    /// The group `child` leads, if [`own_group`] gave it one (`own`);
    /// nothing, once the child has been waited for.
    fn of(child: &Child, own: bool) -> Self {
        #[cfg(unix)]
        {
            let leader = (child.id())
                .filter(|_| own)
                .and_then(|pid| i32::try_from(pid).ok())
                .map(nix::unistd::Pid::from_raw);
            Group { leader }
        }
        #[cfg(not(unix))]
        {
            let _ = (child, own);
            Group {}
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(leader) = self.leader {
            // An empty group is the usual case: every process of it exited.
            let _ = nix::sys::signal::killpg(leader, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

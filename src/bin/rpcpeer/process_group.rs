//! A program run by `--exec` or `bridge` in a process group of its own, so that ending it ends what it started too.

use tokio::process::{Child, Command};

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

/// The process group of a program started with [`own_group`]: dropping it
/// kills every process still in the group.
///
/// Killing only the program (as `kill_on_drop` does) would leave its own
/// children running, holding the stderr they share with us, so whoever
/// waits for our output to end would wait for them too.
pub(crate) struct Group {
    #[cfg(unix)]
    leader: Option<nix::unistd::Pid>,
}

impl Group {
    /// The group `child` leads, if [`own_group`] gave it one (`own`);
    /// nothing, once the child has been waited for.
    pub(crate) fn of(child: &Child, own: bool) -> Self {
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

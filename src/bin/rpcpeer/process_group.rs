//! A program run by `--exec` or `bridge` in a process group of its own, so that ending it ends what it started too.

use tokio::process::{Child, Command};

/// Makes `command` start its program as the leader of a new process group.
///
/// NB: its children join that group, so [`Group`] reaches a server that
/// `sh -c` started; and a Ctrl-C at the terminal reaches only rpcpeer,
/// which then ends the program itself.
pub(crate) fn own_group(command: &mut Command) -> &mut Command {
    #[cfg(unix)]
    command.process_group(0);
    command
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
    /// The group `child` leads; nothing, once it has been waited for.
    pub(crate) fn of(child: &Child) -> Self {
        #[cfg(unix)]
        {
            let leader = child
                .id()
                .and_then(|pid| i32::try_from(pid).ok())
                .map(nix::unistd::Pid::from_raw);
            Group { leader }
        }
        #[cfg(not(unix))]
        {
            let _ = child;
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

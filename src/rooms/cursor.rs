//! Where a node stands in a room's sequence: what to deliver, what is a duplicate, when a gap opened.
//!
//! Every message published to a room carries the room's epoch (a random
//! name Redis keeps for the room's sequence; a new one means Redis lost the
//! room, restarted without persistence say) and its sequence number in it.
//! A node delivers each number once, in order; a number past the next one
//! is a gap, filled from the room's history (`Cursor::caught_up`).

/// A gap that the history could not fill: the members are told to
/// resynchronise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resync {
    /// Messages were missed and the history no longer holds them (it keeps
    /// the last `history_len`); `missed` of them.
    Trimmed { missed: u64 },
    /// Redis no longer has the room's sequence (it restarted without
    /// persistence, or the room's keys expired): how much was missed is
    /// unknown.
    Lost,
}

/// What to do with a message that came through the subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The next one: deliver it (the cursor has moved on).
    Deliver,
    /// Already delivered (from the history, during a catch-up): drop it.
    Duplicate,
    /// Messages are missing before it: catch up from the history, which
    /// holds this one too.
    Gap,
    /// The room has not been synchronised yet (its first member is joining,
    /// or the link is coming back): the catch-up will deliver it.
    NotSynced,
}

/// One room's position on one node.
#[derive(Debug, Default)]
pub(crate) struct Cursor {
    epoch: String,
    last: u64,
    synced: bool,
}

impl Cursor {
    /// The last number delivered, and in which epoch.
    pub(crate) fn position(&self) -> (&str, u64) {
        (&self.epoch, self.last)
    }

    pub(crate) fn is_synced(&self) -> bool {
        self.synced
    }

    /// Starts a room that was not synchronised at `last` of `epoch`: what
    /// came before is not for this node's members.
    pub(crate) fn start(&mut self, epoch: &str, last: u64) {
        if !self.synced {
            self.epoch = epoch.to_owned();
            self.last = last;
            self.synced = true;
        }
    }

    /// Judges a message numbered `seq` in `epoch`.
    pub(crate) fn accept(&mut self, epoch: &str, seq: u64) -> Verdict {
        if !self.synced {
            return Verdict::NotSynced;
        }
        if epoch != self.epoch {
            // A room that had no messages when we started (epoch "") gets
            // its epoch with its first message.
            if self.last == 0 && seq == 1 {
                self.epoch = epoch.to_owned();
                self.last = 1;
                return Verdict::Deliver;
            }
            return Verdict::Gap;
        }
        if seq <= self.last {
            Verdict::Duplicate
        } else if seq == self.last + 1 {
            self.last = seq;
            Verdict::Deliver
        } else {
            Verdict::Gap
        }
    }

    /// Takes in what a catch-up read: the room's `epoch` and `head` (its
    /// last number), and the history from number `from + 1` on, whose first
    /// entry is `first`. Returns the resynchronisation the members need, if
    /// any; then every entry numbered above [`Cursor::position`] is to be
    /// delivered in order through [`Cursor::delivered`].
    ///
    /// NB: the cursor may have moved on since the read was sent (the
    /// subscription delivered meanwhile), which is why `from` is given
    /// rather than assumed.
    pub(crate) fn caught_up(
        &mut self,
        epoch: &str,
        head: u64,
        from: u64,
        first: Option<u64>,
    ) -> Option<Resync> {
        if !self.synced {
            self.start(epoch, head);
            return None;
        }
        let mut resync = None;
        if epoch != self.epoch {
            if self.last > 0 {
                resync = Some(Resync::Lost);
            }
            self.epoch = epoch.to_owned();
            self.last = 0;
            if from != 0 {
                // Read in the old epoch's numbering: nothing of it applies.
                return resync;
            }
        }
        if head > self.last {
            let covered = from <= self.last && first.is_some_and(|first| first <= self.last + 1);
            if !covered && resync.is_none() {
                let next = first.unwrap_or(head + 1);
                resync = Some(Resync::Trimmed {
                    missed: next.saturating_sub(self.last + 1),
                });
            }
            if !covered {
                // Deliver from what the history still holds.
                self.last = first.map_or(head, |first| first - 1);
            }
        }
        resync
    }

    /// Records that the entry numbered `seq` was delivered; false when it
    /// is not the next one (already delivered, or out of order).
    pub(crate) fn delivered(&mut self, seq: u64) -> bool {
        if seq == self.last + 1 {
            self.last = seq;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synced(epoch: &str, last: u64) -> Cursor {
        let mut cursor = Cursor::default();
        cursor.start(epoch, last);
        cursor
    }

    #[test]
    fn nothing_is_delivered_before_the_room_is_synchronised() {
        let mut cursor = Cursor::default();
        assert_eq!(cursor.accept("e", 1), Verdict::NotSynced);
        cursor.start("e", 5);
        assert_eq!(cursor.accept("e", 5), Verdict::Duplicate);
        assert_eq!(cursor.accept("e", 6), Verdict::Deliver);
        assert_eq!(cursor.position(), ("e", 6));
    }

    #[test]
    fn each_number_is_delivered_once_and_a_jump_is_a_gap() {
        let mut cursor = synced("e", 0);
        assert_eq!(cursor.accept("e", 1), Verdict::Deliver);
        assert_eq!(cursor.accept("e", 1), Verdict::Duplicate);
        assert_eq!(cursor.accept("e", 3), Verdict::Gap);
        assert_eq!(cursor.position(), ("e", 1));
    }

    #[test]
    fn a_room_started_empty_takes_the_epoch_of_its_first_message() {
        let mut cursor = synced("", 0);
        assert_eq!(cursor.accept("x", 1), Verdict::Deliver);
        assert_eq!(cursor.position(), ("x", 1));
        // A new epoch after messages were seen: a gap (the catch-up decides).
        assert_eq!(cursor.accept("y", 1), Verdict::Gap);
    }

    #[test]
    fn a_gap_the_history_covers_needs_no_resync() {
        let mut cursor = synced("e", 4);
        assert_eq!(cursor.caught_up("e", 9, 4, Some(5)), None);
        assert!(!cursor.delivered(4));
        assert!((5..=9).all(|seq| cursor.delivered(seq)));
        assert_eq!(cursor.position(), ("e", 9));
    }

    #[test]
    fn a_gap_past_the_history_counts_what_was_missed() {
        let mut cursor = synced("e", 4);
        assert_eq!(
            cursor.caught_up("e", 20, 4, Some(16)),
            Some(Resync::Trimmed { missed: 11 })
        );
        assert!(cursor.delivered(16));
        // Everything trimmed and nothing left to deliver.
        let mut cursor = synced("e", 4);
        assert_eq!(
            cursor.caught_up("e", 20, 4, None),
            Some(Resync::Trimmed { missed: 16 })
        );
        assert_eq!(cursor.position(), ("e", 20));
    }

    #[test]
    fn a_lost_epoch_is_a_resync_and_the_new_one_is_read_from_its_start() {
        let mut cursor = synced("old", 7);
        assert_eq!(cursor.caught_up("new", 3, 0, Some(1)), Some(Resync::Lost));
        assert!((1..=3).all(|seq| cursor.delivered(seq)));
        assert_eq!(cursor.position(), ("new", 3));
        // Redis restarted and nothing was written since.
        let mut cursor = synced("old", 7);
        assert_eq!(cursor.caught_up("", 0, 0, None), Some(Resync::Lost));
        assert_eq!(cursor.position(), ("", 0));
    }

    #[test]
    fn a_catch_up_overtaken_by_the_subscription_changes_nothing() {
        let mut cursor = synced("e", 4);
        // The read asked for what follows 2; the cursor is at 4 already.
        assert_eq!(cursor.caught_up("e", 6, 2, Some(3)), None);
        assert!(!cursor.delivered(3) && !cursor.delivered(4));
        assert!(cursor.delivered(5));
    }
}

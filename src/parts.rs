//! A batch whose entries keep their [`Concurrency`] rules: cut into parts, each scheduled as a job of its own, whose replies join into the batch's one array.
//!
//! Spec §6 lets a batch run its entries in any order, not drop their rules
//! against the calls outside it. A batch of concurrent entries stays one
//! job. One with an in-order or exclusive entry is cut where the rule
//! changes: each such entry is a part alone, and the concurrent entries
//! between them are parts of their own. Each part then waits, runs and
//! ends as a message sent alone would, in the batch's order; no part
//! holds a rule longer than its own entry runs, so an exclusive entry
//! does not keep the batch's other entries (or a callback they make)
//! waiting once it has ended.

use foldhash::HashMap;

use crate::router::Concurrency;
use crate::running::Entry;

/// Which part of which batch a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Part {
    batch: u64,
    index: usize,
}

/// One part of a batch, to schedule as a job: its rule, its entries, and
/// its share of the bytes the batch was read from.
pub(crate) struct Cut {
    pub(crate) kind: Concurrency,
    pub(crate) entries: Vec<Entry>,
    pub(crate) bytes: usize,
}

/// Cuts a batch's entries (each with the rule it is scheduled by) into
/// parts, in order; one part when every entry still to run is concurrent.
///
/// An entry answered already (refused, or run as it was read) goes with
/// the part it was read in: it has no rule left to keep.
pub(crate) fn cut(entries: Vec<(Concurrency, Entry)>, bytes: usize) -> Vec<Cut> {
    let strict =
        |(kind, entry): &(Concurrency, Entry)| *kind != Concurrency::Concurrent && !entry.is_done();
    if !entries.iter().any(strict) {
        // The common batch, of requests only: one job, as before there were parts.
        let entries = entries.into_iter().map(|(_, entry)| entry).collect();
        return vec![Cut {
            kind: Concurrency::Concurrent,
            entries,
            bytes,
        }];
    }
    let total = entries.len().max(1);
    let mut parts: Vec<Cut> = Vec::new();
    // Whether the last part has an entry still to run.
    let mut working = false;
    for (kind, entry) in entries {
        let runs = !entry.is_done();
        let joins = match parts.last() {
            None => false,
            Some(_) if !runs || !working => true,
            Some(last) => kind == Concurrency::Concurrent && last.kind == Concurrency::Concurrent,
        };
        if !joins {
            parts.push(Cut {
                kind: Concurrency::Concurrent,
                entries: Vec::new(),
                bytes: 0,
            });
            working = false;
        }
        let Some(last) = parts.last_mut() else {
            continue;
        };
        if runs {
            last.kind = kind;
            working = true;
        }
        last.entries.push(entry);
    }
    // NB: each part weighs its share of the frame, so the bytes a
    // connection holds go down as its parts end; the last takes what the
    // division leaves.
    let mut left = bytes;
    let count = parts.len();
    for (i, part) in parts.iter_mut().enumerate() {
        part.bytes = if i + 1 == count {
            left
        } else {
            bytes * part.entries.len() / total
        };
        left -= part.bytes;
    }
    parts
}

/// The batches cut into parts that have not all ended, with the replies of
/// those that have.
#[derive(Default)]
pub(crate) struct Gathering {
    batches: HashMap<u64, Batch>,
    next: u64,
}

struct Batch {
    /// Each part's reply array, once it has ended.
    replies: Vec<Option<String>>,
    left: usize,
}

impl Gathering {
    /// A batch of `parts` parts; the [`Part`] of each, in order.
    pub(crate) fn open(&mut self, parts: usize) -> impl Iterator<Item = Part> {
        let batch = self.next;
        self.next += 1;
        self.batches.insert(
            batch,
            Batch {
                replies: vec![None; parts],
                left: parts,
            },
        );
        (0..parts).map(move |index| Part { batch, index })
    }

    /// A part has ended with `reply` (its own reply array, if any); once
    /// the batch's last part has, its reply (`Some(None)`: nothing to
    /// write, every entry was a notification).
    pub(crate) fn ended(&mut self, part: Part, reply: Option<String>) -> Option<Option<String>> {
        let batch = self.batches.get_mut(&part.batch)?;
        if let Some(slot) = batch.replies.get_mut(part.index) {
            *slot = reply;
        }
        batch.left = batch.left.saturating_sub(1);
        if batch.left > 0 {
            return None;
        }
        let batch = self.batches.remove(&part.batch)?;
        Some(join_arrays(batch.replies))
    }

    /// Forgets every batch (the connection is gone).
    pub(crate) fn clear(&mut self) {
        self.batches.clear();
    }
}

/// Joins the parts' reply arrays into one, in order; `None` when no part
/// has a reply (spec §6: nothing at all for a batch of notifications).
fn join_arrays(arrays: Vec<Option<String>>) -> Option<String> {
    let mut out = String::new();
    for array in arrays.iter().flatten() {
        let inside = array
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(array);
        if inside.is_empty() {
            continue;
        }
        out.push(if out.is_empty() { '[' } else { ',' });
        out.push_str(inside);
    }
    if out.is_empty() {
        return None;
    }
    out.push(']');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Concurrency::{Concurrent, Exclusive, InOrder};

    /// An entry still to run: a future that never ends.
    fn working() -> Entry {
        Entry::working(
            None,
            crate::message::Version::V2,
            "m".into(),
            Box::pin(std::future::pending()),
            None,
        )
    }

    fn done() -> Entry {
        Entry::done(None)
    }

    /// The parts' rules and sizes.
    fn shape(parts: &[Cut]) -> Vec<(Concurrency, usize)> {
        parts.iter().map(|p| (p.kind, p.entries.len())).collect()
    }

    #[test]
    fn concurrent_entries_stay_one_part() {
        let parts = cut(
            vec![
                (Concurrent, working()),
                (Concurrent, done()),
                (Concurrent, working()),
            ],
            300,
        );
        assert_eq!(shape(&parts), [(Concurrent, 3)]);
        assert_eq!(parts[0].bytes, 300);
    }

    #[test]
    fn each_strict_entry_is_a_part_of_its_own() {
        let parts = cut(
            vec![
                (Concurrent, working()),
                (Concurrent, working()),
                (Exclusive, working()),
                (InOrder, working()),
                (InOrder, working()),
                (Concurrent, working()),
            ],
            600,
        );
        assert_eq!(
            shape(&parts),
            [
                (Concurrent, 2),
                (Exclusive, 1),
                (InOrder, 1),
                (InOrder, 1),
                (Concurrent, 1)
            ]
        );
        assert_eq!(parts.iter().map(|p| p.bytes).sum::<usize>(), 600);
    }

    #[test]
    fn an_answered_entry_joins_the_part_it_was_read_in() {
        // Its rule is kept no longer: it has nothing left to run.
        let parts = cut(
            vec![
                (Exclusive, done()),
                (InOrder, working()),
                (Exclusive, done()),
                (Concurrent, working()),
            ],
            4,
        );
        assert_eq!(shape(&parts), [(InOrder, 3), (Concurrent, 1)]);
        let parts = cut(vec![(Exclusive, done()), (Concurrent, done())], 4);
        assert_eq!(shape(&parts), [(Concurrent, 2)]);
    }

    #[test]
    fn the_replies_join_in_part_order_when_the_last_part_ends() {
        let mut gathering = Gathering::default();
        let parts: Vec<Part> = gathering.open(3).collect();
        assert_eq!(gathering.ended(parts[2], Some("[3]".into())), None);
        assert_eq!(gathering.ended(parts[1], None), None);
        assert_eq!(
            gathering.ended(parts[0], Some("[1,2]".into())),
            Some(Some("[1,2,3]".into()))
        );
        assert!(gathering.batches.is_empty());
        // A part of a batch that is gone is ignored.
        assert_eq!(gathering.ended(parts[0], Some("[1]".into())), None);
    }

    #[test]
    fn a_batch_of_notifications_has_no_reply() {
        let mut gathering = Gathering::default();
        let parts: Vec<Part> = gathering.open(2).collect();
        assert_eq!(gathering.ended(parts[0], None), None);
        assert_eq!(gathering.ended(parts[1], None), Some(None));
    }
}

//! A batch whose entries keep their [`Concurrency`] rules: cut into parts, each scheduled as a job of its own, whose replies join into the batch's one array.
//!
//! Spec §6 lets a batch run its entries in any order, not drop their rules
//! against the calls outside it. A batch of concurrent entries stays one
//! job. One with an in-order or exclusive entry is cut into parts, each
//! waiting, running and ending as a message sent alone would:
//! - each exclusive entry is a part alone, and divides the batch in
//!   stretches: what comes after it waits for it, as for messages alone;
//! - each in-order entry is a part alone;
//! - the concurrent entries of a stretch are one part, so they take one
//!   handler slot between them, as a whole batch did. Were each a part,
//!   a batch of callbacks with a notification after each would take a
//!   slot per callback, and the calls its caller makes back would find
//!   none free.
//!
//! No part holds a rule longer than its own entry runs, so an exclusive
//! entry does not keep the batch's other entries (or the calls they make
//! back) waiting once it has ended.

use foldhash::HashMap;

use crate::router::Concurrency;
use crate::running::{join_batch, Entry};

/// Which part of which batch a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Part {
    batch: u64,
    index: usize,
}

/// One part of a batch, to schedule as a job: its rule, its entries, and
/// where each stands in the batch.
pub(crate) struct Cut {
    pub(crate) kind: Concurrency,
    pub(crate) entries: Vec<Entry>,
    /// The place in the batch of each entry.
    places: Vec<usize>,
}

/// A batch's entries, cut.
pub(crate) enum Cuts {
    /// One job: every entry still to run is concurrent, or only one is left.
    Whole(Concurrency, Vec<Entry>),
    /// Parts, in the batch's order, and the replies of the entries answered
    /// already (refused, or run as they were read), with their places.
    Parts(Vec<Cut>, Vec<(usize, Option<String>)>),
}

/// Cuts a batch's entries, each with the rule it is scheduled by.
pub(crate) fn cut(entries: Vec<(Concurrency, Entry)>) -> Cuts {
    let runs = |(_, entry): &(Concurrency, Entry)| !entry.is_done();
    let strict = entries
        .iter()
        .filter(|e| runs(e) && e.0 != Concurrency::Concurrent)
        .count();
    let concurrent = entries
        .iter()
        .any(|e| runs(e) && e.0 == Concurrency::Concurrent);
    if strict == 0 || (strict == 1 && !concurrent) {
        // The common batch, of requests only, or a single strict call
        // among answers: one job, as before there were parts.
        let kind = entries
            .iter()
            .find(|e| runs(e))
            .map_or(Concurrency::Concurrent, |e| e.0);
        return Cuts::Whole(kind, entries.into_iter().map(|(_, e)| e).collect());
    }
    let mut parts: Vec<Cut> = Vec::new();
    let mut answered = Vec::new();
    // The part of the concurrent entries since the last exclusive one.
    let mut stretch: Option<usize> = None;
    for (place, (kind, mut entry)) in entries.into_iter().enumerate() {
        if entry.is_done() {
            answered.push((place, entry.take_reply()));
            continue;
        }
        let part = match (kind, stretch) {
            (Concurrency::Concurrent, Some(at)) => at,
            _ => {
                parts.push(Cut {
                    kind,
                    entries: Vec::new(),
                    places: Vec::new(),
                });
                parts.len() - 1
            }
        };
        match kind {
            Concurrency::Concurrent => stretch = Some(part),
            Concurrency::Exclusive => stretch = None,
            Concurrency::InOrder => {}
        }
        if let Some(cut) = parts.get_mut(part) {
            cut.entries.push(entry);
            cut.places.push(place);
        }
    }
    Cuts::Parts(parts, answered)
}

/// The batches cut into parts that have not all ended, with the replies of
/// those that have.
#[derive(Default)]
pub(crate) struct Gathering {
    batches: HashMap<u64, Batch>,
    next: u64,
}

struct Batch {
    /// Each entry's reply, in the batch's order, once known.
    replies: Vec<Option<String>>,
    /// Each part's entries' places.
    places: Vec<Vec<usize>>,
    /// Parts not ended yet.
    left: usize,
    /// The bytes it is charged (its frame's, and the replies it held when
    /// it was read), from when it is read until it is answered, whatever
    /// its parts do meanwhile (they wait, run, end and hold their replies,
    /// or are cancelled).
    bytes: usize,
}

impl Gathering {
    /// A batch of `len` entries charged `bytes`, cut into
    /// `parts`, with the replies of its entries `answered` already; each
    /// part, to schedule, with its [`Part`].
    pub(crate) fn open(
        &mut self,
        len: usize,
        bytes: usize,
        parts: Vec<Cut>,
        answered: Vec<(usize, Option<String>)>,
    ) -> Vec<(Part, Concurrency, Vec<Entry>)> {
        let batch = self.next;
        self.next += 1;
        let mut replies: Vec<Option<String>> = vec![None; len];
        for (place, reply) in answered {
            if let Some(slot) = replies.get_mut(place) {
                *slot = reply;
            }
        }
        let mut places = Vec::with_capacity(parts.len());
        let jobs = parts
            .into_iter()
            .enumerate()
            .map(|(index, cut)| {
                places.push(cut.places);
                (Part { batch, index }, cut.kind, cut.entries)
            })
            .collect::<Vec<_>>();
        self.batches.insert(
            batch,
            Batch {
                replies,
                left: places.len(),
                places,
                bytes,
            },
        );
        jobs
    }

    /// A part has ended with its entries' `replies`; once the batch's last
    /// part has, its reply (`None`: nothing to write, every entry was a
    /// notification) and the bytes it was charged, to give back.
    pub(crate) fn ended(
        &mut self,
        part: Part,
        replies: Vec<Option<String>>,
    ) -> Option<(Option<String>, usize)> {
        let batch = self.batches.get_mut(&part.batch)?;
        let places = batch.places.get(part.index)?;
        for (&place, reply) in places.iter().zip(replies) {
            if let Some(slot) = batch.replies.get_mut(place) {
                *slot = reply;
            }
        }
        batch.left = batch.left.saturating_sub(1);
        if batch.left > 0 {
            return None;
        }
        let batch = self.batches.remove(&part.batch)?;
        Some((join_batch(batch.replies), batch.bytes))
    }

    /// Forgets every batch (the connection is gone).
    pub(crate) fn clear(&mut self) {
        self.batches.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Id, Version};
    use Concurrency::{Concurrent, Exclusive, InOrder};

    /// An entry still to run, answering `id`: a future that never ends.
    fn working(id: u64) -> Entry {
        Entry::working(
            Some(Id::from(id)),
            Version::V2,
            "m".into(),
            Box::pin(std::future::pending()),
            None,
        )
    }

    fn done(reply: &str) -> Entry {
        Entry::done(Some(reply.to_owned()))
    }

    /// The parts' rules and the places of their entries.
    fn shape(cuts: &Cuts) -> Vec<(Concurrency, Vec<usize>)> {
        match cuts {
            Cuts::Whole(kind, entries) => vec![(*kind, (0..entries.len()).collect())],
            Cuts::Parts(parts, _) => parts.iter().map(|p| (p.kind, p.places.clone())).collect(),
        }
    }

    #[test]
    fn concurrent_entries_stay_one_job() {
        let cuts = cut(vec![
            (Concurrent, working(1)),
            (Exclusive, done("2")),
            (Concurrent, working(3)),
        ]);
        assert!(matches!(cuts, Cuts::Whole(Concurrent, _)));
    }

    #[test]
    fn a_single_strict_entry_among_answers_is_one_job_of_its_rule() {
        let cuts = cut(vec![(Concurrent, done("1")), (Exclusive, working(2))]);
        assert!(matches!(cuts, Cuts::Whole(Exclusive, _)));
    }

    #[test]
    fn exclusive_entries_divide_the_concurrent_ones_in_stretches() {
        let cuts = cut(vec![
            (Concurrent, working(0)),
            (InOrder, working(1)),
            (Concurrent, working(2)),
            (Exclusive, working(3)),
            (Concurrent, working(4)),
            (InOrder, working(5)),
            (Concurrent, done("6")),
            (Concurrent, working(7)),
        ]);
        assert_eq!(
            shape(&cuts),
            [
                (Concurrent, vec![0, 2]),
                (InOrder, vec![1]),
                (Exclusive, vec![3]),
                (Concurrent, vec![4, 7]),
                (InOrder, vec![5]),
            ]
        );
        let Cuts::Parts(_, answered) = cuts else {
            panic!("cut into parts");
        };
        assert_eq!(answered, [(6, Some("6".to_owned()))]);
    }

    #[test]
    fn the_replies_join_in_request_order_when_the_last_part_ends() {
        let Cuts::Parts(parts, answered) = cut(vec![
            (Concurrent, working(0)),
            (InOrder, working(1)),
            (Concurrent, done("2")),
            (Concurrent, working(3)),
        ]) else {
            panic!("cut into parts");
        };
        let mut gathering = Gathering::default();
        let jobs = gathering.open(4, 10, parts, answered);
        let (first, second) = (jobs[0].0, jobs[1].0);
        assert_eq!(gathering.ended(second, vec![Some("1".into())]), None);
        let replies = vec![Some("0".into()), Some("3".into())];
        assert_eq!(
            gathering.ended(first, replies),
            Some((Some("[0,1,2,3]".into()), 10))
        );
        assert!(gathering.batches.is_empty());
        // A part of a batch that is gone is ignored.
        assert_eq!(gathering.ended(first, vec![]), None);
    }

    #[test]
    fn a_batch_of_notifications_has_no_reply() {
        let Cuts::Parts(parts, answered) = cut(vec![(InOrder, working(0)), (InOrder, working(1))])
        else {
            panic!("cut into parts");
        };
        let mut gathering = Gathering::default();
        let jobs = gathering.open(2, 5, parts, answered);
        assert_eq!(gathering.ended(jobs[0].0, vec![None]), None);
        assert_eq!(gathering.ended(jobs[1].0, vec![None]), Some((None, 5)));
    }
}

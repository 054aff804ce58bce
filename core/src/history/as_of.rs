//! The document as it was at a time: which changes a reader at that time would count.

use std::collections::HashSet;

use automerge::{Automerge, ChangeHash};

/// The heads of the document as it was at `time` (seconds since the Unix epoch): every
/// change stamped at or before `time`, with everything those build on (a change made on a
/// device whose clock ran ahead is counted with the later change that builds on it; an
/// unstamped change, time 0, only with a stamped one that builds on it). Empty if no
/// stamped change is that old. Reads the metadata of every change once: O(history), with
/// no change rebuilt.
pub(crate) fn heads_at_time(doc: &Automerge, time: i64) -> Vec<ChangeHash> {
    let metas = doc.get_changes_meta(&[]);
    let deps_of: std::collections::HashMap<ChangeHash, &[ChangeHash]> =
        metas.iter().map(|m| (m.hash, m.deps.as_slice())).collect();
    let mut kept: HashSet<ChangeHash> = HashSet::new();
    let mut to_visit: Vec<ChangeHash> = metas
        .iter()
        .filter(|m| m.timestamp != 0 && m.timestamp <= time)
        .map(|m| m.hash)
        .collect();
    while let Some(hash) = to_visit.pop() {
        if kept.insert(hash) {
            to_visit.extend(deps_of.get(&hash).copied().unwrap_or_default());
        }
    }
    let covered: HashSet<ChangeHash> = kept
        .iter()
        .flat_map(|hash| deps_of.get(hash).copied().unwrap_or_default())
        .copied()
        .collect();
    let mut heads: Vec<ChangeHash> = kept.difference(&covered).copied().collect();
    heads.sort();
    heads
}

/// The heads among `heads` that the document does not have.
pub(crate) fn missing_heads(doc: &Automerge, heads: &[ChangeHash]) -> Vec<ChangeHash> {
    heads
        .iter()
        .filter(|head| doc.get_change_meta_by_hash(head).is_none())
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use automerge::{AutomergeError, ROOT, transaction::CommitOptions, transaction::Transactable};

    use super::*;

    fn put_at(doc: &mut Automerge, key: &str, time: i64) -> ChangeHash {
        doc.transact_with::<_, _, AutomergeError, _>(
            |_| CommitOptions::default().with_time(time),
            |tx| tx.put(ROOT, key, time),
        )
        .unwrap()
        .hash
        .unwrap()
    }

    #[test]
    fn the_heads_at_a_time_hold_what_was_stamped_by_then() {
        let mut a = Automerge::new();
        let first = put_at(&mut a, "first", 100);
        let mut b = a.fork();
        let on_a = put_at(&mut a, "a", 200);
        let on_b = put_at(&mut b, "b", 300);
        a.merge(&mut b).unwrap();
        let merged = put_at(&mut a, "after", 400);
        assert_eq!(heads_at_time(&a, 99), Vec::<ChangeHash>::new());
        assert_eq!(heads_at_time(&a, 100), vec![first]);
        assert_eq!(heads_at_time(&a, 250), vec![on_a]);
        let mut both = vec![on_a, on_b];
        both.sort();
        assert_eq!(heads_at_time(&a, 399), both);
        assert_eq!(heads_at_time(&a, 400), vec![merged]);
    }

    #[test]
    fn an_unstamped_change_comes_only_with_a_stamped_one_that_builds_on_it() {
        let mut doc = Automerge::new();
        doc.transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "old", 1))
            .unwrap();
        assert_eq!(heads_at_time(&doc, 50), Vec::<ChangeHash>::new());
        let stamped = put_at(&mut doc, "new", 100);
        assert_eq!(heads_at_time(&doc, 50), Vec::<ChangeHash>::new());
        assert_eq!(heads_at_time(&doc, 100), vec![stamped]);
    }

    #[test]
    fn a_change_from_a_clock_that_ran_ahead_comes_with_what_builds_on_it() {
        let mut doc = Automerge::new();
        put_at(&mut doc, "ahead", 900);
        let later = put_at(&mut doc, "on time", 500);
        assert_eq!(heads_at_time(&doc, 600), vec![later]);
        assert_eq!(
            missing_heads(&doc, &[later, ChangeHash([1; 32])]),
            vec![ChangeHash([1; 32])]
        );
    }
}

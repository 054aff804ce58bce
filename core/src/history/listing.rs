//! A document's history as a list of changes, newest first, a page at a time.
//!
//! The walk starts at some heads and goes back through each change's dependencies, always
//! taking next the change with the highest `start_op`: automerge numbers operations like a
//! Lamport clock (a change's operations come after every operation it depends on), so this
//! order never lists a change before one that builds on it. Only the changes of the page
//! and the frontier left behind are read, through automerge's change metadata (no change is
//! rebuilt), so a page costs the same at the end of a long history as at its start. The
//! frontier is the heads of what is left: the next page starts there, and it is also the
//! document as it was before the page's oldest change.

use std::collections::{BinaryHeap, HashMap, HashSet};

use automerge::{ActorId, Automerge, ChangeHash, ChangeMetadata};

use super::author::user_of;

/// One change of a document's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeInfo {
    /// The change's hash: its identity everywhere.
    pub hash: ChangeHash,
    /// The user id of the author the writing replica claimed (see
    /// [`RepoConfig::author`](crate::RepoConfig::author)); `None` for changes written without
    /// one (other automerge implementations, or a repo with no author).
    pub author: Option<String>,
    /// The automerge actor that wrote it (one per author and session).
    pub actor: ActorId,
    /// Its number among the actor's changes, from 1.
    pub seq: u64,
    /// When it was made, in seconds since the Unix epoch, by the writing replica's clock
    /// (automerge-repo's JS clients stamp changes the same way); 0 if it was not stamped.
    pub time: i64,
    /// The message it was made with, if any.
    pub message: Option<String>,
    /// How many operations it holds: its size.
    pub ops: u64,
    /// The changes it builds on.
    pub deps: Vec<ChangeHash>,
}

impl ChangeInfo {
    pub(crate) fn from_meta(meta: &ChangeMetadata<'_>) -> Self {
        Self {
            hash: meta.hash,
            author: meta.author.as_ref().map(user_of),
            actor: meta.actor.clone().into_owned(),
            seq: meta.seq,
            time: meta.timestamp,
            message: meta.message.as_ref().map(|m| m.to_string()),
            ops: (meta.max_op + 1).saturating_sub(meta.start_op),
            deps: meta.deps.clone(),
        }
    }
}

/// A page of a document's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The changes, newest first.
    pub changes: Vec<ChangeInfo>,
    /// Where the next page starts (pass it as `from`); `None` at the beginning of the
    /// history. The document at these heads is the document as it was before this page's
    /// oldest change (one of them may be an ancestor of another, which changes nothing).
    pub next: Option<Vec<ChangeHash>>,
}

/// Lists up to `limit` changes, newest first, from `from` (heads) back. Fails with the
/// heads the document does not have.
pub(crate) fn list(
    doc: &Automerge,
    from: &[ChangeHash],
    limit: usize,
) -> Result<HistoryPage, Vec<ChangeHash>> {
    let mut walk = Walk::default();
    let missing: Vec<ChangeHash> = from
        .iter()
        .filter(|hash| !walk.enqueue(doc, **hash))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(missing);
    }
    let mut changes = Vec::with_capacity(limit.min(1024));
    while changes.len() < limit {
        let Some(info) = walk.next(doc) else { break };
        changes.push(info);
    }
    let next = walk.frontier();
    Ok(HistoryPage {
        changes,
        next: (!next.is_empty()).then_some(next),
    })
}

/// The state of a walk back through the change graph.
#[derive(Default)]
struct Walk {
    /// Changes reached and not listed yet, by (`start_op`, hash): the largest comes next.
    frontier: BinaryHeap<(u64, ChangeHash)>,
    /// Their metadata.
    reached: HashMap<ChangeHash, ChangeInfo>,
    /// Changes of the current `start_op`, in the order they are listed (popped from the end).
    group: Vec<ChangeHash>,
    /// Hashes reached so far (frontier, group, or listed), so none is listed twice.
    seen: HashSet<ChangeHash>,
}

impl Walk {
    /// Adds a change to the frontier; false if the document does not have it.
    fn enqueue(&mut self, doc: &Automerge, hash: ChangeHash) -> bool {
        if self.seen.contains(&hash) {
            return true;
        }
        let Some(meta) = doc.get_change_meta_by_hash(&hash) else {
            return false;
        };
        self.seen.insert(hash);
        self.frontier.push((meta.start_op, hash));
        self.reached.insert(hash, ChangeInfo::from_meta(&meta));
        true
    }

    /// The next change, newest first.
    fn next(&mut self, doc: &Automerge) -> Option<ChangeInfo> {
        if self.group.is_empty() {
            self.fill_group(doc);
        }
        let hash = self.group.pop()?;
        let info = self.reached.remove(&hash)?;
        for dep in &info.deps {
            // A missing dependency cannot happen in a loaded document (automerge keeps
            // changes whose dependencies are missing out of the graph).
            self.enqueue(doc, *dep);
        }
        Some(info)
    }

    /// Takes every reached change with the highest `start_op` as the next group, ordered
    /// so that a change comes before those it depends on. Changes of one `start_op` differ
    /// only when they are concurrent, or empty (an empty change takes the `start_op` of
    /// the next operation, which a change depending on it may take too); such a dependency
    /// is always inside the group, since `start_op` never grows along dependencies.
    fn fill_group(&mut self, doc: &Automerge) {
        let Some(&(top, _)) = self.frontier.peek() else {
            return;
        };
        let mut members = Vec::new();
        while let Some(&(start_op, hash)) = self.frontier.peek() {
            if start_op != top {
                break;
            }
            self.frontier.pop();
            members.push(hash);
        }
        if members.len() == 1 {
            self.group = members;
            return;
        }
        // Dependencies inside the group with the same start_op join it now, so that the
        // group can be ordered as a whole.
        let mut i = 0;
        while i < members.len() {
            let deps = self.reached[&members[i]].deps.clone();
            for dep in deps {
                if self.seen.contains(&dep) {
                    continue;
                }
                match doc.get_change_meta_by_hash(&dep) {
                    Some(meta) if meta.start_op == top => {
                        self.seen.insert(dep);
                        self.reached.insert(dep, ChangeInfo::from_meta(&meta));
                        members.push(dep);
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        self.group = order_within_group(&members, &self.reached);
    }

    /// The heads of what is left: the frontier and the rest of the current group.
    fn frontier(&self) -> Vec<ChangeHash> {
        let mut left: Vec<ChangeHash> = self
            .frontier
            .iter()
            .map(|(_, hash)| *hash)
            .chain(self.group.iter().copied())
            .collect();
        // A group member that another one left depends on is not a head.
        let covered: HashSet<ChangeHash> = self
            .group
            .iter()
            .flat_map(|hash| self.reached[hash].deps.iter().copied())
            .collect();
        left.retain(|hash| !covered.contains(hash));
        left.sort();
        left
    }
}

/// Orders a group so that each change is listed before its dependencies within the group
/// (returned reversed: the first to list is last). Ties go by hash, for a stable order.
fn order_within_group(
    members: &[ChangeHash],
    reached: &HashMap<ChangeHash, ChangeInfo>,
) -> Vec<ChangeHash> {
    let inside: HashSet<ChangeHash> = members.iter().copied().collect();
    // How many members depend on each member: it is listed once they all are.
    let mut dependents: HashMap<ChangeHash, usize> = members.iter().map(|h| (*h, 0)).collect();
    for hash in members {
        for dep in &reached[hash].deps {
            if inside.contains(dep) {
                *dependents.entry(*dep).or_default() += 1;
            }
        }
    }
    let mut ready: Vec<ChangeHash> = members
        .iter()
        .filter(|h| dependents[*h] == 0)
        .copied()
        .collect();
    let mut order = Vec::with_capacity(members.len());
    while !ready.is_empty() {
        ready.sort_by(|a, b| b.cmp(a));
        let Some(hash) = ready.pop() else { break };
        order.push(hash);
        for dep in &reached[&hash].deps {
            if let Some(count) = dependents.get_mut(dep) {
                *count -= 1;
                if *count == 0 {
                    ready.push(*dep);
                }
            }
        }
    }
    order.reverse();
    order
}

#[cfg(test)]
mod tests {
    use automerge::{AutomergeError, ROOT, transaction::CommitOptions, transaction::Transactable};
    use proptest::prelude::*;

    use super::*;

    fn put(doc: &mut Automerge, n: i64) -> ChangeHash {
        doc.transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "n", n))
            .unwrap()
            .hash
            .unwrap()
    }

    /// Lists the whole history from the heads in pages of `page`.
    fn list_all(doc: &Automerge, page: usize) -> Vec<ChangeInfo> {
        let mut from = doc.get_heads();
        let mut all = Vec::new();
        loop {
            let listed = list(doc, &from, page).unwrap();
            assert!(listed.changes.len() <= page);
            all.extend(listed.changes);
            match listed.next {
                Some(next) => from = next,
                None => return all,
            }
        }
    }

    /// Each change once, and before every change it builds on.
    fn assert_newest_first(doc: &Automerge, listed: &[ChangeInfo]) {
        let position: HashMap<ChangeHash, usize> = listed
            .iter()
            .enumerate()
            .map(|(i, c)| (c.hash, i))
            .collect();
        assert_eq!(position.len(), listed.len(), "a change listed twice");
        assert_eq!(
            listed.len(),
            doc.get_changes_meta(&[]).len(),
            "a change left out"
        );
        for change in listed {
            for dep in &change.deps {
                assert!(
                    position[&change.hash] < position[dep],
                    "listed before what builds on it"
                );
            }
        }
    }

    #[test]
    fn a_linear_history_pages_back_from_the_newest() {
        let mut doc = Automerge::new();
        let hashes: Vec<ChangeHash> = (0..10).map(|n| put(&mut doc, n)).collect();
        let first = list(&doc, &doc.get_heads(), 3).unwrap();
        let listed: Vec<ChangeHash> = first.changes.iter().map(|c| c.hash).collect();
        assert_eq!(listed, vec![hashes[9], hashes[8], hashes[7]]);
        // The next page starts at the document as it was before the page's oldest change.
        assert_eq!(first.next, Some(vec![hashes[6]]));
        let all = list_all(&doc, 3);
        let expected: Vec<ChangeHash> = hashes.iter().rev().copied().collect();
        assert_eq!(all.iter().map(|c| c.hash).collect::<Vec<_>>(), expected);
        assert_eq!(all[0].ops, 1);
        assert_eq!(all[0].seq, 10);
    }

    #[test]
    fn the_metadata_of_a_change_is_listed() {
        let mut doc = Automerge::new();
        doc.transact_with::<_, _, AutomergeError, _>(
            |_| {
                CommitOptions::default()
                    .with_message("two keys")
                    .with_time(1_700_000_000)
            },
            |tx| {
                tx.put(ROOT, "a", 1)?;
                tx.put(ROOT, "b", 2)
            },
        )
        .unwrap();
        let page = list(&doc, &doc.get_heads(), 10).unwrap();
        assert_eq!(page.next, None);
        let change = &page.changes[0];
        assert_eq!(change.message.as_deref(), Some("two keys"));
        assert_eq!(change.time, 1_700_000_000);
        assert_eq!(change.ops, 2);
        assert_eq!(&change.actor, doc.get_actor());
        assert_eq!(change.author, None);
    }

    #[test]
    fn heads_the_document_lacks_are_named() {
        let doc = Automerge::new();
        let unknown = ChangeHash([7; 32]);
        assert_eq!(list(&doc, &[unknown], 5), Err(vec![unknown]));
        let empty = list(&doc, &[], 5).unwrap();
        assert!(empty.changes.is_empty() && empty.next.is_none());
    }

    #[test]
    fn empty_changes_of_several_actors_in_a_chain_are_listed_in_order() {
        // Empty changes take the start_op of the next operation, so a chain of them across
        // actors shares one start_op: the order must come from their dependencies.
        let mut a = Automerge::new();
        put(&mut a, 1);
        let mut b = a.fork();
        let mut c = a.fork();
        a.empty_commit(CommitOptions::default());
        b.merge(&mut a).unwrap();
        b.empty_commit(CommitOptions::default());
        c.merge(&mut b).unwrap();
        c.empty_commit(CommitOptions::default());
        for page in 1..5 {
            assert_newest_first(&c, &list_all(&c, page));
        }
    }

    /// One step of a random history: which replica acts, and how.
    #[derive(Debug, Clone)]
    enum Step {
        Put(usize, i64),
        Empty(usize),
        Merge(usize, usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (0..3usize, any::<i64>()).prop_map(|(r, n)| Step::Put(r, n)),
            1 => (0..3usize).prop_map(Step::Empty),
            2 => (0..3usize, 0..3usize).prop_map(|(a, b)| Step::Merge(a, b)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_history_is_listed_whole_newest_first(steps in prop::collection::vec(step(), 1..40), page in 1..7usize) {
            let mut replicas = vec![Automerge::new()];
            put(&mut replicas[0], 0);
            replicas.push(replicas[0].fork());
            replicas.push(replicas[0].fork());
            for step in steps {
                match step {
                    Step::Put(r, n) => { put(&mut replicas[r], n); }
                    Step::Empty(r) => { replicas[r].empty_commit(CommitOptions::default()); }
                    Step::Merge(a, b) if a != b => {
                        let mut other = replicas[b].clone();
                        replicas[a].merge(&mut other).unwrap();
                    }
                    Step::Merge(..) => {}
                }
            }
            let mut all = replicas[0].clone();
            for other in &mut replicas[1..] {
                all.merge(other).unwrap();
            }
            assert_newest_first(&all, &list_all(&all, page));
        }
    }
}

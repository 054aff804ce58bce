//! Undoing a change: a new change that takes back what it did, as things stand now.
//!
//! automerge has no undo, and a change cannot be removed from history, so an undo is an
//! ordinary change, made now, that inverts the operations of the change it undoes wherever
//! they still hold:
//! - a value it put is replaced by the value it overwrote (or removed, if there was none),
//!   unless someone has put another value there since;
//! - a value it deleted is put back, unless someone has put one there since;
//! - elements it inserted into a list or text are deleted, if they are still there;
//! - elements it deleted are inserted again after the nearest element to their left that is
//!   still there, as runs (so "Hello " comes back as one word);
//! - a counter it incremented is incremented back.
//!
//! A value or element an undo puts back is a new operation; [`Restored`] remembers which
//! operation it stands for, so that undoing the change that first wrote it (the next step
//! of an undo stack) finds it. So an undo never takes back someone else's edit, concurrent
//! or later. A value it restores
//! that was a map, list or text is restored as a copy (a new object with the old contents);
//! edits others make to the old object after that are not in the copy. Text formatting
//! (marks) cannot be undone: such a change is refused. Redo is the undo of an undo.

use std::collections::{BTreeMap, HashMap, HashSet};

use automerge::{
    ChangeHash, ObjId, ObjType, Prop, ROOT, ReadDoc, Value,
    legacy::{self, Key, ObjectId, OpType},
    transaction::{Transactable, Transaction},
};

use super::units;

/// Why a change cannot be undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CannotUndo(pub(crate) String);

impl From<automerge::AutomergeError> for CannotUndo {
    fn from(error: automerge::AutomergeError) -> Self {
        Self(error.to_string())
    }
}

/// Operations that undos put back, by the operation whose value or element each restores.
#[derive(Debug, Default)]
pub(crate) struct Restored(HashMap<ObjId, ObjId>);

impl Restored {
    /// The operation that stands for `id` now: `id`, or what last restored it.
    fn follow(&self, id: &ObjId) -> ObjId {
        let mut id = id.clone();
        // Bounded: each restoring operation is newer than the one it restores.
        for _ in 0..=self.0.len() {
            match self.0.get(&id) {
                Some(next) => id = next.clone(),
                None => break,
            }
        }
        id
    }

    /// Records what the undo committed as `change` (its first operation `start_op`, by
    /// `actor`) restored: the operations [`invert`] reported by their index in it.
    pub(crate) fn record(
        &mut self,
        restored: Vec<(ObjId, usize)>,
        start_op: u64,
        actor: &automerge::ActorId,
    ) {
        for (original, index) in restored {
            self.0.insert(
                original,
                ObjId::Id(start_op + index as u64, actor.clone(), 0),
            );
        }
    }
}

/// Takes back `changes`, newest first, in the transaction `tx`. Returns the operations it
/// restored, each with the index of the operation of `tx` that restores it (for
/// [`Restored::record`] once `tx` is committed).
pub(crate) fn invert(
    tx: &mut Transaction<'_>,
    changes: &[ChangeHash],
    restored: &Restored,
) -> Result<Vec<(ObjId, usize)>, CannotUndo> {
    let mut inverter = Inverter {
        restored,
        restoring: Vec::new(),
    };
    for hash in changes.iter().rev() {
        let change = tx
            .get_change_by_hash(hash)
            .ok_or_else(|| CannotUndo(format!("the document has no change {hash}")))?
            .decode();
        inverter.invert_change(tx, &change)?;
    }
    Ok(inverter.restoring)
}

/// What one change did to one list or text.
#[derive(Default)]
struct SeqEdits {
    /// Elements it inserted.
    inserted: HashSet<ObjId>,
    /// Values it deleted (the ids of the values that were visible before it).
    deleted: HashSet<ObjId>,
    /// Values it put over existing elements, by element: (its last op there, the values
    /// that showed there before the change).
    set: BTreeMap<ObjId, (ObjId, Vec<ObjId>)>,
    /// Counters it incremented: (the counter's value op, by how much).
    incremented: Vec<(Vec<ObjId>, i64)>,
}

/// What one change did to one key of a map, as a whole: a change that puts a key twice,
/// or puts and then deletes it, is taken back to what the key held before the change.
#[derive(Default)]
struct KeyEdit {
    /// Its last put or delete there: (the action, its id, the values that showed before
    /// the change).
    last: Option<(Action, ObjId, Vec<ObjId>)>,
    /// What it added to the counter there, if it only incremented it: (the counter's value
    /// op, by how much in all).
    incremented: Option<(Vec<ObjId>, i64)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Put,
    Delete,
}

/// An element of a list or text: its value's id, the value, where it starts and how many
/// units it takes (1 in a list; the text encoding's units in a text).
struct Element {
    id: ObjId,
    value: Value<'static>,
    at: usize,
    width: usize,
}

struct Inverter<'r> {
    restored: &'r Restored,
    /// What this undo restores: (original operation, index of the restoring one).
    restoring: Vec<(ObjId, usize)>,
}

/// Where a restored value goes: over what is at a key or index, or inserted at an index.
enum Slot {
    Put(Prop),
    Insert(usize),
}

impl Inverter<'_> {
    fn invert_change(
        &mut self,
        tx: &mut Transaction<'_>,
        change: &legacy::Change,
    ) -> Result<(), CannotUndo> {
        let start = change.start_op.get();
        let end = start + change.operations.len() as u64;
        let actor = &change.actor_id;
        let in_change = |id: &legacy::OpId| id.1 == *actor && (start..end).contains(&id.0);
        // Operations on objects this change made go with those objects.
        let made_here = |obj: &ObjectId| match obj {
            ObjectId::Id(id) => in_change(id),
            ObjectId::Root => false,
        };
        // Each operation's predecessors as they were before the change: a value the change
        // put and then replaced stands for the values it had replaced.
        let mut before_change: HashMap<u64, Vec<ObjId>> = HashMap::new();
        let mut sequences: BTreeMap<ObjId, SeqEdits> = BTreeMap::new();
        let mut keys: BTreeMap<(ObjId, String), KeyEdit> = BTreeMap::new();
        for (i, op) in change.operations.iter().enumerate() {
            if matches!(op.action, OpType::MarkBegin(_) | OpType::MarkEnd(_)) {
                return Err(CannotUndo(
                    "the change formats text (marks), which cannot be undone".to_owned(),
                ));
            }
            let counter = start + i as u64;
            let mut pred: Vec<ObjId> = Vec::new();
            for id in op.pred.iter() {
                if in_change(id) {
                    pred.extend(before_change.get(&id.0).cloned().unwrap_or_default());
                } else {
                    pred.push(op_id(id));
                }
            }
            before_change.insert(counter, pred.clone());
            if made_here(&op.obj) {
                continue;
            }
            let id = ObjId::Id(counter, actor.clone(), 0);
            // The object as it was (an earlier undo may have restored it as a copy since:
            // reads before the change go to it, reads and writes now to the copy).
            let obj = object_id(&op.obj);
            match &op.key {
                Key::Map(key) => {
                    let edit = keys.entry((obj, key.to_string())).or_default();
                    match &op.action {
                        // What showed before the change is what the first put or delete
                        // replaced (a put after a delete in the change replaces nothing).
                        OpType::Put(_) | OpType::Make(_) => {
                            let pred = edit.last.as_ref().map_or(pred, |(_, _, p)| p.clone());
                            edit.last = Some((Action::Put, id, pred));
                        }
                        OpType::Delete => {
                            let pred = edit.last.as_ref().map_or(pred, |(_, _, p)| p.clone());
                            edit.last = Some((Action::Delete, id, pred));
                        }
                        OpType::Increment(by) if edit.last.is_none() => {
                            let (_, total) = edit.incremented.get_or_insert((pred, 0));
                            *total += by;
                        }
                        // Increments of a counter the change put itself go with it.
                        OpType::Increment(_) | OpType::MarkBegin(_) | OpType::MarkEnd(_) => {}
                    }
                }
                Key::Seq(element) => {
                    let edits = sequences.entry(obj).or_default();
                    match &op.action {
                        OpType::Put(_) | OpType::Make(_) if op.insert => {
                            edits.inserted.insert(id);
                        }
                        // Over an element the change inserted: the element shows this value
                        // now, and goes as one the change inserted.
                        OpType::Put(_) | OpType::Make(_) if pred.is_empty() => {
                            edits.inserted.insert(id);
                        }
                        OpType::Put(_) | OpType::Make(_) => {
                            let element = match element {
                                legacy::ElementId::Id(element) => op_id(element),
                                legacy::ElementId::Head => ROOT,
                            };
                            let earlier = edits.set.get(&element).map(|(_, p)| p.clone());
                            edits.set.insert(element, (id, earlier.unwrap_or(pred)));
                        }
                        OpType::Delete => edits.deleted.extend(pred),
                        OpType::Increment(by) => edits.incremented.push((pred, *by)),
                        OpType::MarkBegin(_) | OpType::MarkEnd(_) => {}
                    }
                }
            }
        }
        let before = &change.deps;
        for ((obj, key), edit) in keys {
            self.invert_key(tx, &obj, &key, edit, before)?;
        }
        for (obj, edits) in sequences {
            self.invert_sequence(tx, &obj, &edits, before)?;
        }
        Ok(())
    }

    /// Takes back what a change did to `key` of the object that was `was` before it.
    fn invert_key(
        &mut self,
        tx: &mut Transaction<'_>,
        was: &ObjId,
        key: &str,
        edit: KeyEdit,
        before: &[ChangeHash],
    ) -> Result<(), CannotUndo> {
        let obj = &self.restored.follow(was);
        let now = tx.get_all(obj, key)?;
        let prop = || Prop::Map(key.to_owned());
        let Some((action, id, pred)) = edit.last else {
            // Only increments: taken back if the counter is still the one incremented.
            if let Some((counter, by)) = edit.incremented {
                let counters: Vec<ObjId> =
                    counter.iter().map(|c| self.restored.follow(c)).collect();
                if let Some((value, winner)) = now.last()
                    && value.is_counter()
                    && counters.contains(winner)
                {
                    tx.increment(obj, key, -by)?;
                }
            }
            return Ok(());
        };
        match action {
            Action::Put => {
                // Only where this value still shows: a later put by anyone stays.
                let ours = self.restored.follow(&id);
                if now.last().map(|(_, winner)| winner) != Some(&ours) {
                    return Ok(());
                }
                let others: Vec<_> = now.iter().filter(|(_, other)| *other != ours).collect();
                if let Some((value, _)) = others.last() {
                    // A concurrent scalar of someone else's shows once ours is gone (a
                    // concurrent object stays in conflict with ours: one value cannot be
                    // removed from a conflict without removing both).
                    if let Value::Scalar(scalar) = value {
                        tx.put(obj, key, scalar.clone().into_owned())?;
                    }
                    return Ok(());
                }
                match replaced_value(tx, was, prop(), &pred, before)? {
                    Some((value, old)) => {
                        self.write(tx, obj, Slot::Put(prop()), value, &old, before)
                    }
                    None => Ok(tx.delete(obj, key)?),
                }
            }
            Action::Delete => {
                if !now.is_empty() {
                    return Ok(()); // put again since
                }
                match replaced_value(tx, was, prop(), &pred, before)? {
                    Some((value, old)) => {
                        self.write(tx, obj, Slot::Put(prop()), value, &old, before)
                    }
                    None => Ok(()),
                }
            }
        }
    }

    /// Writes `value` (which was `old` at `before`) into `slot` of `obj`, copying an
    /// object's contents, and remembers that the new operations restore the old ones.
    fn write(
        &mut self,
        tx: &mut Transaction<'_>,
        obj: &ObjId,
        slot: Slot,
        value: Value<'static>,
        old: &ObjId,
        before: &[ChangeHash],
    ) -> Result<(), CannotUndo> {
        let at = tx.pending_ops();
        match (value, slot) {
            (Value::Scalar(scalar), slot) => {
                match slot {
                    Slot::Put(prop) => tx.put(obj, prop, scalar.into_owned())?,
                    Slot::Insert(index) => tx.insert(obj, index, scalar.into_owned())?,
                }
                // automerge makes no operation for a put of the value already there (and
                // more than one over a conflict): only a single new one restores `old`.
                if tx.pending_ops() == at + 1 {
                    self.restoring.push((old.clone(), at));
                }
                Ok(())
            }
            (Value::Object(kind), slot) => {
                self.restoring.push((old.clone(), at));
                let copy = match slot {
                    Slot::Put(prop) => tx.put_object(obj, prop, kind)?,
                    Slot::Insert(index) => tx.insert_object(obj, index, kind)?,
                };
                self.copy_into(tx, old, before, &copy, kind)
            }
        }
    }

    /// Writes into the new object `to` the contents `from` had at `before`, remembering
    /// which new operation restores which old one (so that later undos find them).
    fn copy_into(
        &mut self,
        tx: &mut Transaction<'_>,
        from: &ObjId,
        before: &[ChangeHash],
        to: &ObjId,
        kind: ObjType,
    ) -> Result<(), CannotUndo> {
        match kind {
            ObjType::Map | ObjType::Table => {
                let entries: Vec<(String, Value<'static>, ObjId)> = tx
                    .map_range_at(from, .., before)
                    .map(|item| {
                        (
                            item.key.to_string(),
                            Value::from(item.value.clone()),
                            item.id(),
                        )
                    })
                    .collect();
                for (key, value, id) in entries {
                    self.write(tx, to, Slot::Put(Prop::Map(key)), value, &id, before)?;
                }
            }
            ObjType::List => {
                let items: Vec<(Value<'static>, ObjId)> = tx
                    .list_range_at(from, .., before)
                    .map(|item| (Value::from(item.value.clone()), item.id()))
                    .collect();
                for (index, (value, id)) in items.into_iter().enumerate() {
                    self.write(tx, to, Slot::Insert(index), value, &id, before)?;
                }
            }
            ObjType::Text => {
                // The characters only: a block marker (rich text) is not copied, so that a
                // copy holds text, never a stand-in character for a block.
                let old: Vec<Element> = elements(tx, from, Some(before))
                    .into_iter()
                    .filter(|e| matches!(e.value, Value::Scalar(_)))
                    .collect();
                let text: String = old
                    .iter()
                    .filter_map(|e| match &e.value {
                        Value::Scalar(scalar) => scalar.as_str().map(str::to_owned),
                        Value::Object(_) => None,
                    })
                    .collect();
                let start = tx.pending_ops();
                tx.splice_text(to, 0, 0, &text)?;
                self.restored_elements(&old, start, tx.pending_ops());
            }
        }
        Ok(())
    }

    /// Remembers that the text elements `old` were inserted again as the operations from
    /// `start` to `end` of the transaction, one each in order (if the counts agree; blocks
    /// are never restored, so they are left out of `old` or make the counts differ).
    fn restored_elements(&mut self, old: &[Element], start: usize, end: usize) {
        if end - start == old.len() {
            for (offset, element) in old.iter().enumerate() {
                self.restoring.push((element.id.clone(), start + offset));
            }
        }
    }

    /// Takes back what a change did to the list or text that was `was` before it.
    fn invert_sequence(
        &mut self,
        tx: &mut Transaction<'_>,
        was: &ObjId,
        edits: &SeqEdits,
        before: &[ChangeHash],
    ) -> Result<(), CannotUndo> {
        let obj = &self.restored.follow(was);
        let is_text = tx.object_type(obj).ok() == Some(ObjType::Text);
        // Values it put over elements, where they still show.
        if !edits.set.is_empty() {
            let old = elements(tx, was, Some(before));
            for (id, pred) in edits.set.values() {
                let ours = self.restored.follow(id);
                // A list counts elements; a text counts its units.
                let now = elements(tx, obj, None);
                let Some(index) = now
                    .iter()
                    .enumerate()
                    .find(|(_, e)| e.id == ours)
                    .map(|(i, e)| if is_text { e.at } else { i })
                else {
                    continue;
                };
                if let Some(old) = old.iter().find(|e| pred.contains(&e.id)) {
                    let value = old.value.clone();
                    self.write(tx, obj, Slot::Put(Prop::Seq(index)), value, &old.id, before)?;
                }
            }
        }
        for (pred, by) in &edits.incremented {
            let counters: Vec<ObjId> = pred.iter().map(|id| self.restored.follow(id)).collect();
            let now = elements(tx, obj, None);
            if let Some(index) = now
                .iter()
                .position(|e| counters.contains(&e.id) && e.value.is_counter())
            {
                tx.increment(obj, index, -by)?;
            }
        }
        // Elements it inserted that are still there, last first so positions hold.
        let inserted: HashSet<ObjId> = edits
            .inserted
            .iter()
            .map(|id| self.restored.follow(id))
            .collect();
        let now = elements(tx, obj, None);
        for element in now.iter().rev().filter(|e| inserted.contains(&e.id)) {
            if is_text {
                tx.splice_text(obj, element.at, element.width as isize, "")?;
            } else {
                tx.delete(obj, element.at)?;
            }
        }
        if !edits.deleted.is_empty() {
            self.restore_deleted(tx, (was, obj), is_text, &edits.deleted, before)?;
        }
        Ok(())
    }

    /// Inserts again the elements a change deleted, run by run (consecutive elements as
    /// they were), each after the nearest element to its left that is still there (or, if
    /// none is, before the nearest one to its right; a list element that was replaced is
    /// not there any more).
    fn restore_deleted(
        &mut self,
        tx: &mut Transaction<'_>,
        (was, obj): (&ObjId, &ObjId),
        is_text: bool,
        deleted: &HashSet<ObjId>,
        before: &[ChangeHash],
    ) -> Result<(), CannotUndo> {
        let old = elements(tx, was, Some(before));
        let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
        for (index, element) in old.iter().enumerate() {
            if !deleted.contains(&element.id) {
                continue;
            }
            match runs.last_mut() {
                Some(run) if run.end == index => run.end += 1,
                _ => runs.push(index..index + 1),
            }
        }
        // Right to left: a run's anchor is left of it, so inserting it moves no later anchor.
        for run in runs.into_iter().rev() {
            let now: HashMap<ObjId, (usize, usize)> = elements(tx, obj, None)
                .into_iter()
                .map(|e| (e.id, (e.at, e.width)))
                .collect();
            let present = |e: &Element| now.get(&self.restored.follow(&e.id)).copied();
            let after_left = old[..run.start]
                .iter()
                .rev()
                .find_map(present)
                .map(|(at, width)| at + width);
            let before_right = || old[run.end..].iter().find_map(present).map(|(at, _)| at);
            // A run that began the sequence begins it again.
            let at = if run.start == 0 {
                0
            } else {
                after_left.or_else(before_right).unwrap_or(0)
            };
            if is_text {
                let start = tx.pending_ops();
                let text: String = old[run.clone()]
                    .iter()
                    .filter_map(|e| match &e.value {
                        Value::Scalar(scalar) => scalar.as_str().map(str::to_owned),
                        Value::Object(_) => None, // a block marker: not restored
                    })
                    .collect();
                tx.splice_text(obj, at, 0, &text)?;
                self.restored_elements(&old[run], start, tx.pending_ops());
            } else {
                for (offset, element) in old[run].iter().enumerate() {
                    let (value, slot) = (element.value.clone(), Slot::Insert(at + offset));
                    self.write(tx, obj, slot, value, &element.id, before)?;
                }
            }
        }
        Ok(())
    }
}

/// The value among `pred` that showed at `prop` before the change, with its id.
fn replaced_value(
    tx: &Transaction<'_>,
    obj: &ObjId,
    prop: Prop,
    pred: &[ObjId],
    before: &[ChangeHash],
) -> Result<Option<(Value<'static>, ObjId)>, CannotUndo> {
    let old = tx.get_all_at(obj, prop, before)?;
    Ok(old
        .into_iter()
        .rev()
        .find(|(_, id)| pred.contains(id))
        .map(|(value, id)| (value.into_owned(), id)))
}

/// The elements of a list or text, as they are now or at `heads`.
fn elements(tx: &Transaction<'_>, obj: &ObjId, heads: Option<&[ChangeHash]>) -> Vec<Element> {
    let is_text = tx.object_type(obj).ok() == Some(ObjType::Text);
    let encoding = tx.text_encoding();
    let items: Vec<(ObjId, Value<'static>)> = match heads {
        Some(heads) => tx
            .list_range_at(obj, .., heads)
            .map(|item| (item.id(), Value::from(item.value.clone())))
            .collect(),
        None => tx
            .list_range(obj, ..)
            .map(|item| (item.id(), Value::from(item.value.clone())))
            .collect(),
    };
    let mut at = 0;
    items
        .into_iter()
        .map(|(id, value)| {
            let width = match (&value, is_text) {
                (Value::Scalar(scalar), true) => scalar.as_str().map_or(1, |s| units(encoding, s)),
                _ => 1,
            };
            let element = Element {
                id,
                value,
                at,
                width,
            };
            at += width;
            element
        })
        .collect()
}

fn object_id(obj: &ObjectId) -> ObjId {
    match obj {
        ObjectId::Root => ROOT,
        ObjectId::Id(id) => op_id(id),
    }
}

/// An operation's id as the `ObjId` automerge's reads return (the actor index is only a
/// hint: automerge looks the actor up when it does not match).
fn op_id(id: &legacy::OpId) -> ObjId {
    ObjId::Id(id.0, id.1.clone(), 0)
}

#[cfg(test)]
mod tests {
    use automerge::{
        Automerge, AutomergeError, ScalarValue, TextEncoding, transaction::CommitOptions,
    };

    use super::*;

    fn change<O>(
        doc: &mut Automerge,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<O, AutomergeError>,
    ) -> ChangeHash {
        doc.transact(f).unwrap().hash.unwrap()
    }

    thread_local! {
        static RESTORED: std::cell::RefCell<Restored> = std::cell::RefCell::default();
    }

    /// Undoes `hash` in `doc` as a new change, as an undo stack of this thread does; its
    /// hash (None if nothing was left to undo).
    fn undo(doc: &mut Automerge, hash: ChangeHash) -> Option<ChangeHash> {
        RESTORED.with_borrow_mut(|restored| {
            let done = doc
                .transact_with(
                    |_| CommitOptions::default(),
                    |tx| invert(tx, &[hash], restored),
                )
                .unwrap();
            let undo = done.hash?;
            let meta = doc.get_change_meta_by_hash(&undo).unwrap();
            restored.record(done.result, meta.start_op, &meta.actor);
            Some(undo)
        })
    }

    fn text(doc: &Automerge) -> String {
        let (_, text) = doc.get(ROOT, "text").unwrap().unwrap();
        doc.text(text).unwrap()
    }

    fn text_obj(doc: &Automerge) -> ObjId {
        doc.get(ROOT, "text").unwrap().unwrap().1
    }

    fn int(doc: &Automerge, key: &str) -> Option<i64> {
        doc.get(ROOT, key)
            .unwrap()
            .and_then(|(value, _)| match value {
                Value::Scalar(s) => match s.as_ref() {
                    ScalarValue::Int(n) => Some(*n),
                    ScalarValue::Counter(c) => Some(i64::from(c)),
                    _ => None,
                },
                Value::Object(_) => None,
            })
    }

    fn with_text(initial: &str) -> Automerge {
        let mut doc = Automerge::new();
        let initial = initial.to_owned();
        change(&mut doc, move |tx| {
            let text = tx.put_object(ROOT, "text", ObjType::Text)?;
            tx.splice_text(&text, 0, 0, &initial)
        });
        doc
    }

    #[test]
    fn a_put_is_undone_to_the_value_it_replaced_and_a_first_put_to_nothing() {
        let mut doc = Automerge::new();
        let first = change(&mut doc, |tx| tx.put(ROOT, "n", 1));
        let second = change(&mut doc, |tx| tx.put(ROOT, "n", 2));
        undo(&mut doc, second).unwrap();
        assert_eq!(int(&doc, "n"), Some(1));
        undo(&mut doc, first).unwrap();
        assert_eq!(doc.get(ROOT, "n").unwrap(), None);
    }

    #[test]
    fn a_change_that_puts_a_key_twice_or_puts_then_deletes_it_is_undone_whole() {
        let mut doc = Automerge::new();
        change(&mut doc, |tx| tx.put(ROOT, "n", 1));
        let twice = change(&mut doc, |tx| {
            tx.put(ROOT, "n", 2)?;
            tx.put(ROOT, "n", 3)
        });
        undo(&mut doc, twice).unwrap();
        assert_eq!(int(&doc, "n"), Some(1));
        let put_then_deleted = change(&mut doc, |tx| {
            tx.put(ROOT, "n", 2)?;
            tx.delete(ROOT, "n")
        });
        assert_eq!(doc.get(ROOT, "n").unwrap(), None);
        undo(&mut doc, put_then_deleted).unwrap();
        assert_eq!(int(&doc, "n"), Some(1));
    }

    #[test]
    fn a_change_that_deletes_a_key_then_puts_it_again_is_undone_to_the_old_value() {
        let mut doc = Automerge::new();
        change(&mut doc, |tx| tx.put(ROOT, "n", 1));
        let replaced = change(&mut doc, |tx| {
            tx.delete(ROOT, "n")?;
            tx.put(ROOT, "n", 2)
        });
        undo(&mut doc, replaced).unwrap();
        assert_eq!(int(&doc, "n"), Some(1));
    }

    #[test]
    fn an_element_inserted_and_then_overwritten_in_one_change_goes_with_its_undo() {
        let mut doc = Automerge::new();
        change(&mut doc, |tx| tx.put_object(ROOT, "list", ObjType::List));
        let list = doc.get(ROOT, "list").unwrap().unwrap().1;
        let edit = list.clone();
        let made = change(&mut doc, move |tx| {
            tx.insert(&edit, 0, "a")?;
            tx.put(&edit, 0, "b")
        });
        assert_eq!(doc.length(&list), 1);
        undo(&mut doc, made).unwrap();
        assert_eq!(doc.length(&list), 0);
    }

    #[test]
    fn redo_writes_into_the_copy_an_undo_restored() {
        let mut doc = Automerge::new();
        let made = change(&mut doc, |tx| tx.put_object(ROOT, "list", ObjType::List));
        let list = doc.get(ROOT, "list").unwrap().unwrap().1;
        let edit = list.clone();
        let pushed = change(&mut doc, move |tx| tx.insert(&edit, 0, "milk"));
        let items = |doc: &Automerge| -> Option<usize> {
            let (_, list) = doc.get(ROOT, "list").unwrap()?;
            Some(doc.length(&list))
        };
        let undo_push = undo(&mut doc, pushed).unwrap();
        let undo_make = undo(&mut doc, made).unwrap();
        assert_eq!(items(&doc), None);
        undo(&mut doc, undo_make).unwrap(); // redo: the list comes back as a copy
        assert_eq!(items(&doc), Some(0));
        undo(&mut doc, undo_push).unwrap(); // redo: the item goes into the copy
        assert_eq!(items(&doc), Some(1));
    }

    #[test]
    fn a_later_put_by_someone_else_is_never_taken_back() {
        let mut ana = Automerge::new();
        change(&mut ana, |tx| tx.put(ROOT, "n", 1));
        let mine = change(&mut ana, |tx| tx.put(ROOT, "n", 2));
        let mut bo = ana.fork();
        change(&mut bo, |tx| tx.put(ROOT, "n", 3));
        ana.merge(&mut bo).unwrap();
        assert_eq!(undo(&mut ana, mine), None, "nothing of it shows any more");
        assert_eq!(int(&ana, "n"), Some(3));
    }

    #[test]
    fn a_concurrent_value_shows_once_ours_is_undone() {
        let mut ana = Automerge::new();
        change(&mut ana, |tx| tx.put(ROOT, "n", 1));
        let mut bo = ana.fork();
        let mine = change(&mut ana, |tx| tx.put(ROOT, "n", 2));
        change(&mut bo, |tx| tx.put(ROOT, "n", 3));
        ana.merge(&mut bo).unwrap();
        // Whichever won the conflict, after the undo bo's value shows.
        undo(&mut ana, mine);
        assert_eq!(int(&ana, "n"), Some(3));
    }

    #[test]
    fn a_deleted_object_comes_back_as_a_copy_with_its_contents() {
        let mut doc = Automerge::new();
        change(&mut doc, |tx| {
            let list = tx.put_object(ROOT, "todo", ObjType::List)?;
            tx.insert(&list, 0, "milk")?;
            let item = tx.insert_object(&list, 1, ObjType::Map)?;
            tx.put(&item, "title", "bread")
        });
        let deleted = change(&mut doc, |tx| tx.delete(ROOT, "todo"));
        undo(&mut doc, deleted).unwrap();
        let (_, list) = doc.get(ROOT, "todo").unwrap().unwrap();
        assert_eq!(doc.length(&list), 2);
        let (first, _) = doc.get(&list, 0).unwrap().unwrap();
        assert_eq!(
            first.into_scalar().unwrap(),
            ScalarValue::Str("milk".into())
        );
        let (_, item) = doc.get(&list, 1).unwrap().unwrap();
        let (title, _) = doc.get(&item, "title").unwrap().unwrap();
        assert_eq!(
            title.into_scalar().unwrap(),
            ScalarValue::Str("bread".into())
        );
    }

    #[test]
    fn a_counter_is_incremented_back() {
        let mut doc = Automerge::new();
        change(&mut doc, |tx| {
            tx.put(ROOT, "likes", ScalarValue::counter(10))
        });
        let mine = change(&mut doc, |tx| tx.increment(ROOT, "likes", 3));
        let mut bo = doc.fork();
        change(&mut bo, |tx| tx.increment(ROOT, "likes", 5));
        doc.merge(&mut bo).unwrap();
        undo(&mut doc, mine).unwrap();
        assert_eq!(int(&doc, "likes"), Some(15));
    }

    #[test]
    fn a_text_edit_is_undone_around_concurrent_edits_and_redone() {
        let mut ana = with_text("Hello world");
        let mut bo = ana.fork();
        let obj = text_obj(&ana);
        let edit = obj.clone();
        // Ana replaces "Hello " with "Hi "; bo adds "big " before "world" and a "!".
        let mine = change(&mut ana, move |tx| {
            tx.splice_text(&edit, 0, 6, "")?;
            tx.splice_text(&edit, 0, 0, "Hi ")
        });
        change(&mut bo, move |tx| {
            tx.splice_text(&obj, 6, 0, "big ")?;
            tx.splice_text(&obj, 15, 0, "!")
        });
        ana.merge(&mut bo).unwrap();
        assert_eq!(text(&ana), "Hi big world!");
        let undone = undo(&mut ana, mine).unwrap();
        assert_eq!(text(&ana), "Hello big world!");
        // Redo is the undo of the undo.
        undo(&mut ana, undone).unwrap();
        assert_eq!(text(&ana), "Hi big world!");
    }

    #[test]
    fn inserted_text_goes_but_what_others_typed_inside_it_stays() {
        let mut ana = with_text("ad");
        let obj = text_obj(&ana);
        let edit = obj.clone();
        let mine = change(&mut ana, move |tx| tx.splice_text(&edit, 1, 0, "bc"));
        let mut bo = ana.fork();
        change(&mut bo, move |tx| tx.splice_text(&obj, 2, 0, "X"));
        ana.merge(&mut bo).unwrap();
        assert_eq!(text(&ana), "abXcd");
        undo(&mut ana, mine).unwrap();
        assert_eq!(text(&ana), "aXd");
    }

    #[test]
    fn deleted_runs_come_back_after_their_left_neighbour_in_any_encoding() {
        for encoding in [
            TextEncoding::UnicodeCodePoint,
            TextEncoding::Utf16CodeUnit,
            TextEncoding::Utf8CodeUnit,
        ] {
            let mut doc = Automerge::new_with_encoding(encoding);
            change(&mut doc, |tx| {
                let text = tx.put_object(ROOT, "text", ObjType::Text)?;
                tx.splice_text(&text, 0, 0, "a😀b c😀d")
            });
            let obj = text_obj(&doc);
            let units = |s: &str| units(encoding, s);
            // Delete "😀b" and "😀d": two runs.
            let (first, second) = (units("a"), units("a😀b c"));
            let (first_len, second_len) = (units("😀b"), units("😀d"));
            let deleted = change(&mut doc, move |tx| {
                tx.splice_text(&obj, second, second_len as isize, "")?;
                tx.splice_text(&obj, first, first_len as isize, "")
            });
            assert_eq!(text(&doc), "a c");
            undo(&mut doc, deleted).unwrap();
            assert_eq!(text(&doc), "a😀b c😀d", "{encoding:?}");
        }
    }

    #[test]
    fn list_inserts_deletes_and_sets_are_undone() {
        let mut doc = Automerge::new();
        change(&mut doc, |tx| {
            let list = tx.put_object(ROOT, "list", ObjType::List)?;
            for (i, item) in ["a", "b", "c"].into_iter().enumerate() {
                tx.insert(&list, i, item)?;
            }
            Ok(())
        });
        let (_, list) = doc.get(ROOT, "list").unwrap().unwrap();
        let read = |doc: &Automerge| -> Vec<String> {
            doc.list_range(&list, ..)
                .map(|item| Value::from(item.value.clone()).into_string().unwrap())
                .collect()
        };
        let edit = list.clone();
        let mine = change(&mut doc, move |tx| {
            tx.put(&edit, 0, "A")?;
            tx.delete(&edit, 1)?;
            tx.insert(&edit, 2, "d")
        });
        assert_eq!(read(&doc), ["A", "c", "d"]);
        undo(&mut doc, mine).unwrap();
        assert_eq!(read(&doc), ["a", "b", "c"]);
    }

    #[test]
    fn formatting_cannot_be_undone() {
        let mut doc = with_text("bold");
        let obj = text_obj(&doc);
        let marked = change(&mut doc, move |tx| {
            tx.mark(
                &obj,
                automerge::marks::Mark::new("bold".into(), true, 0, 4),
                automerge::marks::ExpandMark::After,
            )
        });
        let refused = doc.transact(|tx| invert(tx, &[marked], &Restored::default()));
        assert!(matches!(refused, Err(failure) if failure.error.0.contains("marks")));
    }

    /// A local edit of the property test: a splice into the text or a put into the map.
    #[derive(Debug, Clone)]
    enum Edit {
        Splice {
            at: usize,
            delete: usize,
            insert: String,
        },
        Put {
            key: u8,
            value: i64,
        },
        Remove {
            key: u8,
        },
        /// Puts `value` twice (the second over the first) in one change.
        PutTwice {
            key: u8,
            value: i64,
        },
        /// A list at `l{key}`, new (replacing any), with a text inside its first item.
        NewList {
            key: u8,
        },
        /// Inserts into the list at `l{key}`, and into its first item's text, if there.
        Push {
            key: u8,
            value: String,
        },
    }

    fn edit() -> impl proptest::strategy::Strategy<Value = Edit> {
        use proptest::prelude::*;
        prop_oneof![
            (0..40usize, 0..4usize, "[a-c😀]{0,3}").prop_map(|(at, delete, insert)| Edit::Splice {
                at,
                delete,
                insert
            }),
            (0..3u8, any::<i64>()).prop_map(|(key, value)| Edit::Put { key, value }),
            (0..3u8).prop_map(|key| Edit::Remove { key }),
            (0..3u8, any::<i64>()).prop_map(|(key, value)| Edit::PutTwice { key, value }),
            (0..2u8).prop_map(|key| Edit::NewList { key }),
            (0..2u8, "[x-z]{1,2}").prop_map(|(key, value)| Edit::Push { key, value }),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Undoing every change, newest first, gives back each earlier state; redoing them
        /// all gives back the last.
        #[test]
        fn undoing_and_redoing_a_session_walks_its_states(edits in proptest::collection::vec(edit(), 1..12)) {
            let mut doc = with_text("start");
            let obj = text_obj(&doc);
            let json = |doc: &Automerge| crate::access::json(doc).unwrap();
            let mut states = vec![json(&doc)];
            let mut changes = Vec::new();
            for edit in edits {
                let obj = obj.clone();
                let made = doc.transact::<_, _, AutomergeError>(move |tx| {
                    match edit {
                        Edit::Splice { at, delete, insert } => {
                            let len = tx.length(&obj);
                            let at = at.min(len);
                            let delete = delete.min(len - at);
                            tx.splice_text(&obj, at, delete as isize, &insert)
                        }
                        Edit::Put { key, value } => tx.put(ROOT, format!("k{key}"), value),
                        Edit::Remove { key } => {
                            if tx.get(ROOT, format!("k{key}"))?.is_some() {
                                tx.delete(ROOT, format!("k{key}"))?;
                            }
                            Ok(())
                        }
                        Edit::PutTwice { key, value } => {
                            tx.put(ROOT, format!("k{key}"), value)?;
                            tx.put(ROOT, format!("k{key}"), value.wrapping_add(1))
                        }
                        Edit::NewList { key } => {
                            let list = tx.put_object(ROOT, format!("l{key}"), ObjType::List)?;
                            let item = tx.insert_object(&list, 0, ObjType::Map)?;
                            tx.put_object(&item, "note", ObjType::Text).map(drop)
                        }
                        Edit::Push { key, value } => {
                            let Some((_, list)) = tx.get(ROOT, format!("l{key}"))? else {
                                return Ok(());
                            };
                            let end = tx.length(&list);
                            tx.insert(&list, end, value.as_str())?;
                            let (_, item) = tx.get(&list, 0)?.unwrap();
                            let (_, note) = tx.get(&item, "note")?.unwrap();
                            tx.splice_text(&note, 0, 0, &value)
                        }
                    }
                }).unwrap();
                if let Some(hash) = made.hash {
                    changes.push(hash);
                    states.push(json(&doc));
                }
            }
            let mut undos = Vec::new();
            for (i, change) in changes.iter().enumerate().rev() {
                undos.push(undo(&mut doc, *change));
                proptest::prop_assert_eq!(&json(&doc), &states[i], "after undoing change {}", i);
            }
            for (i, undone) in undos.into_iter().rev().enumerate() {
                if let Some(undone) = undone {
                    undo(&mut doc, undone);
                }
                proptest::prop_assert_eq!(&json(&doc), &states[i + 1], "after redoing change {}", i);
            }
        }
    }
}

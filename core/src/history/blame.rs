//! Who wrote which part of a text.

use std::collections::{HashMap, HashSet};

use automerge::{ActorId, Automerge, ChangeHash, ObjId, ReadDoc, Value};

use super::{author::user_of, units};

/// A run of a text written by one author (or, for changes without an author, one actor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlameSpan {
    /// Where the run starts in the text, in the repo's
    /// [`text_encoding`](crate::RepoConfig::text_encoding).
    pub start: usize,
    /// Where it ends (exclusive).
    pub end: usize,
    /// The author's user id, if the changes name one.
    pub author: Option<String>,
    /// The actor that wrote the run's first character.
    pub actor: ActorId,
    /// The changes that wrote it, in the order their characters appear (each once).
    pub changes: Vec<ChangeHash>,
    /// When the newest of those changes was made (seconds since the Unix epoch; 0 if not
    /// stamped).
    pub time: i64,
}

/// What a change tells about its characters.
struct Writer {
    author: Option<String>,
    actor: ActorId,
    time: i64,
}

/// The runs of the text `text`, in order, covering it whole. Each character is credited to
/// the change that inserted it (an element's id is its insertion); deleted text is gone and
/// credited to nobody.
pub(crate) fn blame(doc: &Automerge, text: &ObjId) -> Vec<BlameSpan> {
    let encoding = doc.text_encoding();
    let mut writers: HashMap<ChangeHash, Writer> = HashMap::new();
    let mut spans: Vec<BlameSpan> = Vec::new();
    // The changes of the last span, to list each once.
    let mut in_span: HashSet<ChangeHash> = HashSet::new();
    let mut position = 0;
    for item in doc.list_range(text, ..) {
        let width = match Value::from(item.value.clone()).as_str() {
            Some(text) => units(encoding, text),
            None => 1, // a block marker
        };
        let id = item.id();
        let Some(change) = doc.hash_for_opid(&id) else {
            position += width;
            continue;
        };
        let writer = writers
            .entry(change)
            .or_insert_with(|| writer_of(doc, &change, &id));
        let same = spans.last().is_some_and(|last| {
            last.end == position
                && match (&last.author, &writer.author) {
                    (Some(a), Some(b)) => a == b,
                    (None, None) => last.actor == writer.actor,
                    _ => false,
                }
        });
        match spans.last_mut() {
            Some(last) if same => {
                last.end += width;
                last.time = last.time.max(writer.time);
                if in_span.insert(change) {
                    last.changes.push(change);
                }
            }
            _ => {
                in_span.clear();
                in_span.insert(change);
                spans.push(BlameSpan {
                    start: position,
                    end: position + width,
                    author: writer.author.clone(),
                    actor: writer.actor.clone(),
                    changes: vec![change],
                    time: writer.time,
                });
            }
        }
        position += width;
    }
    spans
}

fn writer_of(doc: &Automerge, change: &ChangeHash, id: &ObjId) -> Writer {
    match doc.get_change_meta_by_hash(change) {
        Some(meta) => Writer {
            author: meta.author.as_ref().map(user_of),
            actor: meta.actor.into_owned(),
            time: meta.timestamp,
        },
        // Not reachable for an element of a loaded document; credit the element's actor.
        None => Writer {
            author: None,
            actor: match id {
                ObjId::Id(_, actor, _) => actor.clone(),
                ObjId::Root => ActorId::from(&[][..]),
            },
            time: 0,
        },
    }
}

//! [`Patch`]: one difference between two states of a document, by path and with plain
//! values — automerge's patches in the shape of [`Edit`](super::Edit), for code that
//! cannot hold automerge's object ids (the bindings) or wants paths it can print.

use automerge::{ConcreteTextValue, ObjId, ObjType, PatchAction, Prop, TextEncoding};

use super::{Path, Value};

/// One difference between two states of a document. Applied in order, the patches of a
/// diff turn the first state into the second, formatting included. Paths are JSON
/// Pointers like [`Edit`](super::Edit)'s (an index that starts a range ends the path of
/// [`Insert`](Self::Insert) and [`Delete`](Self::Delete), as in `Edit`), and text positions
/// count in the repo's [`text_encoding`](crate::RepoConfig::text_encoding).
#[derive(Debug, Clone, PartialEq)]
pub enum Patch {
    /// A map's key or a list's item now holds `value`. A text, map or list arrives empty
    /// ([`Value::Text`] with no content), followed by the patches that fill it — also
    /// when it replaces an object that was there, or comes back into view.
    Put {
        /// The key or item, such as `/title` or `/todos/0`.
        path: Path,
        /// What it holds now.
        value: Value,
        /// Whether concurrent changes left other values there too (reads see this one).
        conflict: bool,
    },
    /// Items inserted into a list, the first at the index the path ends with.
    Insert {
        /// The list and the index of the first new item, such as `/todos/3`.
        path: Path,
        /// The new items, in order (new texts, maps and lists arrive empty, as in
        /// [`Put`](Self::Put)).
        values: Vec<Value>,
    },
    /// Removed: a map's key (`count` 1), or `count` items of a list or units of a text
    /// from the index the path ends with.
    Delete {
        /// The key, or the list or text and the index of the first removed item.
        path: Path,
        /// How many items or text units.
        count: usize,
    },
    /// Text inserted at `index` of the text at the path.
    SpliceText {
        /// The text.
        path: Path,
        /// Where the new text starts.
        index: usize,
        /// What was inserted.
        text: String,
    },
    /// The counter at the path changed by `by`.
    Increment {
        /// The counter.
        path: Path,
        /// How much was added (negative: taken away).
        by: i64,
    },
    /// The value at the path is now in conflict: concurrent changes put different values
    /// there, and reads see the one automerge picks.
    Conflict {
        /// The key or item.
        path: Path,
    },
    /// Text formatting (marks) set or removed on ranges of the text at the path.
    Mark {
        /// The text.
        path: Path,
        /// The ranges and their marks; a mark whose value is [`Value::Null`] was removed.
        marks: Vec<TextMark>,
    },
}

/// A formatting mark over a range of a text.
#[derive(Debug, Clone, PartialEq)]
pub struct TextMark {
    /// The mark's name, such as `bold`.
    pub name: String,
    /// Its value ([`Value::Null`] when the mark was removed).
    pub value: Value,
    /// The first unit of the range.
    pub start: usize,
    /// The unit after the range's end.
    pub end: usize,
}

impl Patch {
    /// Converts automerge's patches (as [`DocHandle::diff`](crate::DocHandle::diff)
    /// returns them), in order. One of automerge's may become two: text inserted with
    /// formatting is a [`SpliceText`](Self::SpliceText) then a [`Mark`](Self::Mark) over
    /// it, and a list item inserted in conflict an [`Insert`](Self::Insert) then a
    /// [`Conflict`](Self::Conflict).
    pub fn from_automerge(patches: &[automerge::Patch]) -> Vec<Self> {
        let mut converted = Vec::with_capacity(patches.len());
        for patch in patches {
            convert(patch, &mut converted);
        }
        converted
    }
}

fn convert(patch: &automerge::Patch, out: &mut Vec<Patch>) {
    let object = object_path(&patch.path);
    let put = |prop: String, value: &automerge::Value<'_>, conflict: bool| Patch::Put {
        path: object.join(prop),
        value: new_value(value),
        conflict,
    };
    match &patch.action {
        PatchAction::PutMap {
            key,
            value,
            conflict,
        } => out.push(put(key.clone(), &value.0, *conflict)),
        PatchAction::PutSeq {
            index,
            value,
            conflict,
        } => out.push(put(index.to_string(), &value.0, *conflict)),
        PatchAction::Insert { index, values } => {
            out.push(Patch::Insert {
                path: object.join(index.to_string()),
                values: values
                    .iter()
                    .map(|(value, _, _)| new_value(value))
                    .collect(),
            });
            let conflicts = values.iter().enumerate().filter(|(_, item)| item.2);
            for (offset, _) in conflicts {
                out.push(Patch::Conflict {
                    path: object.join((index + offset).to_string()),
                });
            }
        }
        PatchAction::SpliceText {
            index,
            value,
            marks,
        } => {
            let text = value.make_string();
            let end = index + units(value, &text);
            out.push(Patch::SpliceText {
                path: object.clone(),
                index: *index,
                text,
            });
            if let Some(marks) = marks.as_ref().filter(|marks| !marks.is_empty()) {
                out.push(Patch::Mark {
                    path: object,
                    marks: marks
                        .iter()
                        .map(|(name, value)| TextMark {
                            name: name.to_owned(),
                            value: Value::from_scalar(value),
                            start: *index,
                            end,
                        })
                        .collect(),
                });
            }
        }
        PatchAction::Increment { prop, value } => out.push(Patch::Increment {
            path: object.join(segment(prop)),
            by: *value,
        }),
        PatchAction::Conflict { prop } => out.push(Patch::Conflict {
            path: object.join(segment(prop)),
        }),
        PatchAction::DeleteMap { key } => out.push(Patch::Delete {
            path: object.join(key.as_str()),
            count: 1,
        }),
        PatchAction::DeleteSeq { index, length } => out.push(Patch::Delete {
            path: object.join(index.to_string()),
            count: *length,
        }),
        PatchAction::Mark { marks } => out.push(Patch::Mark {
            path: object,
            marks: marks
                .iter()
                .map(|mark| TextMark {
                    name: mark.name().to_owned(),
                    value: Value::from_scalar(mark.value()),
                    start: mark.start,
                    end: mark.end,
                })
                .collect(),
        }),
    }
}

/// How many units of the document's text encoding a patch's text takes.
fn units(value: &ConcreteTextValue, text: &str) -> usize {
    let encoding = match value {
        ConcreteTextValue::Utf8CodeUnit(_) => TextEncoding::Utf8CodeUnit,
        ConcreteTextValue::Utf16CodeUnit(_) => TextEncoding::Utf16CodeUnit,
        ConcreteTextValue::CodePoint(_) => TextEncoding::UnicodeCodePoint,
        ConcreteTextValue::Grapheme(_) => TextEncoding::GraphemeCluster,
    };
    crate::history::units(encoding, text)
}

/// The path of the object a patch is about, from automerge's (parent, property) steps.
fn object_path(steps: &[(ObjId, Prop)]) -> Path {
    steps
        .iter()
        .fold(Path::root(), |path, (_, prop)| path.join(segment(prop)))
}

fn segment(prop: &Prop) -> String {
    match prop {
        Prop::Map(key) => key.clone(),
        Prop::Seq(index) => index.to_string(),
    }
}

/// A value as a patch carries it: objects are new and empty (their content comes in the
/// patches after), so none is read from the document.
fn new_value(value: &automerge::Value<'_>) -> Value {
    match value {
        automerge::Value::Object(ObjType::Map | ObjType::Table) => Value::Map,
        automerge::Value::Object(ObjType::List) => Value::List,
        automerge::Value::Object(ObjType::Text) => Value::Text(String::new()),
        automerge::Value::Scalar(scalar) => Value::from_scalar(scalar),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly

    use automerge::{
        ActorId, Automerge, ROOT, ReadDoc, TextEncoding,
        marks::{ExpandMark, Mark},
        transaction::Transactable,
    };

    use super::*;

    fn path(text: &str) -> Path {
        Path::parse(text).unwrap()
    }

    fn diff(before: &Automerge, after: &Automerge) -> Vec<Patch> {
        Patch::from_automerge(&after.diff(&before.get_heads(), &after.get_heads()))
    }

    /// A document with a title, a list of one map, a counter and a text, in UTF-16 units.
    fn base() -> (Automerge, ObjId, ObjId) {
        let mut doc = Automerge::new_with_encoding(TextEncoding::Utf16CodeUnit);
        let mut tx = doc.transaction();
        tx.put(ROOT, "title", "groceries").unwrap();
        tx.put(ROOT, "count", automerge::ScalarValue::counter(1))
            .unwrap();
        let todos = tx.put_object(ROOT, "todos", ObjType::List).unwrap();
        let first = tx.insert_object(&todos, 0, ObjType::Map).unwrap();
        tx.put(&first, "done", false).unwrap();
        let notes = tx.put_object(ROOT, "notes", ObjType::Text).unwrap();
        tx.splice_text(&notes, 0, 0, "😀 milk").unwrap();
        tx.commit();
        (doc, todos, notes)
    }

    #[test]
    fn each_kind_of_change_is_named_by_its_path_with_plain_values() {
        let (before, todos, notes) = base();
        let mut after = before.fork();
        let mut tx = after.transaction();
        tx.delete(ROOT, "title").unwrap();
        tx.increment(ROOT, "count", 3).unwrap();
        tx.insert(&todos, 1, "eggs").unwrap();
        tx.insert(&todos, 2, 2).unwrap();
        let first = tx.get(&todos, 0).unwrap().unwrap().1;
        tx.put(&first, "done", true).unwrap();
        // After the emoji: two UTF-16 units in, so the space is at 2.
        tx.splice_text(&notes, 2, 1, ", ").unwrap();
        tx.mark(
            &notes,
            Mark::new("bold".into(), true, 0, 2),
            ExpandMark::After,
        )
        .unwrap();
        let tags = tx.put_object(ROOT, "tags", ObjType::Text).unwrap();
        tx.splice_text(&tags, 0, 0, "food").unwrap();
        tx.commit();

        let patches = diff(&before, &after);
        let expected = [
            Patch::Increment {
                path: path("/count"),
                by: 3,
            },
            Patch::Put {
                path: path("/tags"),
                value: Value::Text(String::new()),
                conflict: false,
            },
            Patch::SpliceText {
                path: path("/tags"),
                index: 0,
                text: "food".into(),
            },
            Patch::Delete {
                path: path("/title"),
                count: 1,
            },
        ];
        for patch in expected {
            assert!(patches.contains(&patch), "{patch:?} not in {patches:?}");
        }
        assert!(patches.contains(&Patch::Put {
            path: path("/todos/0/done"),
            value: Value::Bool(true),
            conflict: false,
        }));
        assert!(patches.contains(&Patch::Insert {
            path: path("/todos/1"),
            values: vec![Value::Str("eggs".into()), Value::Int(2)],
        }));
        // In order: ", " goes in after the emoji, then the space it pushed along goes.
        let splice = patches.iter().position(|patch| {
            matches!(patch, Patch::SpliceText { path: p, index: 2, text }
                if *p == path("/notes") && text == ", ")
        });
        let delete = patches.iter().position(|patch| {
            *patch
                == Patch::Delete {
                    path: path("/notes/4"),
                    count: 1,
                }
        });
        assert!(
            matches!((splice, delete), (Some(s), Some(d)) if s < d),
            "{patches:?}"
        );
        assert!(
            patches.iter().any(|patch| matches!(patch,
                Patch::Mark { path: p, marks } if *p == path("/notes")
                    && marks == &[TextMark { name: "bold".into(), value: Value::Bool(true), start: 0, end: 2 }])),
            "{patches:?}"
        );
    }

    #[test]
    fn list_items_are_put_inserted_and_deleted_by_index() {
        let (before, todos, _) = base();
        let mut after = before.fork();
        let mut tx = after.transaction();
        tx.insert(&todos, 1, "a").unwrap();
        tx.insert(&todos, 2, "b").unwrap();
        tx.insert(&todos, 3, "c").unwrap();
        tx.commit();
        let middle = after.fork();
        let mut tx = after.transaction();
        tx.put(&todos, 1, "A").unwrap();
        tx.delete(&todos, 2).unwrap();
        tx.delete(&todos, 2).unwrap();
        tx.insert_object(&todos, 0, ObjType::Map).unwrap();
        tx.commit();

        assert_eq!(
            diff(&middle, &after),
            [
                Patch::Insert {
                    path: path("/todos/0"),
                    values: vec![Value::Map],
                },
                Patch::Put {
                    path: path("/todos/2"),
                    value: Value::Str("A".into()),
                    conflict: false,
                },
                Patch::Delete {
                    path: path("/todos/3"),
                    count: 2,
                },
            ]
        );
    }

    #[test]
    fn text_made_and_formatted_in_the_range_keeps_its_marks() {
        let mut doc = Automerge::new_with_encoding(TextEncoding::Utf16CodeUnit);
        let mut tx = doc.transaction();
        let text = tx.put_object(ROOT, "text", ObjType::Text).unwrap();
        tx.splice_text(&text, 0, 0, "😀 bold plain").unwrap();
        tx.mark(
            &text,
            Mark::new("bold".into(), true, 3, 7),
            ExpandMark::After,
        )
        .unwrap();
        tx.commit();

        let patches = diff(&Automerge::new(), &doc);
        let mut rebuilt = String::new();
        let mut bold = Vec::new();
        for patch in &patches {
            match patch {
                Patch::Put { path: p, value, .. } => {
                    assert_eq!((p, value), (&path("/text"), &Value::Text(String::new())));
                }
                Patch::SpliceText { index, text, .. } => {
                    let at = String::from_utf16(
                        &rebuilt.encode_utf16().take(*index).collect::<Vec<_>>(),
                    )
                    .unwrap()
                    .len();
                    rebuilt.insert_str(at, text);
                }
                Patch::Mark { marks, .. } => bold.extend(
                    marks
                        .iter()
                        .filter(|mark| mark.name == "bold" && mark.value == Value::Bool(true))
                        .map(|mark| (mark.start, mark.end)),
                ),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(rebuilt, "😀 bold plain");
        assert_eq!(bold, [(3, 7)], "{patches:?}");
    }

    #[test]
    fn concurrent_puts_show_as_a_conflict() {
        let (before, _, _) = base();
        // Whichever actor sorts last wins; try both ways round.
        for (our_actor, their_actor, expected) in [
            (
                1,
                2,
                Patch::Put {
                    path: path("/title"),
                    value: Value::Str("theirs".into()),
                    conflict: true,
                },
            ),
            (
                2,
                1,
                Patch::Conflict {
                    path: path("/title"),
                },
            ),
        ] {
            let mut ours = before.fork().with_actor(ActorId::from([our_actor; 16]));
            let mut theirs = before.fork().with_actor(ActorId::from([their_actor; 16]));
            ours.transact(|tx| tx.put(ROOT, "title", "ours")).unwrap();
            theirs
                .transact(|tx| tx.put(ROOT, "title", "theirs"))
                .unwrap();
            let mut merged = ours.fork();
            merged.merge(&mut theirs).unwrap();
            assert_eq!(diff(&ours, &merged), [expected]);
        }
    }
}

//! The notebook: one automerge document holding every note, keyed by note id.
//!
//! `{ "<note id>": { title: Text, body: Text, created: Timestamp }, … }`
//!
//! Its document id is derived from the notebook's name, so that two devices that never met
//! can each start the notebook offline and merge when they meet: their first changes are
//! unrelated, and each note lives under a key of its own, so nothing collides.

use std::time::{SystemTime, UNIX_EPOCH};

use automerge::{
    Cursor, CursorPosition, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value,
    transaction::Transactable,
};
use sha2::{Digest, Sha256};
use weft::{DocHandle, DocSubscription, DocumentId, Error, Repo};

/// One note, as read from the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Note {
    /// Its key in the notebook.
    pub(crate) id: String,
    /// Its title.
    pub(crate) title: String,
    /// Its text.
    pub(crate) body: String,
    /// When it was created (milliseconds since the Unix epoch), for ordering.
    pub(crate) created: i64,
}

/// A notebook in a repo.
#[derive(Debug, Clone)]
pub(crate) struct Notebook {
    handle: DocHandle,
}

impl Notebook {
    /// The document id of the notebook called `name`: the same on every device.
    pub(crate) fn id_for(name: &str) -> DocumentId {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&derive("notebook", name)[..16]);
        DocumentId::from_random_bytes(bytes)
    }

    /// Opens the notebook called `name`: the stored one, or a new one if this device has
    /// none (which merges with any other device's when they meet).
    pub(crate) async fn open(repo: &Repo, name: &str) -> weft::Result<Self> {
        let id = Self::id_for(name);
        loop {
            match repo.find(id).await {
                Ok(handle) => return Ok(Self { handle }),
                Err(Error::DocumentNotFound(_)) => {}
                Err(other) => return Err(other),
            }
            match repo.create_with_id(id, |_| Ok(())).await {
                Ok(handle) => return Ok(Self { handle }),
                // A peer sent it in between: find it again.
                Err(Error::DocumentExists(_)) => {}
                Err(other) => return Err(other),
            }
        }
    }

    /// Change events of the notebook (local and remote).
    pub(crate) fn subscribe(&self) -> DocSubscription {
        self.handle.subscribe()
    }

    /// Every note, oldest first.
    pub(crate) fn notes(&self) -> Vec<Note> {
        self.handle.with_doc(|doc| {
            let mut notes: Vec<Note> = doc.keys(ROOT).filter_map(|id| read_note(doc, id)).collect();
            notes.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
            notes
        })
    }

    /// Adds a note titled `title` with an empty body; returns its id once stored.
    pub(crate) async fn add(&self, title: String) -> weft::Result<String> {
        let id = DocumentId::random().to_string();
        let key = id.clone();
        let created = now_millis();
        self.handle
            .change(move |tx| {
                let note = tx.put_object(ROOT, &key, ObjType::Map)?;
                let title_text = tx.put_object(&note, "title", ObjType::Text)?;
                tx.splice_text(&title_text, 0, 0, &title)?;
                tx.put_object(&note, "body", ObjType::Text)?;
                tx.put(&note, "created", ScalarValue::Timestamp(created))
            })
            .await?;
        Ok(id)
    }

    /// Deletes a note; resolves once stored.
    pub(crate) async fn delete(&self, note: &str) -> weft::Result<()> {
        let key = note.to_owned();
        self.handle.change(move |tx| tx.delete(ROOT, &key)).await?;
        Ok(())
    }

    /// Replaces `delete` characters at `at` in a note's body with `insert`; resolves once
    /// stored. Nothing happens if the note is gone (deleted by another device meanwhile).
    pub(crate) async fn splice_body(
        &self,
        note: &str,
        at: usize,
        delete: usize,
        insert: String,
    ) -> weft::Result<()> {
        let Some(body) = self.body_of(note) else {
            return Ok(());
        };
        self.handle
            .change(move |tx| {
                let length = tx.length(&body);
                let at = at.min(length);
                let delete = delete.min(length - at);
                // `delete` is at most the text's length, which automerge keeps below isize::MAX.
                tx.splice_text(&body, at, isize::try_from(delete).unwrap_or(0), &insert)
            })
            .await?;
        Ok(())
    }

    /// A cursor before the character at `index` of a note's body (or at its end), which
    /// stays before that character whatever is inserted or deleted around it, here or on
    /// other devices.
    pub(crate) fn cursor_at(&self, note: &str, index: usize) -> Option<Cursor> {
        let body = self.body_of(note)?;
        self.handle.with_doc(|doc| {
            let position = if index < doc.length(&body) {
                CursorPosition::Index(index)
            } else {
                CursorPosition::End
            };
            doc.get_cursor(&body, position, None).ok()
        })
    }

    /// A note's body and where `cursor` is in it, read at one moment.
    pub(crate) fn body_and_cursor(&self, note: &str, cursor: &Cursor) -> Option<(String, usize)> {
        let body = self.body_of(note)?;
        self.handle.with_doc(|doc| {
            let text = doc.text(&body).ok()?;
            let at = doc.get_cursor_position(&body, cursor, None).ok()?;
            Some((text, at))
        })
    }

    /// Where `cursor` is now in a note's body.
    pub(crate) fn cursor_index(&self, note: &str, cursor: &Cursor) -> Option<usize> {
        let body = self.body_of(note)?;
        self.handle
            .with_doc(|doc| doc.get_cursor_position(&body, cursor, None).ok())
    }

    fn body_of(&self, note: &str) -> Option<ObjId> {
        self.handle.with_doc(|doc| {
            let (_, note) = doc.get(ROOT, note).ok().flatten()?;
            match doc.get(&note, "body").ok().flatten()? {
                (Value::Object(ObjType::Text), body) => Some(body),
                _ => None,
            }
        })
    }
}

/// What devices derive from a notebook's name for one `purpose` (its document id, the LAN
/// tag, the token peers show): the same everywhere, and different per purpose, so that
/// one never gives away another.
pub(crate) fn derive(purpose: &str, name: &str) -> [u8; 32] {
    Sha256::digest(format!("weft-notes {purpose}\0{name}").as_bytes()).into()
}

/// Bytes as lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A note under `id`, if that key holds one (anything else in the document is ignored).
fn read_note(doc: &impl ReadDoc, id: String) -> Option<Note> {
    let (Value::Object(ObjType::Map), note) = doc.get(ROOT, &id).ok().flatten()? else {
        return None;
    };
    let text = |field: &str| match doc.get(&note, field).ok().flatten() {
        Some((Value::Object(ObjType::Text), text)) => doc.text(&text).ok(),
        _ => None,
    };
    let created = match doc.get(&note, "created").ok().flatten() {
        Some((Value::Scalar(value), _)) => match value.as_ref() {
            ScalarValue::Timestamp(ms) | ScalarValue::Int(ms) => *ms,
            _ => 0,
        },
        _ => 0,
    };
    Some(Note {
        title: text("title").unwrap_or_default(),
        body: text("body").unwrap_or_default(),
        created,
        id,
    })
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn derived_values_depend_on_the_name_and_the_purpose() {
        assert_eq!(derive("peer", "home"), derive("peer", "home"));
        assert_ne!(derive("peer", "home"), derive("peer", "work"));
        assert_ne!(derive("peer", "home"), derive("lan", "home"));
        assert_eq!(hex(&[0, 171, 255]), "00abff");
    }

    #[test]
    fn a_name_gives_the_same_id_everywhere_and_names_differ() {
        assert_eq!(Notebook::id_for("home"), Notebook::id_for("home"));
        assert_ne!(Notebook::id_for("home"), Notebook::id_for("work"));
        // A valid automerge-repo id (parses back from its text form).
        let id = Notebook::id_for("home");
        assert_eq!(DocumentId::parse(&id.to_string()).unwrap(), id);
    }

    #[tokio::test]
    async fn notes_are_added_edited_and_deleted_and_cursors_follow_the_text() {
        let repo = Repo::in_memory();
        let notebook = Notebook::open(&repo, "test").await.unwrap();
        let first = notebook.add("Groceries".into()).await.unwrap();
        let second = notebook.add("Ideas".into()).await.unwrap();
        notebook
            .splice_body(&first, 0, 0, "milk, eggs".into())
            .await
            .unwrap();
        // Oldest first; two made in the same millisecond in the order of their ids.
        let mut titles: Vec<_> = notebook.notes().into_iter().map(|n| n.title).collect();
        titles.sort();
        assert_eq!(titles, ["Groceries", "Ideas"]);

        // A cursor before "eggs" stays before it when text is inserted in front.
        let cursor = notebook.cursor_at(&first, 6).unwrap();
        notebook
            .splice_body(&first, 0, 0, "oat ".into())
            .await
            .unwrap();
        assert_eq!(notebook.cursor_index(&first, &cursor), Some(10));
        let groceries = notebook
            .notes()
            .into_iter()
            .find(|n| n.id == first)
            .unwrap();
        assert_eq!(groceries.body, "oat milk, eggs");

        // Opening the notebook again finds the same document.
        let again = Notebook::open(&repo, "test").await.unwrap();
        assert_eq!(again.notes().len(), 2);

        notebook.delete(&second).await.unwrap();
        assert_eq!(notebook.notes().len(), 1);
        // Editing a note that is gone does nothing, and fails nothing.
        notebook
            .splice_body(&second, 0, 0, "late".into())
            .await
            .unwrap();
        assert_eq!(notebook.notes().len(), 1);
    }
}

//! Who makes this replica's changes: the repo's author (a user id) on every local change.
//!
//! automerge records an author per actor: the first change an actor makes carries the
//! author's bytes, and every later change of that actor is theirs. A replica writes with a
//! fresh actor each time it loads a document (two processes never share one), so a user's
//! history spans many actors, all naming the same author. The author is what the writing
//! device claims; see `server/src/audit.rs` for what a relay can vouch for.

use automerge::{Author, Automerge};

/// Gives `doc` the repo's author for the changes this replica makes to it. A document
/// that has this author already keeps its actor; otherwise its next change starts a new
/// actor (automerge's rule: an actor has one author). Call it before every local change:
/// automerge forgets the author when a document that was empty takes its first changes
/// from a peer (`load_incremental` replaces the document, keeping only the actor).
pub(crate) fn set_local_author(doc: &mut Automerge, author: Option<&str>) {
    let wanted = author.map(|user| Author::from(user.as_bytes().to_vec()));
    // automerge starts a new random actor when the author changes.
    doc.set_author(wanted);
}

/// The user id an author's bytes name: the text weft wrote, or the bytes in hex for an
/// author another implementation wrote that is not UTF-8.
pub(crate) fn user_of(author: &Author<'_>) -> String {
    match std::str::from_utf8(author.as_bytes()) {
        Ok(user) => user.to_owned(),
        Err(_) => author.to_hex_string(),
    }
}

#[cfg(test)]
mod tests {
    use automerge::{ROOT, transaction::Transactable};

    use super::*;

    #[test]
    fn every_change_of_the_actor_names_the_author() {
        let mut doc = Automerge::new();
        set_local_author(&mut doc, Some("ana@example.org"));
        for n in 0..3 {
            doc.transact::<_, _, automerge::AutomergeError>(|tx| tx.put(ROOT, "n", n))
                .unwrap();
        }
        let metas = doc.get_changes_meta(&[]);
        assert_eq!(metas.len(), 3);
        for meta in metas {
            assert_eq!(user_of(&meta.author.unwrap()), "ana@example.org");
        }
        // Saved and loaded, the authors are still known.
        let loaded = Automerge::load(&doc.save()).unwrap();
        for meta in loaded.get_changes_meta(&[]) {
            assert_eq!(user_of(&meta.author.unwrap()), "ana@example.org");
        }
    }

    #[test]
    fn a_document_with_the_author_keeps_its_actor() {
        let mut doc = Automerge::new();
        set_local_author(&mut doc, Some("ana"));
        let actor = doc.get_actor().clone();
        set_local_author(&mut doc, Some("ana"));
        assert_eq!(doc.get_actor(), &actor);
        set_local_author(&mut doc, Some("bo"));
        assert_ne!(doc.get_actor(), &actor);
    }

    #[test]
    fn an_author_that_is_not_text_is_shown_in_hex() {
        assert_eq!(user_of(&Author::from(vec![0xff, 0x01])), "ff01");
    }
}

//! The automerge-perf editing trace (259,778 edits of a LaTeX paper), shipped gzipped beside
//! the benchmarks with automerge's licence.

use std::io::Read;

use weft::automerge::{AutoCommit, ObjId, ObjType, ROOT, transaction::Transactable};

/// How many edits make one commit when the trace is replayed (an editor committing in
/// batches, as automerge-repo's handles do per `change`).
pub(crate) const EDITS_PER_COMMIT: usize = 100;

/// One edit of the trace: at `position`, delete `delete` characters, then insert `insert`.
pub(crate) struct Edit {
    pub(crate) position: usize,
    pub(crate) delete: isize,
    pub(crate) insert: String,
}

/// The whole trace, in order.
pub(crate) fn load_trace() -> Vec<Edit> {
    // Embedded, so that benchmarks of every crate find it wherever they run from.
    let gzipped: &[u8] = include_bytes!("../data/automerge-paper-edits.json.gz");
    let mut json = String::new();
    flate2::read::GzDecoder::new(gzipped)
        .read_to_string(&mut json)
        .unwrap();
    let raw: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    raw.iter()
        .map(|edit| Edit {
            position: edit[0].as_u64().unwrap() as usize,
            delete: edit[1].as_i64().unwrap() as isize,
            insert: edit
                .get(2)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned(),
        })
        .collect()
}

/// Applies `edits` to the text object `text`.
pub(crate) fn apply(tx: &mut impl Transactable, text: &ObjId, edits: &[Edit]) {
    for edit in edits {
        tx.splice_text(text, edit.position, edit.delete, &edit.insert)
            .unwrap();
    }
}

/// The trace replayed on a raw automerge document under `text`, one commit per
/// [`EDITS_PER_COMMIT`] edits.
pub(crate) fn replay_raw(edits: &[Edit]) -> (AutoCommit, ObjId) {
    let mut doc = AutoCommit::new();
    let text = doc.put_object(ROOT, "text", ObjType::Text).unwrap();
    doc.commit();
    for batch in edits.chunks(EDITS_PER_COMMIT) {
        apply(&mut doc, &text, batch);
        doc.commit();
    }
    (doc, text)
}

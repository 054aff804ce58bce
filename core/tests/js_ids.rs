//! Document ids and URLs against the official automerge-repo 2.5.6 JS library.
//!
//! `fixtures/js-ids.json` was made by `tests/js/make-id-fixtures.mjs` with the official
//! package; the last test hands URLs made by weft to that package (`tests/js/check-ids.mjs`).
//! That test needs node and `npm ci` in `tests/js`: the README's test command installs them
//! and sets `WEFT_REQUIRE_JS=1`, which turns a missing node into a failure instead of a skip.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod common;

use std::path::PathBuf;

use serde_json::Value;
use weft::{
    AutomergeUrl, DocumentId,
    automerge::{AutoCommit, ChangeHash, ROOT, transaction::Transactable},
    id::{PathSegment, UrlError},
};

fn fixtures() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/js-ids.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn entries<'a>(fixtures: &'a Value, key: &str) -> &'a Vec<Value> {
    fixtures[key].as_array().unwrap()
}

fn hex_heads(heads: &[ChangeHash]) -> Vec<String> {
    heads.iter().map(ToString::to_string).collect()
}

#[test]
fn ids_and_urls_made_by_automerge_repo_parse_to_the_same_bytes_and_heads() {
    let fixtures = fixtures();
    let valid = entries(&fixtures, "valid");
    assert!(valid.len() >= 20);
    for entry in valid {
        let text = entry["url"].as_str().unwrap();
        let url = AutomergeUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let id = url.document_id();
        assert_eq!(
            hex::encode(id.as_bytes()),
            entry["bytes_hex"].as_str().unwrap()
        );
        assert_eq!(id.to_string(), entry["documentId"].as_str().unwrap());
        match entry["heads_hex"].as_array() {
            None => {
                assert_eq!(url.heads(), None, "{text}");
                assert_eq!(url.to_string(), text);
            }
            Some(expected) => {
                let mut expected: Vec<&str> =
                    expected.iter().map(|h| h.as_str().unwrap()).collect();
                let written_sorted = expected.is_sorted();
                // weft keeps heads sorted (as `getHeads()` returns them), so a URL JS wrote
                // with heads in another order means the same version with another spelling.
                expected.sort_unstable();
                assert_eq!(hex_heads(url.heads().unwrap()), expected, "{text}");
                if written_sorted {
                    assert_eq!(url.to_string(), text);
                }
            }
        }
    }
}

#[test]
fn what_automerge_repo_rejects_weft_rejects() {
    let fixtures = fixtures();
    for entry in entries(&fixtures, "invalid") {
        let text = entry["input"].as_str().unwrap();
        let parsed = AutomergeUrl::parse(text);
        if entry["note"].as_str().unwrap().starts_with("path part") {
            // JS's document-URL parser refuses paths; its refs parser (and weft) read them.
            let url = parsed.unwrap();
            assert_eq!(
                url.path(),
                [
                    PathSegment::Key("todos".into()),
                    PathSegment::Key("0".into())
                ]
            );
            continue;
        }
        assert!(parsed.is_err(), "{text:?} was accepted: {parsed:?}");
    }
}

#[test]
fn ids_that_automerge_repo_tolerates_are_accepted_only_if_well_formed() {
    let fixtures = fixtures();
    for entry in entries(&fixtures, "accepted_lenient") {
        let text = entry["input"].as_str().unwrap();
        let result = AutomergeUrl::parse(text);
        // JS checks neither the id's nor the heads' length; weft wants 16 and 32 bytes.
        let id_ok = entry["bytes_hex"].as_str().unwrap().len() == 32;
        let heads_ok = entry["heads_hex"]
            .as_array()
            .is_none_or(|heads| heads.iter().all(|h| h.as_str().unwrap().len() == 64));
        if id_ok && heads_ok {
            assert!(result.is_ok(), "{text}: {result:?}");
        } else {
            assert!(
                matches!(
                    result,
                    Err(UrlError::DocumentId(weft::id::IdError::WrongLength { .. }))
                        | Err(UrlError::InvalidHead { .. })
                ),
                "{text}: {result:?}"
            );
        }
    }
}

#[test]
fn legacy_uuids_convert_as_automerge_repo_converts_them() {
    let fixtures = fixtures();
    for entry in entries(&fixtures, "legacy_uuid") {
        let uuid = entry["uuid"].as_str().unwrap();
        let parsed = DocumentId::parse(uuid);
        match entry["documentId"].as_str() {
            Some(expected) => assert_eq!(parsed.unwrap().to_string(), expected, "{uuid}"),
            None => assert!(
                parsed.is_err(),
                "{uuid} should be refused, as JS refuses it"
            ),
        }
    }
}

#[test]
fn ref_urls_parse_to_the_same_segments_or_are_refused_clearly() {
    let fixtures = fixtures();
    for entry in entries(&fixtures, "ref_urls") {
        let text = entry["url"].as_str().unwrap();
        let segments = entry["segments"].as_array().unwrap();
        let expected: Option<Vec<PathSegment>> = segments
            .iter()
            .map(
                |segment| match segment["AUTOMERGE_REF_KIND"].as_str().unwrap() {
                    "key" => Some(PathSegment::Key(segment["key"].as_str().unwrap().into())),
                    "index" => Some(PathSegment::Index(
                        segment["index"].as_u64().unwrap() as usize
                    )),
                    _ => None,
                },
            )
            .collect();
        let parsed = AutomergeUrl::parse(text);
        match expected {
            Some(expected) => {
                let url = parsed.unwrap_or_else(|e| panic!("{text}: {e}"));
                assert_eq!(url.path(), expected.as_slice(), "{text}");
                let heads = entry["heads_hex"].as_array().map(|heads| {
                    heads
                        .iter()
                        .map(|h| h.as_str().unwrap().to_owned())
                        .collect::<Vec<_>>()
                });
                assert_eq!(url.heads().map(hex_heads), heads, "{text}");
            }
            None => assert!(
                matches!(parsed, Err(UrlError::UnsupportedPathSegment { .. })),
                "{text}: {parsed:?}"
            ),
        }
    }
}

/// Runs `tests/js/check-ids.mjs`, or says why it cannot (`None`).
fn check_with_js(urls: &[String]) -> Option<Vec<Value>> {
    let results = common::run_node("check-ids.mjs", &serde_json::json!(urls))?;
    Some(results.as_array().unwrap().clone())
}

#[test]
fn automerge_repo_accepts_the_ids_and_urls_weft_makes() {
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "a", 1).unwrap();
    let mut fork = doc.fork();
    doc.put(ROOT, "b", 2).unwrap();
    fork.put(ROOT, "c", 3).unwrap();
    doc.merge(&mut fork).unwrap();
    let heads = doc.get_heads();
    assert_eq!(heads.len(), 2);

    let mut urls = Vec::new();
    for _ in 0..20 {
        urls.push(AutomergeUrl::new(DocumentId::random()));
    }
    urls.push(AutomergeUrl::new(DocumentId::random()).with_heads(&heads[..1]));
    urls.push(AutomergeUrl::new(DocumentId::random()).with_heads(&heads));
    let texts: Vec<String> = urls.iter().map(ToString::to_string).collect();
    let Some(results) = check_with_js(&texts) else {
        return;
    };
    assert_eq!(results.len(), urls.len(), "one answer per URL");
    for (url, result) in urls.iter().zip(results) {
        assert_eq!(
            result["valid"],
            Value::Bool(true),
            "JS refused {url}: {result}"
        );
        assert_eq!(
            result["documentId"].as_str(),
            Some(url.document_id().to_string().as_str())
        );
        assert_eq!(
            result["bytes_hex"].as_str(),
            Some(hex::encode(url.document_id().as_bytes()).as_str())
        );
        let js_heads = result["heads_hex"].as_array().map(|heads| {
            heads
                .iter()
                .map(|h| h.as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        });
        assert_eq!(js_heads, url.heads().map(hex_heads), "{url}");
    }
}

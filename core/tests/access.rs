//! Reading and writing documents by path (`weft::access`), as the bindings do: every kind
//! of value, lists, text in both position units, counters, atomic edit lists, and the
//! errors a caller gets for paths that do not fit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use weft::{
    Error, Repo, RepoConfig,
    access::{Edit, Path, Value},
    automerge::{Automerge, ROOT, ReadDoc, TextEncoding, transaction::Transactable},
};

fn path(text: &str) -> Path {
    Path::parse(text).unwrap()
}

fn put(at: &str, value: Value) -> Edit {
    Edit::Put {
        path: path(at),
        value,
    }
}

#[tokio::test]
async fn every_kind_of_value_round_trips_through_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.db");
    let values = [
        ("/null", Value::Null),
        ("/bool", Value::Bool(true)),
        ("/int", Value::Int(-7)),
        ("/uint", Value::Uint(u64::MAX)),
        ("/float", Value::F64(2.5)),
        ("/str", Value::Str("plain".into())),
        ("/bytes", Value::Bytes(vec![0, 1, 255])),
        ("/counter", Value::Counter(10)),
        ("/time", Value::Timestamp(1_700_000_000_000)),
        ("/text", Value::Text("héllo 👋".into())),
        ("/map", Value::Map),
        ("/list", Value::List),
    ];
    let id = {
        let repo = Repo::open(&file).await.unwrap();
        let doc = repo.create().await.unwrap();
        let edits = values.iter().map(|(at, v)| put(at, v.clone())).collect();
        doc.edit(edits).await.unwrap();
        let id = doc.id();
        drop(doc);
        repo.close().await.unwrap();
        id
    };
    let repo = Repo::open(&file).await.unwrap();
    let doc = repo.find(id).await.unwrap();
    for (at, value) in &values {
        assert_eq!(doc.get(&path(at)).unwrap().as_ref(), Some(value), "{at}");
    }
    assert_eq!(doc.get(&Path::root()).unwrap(), Some(Value::Map));
    assert_eq!(doc.get(&path("/missing")).unwrap(), None);
    let mut keys = doc.keys(&Path::root()).unwrap();
    keys.sort();
    assert_eq!(keys.len(), values.len());
    let json: serde_json::Value = serde_json::from_str(&doc.json().unwrap()).unwrap();
    assert_eq!(json["text"], "héllo 👋");
    assert_eq!(json["counter"], 10);
    assert_eq!(json["list"], serde_json::json!([]));
}

#[tokio::test]
async fn lists_insert_put_and_delete_by_index() {
    let repo = Repo::in_memory();
    let doc = repo.create().await.unwrap();
    let insert = |at: &str, value: Value| Edit::Insert {
        path: path(at),
        value,
    };
    doc.edit(vec![
        put("/todos", Value::List),
        insert("/todos/-", Value::Str("b".into())),
        insert("/todos/0", Value::Str("a".into())),
        insert("/todos/2", Value::Map),
        put("/todos/2/title", Value::Str("c".into())),
    ])
    .await
    .unwrap();
    assert_eq!(doc.length(&path("/todos")).unwrap(), 3);
    assert_eq!(
        doc.get(&path("/todos/0")).unwrap(),
        Some(Value::Str("a".into()))
    );
    assert_eq!(
        doc.get(&path("/todos/2/title")).unwrap(),
        Some(Value::Str("c".into()))
    );
    assert_eq!(
        doc.get(&path("/todos/3")).unwrap(),
        None,
        "past the end is nothing"
    );

    doc.edit(vec![
        put("/todos/1", Value::Str("B".into())),
        Edit::Delete {
            path: path("/todos/0"),
        },
    ])
    .await
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&doc.json().unwrap()).unwrap();
    assert_eq!(json["todos"], serde_json::json!(["B", {"title": "c"}]));
}

#[tokio::test]
async fn text_positions_count_in_the_repos_unit() {
    // "a👋b": the emoji is one code point but two UTF-16 units.
    for (encoding, after_emoji) in [
        (TextEncoding::UnicodeCodePoint, 2),
        (TextEncoding::Utf16CodeUnit, 3),
    ] {
        let mut config = RepoConfig::default();
        config.text_encoding = encoding;
        let repo = Repo::in_memory_with(config);
        let doc = repo.create().await.unwrap();
        doc.edit(vec![put("/t", Value::Text("a👋b".into()))])
            .await
            .unwrap();
        assert_eq!(doc.length(&path("/t")).unwrap(), after_emoji + 1);
        doc.edit(vec![Edit::SpliceText {
            path: path("/t"),
            index: after_emoji,
            delete: 1,
            insert: "c!".into(),
        }])
        .await
        .unwrap();
        assert_eq!(
            doc.get(&path("/t")).unwrap(),
            Some(Value::Text("a👋c!".into())),
            "{encoding:?}"
        );
    }
}

#[tokio::test]
async fn update_text_keeps_a_concurrent_edit_elsewhere_in_the_text() {
    let repo = Repo::in_memory();
    let doc = repo.create().await.unwrap();
    doc.edit(vec![put("/t", Value::Text("hello world".into()))])
        .await
        .unwrap();
    // Another device's concurrent edit at the start, on a fork of the same state.
    let mut other = doc.view_at(&doc.heads()).unwrap().fork().await.unwrap();
    let (_, text) = other.get(ROOT, "t").unwrap().unwrap();
    other
        .transact(|tx| tx.splice_text(&text, 0, 0, ">> "))
        .unwrap();
    doc.edit(vec![Edit::UpdateText {
        path: path("/t"),
        text: "hello there world".into(),
    }])
    .await
    .unwrap();
    let mut merged = Automerge::load(&doc.export().await.unwrap()).unwrap();
    merged.merge(&mut other).unwrap();
    assert_eq!(merged.text(&text).unwrap(), ">> hello there world");
}

#[tokio::test]
async fn counters_add_up_and_only_counters_increment() {
    let repo = Repo::in_memory();
    let doc = repo.create().await.unwrap();
    doc.edit(vec![put("/n", Value::Counter(1)), put("/s", Value::Int(1))])
        .await
        .unwrap();
    let by = |at: &str, by: i64| Edit::Increment { path: path(at), by };
    doc.edit(vec![by("/n", 5), by("/n", -2)]).await.unwrap();
    assert_eq!(doc.get(&path("/n")).unwrap(), Some(Value::Counter(4)));
    let error = doc.edit(vec![by("/s", 1)]).await.unwrap_err();
    assert_eq!(error.to_string(), "path \"/s\": this is not a counter");
    let error = doc.edit(vec![by("/n", i64::MAX)]).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "path \"/n\": adding {} would overflow the counter (4)",
            i64::MAX
        )
    );
    assert_eq!(doc.get(&path("/n")).unwrap(), Some(Value::Counter(4)));
    // Within one edit list too (the first increment is pending when the second is checked),
    // and downwards.
    let error = doc
        .edit(vec![by("/n", i64::MAX - 4), by("/n", 1)])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("would overflow"), "{error}");
    assert_eq!(doc.get(&path("/n")).unwrap(), Some(Value::Counter(4)));
    doc.edit(vec![put("/m", Value::Counter(-1))]).await.unwrap();
    let error = doc.edit(vec![by("/m", i64::MIN)]).await.unwrap_err();
    assert!(error.to_string().contains("would overflow"), "{error}");
}

#[tokio::test]
async fn a_failing_edit_keeps_none_of_its_list() {
    let repo = Repo::in_memory();
    let doc = repo.create().await.unwrap();
    let before = doc.heads();
    let error = doc
        .edit(vec![
            put("/kept", Value::Int(1)),
            put("/kept/inside", Value::Int(2)),
        ])
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidPath { .. }), "{error}");
    assert_eq!(doc.get(&path("/kept")).unwrap(), None);
    assert_eq!(doc.heads(), before, "nothing was committed");
}

fn message<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    result.unwrap_err().to_string()
}

#[tokio::test]
async fn paths_that_do_not_fit_are_clear_errors() {
    let repo = Repo::in_memory();
    let doc = repo.create().await.unwrap();
    doc.edit(vec![
        put("/list", Value::List),
        put("/n", Value::Int(1)),
        put("/t", Value::Text("ab".into())),
    ])
    .await
    .unwrap();

    assert_eq!(
        message(doc.get(&path("/n/x"))),
        "path \"/n/x\": /n is a value, not a map or list"
    );
    assert_eq!(
        message(doc.get(&path("/nothing/x"))),
        "path \"/nothing/x\": /nothing does not exist"
    );
    assert_eq!(
        message(doc.get(&path("/list/x"))),
        "path \"/list/x\": \"x\" is not a list index"
    );
    for index in ["01", "+0"] {
        assert_eq!(
            message(doc.get(&path(&format!("/list/{index}")))),
            format!("path \"/list/{index}\": \"{index}\" is not a list index")
        );
    }
    assert_eq!(
        message(Path::parse("title")),
        "path \"title\": a path is empty (the root) or starts with '/'"
    );
    let edit = |edit: Edit| async { message(doc.edit(vec![edit]).await) };
    assert_eq!(
        edit(put("/list/0", Value::Int(1))).await,
        "path \"/list/0\": index 0 is out of range (length 0)"
    );
    assert_eq!(
        edit(Edit::Insert {
            path: path("/list/2"),
            value: Value::Null
        })
        .await,
        "path \"/list/2\": index 2 is past the end (length 0)"
    );
    assert_eq!(
        edit(Edit::Delete {
            path: path("/gone")
        })
        .await,
        "path \"/gone\": no such key"
    );
    assert_eq!(
        edit(Edit::SpliceText {
            path: path("/t"),
            index: 1,
            delete: 5,
            insert: String::new()
        })
        .await,
        "path \"/t\": splice of 5 at 1 goes past the end (length 2)"
    );
    assert_eq!(
        edit(put("/t/0", Value::Str("x".into()))).await,
        "path \"/t/0\": text is changed with splice_text or update_text"
    );
    assert_eq!(
        edit(Edit::UpdateText {
            path: path("/n"),
            text: "x".into()
        })
        .await,
        "path \"/n\": this is a value, not a map, list or text"
    );
    assert_eq!(
        edit(put(
            "/u",
            Value::Unknown {
                type_code: 6,
                bytes: vec![1]
            }
        ))
        .await,
        "path \"/u\": a value of an unknown type can be read, not written"
    );
}

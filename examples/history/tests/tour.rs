//! The tour, as a user runs it: what it prints.

#![allow(clippy::unwrap_used)] // tests fail loudly

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tour_shows_authors_a_past_version_blame_undo_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let lines = weft_example_history::tour(dir.path()).await.unwrap();
    let text = lines.join("\n");
    assert!(text.contains("the list: milk, bread, eggs"), "{text}");
    assert!(
        text.contains("by ana  ana: eggs") && text.contains("by bo  bo: bread"),
        "{text}"
    );
    assert!(text.contains("the first version: milk\n"), "{text}");
    assert!(
        text.contains("0..4 written by ana\n  4..11 written by bo\n  11..17 written by ana"),
        "{text}"
    );
    assert!(
        text.contains("bo removes the milk: bread, eggs\nafter ana's undo, bo sees: bread\n"),
        "{text}"
    );
    assert!(
        text.ends_with("after ana restores the first version, bo sees: milk"),
        "{text}"
    );
}

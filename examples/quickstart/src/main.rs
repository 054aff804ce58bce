//! The README quickstart: open a repo, create a document, change it, read it back — then
//! reopen the database and find the document again.
//!
//! `cargo run -p weft-example-quickstart -- [database path]`

use weft::{
    Repo,
    automerge::{ObjType, ROOT, ReadDoc, transaction::Transactable},
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "quickstart.db".into());

    // Open (or create) the SQLite database; works with or without a network.
    let repo = Repo::open(&path).await?;

    // Create a document and change it. `change` returns once the change is in SQLite.
    let doc = repo.create().await?;
    let saved = doc
        .change(|tx| {
            tx.put(ROOT, "title", "Groceries")?;
            let items = tx.put_object(ROOT, "items", ObjType::List)?;
            tx.insert(&items, 0, "oat milk")?;
            tx.insert(&items, 1, "apples")?;
            Ok(())
        })
        .await?;
    println!("created {} at heads {:?}", doc.url(), saved.heads);

    // Read it back without copying the document.
    let summary = doc.with_doc(|d| {
        let title = d
            .get(ROOT, "title")
            .ok()
            .flatten()
            .map(|(v, _)| v.to_string());
        let items = d
            .get(ROOT, "items")
            .ok()
            .flatten()
            .map(|(_, id)| d.length(id));
        format!(
            "title {}, {} items",
            title.unwrap_or_default(),
            items.unwrap_or(0)
        )
    });
    println!("read back: {summary}");

    // Close, reopen and find it again by id.
    let id = doc.id();
    drop(doc);
    repo.close().await?;
    let repo = Repo::open(&path).await?;
    let doc = repo.find(id).await?;
    println!(
        "after reopening: {} documents stored, {} has heads {:?}",
        repo.list().await?.len(),
        doc.url(),
        doc.heads()
    );
    Ok(())
}

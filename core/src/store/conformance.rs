//! One conformance suite that every [`Storage`](super::Storage) backend must pass: weft's
//! own and any an app writes.

/// Generates the conformance tests of the [`Storage`](crate::store::Storage) contract for a
/// backend.
///
/// Invoke it in a test module with an async block that makes a fresh, empty store and a
/// guard kept alive for the test (a temporary folder, say). The tests use `#[tokio::test]`,
/// so the crate needs `tokio` (features `macros`, `rt`) as a dev-dependency.
///
/// ```ignore
/// #[cfg(test)]
/// mod tests {
///     weft::storage_conformance_tests!(async { (MyStorage::new(), ()) });
/// }
/// ```
#[macro_export]
macro_rules! storage_conformance_tests {
    ($make:expr) => {
        mod conformance {
            #![allow(clippy::unwrap_used, clippy::expect_used)]

            use $crate::{
                DocumentId, StorageId,
                automerge::ChangeHash,
                store::{Chunk, ChunkKind, Storage, StorageError, WriteOp},
            };

            fn snapshot(text: &str) -> Chunk {
                Chunk::new(ChunkKind::Snapshot, text.as_bytes().to_vec())
            }

            fn incremental(text: &str) -> Chunk {
                Chunk::new(ChunkKind::Incremental, text.as_bytes().to_vec())
            }

            fn create(id: DocumentId, chunk: Chunk) -> WriteOp {
                WriteOp::CreateDocument {
                    id,
                    chunk,
                    heads: vec![ChangeHash([1; 32])],
                    now: 1_000,
                }
            }

            fn append(id: DocumentId, chunk: Chunk, head: u8, now: i64) -> WriteOp {
                WriteOp::AppendChunk {
                    id,
                    chunk,
                    heads: vec![ChangeHash([head; 32])],
                    now,
                }
            }

            #[tokio::test]
            async fn a_created_document_loads_with_its_chunk_and_metadata() {
                let (store, _guard) = $make.await;
                let id = DocumentId::random();
                store.submit(vec![create(id, snapshot("base"))]).await.expect("the storage operation succeeds");
                let stored = store.load(id).await.expect("the storage operation succeeds").expect("stored");
                assert_eq!(stored.chunks, vec![snapshot("base")]);
                assert_eq!(stored.meta.id, id);
                assert_eq!(stored.meta.created_at, 1_000);
                assert_eq!(stored.meta.updated_at, 1_000);
                assert_eq!(stored.meta.heads, vec![ChangeHash([1; 32])]);
                assert_eq!(stored.meta.snapshot_bytes, 4);
                assert_eq!(stored.meta.incremental_bytes, 0);
                assert_eq!(stored.meta.chunk_count, 1);
                assert!(store.load(DocumentId::random()).await.expect("the storage operation succeeds").is_none());
            }

            #[tokio::test]
            async fn creating_a_stored_document_again_is_refused() {
                let (store, _guard) = $make.await;
                let id = DocumentId::random();
                store.submit(vec![create(id, snapshot("a"))]).await.expect("the storage operation succeeds");
                let again = store.submit(vec![create(id, snapshot("b"))]).await;
                assert!(matches!(again, Err(StorageError::DocumentExists(found)) if found == id));
                let stored = store.load(id).await.expect("read").expect("the document is stored");
                assert_eq!(stored.chunks, vec![snapshot("a")]);
            }

            #[tokio::test]
            async fn appends_keep_order_update_heads_and_ignore_duplicates() {
                let (store, _guard) = $make.await;
                let id = DocumentId::random();
                store.submit(vec![create(id, snapshot("base"))]).await.expect("the storage operation succeeds");
                store.submit(vec![append(id, incremental("one"), 2, 2_000)]).await.expect("the storage operation succeeds");
                store.submit(vec![append(id, incremental("two"), 3, 3_000)]).await.expect("the storage operation succeeds");
                // The same bytes again: the chunk is stored once.
                store.submit(vec![append(id, incremental("one"), 4, 4_000)]).await.expect("the storage operation succeeds");
                let stored = store.load(id).await.expect("read").expect("the document is stored");
                assert_eq!(
                    stored.chunks,
                    vec![snapshot("base"), incremental("one"), incremental("two")]
                );
                assert_eq!(stored.meta.heads, vec![ChangeHash([4; 32])]);
                assert_eq!(stored.meta.updated_at, 4_000);
                assert_eq!(stored.meta.created_at, 1_000);
                assert_eq!(stored.meta.incremental_bytes, 6);
                assert_eq!(stored.meta.chunk_count, 3);
            }

            #[tokio::test]
            async fn writes_to_a_document_that_is_not_stored_are_refused() {
                let (store, _guard) = $make.await;
                let id = DocumentId::random();
                let missing = |result: Result<(), StorageError>| {
                    matches!(result, Err(StorageError::DocumentNotFound(found)) if found == id)
                };
                assert!(missing(store.submit(vec![append(id, incremental("x"), 2, 1)]).await));
                assert!(missing(store.submit(vec![WriteOp::DeleteDocument { id }]).await));
                let sync = WriteOp::PutSyncState {
                    id,
                    peer: StorageId::new("peer"),
                    state: vec![1],
                };
                assert!(missing(store.submit(vec![sync]).await));
                let compact = WriteOp::Compact {
                    id,
                    snapshot: snapshot("s"),
                    replaces: vec![],
                };
                assert!(missing(store.submit(vec![compact]).await));
                assert!(store.list().await.expect("the storage operation succeeds").is_empty());
            }

            #[tokio::test]
            async fn compaction_replaces_only_the_chunks_it_names() {
                let (store, _guard) = $make.await;
                let id = DocumentId::random();
                store.submit(vec![create(id, snapshot("base"))]).await.expect("the storage operation succeeds");
                store.submit(vec![append(id, incremental("one"), 2, 2)]).await.expect("the storage operation succeeds");
                store.submit(vec![append(id, incremental("two"), 3, 3)]).await.expect("the storage operation succeeds");
                let compact = WriteOp::Compact {
                    id,
                    snapshot: snapshot("base+one"),
                    replaces: vec![snapshot("base").hash(), incremental("one").hash()],
                };
                store.submit(vec![compact]).await.expect("the storage operation succeeds");
                let stored = store.load(id).await.expect("read").expect("the document is stored");
                assert_eq!(stored.chunks, vec![snapshot("base+one"), incremental("two")]);
                assert_eq!(stored.meta.snapshot_bytes, 8);
                assert_eq!(stored.meta.incremental_bytes, 3);
                assert_eq!(stored.meta.heads, vec![ChangeHash([3; 32])], "heads untouched");
            }

            #[tokio::test]
            async fn a_submission_is_all_or_nothing_and_does_not_affect_others() {
                let (store, _guard) = $make.await;
                let id = DocumentId::random();
                store.submit(vec![create(id, snapshot("base"))]).await.expect("the storage operation succeeds");
                let good = store.submit(vec![append(id, incremental("kept"), 2, 2)]);
                let bad = store.submit(vec![
                    append(id, incremental("dropped"), 3, 3),
                    append(DocumentId::random(), incremental("nowhere"), 4, 4),
                ]);
                let (good, bad) = tokio::join!(good, bad);
                good.expect("the good submission is stored");
                assert!(matches!(bad, Err(StorageError::DocumentNotFound(_))));
                let stored = store.load(id).await.expect("read").expect("the document is stored");
                assert_eq!(stored.chunks, vec![snapshot("base"), incremental("kept")]);
                assert_eq!(stored.meta.heads, vec![ChangeHash([2; 32])]);
            }

            #[tokio::test]
            async fn deleting_removes_the_document_its_chunks_and_sync_states() {
                let (store, _guard) = $make.await;
                let (id, other) = (DocumentId::random(), DocumentId::random());
                let peer = StorageId::new("peer-storage");
                store
                    .submit(vec![create(id, snapshot("a")), create(other, snapshot("b"))])
                    .await
                    .expect("the storage operation succeeds");
                let put = |id| WriteOp::PutSyncState {
                    id,
                    peer: peer.clone(),
                    state: vec![9],
                };
                store.submit(vec![put(id), put(other)]).await.expect("the storage operation succeeds");
                store.submit(vec![WriteOp::DeleteDocument { id }]).await.expect("the storage operation succeeds");
                assert!(store.load(id).await.expect("the storage operation succeeds").is_none());
                assert_eq!(store.load_sync_state(id, peer.clone()).await.expect("the storage operation succeeds"), None);
                assert_eq!(
                    store.load_sync_state(other, peer.clone()).await.expect("the storage operation succeeds"),
                    Some(vec![9])
                );
                let ids: Vec<_> = store.list().await.expect("the storage operation succeeds").iter().map(|m| m.id).collect();
                assert_eq!(ids, vec![other]);
                assert_eq!(store.count().await.expect("the storage operation succeeds"), 1);
            }

            #[tokio::test]
            async fn sync_states_are_kept_per_document_and_peer_and_replaced() {
                let (store, _guard) = $make.await;
                let id = DocumentId::random();
                store.submit(vec![create(id, snapshot("a"))]).await.expect("the storage operation succeeds");
                let put = |peer: &str, state: Vec<u8>| WriteOp::PutSyncState {
                    id,
                    peer: StorageId::new(peer),
                    state,
                };
                store.submit(vec![put("p1", vec![1]), put("p2", vec![2])]).await.expect("the storage operation succeeds");
                store.submit(vec![put("p1", vec![3])]).await.expect("the storage operation succeeds");
                let load = |peer: &str| store.load_sync_state(id, StorageId::new(peer));
                assert_eq!(load("p1").await.expect("the storage operation succeeds"), Some(vec![3]));
                assert_eq!(load("p2").await.expect("the storage operation succeeds"), Some(vec![2]));
                assert_eq!(load("p3").await.expect("the storage operation succeeds"), None);
            }

            #[tokio::test]
            async fn the_first_arrival_of_a_change_is_kept_and_goes_with_its_document() {
                let (store, _guard) = $make.await;
                let (id, other) = (DocumentId::random(), DocumentId::random());
                let arrive = |id, user: &str, changes: &[u8], now| WriteOp::RecordArrivals {
                    id,
                    user: user.to_owned(),
                    changes: changes.iter().map(|c| ChangeHash([*c; 32])).collect(),
                    now,
                };
                store
                    .submit(vec![create(id, snapshot("a")), arrive(id, "ana", &[1, 2], 10)])
                    .await
                    .expect("the storage operation succeeds");
                store.submit(vec![create(other, snapshot("b")), arrive(other, "bo", &[1], 11)]).await.expect("stored");
                // A later delivery of a recorded change keeps the first record.
                store.submit(vec![arrive(id, "bo", &[2, 3], 20)]).await.expect("stored");
                let found = store
                    .arrivals(id, vec![ChangeHash([3; 32]), ChangeHash([2; 32]), ChangeHash([9; 32]), ChangeHash([1; 32])])
                    .await
                    .expect("the storage operation succeeds");
                let found: Vec<(u8, &str, i64)> =
                    found.iter().map(|a| (a.change.0[0], a.user.as_str(), a.received_at)).collect();
                assert_eq!(found, vec![(3, "bo", 20), (2, "ana", 10), (1, "ana", 10)]);
                // Not for a document that is not stored; gone with a deleted document.
                assert!(matches!(
                    store.submit(vec![arrive(DocumentId::random(), "x", &[1], 1)]).await,
                    Err(StorageError::DocumentNotFound(_))
                ));
                store.submit(vec![WriteOp::DeleteDocument { id }]).await.expect("deleted");
                assert!(store.arrivals(id, vec![ChangeHash([1; 32])]).await.expect("read").is_empty());
                assert_eq!(store.arrivals(other, vec![ChangeHash([1; 32])]).await.expect("read").len(), 1);
            }

            #[tokio::test]
            async fn list_returns_every_document_ordered_by_id() {
                let (store, _guard) = $make.await;
                let mut ids: Vec<_> = (0..20).map(|_| DocumentId::random()).collect();
                for id in &ids {
                    store.submit(vec![create(*id, snapshot("x"))]).await.expect("the storage operation succeeds");
                }
                ids.sort();
                let listed: Vec<_> = store.list().await.expect("the storage operation succeeds").iter().map(|m| m.id).collect();
                assert_eq!(listed, ids);
                assert_eq!(store.count().await.expect("the storage operation succeeds"), 20);
            }

            #[tokio::test]
            async fn submissions_apply_in_call_order_without_waiting() {
                let (store, _guard) = $make.await;
                let id = DocumentId::random();
                // Nothing is awaited until all are submitted: each write needs the one before.
                let pending = vec![
                    store.submit(vec![create(id, snapshot("base"))]),
                    store.submit(vec![append(id, incremental("one"), 2, 2)]),
                    store.submit(vec![append(id, incremental("two"), 3, 3)]),
                ];
                for write in pending {
                    write.await.expect("the storage operation succeeds");
                }
                let stored = store.load(id).await.expect("read").expect("the document is stored");
                assert_eq!(
                    stored.chunks,
                    vec![snapshot("base"), incremental("one"), incremental("two")]
                );
            }

            #[tokio::test]
            async fn a_write_happens_and_is_reported_even_if_nobody_waits() {
                let (store, _guard) = $make.await;
                let id = DocumentId::random();
                drop(store.submit(vec![create(id, snapshot("unawaited"))]));
                let (sender, outcome) = tokio::sync::oneshot::channel();
                store.submit_with(
                    vec![append(id, incremental("after"), 2, 2)],
                    Box::new(move |result| {
                        let _ = sender.send(result);
                    }),
                );
                outcome
                    .await
                    .expect("the outcome is reported")
                    .expect("the append is stored");
                let stored = store.load(id).await.expect("the storage operation succeeds").expect("the unawaited create");
                assert_eq!(stored.chunks.len(), 2);
            }

            #[tokio::test]
            async fn a_closed_store_refuses_reads_and_writes() {
                let (store, _guard) = $make.await;
                let id = DocumentId::random();
                store.submit(vec![create(id, snapshot("a"))]).await.expect("the storage operation succeeds");
                store.close().await.expect("the storage operation succeeds");
                assert!(matches!(store.load(id).await, Err(StorageError::Closed)));
                assert!(matches!(store.list().await, Err(StorageError::Closed)));
                let write = store.submit(vec![create(DocumentId::random(), snapshot("b"))]).await;
                assert!(matches!(write, Err(StorageError::Closed)));
                store.close().await.expect("closing again is a no-op");
            }
        }
    };
}

//! Relays replicating each other, as three real relay processes on 127.0.0.1: two regions
//! (multi-leader) and a read-only follower. Clients on different relays converge; the link
//! between the two regions is cut (a proxy between them drops every connection) and healed;
//! the follower serves reads and refuses writes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

#[path = "../../core/tests/common/mod.rs"]
mod common;
mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use common::{eventually, find_eventually, number, online};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use weft::{
    Repo,
    automerge::{ROOT, transaction::Transactable},
};
use weft_relay::{auth::Grant, secret};

/// A TCP proxy to `target` whose link can be cut (every connection dropped, new ones
/// refused) and healed.
struct Link {
    address: String,
    cut: Arc<AtomicBool>,
}

impl Link {
    async fn to(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let cutting = cut.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if cutting.load(Ordering::SeqCst) {
                    continue; // dropped: the link is down
                }
                let (target, cutting) = (target.clone(), cutting.clone());
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut in_read, mut in_write) = inbound.into_split();
                    let (mut out_read, mut out_write) = outbound.into_split();
                    let watch_cut = async {
                        while !cutting.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    // Whichever ends first drops both connections.
                    tokio::select! {
                        _ = tokio::io::copy(&mut in_read, &mut out_write) => {}
                        _ = tokio::io::copy(&mut out_read, &mut in_write) => {}
                        () = watch_cut => {}
                    }
                });
            }
        });
        Self { address, cut }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// The value of the gauge `name` at `/metrics` of the relay at `url`.
async fn gauge(url: &str, name: &str) -> Option<f64> {
    let address = url.trim_start_matches("ws://");
    let scrape = async {
        let mut stream = TcpStream::connect(address).await.ok()?;
        let request =
            format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        Some(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(5), scrape)
        .await
        .ok()??;
    response
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn stored(url: &str) -> Option<f64> {
    gauge(url, "weft_documents_stored").await
}

/// More documents than a catch-up pass loads at once, stored in region one before it starts.
const SEEDED: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_regions_and_a_follower_replicate_through_cuts_and_the_follower_only_reads() {
    let dir = tempfile::Builder::new()
        .prefix("regions")
        .tempdir()
        .unwrap();
    // Region one: secure, as in production, with documents from before.
    {
        let seeded = Repo::open(dir.path().join("a").join("weft.db"))
            .await
            .unwrap();
        for n in 0..SEEDED {
            let doc = seeded.create().await.unwrap();
            doc.change(move |tx| tx.put(ROOT, "seeded", n as i64))
                .await
                .unwrap();
        }
        seeded.close().await.unwrap();
    }
    let (relay_a, url_a, _) = support::start_binary(&dir.path().join("a"), &[]);
    let secret_a = secret::read(&dir.path().join("a").join(secret::SECRET_FILE)).unwrap();
    let relay_token = |write: Grant| {
        let mut claims = support::claims(Grant::everything(), write, 600);
        claims.relay = true;
        weft_relay::auth::mint(&secret_a, &claims).unwrap()
    };
    let alice_token = support::token(&secret_a, Grant::default(), Grant::everything(), 600);

    // Alice has three documents on region one before the others exist.
    let alice = Repo::in_memory();
    let _alice = online(&alice, &format!("{url_a}/?token={alice_token}")).await;
    let mut docs = Vec::new();
    for n in 0..3 {
        let doc = alice.create().await.unwrap();
        doc.change(move |tx| tx.put(ROOT, "n", n)).await.unwrap();
        docs.push(doc);
    }
    let all = (SEEDED + 3) as f64;
    eventually("region one stored them", || async {
        stored(&url_a).await == Some(all)
    })
    .await;

    // Region two replicates with region one through a link that can be cut; its token
    // is in a file. The follower follows region one with a read-only relay token.
    let link = Link::to(url_a.trim_start_matches("ws://").to_owned()).await;
    let token_file = dir.path().join("upstream.token");
    std::fs::write(&token_file, relay_token(Grant::everything())).unwrap();
    let (relay_b, url_b, _) = support::start_binary(
        &dir.path().join("b"),
        &[
            "--anonymous",
            "read-write",
            "--upstream",
            &format!("ws://{}", link.address),
            "--upstream-token-file",
            token_file.to_str().unwrap(),
        ],
    );
    // A token that would let it write: the follower itself must refuse writes.
    let follower_token = relay_token(Grant::everything());
    let (relay_f, url_f, _) = support::start_binary(
        &dir.path().join("f"),
        &[
            "--anonymous",
            "read-write",
            "--follower",
            "--upstream",
            &format!("{url_a}/?token={follower_token}"),
        ],
    );
    // Both caught up with region one's documents without any client asking, and region
    // one let go of what it loaded to offer them (alice's three stay: she syncs them).
    eventually("region two and the follower caught up", || async {
        stored(&url_b).await == Some(all) && stored(&url_f).await == Some(all)
    })
    .await;
    eventually("region one let go of what it offered", || async {
        gauge(&url_a, "weft_documents_loaded")
            .await
            .is_some_and(|n| n <= 3.0)
    })
    .await;

    // Clients on different relays converge.
    let (bob, carol, dave) = (Repo::in_memory(), Repo::in_memory(), Repo::in_memory());
    let _bob = online(&bob, &url_b).await;
    let _carol = online(&carol, &url_f).await;
    let _dave = online(&dave, &url_f).await;
    let on_bob = find_eventually(&bob, docs[0].id()).await;
    let on_carol = find_eventually(&carol, docs[0].id()).await;
    on_bob.change(|tx| tx.put(ROOT, "bob", 1)).await.unwrap();
    eventually("bob's edit reaches alice and carol", || async {
        number(&docs[0], "bob") == Some(1) && number(&on_carol, "bob") == Some(1)
    })
    .await;

    // The link between the regions is cut; both sides keep editing.
    link.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    docs[0]
        .change(|tx| tx.put(ROOT, "during_cut_a", 1))
        .await
        .unwrap();
    on_bob
        .change(|tx| tx.put(ROOT, "during_cut_b", 2))
        .await
        .unwrap();
    let new_on_b = bob.create().await.unwrap();
    new_on_b.change(|tx| tx.put(ROOT, "born", 7)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        number(&docs[0], "during_cut_b"),
        None,
        "the link was not cut"
    );
    // Healed: they converge, and region two's new document reaches region one.
    link.heal();
    eventually("the regions converge after the cut", || async {
        number(&docs[0], "during_cut_b") == Some(2) && number(&on_bob, "during_cut_a") == Some(1)
    })
    .await;
    let new_on_a = find_eventually(&alice, new_on_b.id()).await;
    eventually("the new document arrives whole", || async {
        number(&new_on_a, "born") == Some(7)
    })
    .await;

    // The follower refuses a write (though its own token on region one would allow it):
    // carol's change reaches neither another client of the follower nor the regions,
    // while region one's changes keep reaching the follower's clients.
    let on_dave = find_eventually(&dave, docs[0].id()).await;
    on_carol
        .change(|tx| tx.put(ROOT, "carol", 3))
        .await
        .unwrap();
    docs[0].change(|tx| tx.put(ROOT, "after", 4)).await.unwrap();
    eventually(
        "region one's edit reaches the follower's clients",
        || async { number(&on_carol, "after") == Some(4) && number(&on_dave, "after") == Some(4) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(number(&on_dave, "carol"), None, "the follower took a write");
    assert_eq!(
        number(&docs[0], "carol"),
        None,
        "a write went through the follower"
    );
    assert_eq!(
        number(&on_bob, "carol"),
        None,
        "a write went through the follower"
    );

    support::terminate(relay_f);
    support::terminate(relay_b);
    support::terminate(relay_a);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_replicates_with_an_upstream_behind_tls() {
    let dir = tempfile::tempdir().unwrap();
    {
        let seeded = Repo::open(dir.path().join("a").join("weft.db"))
            .await
            .unwrap();
        let doc = seeded.create().await.unwrap();
        doc.change(|tx| tx.put(ROOT, "over", 1)).await.unwrap();
        seeded.close().await.unwrap();
    }
    let (relay_a, url_a, _) = support::start_binary(&dir.path().join("a"), &[]);
    let front = common::tls_front::start(url_a.trim_start_matches("ws://").to_owned()).await;
    let secret_a = secret::read(&dir.path().join("a").join(secret::SECRET_FILE)).unwrap();
    let mut claims = support::claims(Grant::everything(), Grant::everything(), 600);
    claims.relay = true;
    let token_file = dir.path().join("upstream.token");
    std::fs::write(
        &token_file,
        weft_relay::auth::mint(&secret_a, &claims).unwrap(),
    )
    .unwrap();
    let ca_file = dir.path().join("upstream-ca.pem");
    std::fs::write(&ca_file, &front.certificate_pem).unwrap();
    let (relay_b, url_b, _) = support::start_binary(
        &dir.path().join("b"),
        &[
            "--upstream",
            &front.url,
            "--upstream-token-file",
            token_file.to_str().unwrap(),
            "--upstream-ca-file",
            ca_file.to_str().unwrap(),
        ],
    );
    eventually("region two caught up over TLS", || async {
        stored(&url_b).await == Some(1.0)
    })
    .await;
    support::terminate(relay_b);
    support::terminate(relay_a);
}

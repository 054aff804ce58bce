//! The wire decoder never allocates past what its input justifies: hostile declared lengths
//! cannot make it reserve memory. Its own test binary, for the counting global allocator.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::alloc::System;

use cap::Cap;
use proptest::prelude::*;
use weft::wire;

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// Bytes allocated (in total, not at peak) while decoding `bytes`. Tests in this binary run
/// on several threads, so the count can include others' allocations: the bound checked is
/// loose enough for that noise and still far below what a lying length would reserve.
fn allocated_by_decode(bytes: &[u8]) -> usize {
    let before = ALLOCATOR.total_allocated();
    let _ = wire::decode(bytes);
    ALLOCATOR.total_allocated() - before
}

const BOUND: fn(usize) -> usize = |len| 64 * len + (64 << 10);

#[test]
fn lying_lengths_reserve_nothing() {
    // `{"type": "join", "supportedProtocolVersions": [2^32 entries...` in a few bytes, and the
    // same for a byte string and a map.
    let prefix = [
        &[0xa2, 0x64][..],
        b"type",
        &[0x64],
        b"join",
        &[0x78, 25],
        b"supportedProtocolVersions",
    ]
    .concat();
    for tail in [
        &[0x9a, 0xff, 0xff, 0xff, 0xff][..],
        &[0x5a, 0xff, 0xff, 0xff, 0xff],
        &[0xba, 0xff, 0xff, 0xff, 0xff],
        &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    ] {
        let bytes = [&prefix[..], tail].concat();
        let allocated = allocated_by_decode(&bytes);
        assert!(
            allocated < BOUND(bytes.len()),
            "{allocated} bytes for {bytes:02x?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn allocation_is_bounded_by_the_input(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let allocated = allocated_by_decode(&bytes);
        prop_assert!(allocated < BOUND(bytes.len()), "{} bytes for {:02x?}", allocated, bytes);
    }
}

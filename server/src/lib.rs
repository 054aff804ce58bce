//! `weft-relay`: the self-hosted relay for weft and automerge-repo peers.
//!
//! A skeleton for now: the relay (`run(listener, config, shutdown)` and its binary) is built
//! on the sync engine and the network driver, which come after the local engine. See
//! `ARCHITECTURE.md` for where it is going.

#![warn(missing_docs)]

//! `weft-ffi`: the uniffi bindings of weft for Kotlin, Swift and Python.
//!
//! A skeleton for now: the bindings will be thin uniffi wrappers over `weft`'s `Repo` and
//! `DocHandle`, with one flattened error type at the FFI. See `ARCHITECTURE.md`.

#![warn(missing_docs)]

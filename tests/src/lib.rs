//! Cross-crate integration, interop and fault tests for weft. The tests live in `tests/`;
//! the helper programs they start as real processes live in `src/bin/`.

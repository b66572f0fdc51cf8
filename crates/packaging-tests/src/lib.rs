//! No library: this crate only holds the tests of `scripts/package.sh` (see
//! `tests/packages.rs`), so that `cargo nextest run --workspace` runs them.

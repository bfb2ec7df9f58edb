//! The fuzz harnesses: what each cargo-fuzz target does with its input bytes.
//!
//! The targets in `fuzz_targets/` are one-line wrappers around these functions, and
//! `tests/fuzz_corpus.rs` in the root package includes this file with `#[path]` to replay
//! the committed corpus and the regressions as ordinary tests on stable. So these
//! modules depend on `capsuledb` and `std` only — no libFuzzer types — and reach each
//! other through `super::`, never `crate::` (which is the test crate there).
//!
//! Each harness panics only when capsuledb misbehaves: a panic inside the engine, a
//! wrong answer against a model, a decoder that accepts what it should refuse or
//! re-encodes differently, or an error where none is allowed.
//!
//! - [`fuzz_open_bytes`]: arbitrary file bytes opened as a database, then read,
//!   checked, committed to, checkpointed and closed: errors allowed, panics not.
//! - [`fuzz_decode`]: every public decoder of `capsuledb::format` on arbitrary bytes
//!   (raw, and with the checksum fixed up so the structural checks behind it are
//!   reached), plus tree, run and log pages replaced inside a real database with a
//!   valid checksum, which reaches the decoders that are not public (B+tree nodes,
//!   overflow and free-list runs, the marker stream), and committed capsules replaced
//!   with their proof and marker chain fixed up, which reaches recovery's replay.
//! - [`fuzz_key_decode`]: the typed-key decoder on arbitrary bytes: canonical, and
//!   two decoded keys compare as their bytes do.
//! - [`fuzz_raftlog`]: the Raft log's decoders on arbitrary contents of its tables,
//!   then its calls on what opened: errors only for damage or calls out of order, and
//!   every way of reading an entry agrees.
//! - [`fuzz_history`]: the records kept for time travel (version lists, the floor, the
//!   kept drops, the history directory built from them) damaged with a valid checksum
//!   in a database that keeps its history, then read at every state of its window,
//!   checked, salvaged, committed to, checkpointed and reopened.
//! - [`fuzz_api_model`]: the input as a sequence of API operations on simulated
//!   storage, checked against a `BTreeMap` model, with checkpoints, compaction,
//!   reopens, crashes (process crash, power loss with torn writes, power loss losing
//!   everything unsynced) and power cuts after a number of I/O operations.
//!
//! The parts: [`input`] (reading the bytes), [`open_bytes`], [`decode`] and
//! [`decode_in_db`] (modes 7-9), [`history`], [`sample`] (sample databases), [`api_model`] with its
//! [`model`] and its program encoding [`op`].

mod api_model;
mod decode;
mod decode_in_db;
mod history;
mod input;
mod key_decode;
mod model;
pub mod op;
mod open_bytes;
mod raftlog;
mod sample;

pub use api_model::{OP_COUNT, fuzz_api_model};
pub use decode::{
    DECODE_CAPSULE, DECODE_CAPSULE_IN_DB, DECODE_HEADER, DECODE_HEADER_FIXED, DECODE_LOG_IN_DB,
    DECODE_MARKER, DECODE_MODES, DECODE_PAGE, DECODE_PAGE_FIXED, DECODE_PROOF, DECODE_TREE_IN_DB,
    DECODE_VERSION_LIST, fuzz_decode,
};
pub use history::fuzz_history;
pub use key_decode::fuzz_key_decode;
pub use model::MODEL_TABLES;
pub use open_bytes::fuzz_open_bytes;
pub use raftlog::fuzz_raftlog;
pub use sample::{history_database, sample_database, trim_database};

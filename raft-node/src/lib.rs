//! A replicated capsuledb key-value service: one process per node, each keeping its
//! Raft log and state machine in its own capsuledb file through the library's openraft
//! adapter (`capsuledb::raftlog::openraft`), talking TCP to its peers and clients.
//!
//! - [`proto`]: the length-prefixed JSON frames and every message.
//! - [`network`]: openraft's `RaftNetwork` over TCP.
//! - [`server`]: one node: the database, `Raft`, and the listener.
//! - [`client`]: a client that finds the leader and says when a write's outcome is unknown.
//! - [`cluster`]: node processes on loopback, started, killed and restarted (bench, tests).
//! - [`history`]: a linearizability checker for per-key register histories (the kill test).
//! - [`bench`]: writes/s and latency through a cluster of 1 or 3 processes.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
#![warn(missing_docs)]

pub mod bench;
pub mod client;
pub mod cluster;
pub mod history;
pub mod network;
pub mod proto;
pub mod server;

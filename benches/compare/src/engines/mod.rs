//! One module per engine, each implementing [`crate::engine::Engine`].

pub mod capsule;
pub mod fjall_kv;
pub mod lmdb;
pub mod redb_kv;
pub mod sqlite;

/// The table (keyspace, database) every workload uses.
pub const TABLE: &str = "bench";

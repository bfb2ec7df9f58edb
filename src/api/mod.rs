//! The public API: `Database`, `Options`, `Connection`, `Transaction` and their types.

mod connection;
mod database;
mod engine;
mod integrity;
mod options;
mod range;
mod read;
mod transaction;
mod types;

pub use connection::Connection;
pub use database::{Database, DbInfo, Stats};
pub use integrity::IntegrityReport;
pub use options::Options;
pub use range::Range;
pub use transaction::{CATALOG_NAME, Page, Transaction};
pub use types::{
    CommitInfo, Durability, Isolation, MAX_KEY_LEN, MAX_TABLE_NAME_LEN, MAX_TRANSACTION_BYTES,
    MAX_VALUE_LEN, ValueRef,
};

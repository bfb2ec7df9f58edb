//! The public face: `Database`, `Options`, `Connection`, `Transaction` and `Range`. Each
//! method checks its arguments and hands the work to the engine (`crate::engine`).

mod backup;
mod connection;
mod database;
#[cfg(test)]
mod database_tests;
mod options;
mod range;
mod reads;
mod run;
mod salvage;
mod scan;
mod transaction;
mod typed;

pub use backup::{
    BACKUP_COPY_OP, BACKUP_DIR_SYNC_OP, BACKUP_OUTPUT_OPS, BackupOptions, BackupProgress,
    BackupReport, TEMP_STEM_MAX, temporary_name_stem,
};

pub use crate::types::CATALOG_NAME;
pub use connection::Connection;
pub use database::Database;
pub use options::Options;
pub use range::Range;
pub use run::{RETRY_ATTEMPTS_DEFAULT, RETRY_ELAPSED_DEFAULT, RetryPolicy};
pub use scan::Scan;
pub use transaction::{Page, Transaction};
pub use typed::{Table, TableDef, TypedRange};

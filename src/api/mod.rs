//! The public face: `Database`, `Options`, `Connection`, `Transaction` and `Range`. Each
//! method checks its arguments and hands the work to the engine (`crate::engine`).

mod connection;
mod database;
mod options;
mod range;
mod transaction;

pub use connection::Connection;
pub use database::Database;
pub use options::Options;
pub use range::Range;
pub use transaction::{CATALOG_NAME, Page, Transaction};

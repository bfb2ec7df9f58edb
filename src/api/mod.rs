//! The public API: `Database`, `Options`, and (as they land) `Connection` and `Transaction`.

mod database;
mod options;

pub use database::{Database, DbInfo};
pub use options::Options;

//! How an engine is opened: the settings `Options` (the public builder) collects.

use crate::error::{Error, Result};
use crate::format::{PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, PAGE_SIZE_MIN, page_size_valid};
use crate::mvcc::HistoryRetention;
use crate::mvcc::history_directory::DIRECTORY_KEYS_DEFAULT;

/// An engine's settings; `crate::Options` documents each.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) page_size: u32,
    pub(crate) seed: Option<u64>,
    pub(crate) version_store_budget: u64,
    pub(crate) checkpoint_log_commits: u64,
    pub(crate) history_retention: HistoryRetention,
    pub(crate) history_directory_keys: usize,
    pub(crate) read_only: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            page_size: PAGE_SIZE_DEFAULT,
            seed: None,
            version_store_budget: 64 << 20,
            checkpoint_log_commits: 100_000,
            history_retention: HistoryRetention::Snapshots,
            history_directory_keys: DIRECTORY_KEYS_DEFAULT,
            read_only: false,
        }
    }
}

impl Config {
    pub(crate) fn validate(&self) -> Result<()> {
        if !page_size_valid(self.page_size) {
            return Err(Error::InvalidOptions {
                what: format!(
                    "page size {} is not a power of two in {PAGE_SIZE_MIN}..={PAGE_SIZE_MAX}",
                    self.page_size
                ),
            });
        }
        if self.version_store_budget < VERSION_STORE_BUDGET_MIN {
            // Every commit would count as large: a tree commit or a checkpoint each.
            return Err(Error::InvalidOptions {
                what: format!(
                    "version store budget of {} bytes is below the smallest, \
                     {VERSION_STORE_BUDGET_MIN}",
                    self.version_store_budget
                ),
            });
        }
        if self.checkpoint_log_commits == 0 {
            return Err(Error::InvalidOptions {
                what: "checkpoint_log_commits must be at least 1".into(),
            });
        }
        Ok(())
    }

    /// The retention the engine's history window follows, at open (what the replay
    /// keeps) and after: the options' for a writer; for a read-only handle (a live
    /// reader) one that never raises the floor itself, so it serves the file's whole
    /// window (`collect_garbage` on it raised the floor to its newest state under the
    /// default retention).
    pub(crate) fn retention(&self) -> HistoryRetention {
        if self.read_only {
            HistoryRetention::Commits(u64::MAX)
        } else {
            self.history_retention
        }
    }

    /// Whether `other` sets what an open engine runs by (budgets, retention, history
    /// index) differently: the page size only matters at creation, the seed only to
    /// tests.
    pub(crate) fn differs_at_runtime(&self, other: &Config) -> bool {
        self.version_store_budget != other.version_store_budget
            || self.checkpoint_log_commits != other.checkpoint_log_commits
            || self.history_retention != other.history_retention
            || self.history_directory_keys != other.history_directory_keys
    }
}

/// The smallest version store budget an engine takes (16 KiB).
pub(crate) const VERSION_STORE_BUDGET_MIN: u64 = 16 << 10;

//! Tree commits (`format-spec/btree.md`, "Tree commits"): a large transaction written
//! once, straight into the copy-on-write tree, with the new header as its commit record.

use super::{Checkpointer, Install, State};
use crate::Result;
use crate::commit::{CommitError, ReadSet};
use crate::types::{Isolation, WriteSet};
use std::time::Instant;

impl Checkpointer {
    /// Commits a large transaction straight into the tree (`format-spec/btree.md`,
    /// "Tree commits"): no capsule, proof or marker; the new header is its commit
    /// record. Once it holds the checkpointer, it takes the snapshot registry's
    /// exclusive hold (`hold`), so that no snapshot but the transaction's own reads
    /// below the new tree; taken first, the hold would keep every new transaction
    /// waiting while a checkpoint or compaction in progress ends. Returns the commit's
    /// sequence (`None` when it wrote nothing), or the reads back (`Err`) when the hold
    /// was refused: the caller commits through the log.
    pub fn tree_commit<H>(
        &self,
        snapshot: u64,
        isolation: Isolation,
        writes: &WriteSet,
        reads: ReadSet,
        touched: crate::commit::Touched<'_>,
        hold: impl FnOnce() -> Option<H>,
    ) -> std::result::Result<std::result::Result<Option<u64>, ReadSet>, CommitError> {
        let mut st = self.state.lock();
        if st.shut {
            return Err(CommitError::Failed(crate::Error::Closed));
        }
        // Released before the checkpointer (declared after it), once the commit is
        // visible or has failed.
        let Some(_hold) = hold() else {
            return Ok(Err(reads));
        };
        let start = Instant::now();
        self.pager.release_held();
        let Some(admission) = self
            .committer
            .admit_tree(snapshot, isolation, writes, reads, touched)?
        else {
            return Ok(Ok(None));
        };
        let seq = admission.seq;
        let mut admission = Some(admission);
        let mut old_reserved = None;
        let result =
            self.tree_commit_io(&mut st, start, seq, writes, |page, next, first, chain| {
                if let Some(a) = admission.take() {
                    old_reserved = Some(self.committer.finish_tree(a, page, next, first, chain));
                }
            });
        match result {
            Ok(()) => {
                if let Some(page) = old_reserved {
                    let (header, _) = self.header();
                    self.pager.free_after(header.generation, vec![page]);
                }
                Ok(Ok(Some(seq)))
            }
            Err(e) => {
                if let Some(a) = admission.take() {
                    self.committer.fail_tree(a, &e);
                }
                Err(CommitError::Failed(e))
            }
        }
    }

    /// The writes of a tree commit at `seq`: the tree, a fresh marker stream, the
    /// header; `published(page, next_page, first_seq, chain)` runs once the tree is
    /// published.
    fn tree_commit_io(
        &self,
        st: &mut State,
        start: Instant,
        seq: u64,
        writes: &WriteSet,
        published: impl FnOnce(u64, u64, u64, u32),
    ) -> Result<()> {
        let (old_header, old_copy) = self.header();
        // The new stream first, so that its pages come before the tree's new pages in the
        // file (a stream page at the end would keep `compact` from cutting the tail): one
        // fresh page holding the slot of `seq + 1` (slots stay where the positional
        // layout puts them, so earlier slots of the page stay empty), its next reserved.
        let slots = crate::format::slots_per_page(old_header.page_size);
        let first_seq = 1 + seq / slots * slots;
        let page = self.pager.alloc()?;
        let next_page = self.pager.alloc()?;
        let image = crate::commit::MarkerWriter::new_page_image(
            page,
            old_header.page_size,
            crate::format::MarkerPageHeader {
                next_page,
                first_seq,
            },
        )?;
        self.storage.write_at(self.pager.offset_of(page), &image)?;
        let file = self.storage.view()?;
        let old_tree = self.tree();
        // Once published, no snapshot reads below `seq` (the registry's hold).
        let folded = self.fold(&file, old_tree.root, seq - 1, seq, seq, Some((seq, writes)))?;
        drop(file);
        let mut seed = Vec::with_capacity(24);
        seed.extend_from_slice(&old_header.database_id.to_le_bytes());
        seed.extend_from_slice(&seq.to_le_bytes());
        seed.extend_from_slice(&(old_header.generation + 1).to_le_bytes());
        let chain = crc32fast::hash(&seed);
        self.install(
            st,
            Install {
                start,
                old_header,
                old_copy,
                built: folded.built,
                checkpoint_seq: seq,
                start_page: page,
                chain,
                keys_folded: folded.keys,
                drops_bound: folded.drops_bound,
            },
            || published(page, next_page, first_seq, chain),
        )?;
        Ok(())
    }
}

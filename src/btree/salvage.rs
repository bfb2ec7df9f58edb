//! A forward walk over the tree that passes over damage, for copying what can still be
//! read out of a damaged file (`Transaction::salvage`, the CLI's `salvage`).
//!
//! The walk goes leaf by leaf from a start key, as a scan does, but every page and value
//! is verified (the pager's set of verified pages is not trusted: the file is known to be
//! damaged), and a node that fails its checks ends the step with the keys it hides named:
//! from the step's start to the upper bound its parent gives it, where the next step
//! resumes. A value that fails its checks names its key alone. Nothing is guessed: keys
//! are only ever read from pages that verified.

use super::page::{NodeRef, TreeKey, cmp_keys};
use super::{DEPTH_MAX, page_bytes, value_bytes_cached};
use crate::error::{Error, Result};

/// Keys the walk could not read: `error` names the damaged page.
#[derive(Debug)]
pub struct Damage {
    /// What failed, naming the page.
    pub error: Error,
    /// The first tree key that may be lost (inclusive).
    pub from: Vec<u8>,
    /// The end of the lost keys (exclusive; at most the walk's end).
    pub until: Vec<u8>,
}

/// One step of a salvaging walk ([`salvage_leaf`]).
#[derive(Debug, Default)]
pub struct SalvageStep<'a> {
    /// The entries read, in key order, at or above the step's start and below its end.
    pub entries: Vec<(TreeKey<'a>, &'a [u8])>,
    /// What could not be read.
    pub damage: Vec<Damage>,
    /// Where the next step starts (`None`: the walk has reached the end).
    pub next: Option<Vec<u8>>,
}

/// One leaf of a forward walk over the keys in `[lo, hi)` of the tree at `root`, or the
/// damage that hides it (see the module documentation). Never fails: whatever fails is
/// in the step's `damage`.
pub fn salvage_leaf<'a>(
    file: &'a [u8],
    page_size: u32,
    root: u64,
    lo: &[u8],
    hi: &[u8],
) -> SalvageStep<'a> {
    let mut step = SalvageStep::default();
    if root == 0 {
        return step;
    }
    let mut page = root;
    // The bounds the branches above give the node entered: at or above `low`, below
    // `high` (each clamped to its parent's).
    let mut low: Option<&'a [u8]> = None;
    let mut high: Option<&'a [u8]> = None;
    for _ in 0..DEPTH_MAX {
        // A leaf whose keys leave those bounds (a checksum-valid page of another range:
        // a lost write, a stale page) is refused whole, as every read refuses it: read
        // from the walk's start, a leaf of a lower range gave nothing and no damage, and
        // the keys its range should hold were lost with the report saying none were; one
        // of an older state gave its old values. (A branch is not: its bounds clamped,
        // every key a lookup through it finds is handed over.)
        let node = match page_bytes(file, page, page_size)
            .and_then(|b| NodeRef::parse(b, page))
            .and_then(|node| {
                if node.is_leaf() {
                    super::check_within(&node, page, low, high)?;
                }
                Ok(node)
            }) {
            Ok(node) => node,
            Err(error) => return hidden(step, error, lo, high, hi),
        };
        if node.is_leaf() {
            let damaged_before = step.damage.len();
            if let Err(error) = read_leaf(file, page_size, (page, &node), lo, (high, hi), &mut step)
            {
                // The whole leaf is lost: its damaged values too are inside the range
                // `hidden` reports (kept, they came twice and out of key order).
                step.entries.clear();
                step.damage.truncate(damaged_before);
                return hidden(step, error, lo, high, hi);
            }
            return match high {
                Some(h) if cmp_keys(h, lo).is_le() => {
                    // A separator that does not move past the start: keys out of order
                    // above this leaf. Resuming from it would loop; the rest is lost.
                    let error = Error::corrupted(
                        page,
                        "a separator above this leaf does not move past the walk's start (keys out of order)",
                    );
                    step.damage.push(Damage {
                        error,
                        from: lo.to_vec(),
                        until: hi.to_vec(),
                    });
                    step
                }
                _ => {
                    step.next = resume_at(high, hi);
                    step
                }
            };
        }
        let descend = node.child_index_for(lo).and_then(|idx| {
            let sep = if idx < node.count() {
                Some(node.separator(idx)?)
            } else {
                None
            };
            let left = match idx.checked_sub(1) {
                Some(i) => Some(node.separator(i)?),
                None => None,
            };
            Ok((idx, sep, left))
        });
        let (idx, sep, left) = match descend {
            Ok(found) => found,
            Err(error) => return hidden(step, error, lo, high, hi),
        };
        match (low, left) {
            (Some(l), Some(s)) if cmp_keys(s, l).is_lt() => {}
            (_, Some(s)) => low = Some(s),
            (_, None) => {}
        }
        // The bound a child gives is never past the one its own parent gave: a
        // separator past it (damage with valid checksums, or a hostile file) would have
        // the step resume past keys of the next subtree that no step then reads, and
        // none named lost. Clamped, a leaf below holding a key past the parent's bound
        // fails whole, and its range from the step's start is named lost.
        match (high, sep) {
            (Some(h), Some(s)) if cmp_keys(s, h).is_gt() => {}
            (_, Some(s)) => high = Some(s),
            (_, None) => {}
        }
        page = match node.child(idx) {
            Ok(child) => child,
            Err(error) => return hidden(step, error, lo, high, hi),
        };
    }
    // A branch cycle (a child naming an ancestor): only the subtree the walk was in is
    // lost, up to its bound; the walk resumes past it.
    let error = Error::corrupted(page, "tree deeper than the limit (a branch cycle)");
    hidden(step, error, lo, high, hi)
}

/// The entries of leaf `node` (at `page`) in `[lo, hi)`, each value verified; a value
/// that fails names its key in `step.damage`. An error is the leaf's own: a key that
/// cannot be read, or one at or above `high`, the bound its parent gives it (handed over,
/// it would come again, out of order, from the leaf the walk finds next).
fn read_leaf<'a>(
    file: &'a [u8],
    page_size: u32,
    (page, node): (u64, &NodeRef<'a>),
    lo: &[u8],
    (high, hi): (Option<&[u8]>, &[u8]),
    step: &mut SalvageStep<'a>,
) -> Result<()> {
    let first = node.search(lo)?.unwrap_or_else(|i| i);
    for i in first..node.count() {
        let key = node.key(i)?;
        if key.cmp_bytes(hi).is_ge() {
            break;
        }
        if high.is_some_and(|h| key.cmp_bytes(h).is_ge()) {
            return Err(Error::corrupted(
                page,
                "key outside the bounds its parent gives",
            ));
        }
        match node
            .value(i)
            .and_then(|v| value_bytes_cached(file, page_size, v, None))
        {
            Ok(value) => step.entries.push((key, value)),
            Err(error) => {
                let mut from = Vec::new();
                key.extend_into(&mut from);
                let mut until = from.clone();
                until.push(0);
                step.damage.push(Damage { error, from, until });
            }
        }
    }
    Ok(())
}

/// Ends `step` at a node that failed (`error`): the keys from `lo` to the node's upper
/// bound `high` are lost, and the walk resumes there.
fn hidden<'a>(
    mut step: SalvageStep<'a>,
    error: Error,
    lo: &[u8],
    high: Option<&[u8]>,
    hi: &[u8],
) -> SalvageStep<'a> {
    // A bound at or below the start would not move the walk on: the rest is lost.
    let high = high.filter(|h| cmp_keys(h, lo).is_gt());
    step.damage.push(Damage {
        error,
        from: lo.to_vec(),
        until: high.map_or_else(|| hi.to_vec(), <[u8]>::to_vec),
    });
    step.next = resume_at(high, hi);
    step
}

/// Where the next step starts: at `high`, unless that is at or past the walk's end `hi`
/// (or the tree's end).
fn resume_at(high: Option<&[u8]>, hi: &[u8]) -> Option<Vec<u8>> {
    high.filter(|h| cmp_keys(h, hi).is_lt()).map(<[u8]>::to_vec)
}

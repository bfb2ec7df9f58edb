//! Merging runs ([`merge`]): each input is read once, front to back, through a
//! [`Draining`] that drops its chunks as it reads past them, and a record with a chunk of
//! its own moves to the output instead of being copied.

use std::cmp::Ordering;

use super::{
    Filter, Located, OWN_CHUNK_MIN, Pos, Run, RunBuilder, Shape, cmp_keys, first_word, key_hash,
};

/// A run read once, front to back, dropping each chunk once read past.
struct Draining {
    run: Run,
    pos: Pos,
    /// The record at `pos` ([`Run::locate`]).
    head: Option<Located>,
}

impl Draining {
    fn new(mut run: Run) -> Self {
        run.fences = Vec::new();
        run.filter = Filter::default();
        let head = run.locate(Pos::default());
        Self {
            run,
            pos: Pos::default(),
            head,
        }
    }

    fn chunk(&self) -> &[u8] {
        self.run
            .chunks
            .get(self.pos.chunk as usize)
            .map_or(&[], Vec::as_slice)
    }

    fn key(&self) -> Option<&[u8]> {
        let (key, _, _) = self.head.as_ref()?;
        self.chunk().get(key.clone())
    }

    fn value(&self) -> Option<&[u8]> {
        let (_, value, _) = self.head.as_ref()?;
        self.chunk().get(value.clone()?)
    }

    /// The head record's chunk, taken whole, when the record fills it alone (it was
    /// given a chunk of its own) and is encoded in `shape`: the record moves to the
    /// merge's output instead of being copied; returned with its key's [`key_hash`] and
    /// [`first_word`] and the bytes of its key and value. The head stays readable only
    /// through [`Draining::advance`] after this.
    fn take_own_chunk(&mut self, shape: Shape) -> Option<(u64, u64, usize, Vec<u8>)> {
        let (_, _, next) = self.head.as_ref()?;
        let alone = self.pos.off == 0 && next.chunk != self.pos.chunk;
        if !alone || self.run.shape != shape || self.chunk().len() < OWN_CHUNK_MIN {
            return None;
        }
        let key = self.key()?;
        let (hash, word) = (key_hash(key), first_word(key));
        let payload = key.len() + self.value().map_or(0, <[u8]>::len);
        let chunk = self.run.chunks.get_mut(self.pos.chunk as usize)?;
        Some((hash, word, payload, std::mem::take(chunk)))
    }

    fn advance(&mut self) {
        let Some((_, _, next)) = self.head else {
            return;
        };
        if next.chunk != self.pos.chunk
            && let Some(done) = self.run.chunks.get_mut(self.pos.chunk as usize)
        {
            *done = Vec::new();
        }
        self.pos = next;
        self.run.prefetch_ahead(next);
        self.head = self.run.locate(next);
    }
}

/// Most runs [`merge`] takes at once.
pub(in crate::types) const MERGE_MAX: usize = 64;

/// Merges `runs` (oldest first, at most [`MERGE_MAX`]) into one run at `level`, the
/// oldest of its table when `oldest`: one record per key, the newest run's. Each input chunk is dropped once read past.
pub(in crate::types) fn merge(runs: Vec<Run>, level: u8, oldest: bool) -> Run {
    debug_assert!(runs.len() <= MERGE_MAX, "merge takes at most 64 runs");
    let records: usize = runs.iter().map(Run::len).sum();
    let shape = runs
        .iter()
        .filter(|r| r.len > 0)
        .map(|r| r.shape)
        .reduce(Shape::meet)
        .unwrap_or(Shape::FULL);
    let bytes: usize = runs
        .iter()
        .map(|r| r.bytes + r.len * r.shape.growth_into(shape))
        .sum();
    let mut out = RunBuilder::new(level, records, bytes, oldest, shape);
    let mut srcs: Vec<Draining> = runs.into_iter().map(Draining::new).collect();
    loop {
        // The least key, and every run whose head holds it (in one pass); on a tie the
        // newer (later) run wins.
        let mut best: Option<(usize, &[u8])> = None;
        let mut same = 0u64;
        for (i, s) in srcs.iter().enumerate() {
            let Some(k) = s.key() else { continue };
            let order = best.map_or(Ordering::Less, |(_, b)| cmp_keys(k, b));
            if order == Ordering::Less {
                same = 0;
            }
            if order != Ordering::Greater {
                best = Some((i, k));
                same |= 1 << i;
            }
        }
        let Some((b, _)) = best else { break };
        if let Some(s) = srcs.get_mut(b) {
            match s.take_own_chunk(shape) {
                Some((hash, word, payload, chunk)) => {
                    out.push_own_chunk(hash, word, payload, chunk);
                }
                None => out.push(s.key().unwrap_or(&[]), s.value()),
            }
        }
        for (i, s) in srcs.iter_mut().enumerate() {
            if same & (1 << i) != 0 {
                s.advance();
            }
        }
    }
    out.finish()
}

//! Where a checkpointed tree keeps each history entry: a hash table from history key to
//! the file offsets of the entry's key bytes and version list, built once per published
//! tree from one walk over its history leaves (a tree with more history keys than the
//! options allow a directory gets a [`KeyFilter`] from that walk instead), in memory
//! only (nothing of it is in the file).
//!
//! A time-travel point read whose key is here reads the version list at its offset
//! without descending the tree: the list and the key bytes beside it are one or two
//! cache misses, where a descent into a history region larger than the caches costs a
//! leaf header and then a cell, one after the other. A key that is not here has no
//! history entry in the tree (the directory holds every one), so its current entry holds
//! its state. An entry is used only after the key bytes it points at equal the key
//! looked up: a hash collision costs a comparison, never another key's versions.
//!
//! The pages the offsets point into were verified by the walk (checksum, cells, key
//! order) and never change while the tree is reachable; the directory lives as long as
//! a reader holds its tree ([`HistoryIndex`] in the tree's `TreeState`).

use super::history::HISTORY_PREFIX;
use super::history_filter::KeyFilter;

/// Most history keys a directory is built for unless the options say otherwise
/// (`Options::history_directory_keys`): its slots then take at most 24 MiB (16 bytes
/// each, 1.5 a key). A tree with more history keys keeps a [`KeyFilter`] only.
pub const DIRECTORY_KEYS_DEFAULT: usize = 1 << 20;

/// Longest run of slots a key may sit past its hash's slot. At two thirds full, runs
/// of a million random keys stay far below it; keys whose hashes crowd one region (as
/// a hostile file could arrange) make the build give up, and the tree keeps a filter,
/// so no lookup probes more than this many slots.
const PROBES_MAX: usize = 1024;

/// Bits of a slot's `shape` holding the key's length after its leaf's prefix.
const REST_BITS: u32 = 12;

/// Low bits of a slot's `key`: the list is stored apart from the key (bit 0) and the
/// hash's tag (the other 15).
const KEY_LOW_BITS: u32 = 16;

/// One history entry as the walk over the tree's history leaves found it (32 bytes: the
/// walk holds one per history key while a directory may still be built, since the
/// directory is sized from their count).
#[derive(Clone, Copy, Debug)]
pub struct Located {
    /// [`KeyFilter::hash_of`] the whole key.
    pub hash: u64,
    /// File offset of the key's bytes after its leaf's prefix (`0`: an entry no slot
    /// can hold).
    rest_at: u64,
    value_at: u64,
    value_len: u32,
    rest_len: u16,
    /// Bytes of the key its leaf stores once for all its cells (a prefix of
    /// [`HISTORY_PREFIX`]).
    head_len: u8,
}

impl Located {
    /// The entry of the key hashing to `hash`, whose first `head_len` bytes its leaf
    /// stores once, whose other bytes are at `rest` and whose version list is at
    /// `value` (file offsets, `None` where the walk could not tell one, and lengths).
    pub fn new(
        hash: u64,
        head_len: usize,
        rest: (Option<usize>, usize),
        value: (Option<usize>, usize),
    ) -> Located {
        let (rest_at, value_at) = match (rest.0, value.0) {
            (Some(r), Some(v))
                if head_len <= HISTORY_PREFIX.len()
                    && rest.1 < 1 << REST_BITS
                    && (r as u64) < 1 << (64 - KEY_LOW_BITS)
                    && u32::try_from(value.1).is_ok() =>
            {
                (r as u64, v as u64)
            }
            _ => (0, 0),
        };
        Located {
            hash,
            rest_at,
            value_at,
            value_len: u32::try_from(value.1).unwrap_or(0),
            rest_len: u16::try_from(rest.1).unwrap_or(0),
            head_len: u8::try_from(head_len).unwrap_or(0),
        }
    }
}

/// What a walk over a tree's history keys, in key order, collects for the tree's
/// [`HistoryIndex`]: every entry located while there are at most the directory's limit
/// of them and they come in strictly increasing order (as a sound tree gives them),
/// else each key's hash alone (8 bytes a key), for a filter.
pub struct IndexBuilder {
    keys_max: usize,
    located: Vec<Located>,
    hashes: Vec<u64>,
    locating: bool,
    /// The last key added, while locating.
    last: Vec<u8>,
}

impl IndexBuilder {
    /// A builder whose index is a directory while it has at most `keys_max` keys.
    pub fn new(keys_max: usize) -> IndexBuilder {
        IndexBuilder {
            keys_max,
            located: Vec::new(),
            hashes: Vec::new(),
            locating: keys_max > 0,
            last: Vec::new(),
        }
    }

    /// Adds the next history key, `key` whole, located as [`Located::new`] takes it.
    pub fn add(
        &mut self,
        key: &[u8],
        head_len: usize,
        rest: (Option<usize>, usize),
        value: (Option<usize>, usize),
    ) {
        let hash = KeyFilter::hash_of(key);
        if self.locating
            && (self.located.len() == self.keys_max
                || (!self.located.is_empty() && key <= self.last.as_slice()))
        {
            // Too many for a directory (or keys out of order, which a directory could
            // answer for differently from the tree): hashes only, from here on.
            self.hashes = self.located.iter().map(|e| e.hash).collect();
            self.located = Vec::new();
            self.locating = false;
        }
        if self.locating {
            self.located.push(Located::new(hash, head_len, rest, value));
            self.last.clear();
            self.last.extend_from_slice(key);
        } else {
            self.hashes.push(hash);
        }
    }

    /// The index of the keys added.
    pub fn finish(self) -> HistoryIndex {
        if self.locating
            && let Some(d) = KeyDirectory::build(&self.located, self.keys_max)
        {
            return HistoryIndex::Directory(d);
        }
        let hashes = if self.locating {
            self.located.iter().map(|e| e.hash).collect()
        } else {
            self.hashes
        };
        HistoryIndex::Filter(KeyFilter::from_hashes(&hashes))
    }
}

#[derive(Clone, Copy, Default)]
struct Slot {
    /// File offset of the key's bytes after its leaf's prefix (the high 48 bits), the
    /// hash's tag (15 bits: most slots of other keys are passed without reading the
    /// file) and whether the list lies apart from the key (bit 0). `0`: an empty slot
    /// (offset 0 is the file header, never a tree page).
    key: u64,
    /// The list's length when it follows the key's bytes (an inline value); else its
    /// index in [`KeyDirectory::apart`].
    value: u32,
    /// The rest's length (low [`REST_BITS`] bits) and the prefix's (the high bits).
    shape: u16,
}

/// The history entries of one tree by key ([`KeyDirectory::get`]).
pub struct KeyDirectory {
    slots: Box<[Slot]>,
    /// Mixed into every key's hash before it picks a slot and a tag: random for each
    /// directory, so keys chosen to crowd one region of the table (their hashes are
    /// public) land apart.
    seed: u64,
    /// File offset and length of each list that does not follow its key's bytes (in an
    /// overflow extent).
    apart: Box<[(u64, u64)]>,
    /// The longest probe any key needed at the build.
    probes: usize,
    keys: usize,
}

/// What a directory says about a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'v> {
    /// The key's version list.
    Found(&'v [u8]),
    /// The tree holds no history entry for the key.
    Absent,
    /// The directory cannot say (a key that is not a history key, or an offset outside
    /// the mapping given): look the key up in the tree.
    Unknown,
}

/// A key's hash mixed with a directory's seed.
fn mixed(hash: u64, seed: u64) -> u64 {
    crate::rng::mix64(hash ^ seed)
}

/// A random seed for a new directory (the standard library's per-process hash keys).
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x6469_7265_6374_6F72);
    h.finish()
}

/// The tag bits of a slot's `key` for `hash` (its low bits; the slot comes from its
/// high bits).
fn tag(hash: u64) -> u64 {
    (hash << 1) & ((1 << KEY_LOW_BITS) - 2)
}

/// The slot `hash` starts at among `len`.
fn home(hash: u64, len: usize) -> usize {
    ((u128::from(hash) * len as u128) >> 64) as usize
}

impl KeyDirectory {
    /// A directory of `entries` (every history entry of one tree, each key once):
    /// `None` when there are more than `keys_max`, when an entry does not fit a slot,
    /// or when hashes crowd past [`PROBES_MAX`].
    pub fn build(entries: &[Located], keys_max: usize) -> Option<KeyDirectory> {
        if entries.len() > keys_max || keys_max == 0 {
            return None;
        }
        let seed = random_seed();
        let len = (entries.len() + entries.len() / 2).max(16);
        let mut slots = vec![Slot::default(); len].into_boxed_slice();
        let mut apart = Vec::new();
        let mut probes = 1;
        for e in entries {
            if e.rest_at == 0 {
                return None;
            }
            let follows = e.value_at == e.rest_at + u64::from(e.rest_len);
            let hash = mixed(e.hash, seed);
            let slot = Slot {
                key: e.rest_at << KEY_LOW_BITS | tag(hash) | u64::from(!follows),
                value: if follows {
                    e.value_len
                } else {
                    apart.push((e.value_at, u64::from(e.value_len)));
                    u32::try_from(apart.len() - 1).ok()?
                },
                shape: e.rest_len | u16::from(e.head_len) << REST_BITS,
            };
            let mut at = home(hash, len);
            let mut probe = 1;
            loop {
                let s = slots.get_mut(at)?;
                if s.key == 0 {
                    *s = slot;
                    break;
                }
                probe += 1;
                if probe > PROBES_MAX {
                    return None;
                }
                at = if at + 1 == len { 0 } else { at + 1 };
            }
            probes = probes.max(probe);
        }
        Some(KeyDirectory {
            slots,
            seed,
            apart: apart.into_boxed_slice(),
            probes,
            keys: entries.len(),
        })
    }

    /// Where the history entry of `key` (a whole history key) is in `file` (the mapping
    /// the tree was walked in, or a longer one).
    #[inline]
    pub fn get<'v>(&self, file: &'v [u8], key: &[u8]) -> Lookup<'v> {
        if !key.starts_with(&HISTORY_PREFIX) {
            return Lookup::Unknown;
        }
        let hash = mixed(KeyFilter::hash_of(key), self.seed);
        let tag = tag(hash);
        let len = self.slots.len();
        let mut at = home(hash, len);
        for _ in 0..self.probes {
            let Some(s) = self.slots.get(at) else {
                return Lookup::Unknown;
            };
            if s.key == 0 {
                return Lookup::Absent;
            }
            if s.key & ((1 << KEY_LOW_BITS) - 2) == tag {
                let head = usize::from(s.shape >> REST_BITS);
                let rest_len = usize::from(s.shape & ((1 << REST_BITS) - 1));
                // The key's first `head` bytes are the prefix's: both are history keys.
                if head + rest_len == key.len() {
                    let Ok(rest_at) = usize::try_from(s.key >> KEY_LOW_BITS) else {
                        return Lookup::Unknown;
                    };
                    match file.get(rest_at..rest_at.saturating_add(rest_len)) {
                        Some(rest) if Some(rest) == key.get(head..) => {
                            return self.list(file, s, rest_at + rest_len);
                        }
                        Some(_) => {}
                        None => return Lookup::Unknown,
                    }
                }
            }
            at = if at + 1 == len { 0 } else { at + 1 };
        }
        Lookup::Absent
    }

    /// The list of the key in slot `s`, whose bytes end at `rest_end`.
    fn list<'v>(&self, file: &'v [u8], s: &Slot, rest_end: usize) -> Lookup<'v> {
        let (at, len) = if s.key & 1 == 0 {
            (Some(rest_end), usize::try_from(s.value).ok())
        } else {
            match usize::try_from(s.value)
                .ok()
                .and_then(|i| self.apart.get(i))
            {
                Some(&(at, len)) => (usize::try_from(at).ok(), usize::try_from(len).ok()),
                None => (None, None),
            }
        };
        match (at, len) {
            (Some(at), Some(len)) => match file.get(at..at.saturating_add(len)) {
                Some(list) => Lookup::Found(list),
                None => Lookup::Unknown,
            },
            _ => Lookup::Unknown,
        }
    }

    /// Keys the directory was built with.
    pub fn keys(&self) -> usize {
        self.keys
    }

    /// Bytes of memory its slots and its table of lists stored apart take.
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots) + std::mem::size_of_val(&*self.apart)
    }
}

/// What a published tree knows of its history keys: a directory of them while they
/// are few enough, else a filter.
pub enum HistoryIndex {
    /// Every history entry, by key.
    Directory(KeyDirectory),
    /// A Bloom filter over the history keys.
    Filter(KeyFilter),
}

impl HistoryIndex {
    /// Whether the index knows the history entry `key` whose version list is `list`
    /// (a slice of `file`): the directory finds that very list, the filter may hold
    /// the key. `check_integrity` asks it of every history entry.
    pub fn knows(&self, file: &[u8], key: &[u8], list: &[u8]) -> bool {
        match self {
            HistoryIndex::Directory(d) => match d.get(file, key) {
                Lookup::Found(found) => {
                    std::ptr::eq(found.as_ptr(), list.as_ptr()) && found.len() == list.len()
                }
                Lookup::Absent | Lookup::Unknown => false,
            },
            HistoryIndex::Filter(f) => f.may_contain(key),
        }
    }

    /// Keys the index was built with.
    pub fn keys(&self) -> usize {
        match self {
            HistoryIndex::Directory(d) => d.keys(),
            HistoryIndex::Filter(f) => f.keys(),
        }
    }

    /// Bytes of memory it takes.
    pub fn bytes(&self) -> usize {
        match self {
            HistoryIndex::Directory(d) => d.bytes(),
            HistoryIndex::Filter(f) => f.bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A file holding each key's rest and a list after it, as a leaf would, from
    /// offset 64 on (or, `apart`, every list after every rest, as overflow extents
    /// would); and the entries locating them (heads of `head` bytes).
    fn file_of(keys: &[Vec<u8>], head: usize, apart: bool) -> (Vec<u8>, Vec<Located>) {
        let mut file = vec![0u8; 64];
        let mut rests = Vec::new();
        for k in keys {
            let whole = [&HISTORY_PREFIX[..], k].concat();
            let rest = whole.get(head..).unwrap_or(&[]).to_vec();
            let rest_at = file.len();
            file.extend_from_slice(&rest);
            let value_at = file.len();
            if !apart {
                file.extend_from_slice(format!("list {}", rests.len()).as_bytes());
            }
            rests.push((KeyFilter::hash_of(&whole), rest_at, rest.len(), value_at));
        }
        let mut located = Vec::new();
        for (i, (hash, rest_at, rest_len, mut value_at)) in rests.into_iter().enumerate() {
            let list = format!("list {i}");
            if apart {
                value_at = file.len();
                file.extend_from_slice(list.as_bytes());
            }
            located.push(Located::new(
                hash,
                head,
                (Some(rest_at), rest_len),
                (Some(value_at), list.len()),
            ));
        }
        (file, located)
    }

    /// The index a tree whose history entries are `located` gets.
    fn index_of(located: &[Located], keys_max: usize) -> HistoryIndex {
        match KeyDirectory::build(located, keys_max) {
            Some(d) => HistoryIndex::Directory(d),
            None => {
                let hashes: Vec<u64> = located.iter().map(|e| e.hash).collect();
                HistoryIndex::Filter(KeyFilter::from_hashes(&hashes))
            }
        }
    }

    proptest! {
        /// Every key built in is found at its list; every other key is absent, however
        /// the keys share bytes or lengths.
        #[test]
        fn finds_every_key_and_no_other(
            keys in prop::collection::btree_set(prop::collection::vec(0u8..4, 0..12), 0..200),
            others in prop::collection::vec(prop::collection::vec(0u8..4, 0..12), 0..50),
            head in 0usize..=8,
            apart in any::<bool>(),
        ) {
            let keys: Vec<Vec<u8>> = keys.into_iter().collect();
            let (file, located) = file_of(&keys, head, apart);
            let d = KeyDirectory::build(&located, DIRECTORY_KEYS_DEFAULT).expect("built");
            prop_assert_eq!(d.keys(), keys.len());
            for (i, k) in keys.iter().enumerate() {
                let whole = [&HISTORY_PREFIX[..], k].concat();
                let list = format!("list {i}");
                prop_assert_eq!(d.get(&file, &whole), Lookup::Found(list.as_bytes()));
            }
            for k in others.iter().filter(|k| !keys.contains(k)) {
                let whole = [&HISTORY_PREFIX[..], k].concat();
                prop_assert_eq!(d.get(&file, &whole), Lookup::Absent);
            }
        }
    }

    #[test]
    fn a_key_that_is_not_a_history_key_or_an_offset_past_the_file_is_unknown() {
        let (file, located) = file_of(&[b"\x00\x00\x00\x00\x00\x00\x00\x07k".to_vec()], 8, false);
        let d = KeyDirectory::build(&located, DIRECTORY_KEYS_DEFAULT).expect("built");
        assert_eq!(
            d.get(&file, b"\x00\x00\x00\x00\x00\x00\x00\x07k"),
            Lookup::Unknown
        );
        let whole = [&HISTORY_PREFIX[..], b"\x00\x00\x00\x00\x00\x00\x00\x07k"].concat();
        assert_eq!(d.get(&file[..70], &whole), Lookup::Unknown);
        assert!(matches!(d.get(&file, &whole), Lookup::Found(_)));
    }

    #[test]
    fn a_hash_shared_by_two_keys_is_told_apart_by_their_bytes() {
        let whole = |k: &[u8]| [&HISTORY_PREFIX[..], k].concat();
        let (file, mut located) = file_of(&[b"two".to_vec(), b"one".to_vec()], 8, true);
        // Both keys claim `one`'s hash: `two` takes its slot, `one` the next, and a
        // lookup of `one` passes `two`'s slot (same tag) by comparing bytes.
        for e in &mut located {
            e.hash = KeyFilter::hash_of(&whole(b"one"));
        }
        let d = KeyDirectory::build(&located, DIRECTORY_KEYS_DEFAULT).expect("built");
        assert_eq!(d.get(&file, &whole(b"one")), Lookup::Found(b"list 1"));
        // `two` is looked up by its own hash, which the directory never saw.
        assert_eq!(d.get(&file, &whole(b"two")), Lookup::Absent);
    }

    #[test]
    fn the_builder_locates_keys_in_order_up_to_its_limit_else_keeps_hashes() {
        let key = |i: u8| [&HISTORY_PREFIX[..], &[i]].concat();
        let build = |keys: &[u8], max: usize| {
            let mut b = IndexBuilder::new(max);
            for &i in keys {
                b.add(&key(i), 8, (Some(64 + usize::from(i)), 1), (Some(1000), 4));
            }
            b.finish()
        };
        let directory = |i: &HistoryIndex| matches!(i, HistoryIndex::Directory(_));
        assert!(directory(&build(&[1, 2, 3], 3)));
        assert!(directory(&build(&[], 3)));
        // One key too many, keys out of order or repeated, no directory allowed: a
        // filter of every key.
        for index in [
            build(&[1, 2, 3, 4], 3),
            build(&[1, 3, 2], 3),
            build(&[1, 1], 3),
            build(&[1], 0),
            build(&[], 0),
        ] {
            assert!(!directory(&index));
        }
        let filter = build(&[1, 2, 3, 4], 3);
        assert_eq!(filter.keys(), 4);
        assert!((1..=4).all(|i| filter.knows(&[], &key(i), &[])));
        // An entry the walk could not place makes no directory either.
        let mut b = IndexBuilder::new(3);
        b.add(&key(1), 8, (Some(64), 1), (None, 4));
        assert!(!directory(&b.finish()));
    }

    #[test]
    fn the_index_knows_an_entry_only_at_its_own_list() {
        let keys = [b"a".to_vec(), b"b".to_vec()];
        let (file, located) = file_of(&keys, 8, false);
        let index = index_of(&located, DIRECTORY_KEYS_DEFAULT);
        let whole = |k: &[u8]| [&HISTORY_PREFIX[..], k].concat();
        let at = |e: &Located| {
            let (at, len) = (e.value_at as usize, e.value_len as usize);
            file.get(at..at + len).unwrap_or(&[])
        };
        let (a, b) = (at(&located[0]), at(&located[1]));
        assert!(index.knows(&file, &whole(b"a"), a));
        assert!(index.knows(&file, &whole(b"b"), b));
        // The other entry's list, or a copy of its own list elsewhere, is not its list.
        assert!(!index.knows(&file, &whole(b"a"), b));
        let copy = a.to_vec();
        assert!(!index.knows(&file, &whole(b"a"), copy.as_slice()));
        assert!(!index.knows(&file, &whole(b"c"), a));
        assert_eq!(index.keys(), 2);
    }

    #[test]
    fn crowded_hashes_or_too_many_keys_build_no_directory() {
        let keys: Vec<Vec<u8>> = (0..PROBES_MAX as u32 + 1)
            .map(|i| i.to_be_bytes().to_vec())
            .collect();
        let (_, mut located) = file_of(&keys, 8, false);
        for e in &mut located {
            e.hash = 5;
        }
        assert!(KeyDirectory::build(&located, DIRECTORY_KEYS_DEFAULT).is_none());
        assert!(matches!(
            index_of(&located, DIRECTORY_KEYS_DEFAULT),
            HistoryIndex::Filter(_)
        ));
        let (_, located) = file_of(&keys[..10], 8, false);
        assert!(KeyDirectory::build(&located, 10).is_some());
        assert!(KeyDirectory::build(&located, 9).is_none());
        assert!(matches!(index_of(&located, 0), HistoryIndex::Filter(_)));
    }
}

//! Where a checkpointed tree keeps each history entry: a hash table from history key to
//! the file offsets of the entry's key bytes and version list, built once per published
//! tree from the walk that builds its [`KeyFilter`], in memory only (nothing of it is in
//! the file).
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
//! order) and never change while the tree is reachable; the directory lives and dies
//! with its tree ([`HistoryIndex`] in the tree's guard).

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

/// One history entry as the walk over the tree's history leaves found it (32 bytes: a
/// tree's whole history is located before its directory is sized).
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
    /// `value` (file offsets and lengths).
    pub fn new(hash: u64, head_len: usize, rest: (usize, usize), value: (usize, usize)) -> Located {
        let fits = head_len <= HISTORY_PREFIX.len()
            && rest.1 < 1 << REST_BITS
            && (rest.0 as u64) < 1 << (64 - KEY_LOW_BITS)
            && u32::try_from(value.1).is_ok();
        Located {
            hash,
            rest_at: if fits { rest.0 as u64 } else { 0 },
            value_at: value.0 as u64,
            value_len: u32::try_from(value.1).unwrap_or(0),
            rest_len: u16::try_from(rest.1).unwrap_or(0),
            head_len: u8::try_from(head_len).unwrap_or(0),
        }
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
        if entries.len() > keys_max {
            return None;
        }
        let len = (entries.len() + entries.len() / 2).max(16);
        let mut slots = vec![Slot::default(); len].into_boxed_slice();
        let mut apart = Vec::new();
        let mut probes = 1;
        for e in entries {
            if e.rest_at == 0 {
                return None;
            }
            let follows = e.value_at == e.rest_at + u64::from(e.rest_len);
            let slot = Slot {
                key: e.rest_at << KEY_LOW_BITS | tag(e.hash) | u64::from(!follows),
                value: if follows {
                    e.value_len
                } else {
                    apart.push((e.value_at, u64::from(e.value_len)));
                    u32::try_from(apart.len() - 1).ok()?
                },
                shape: e.rest_len | u16::from(e.head_len) << REST_BITS,
            };
            let mut at = home(e.hash, len);
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
        let hash = KeyFilter::hash_of(key);
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
    /// The index of the history entries `located` (every one of a tree): a directory
    /// when they are at most `directory_keys`.
    pub fn of(located: &[Located], directory_keys: usize) -> HistoryIndex {
        match KeyDirectory::build(located, directory_keys) {
            Some(d) => HistoryIndex::Directory(d),
            None => {
                let hashes: Vec<u64> = located.iter().map(|e| e.hash).collect();
                HistoryIndex::Filter(KeyFilter::from_hashes(&hashes))
            }
        }
    }

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
                (rest_at, rest_len),
                (value_at, list.len()),
            ));
        }
        (file, located)
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
    fn the_index_knows_an_entry_only_at_its_own_list() {
        let keys = [b"a".to_vec(), b"b".to_vec()];
        let (file, located) = file_of(&keys, 8, false);
        let index = HistoryIndex::of(&located, DIRECTORY_KEYS_DEFAULT);
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
            HistoryIndex::of(&located, DIRECTORY_KEYS_DEFAULT),
            HistoryIndex::Filter(_)
        ));
        let (_, located) = file_of(&keys[..10], 8, false);
        assert!(KeyDirectory::build(&located, 10).is_some());
        assert!(KeyDirectory::build(&located, 9).is_none());
        assert!(matches!(
            HistoryIndex::of(&located, 0),
            HistoryIndex::Filter(_)
        ));
    }
}

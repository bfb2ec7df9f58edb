//! Small helpers shared by several layers.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::sync::Arc;

use crate::types::{cmp_keys, first_word};

pub use crate::types::prefetch;

/// Where `part`, a slice borrowed from `whole` (a value or key read in place from a
/// mapped file), starts in it; `None` unless `part` lies wholly inside `whole`.
pub fn offset_in(whole: &[u8], part: &[u8]) -> Option<usize> {
    let offset = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (offset.checked_add(part.len())? <= whole.len()).then_some(offset)
}

/// The little-endian `u16` at `at` in `b`, or `None` when it passes the end.
#[inline]
pub fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

/// The little-endian `u32` at `at` in `b`, or `None` when it passes the end.
#[inline]
pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// The little-endian `u64` at `at` in `b`, or `None` when it passes the end.
#[inline]
pub fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Shows bytes as UTF-8 when printable, otherwise as hex, cut to a readable length.
pub fn show_bytes(bytes: &[u8]) -> String {
    const SHOW_LEN_MAX: usize = 64;
    let cut = bytes.get(..SHOW_LEN_MAX).unwrap_or(bytes);
    let more = if bytes.len() > SHOW_LEN_MAX {
        "…"
    } else {
        ""
    };
    match std::str::from_utf8(cut) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}{more}"),
        _ => {
            let hex: String = cut.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}{more}")
        }
    }
}

/// Borrows the key of an owned bound.
pub fn bound_slice(b: &std::ops::Bound<Vec<u8>>) -> std::ops::Bound<&[u8]> {
    b.as_ref().map(Vec::as_slice)
}

/// Whether `key` lies inside `(lo, hi)`.
pub fn in_bounds(key: &[u8], lo: std::ops::Bound<&[u8]>, hi: std::ops::Bound<&[u8]>) -> bool {
    std::ops::RangeBounds::<[u8]>::contains(&(lo, hi), key)
}

/// Whether the lower bound `a` admits no key that `b` excludes and is not the same as
/// `b` (it is the tighter of the two).
pub fn bound_tighter_lo(a: &std::ops::Bound<Vec<u8>>, b: &std::ops::Bound<Vec<u8>>) -> bool {
    use std::ops::Bound::*;
    match (a, b) {
        (Unbounded, _) => false,
        (_, Unbounded) => true,
        (Included(x) | Excluded(x), Included(y) | Excluded(y)) if x != y => x > y,
        (Excluded(_), Included(_)) => true,
        _ => false,
    }
}

/// Whether the upper bound `a` is the tighter of `a` and `b`.
pub fn bound_tighter_hi(a: &std::ops::Bound<Vec<u8>>, b: &std::ops::Bound<Vec<u8>>) -> bool {
    use std::ops::Bound::*;
    match (a, b) {
        (Unbounded, _) => false,
        (_, Unbounded) => true,
        (Included(x) | Excluded(x), Included(y) | Excluded(y)) if x != y => x < y,
        (Excluded(_), Included(_)) => true,
        _ => false,
    }
}

/// An owned key in an in-memory ordered map, ordered by [`cmp_keys`] (byte order,
/// without a `memcmp` call per probe). It borrows as `[u8]`, so maps keyed by it are
/// still looked up by plain slices; a lookup by `&OrdKey` takes the fast comparison.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct OrdKey<B>(pub B);

/// The shared keys of the commit index.
pub type SharedKey = OrdKey<Arc<[u8]>>;

impl<B: AsRef<[u8]> + Eq> Ord for OrdKey<B> {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_keys(self.0.as_ref(), other.0.as_ref())
    }
}

impl<B: AsRef<[u8]> + Eq> PartialOrd for OrdKey<B> {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<B: AsRef<[u8]>> Borrow<[u8]> for OrdKey<B> {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.0.as_ref()
    }
}

impl<B: AsRef<[u8]>> AsRef<[u8]> for OrdKey<B> {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.0.as_ref()
    }
}

impl<B: AsRef<[u8]>> std::ops::Deref for OrdKey<B> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.0.as_ref()
    }
}

impl From<&[u8]> for SharedKey {
    fn from(k: &[u8]) -> SharedKey {
        OrdKey(Arc::from(k))
    }
}

/// An owned key of the version store's chains: its first eight bytes as a number
/// ([`first_word`]) beside its bytes, in byte order. A map search compares the numbers,
/// which sit in the map's own nodes, and reaches a key's bytes only when they tie: a
/// search among hundreds of thousands of keys otherwise missed the cache at every key it
/// compared (about 2 µs a point read with 300,000 keys in the store). A key of up to
/// [`HEAD_KEY_INLINE`] bytes is held in the node too, without an allocation of its own (one
/// fewer small block per version, which a checkpoint frees by the hundred thousand). It
/// does not borrow as `[u8]`, so every lookup goes through this comparison.
#[derive(Clone, Debug, Default)]
pub struct HeadKey {
    head: u64,
    bytes: KeyBytes,
}

/// Longest key a [`HeadKey`] holds inline.
pub const HEAD_KEY_INLINE: usize = 30;

/// A [`HeadKey`]'s bytes: inline up to [`HEAD_KEY_INLINE`] (the rest of the buffer zero),
/// else on the heap; a key's form depends only on its length.
#[derive(Clone, Debug)]
enum KeyBytes {
    Inline { len: u8, buf: [u8; HEAD_KEY_INLINE] },
    Heap(Box<[u8]>),
}

impl Default for KeyBytes {
    fn default() -> KeyBytes {
        KeyBytes::Inline {
            len: 0,
            buf: [0; HEAD_KEY_INLINE],
        }
    }
}

impl HeadKey {
    /// The key `key`.
    pub fn new(key: &[u8]) -> HeadKey {
        let mut buf = [0; HEAD_KEY_INLINE];
        let bytes = match (buf.get_mut(..key.len()), u8::try_from(key.len())) {
            (Some(place), Ok(len)) => {
                place.copy_from_slice(key);
                KeyBytes::Inline { len, buf }
            }
            _ => KeyBytes::Heap(key.into()),
        };
        HeadKey {
            head: first_word(key),
            bytes,
        }
    }
}

impl PartialEq for HeadKey {
    fn eq(&self, other: &Self) -> bool {
        self.head == other.head && **self == **other
    }
}

impl Eq for HeadKey {}

impl std::hash::Hash for HeadKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl Ord for HeadKey {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        match self.head.cmp(&other.head) {
            Ordering::Equal => cmp_keys(self, other),
            unequal => unequal,
        }
    }
}

impl PartialOrd for HeadKey {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::ops::Deref for HeadKey {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.bytes {
            KeyBytes::Inline { len, buf } => buf.get(..usize::from(*len)).unwrap_or(&[]),
            KeyBytes::Heap(b) => b,
        }
    }
}

/// Condition variables that waiters for a sequence number sleep on, one chosen by the
/// sequence (`seq % N`): waking the sequences that advanced wakes their own waiters, not
/// everyone waiting for a later one. Each waiter re-checks its condition, so two
/// sequences sharing a variable cost only a spurious wake-up.
pub struct WakeSlots<const N: usize>([parking_lot::Condvar; N]);

impl<const N: usize> Default for WakeSlots<N> {
    fn default() -> Self {
        const { assert!(N > 0, "a WakeSlots needs at least one slot") };
        WakeSlots(std::array::from_fn(|_| parking_lot::Condvar::new()))
    }
}

impl<const N: usize> WakeSlots<N> {
    /// The variable the waiters for `seq` sleep on.
    #[expect(
        clippy::indexing_slicing,
        reason = "an index taken modulo N (at least one) is below N"
    )]
    pub fn slot(&self, seq: u64) -> &parking_lot::Condvar {
        &self.0[(seq % N as u64) as usize]
    }

    /// Wakes the waiters of every sequence in `(from, to]`.
    pub fn wake_range(&self, from: u64, to: u64) {
        if to.saturating_sub(from) >= N as u64 {
            self.wake_all();
        } else {
            (from + 1..=to).for_each(|s| {
                self.slot(s).notify_all();
            });
        }
    }

    /// Wakes every waiter.
    pub fn wake_all(&self) {
        self.0.iter().for_each(|c| {
            c.notify_all();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn cmp_keys_is_byte_order(
            common in prop::collection::vec(0u8..3, 0..30),
            a in prop::collection::vec(0u8..3, 0..12),
            b in prop::collection::vec(0u8..3, 0..12),
        ) {
            let a = [common.as_slice(), &a].concat();
            let b = [common.as_slice(), &b].concat();
            prop_assert_eq!(cmp_keys(&a, &b), a.cmp(&b));
            prop_assert_eq!(cmp_keys(&b, &a), b.cmp(&a));
            let (x, y) = (OrdKey(a.clone()), OrdKey(b.clone()));
            prop_assert_eq!(x.cmp(&y), a.cmp(&b));
            prop_assert_eq!(x == y, a == b);
            // Keys shorter than, as long as and longer than their first word.
            let (h, g) = (HeadKey::new(&a), HeadKey::new(&b));
            prop_assert_eq!(h.cmp(&g), a.cmp(&b));
            prop_assert_eq!(h == g, a == b);
            prop_assert_eq!(&*h, a.as_slice());
        }
    }

    /// A short key lives in the map's node: the key takes 40 bytes there, and keys on
    /// both sides of the inline limit compare, hash and read back as their bytes.
    #[test]
    fn head_keys_hold_short_keys_inline() {
        assert!(std::mem::size_of::<HeadKey>() <= 40);
        let mut keys: Vec<Vec<u8>> = (0..=HEAD_KEY_INLINE + 2).map(|n| vec![7; n]).collect();
        keys.push(
            vec![7; HEAD_KEY_INLINE + 1]
                .into_iter()
                .chain([0])
                .collect(),
        );
        keys.sort();
        let heads: Vec<HeadKey> = keys.iter().map(|k| HeadKey::new(k)).collect();
        for (k, h) in keys.iter().zip(&heads) {
            assert_eq!(&**h, k.as_slice());
            assert_eq!(h, &HeadKey::new(k));
        }
        assert!(heads.windows(2).all(|w| w[0] < w[1]));
        let set: std::collections::HashSet<&HeadKey> = heads.iter().collect();
        assert_eq!(set.len(), heads.len());
    }

    /// Offsets near the end of the address space read as missing, never wrap (a
    /// version list's record offsets come from the file).
    #[test]
    fn field_readers_refuse_offsets_past_the_end() {
        let b = [1u8; 16];
        assert_eq!(u16_at(&b, 14), Some(0x0101));
        assert_eq!(u16_at(&b, 15), None);
        assert_eq!(u32_at(&b, usize::MAX - 1), None);
        assert_eq!(u64_at(&b, usize::MAX - 3), None);
    }

    #[test]
    fn maps_keyed_by_ord_keys_find_slices() {
        let keys: Vec<Vec<u8>> = vec![vec![], vec![0], vec![0; 8], vec![0; 9], vec![1; 30]];
        let map: std::collections::BTreeMap<OrdKey<Vec<u8>>, usize> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (OrdKey(k.clone()), i))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(map.get(k.as_slice()), Some(&i));
            assert_eq!(map.get(&OrdKey(k.clone())), Some(&i));
        }
        let order: Vec<&[u8]> = map.keys().map(|k| &**k).collect();
        let mut sorted: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        sorted.sort();
        assert_eq!(order, sorted);
    }
}

/// Shards of per-thread state: a thread uses its own ([`ThreadShards::home`]), handed out
/// round robin on its first use, so threads that each touch only their own write
/// different cache lines (give `T` a line of its own). Readers of the whole state visit
/// every shard ([`ThreadShards::iter`]).
pub struct ThreadShards<T>([T; THREAD_SHARDS]);

/// Shards a [`ThreadShards`] has.
pub const THREAD_SHARDS: usize = 16;

static NEXT_SHARD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

thread_local! {
    static HOME_SHARD: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// The calling thread's shard index (`0..THREAD_SHARDS`), the same in every
/// [`ThreadShards`].
fn home_shard() -> usize {
    HOME_SHARD.with(|h| match h.get() {
        Some(i) => i,
        None => {
            let i = NEXT_SHARD.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % THREAD_SHARDS;
            h.set(Some(i));
            i
        }
    })
}

impl<T: Default> Default for ThreadShards<T> {
    fn default() -> Self {
        ThreadShards(std::array::from_fn(|_| T::default()))
    }
}

impl<T> ThreadShards<T> {
    /// The calling thread's shard.
    #[expect(
        clippy::indexing_slicing,
        reason = "an index taken modulo THREAD_SHARDS is below it"
    )]
    pub fn home(&self) -> &T {
        &self.0[home_shard() % THREAD_SHARDS]
    }

    /// Every shard.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
}

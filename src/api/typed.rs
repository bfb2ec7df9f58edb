//! Typed tables: `TableDef<K, V>` names a table and its key and value types, and
//! [`Table`] reads and writes it through the byte API with the encoding of
//! `format-spec/keys.md` (`crate::keys`).

use super::{Range, Transaction};
use crate::error::Result;
use crate::keys::{Key, Value, decode_key, encode_key};
use std::marker::PhantomData;
use std::ops::{Bound, Deref, DerefMut, RangeBounds};

/// A table's name with its key and value types; a `const` the whole program shares.
///
/// Keys are any [`Key`] type (integers, `bool`, `&str`/`String`, `&[u8]`/`Vec<u8>`,
/// arrays and tuples of these), stored so that byte order is value order; values any
/// [`Value`] type (the same, plus `Serde<T>` with the `serde` feature). The file does not
/// record the types: open a table with the types it was written with.
///
/// ```
/// # fn main() -> capsuledb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let db = capsuledb::Database::open(dir.path().join("a.db"))?;
/// use capsuledb::TableDef;
/// const USERS: TableDef<u64, &str> = TableDef::new("users");
///
/// let mut conn = db.connect();
/// conn.run(|tx| {
///     tx.create_table(USERS.name())?;
///     let mut users = tx.table_mut(USERS);
///     users.put(2, "grace")?;
///     users.put(1, "ada")?;
///     Ok::<_, capsuledb::Error>(())
/// })?;
/// conn.read(|tx| {
///     let users = tx.table(USERS);
///     assert_eq!(users.get(1)?.as_deref(), Some("ada"));
///     assert_eq!(users.first()?, Some((1, "ada".to_string())));
///     let names: Vec<String> = users.iter()?.map(|e| e.map(|(_, v)| v)).collect::<Result<_, _>>()?;
///     assert_eq!(names, ["ada", "grace"]);
///     Ok(())
/// })
/// # }
/// ```
pub struct TableDef<K, V> {
    name: &'static str,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for TableDef<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for TableDef<K, V> {}

impl<K, V> std::fmt::Debug for TableDef<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableDef")
            .field("name", &self.name)
            .field("key", &std::any::type_name::<K>())
            .field("value", &std::any::type_name::<V>())
            .finish()
    }
}

impl<K: Key, V: Value> TableDef<K, V> {
    /// A table named `name` with keys of type `K` and values of type `V`.
    pub const fn new(name: &'static str) -> Self {
        TableDef {
            name,
            types: PhantomData,
        }
    }

    /// The table's name, as the byte API and [`Transaction::create_table`] take it.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

/// A typed table inside one transaction: [`Transaction::table`] gives one that reads,
/// [`Transaction::table_mut`] one that also writes. `T` is the transaction reference.
pub struct Table<T, K, V> {
    tx: T,
    def: TableDef<K, V>,
}

impl<T, K, V> std::fmt::Debug for Table<T, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("def", &self.def)
            .finish_non_exhaustive()
    }
}

impl<'c> Transaction<'c> {
    /// The typed table `def` for reading (`get`, `range`, `first`, `last`, `count`).
    pub fn table<K: Key, V: Value>(&self, def: TableDef<K, V>) -> Table<&Self, K, V> {
        Table { tx: self, def }
    }

    /// The typed table `def` for reading and writing (`put`, `delete` as well).
    pub fn table_mut<K: Key, V: Value>(&mut self, def: TableDef<K, V>) -> Table<&mut Self, K, V> {
        Table { tx: self, def }
    }
}

fn encode_bound<K: Key>(bound: Bound<&K::Ref<'_>>) -> Bound<Vec<u8>> {
    bound.map(|k| encode_key::<K>(k))
}

impl<'c, T: Deref<Target = Transaction<'c>>, K: Key, V: Value> Table<T, K, V> {
    /// The value of `key`, if any.
    pub fn get(&self, key: K::Ref<'_>) -> Result<Option<V::Owned>> {
        match self.tx.get_ref(self.def.name, &encode_key::<K>(&key))? {
            Some(v) => V::decode_value(&v).map(Some),
            None => Ok(None),
        }
    }

    /// Whether `key` is present (its value is not decoded).
    pub fn contains_key(&self, key: K::Ref<'_>) -> Result<bool> {
        Ok(self
            .tx
            .get_ref(self.def.name, &encode_key::<K>(&key))?
            .is_some())
    }

    /// The entries with keys inside `range`, in key order (`.rev()` for descending).
    pub fn range<'k, R: RangeBounds<K::Ref<'k>>>(
        &self,
        range: R,
    ) -> Result<TypedRange<'_, 'c, K, V>> {
        let lo = encode_bound::<K>(range.start_bound());
        let hi = encode_bound::<K>(range.end_bound());
        Ok(TypedRange::new(self.tx.range(self.def.name, (lo, hi))?))
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> Result<TypedRange<'_, 'c, K, V>> {
        Ok(TypedRange::new(self.tx.iter(self.def.name)?))
    }

    /// The entry with the smallest key, if any.
    pub fn first(&self) -> Result<Option<(K::Owned, V::Owned)>> {
        match self.tx.first(self.def.name)? {
            Some((k, v)) => Ok(Some((decode_key::<K>(&k)?, V::decode_value(&v)?))),
            None => Ok(None),
        }
    }

    /// The entry with the largest key, if any.
    pub fn last(&self) -> Result<Option<(K::Owned, V::Owned)>> {
        match self.tx.last(self.def.name)? {
            Some((k, v)) => Ok(Some((decode_key::<K>(&k)?, V::decode_value(&v)?))),
            None => Ok(None),
        }
    }

    /// The number of keys inside `range`; neither keys nor values are decoded.
    pub fn count<'k, R: RangeBounds<K::Ref<'k>>>(&self, range: R) -> Result<u64> {
        let lo = encode_bound::<K>(range.start_bound());
        let hi = encode_bound::<K>(range.end_bound());
        self.tx.count(self.def.name, (lo, hi))
    }

    /// The number of keys in the table (a scan that decodes nothing).
    pub fn len(&self) -> Result<u64> {
        self.tx.count::<&[u8], _>(self.def.name, ..)
    }

    /// Whether the table has no keys.
    pub fn is_empty(&self) -> Result<bool> {
        self.tx.is_empty(self.def.name)
    }
}

impl<'c, T: DerefMut<Target = Transaction<'c>>, K: Key, V: Value> Table<T, K, V> {
    /// Writes `key = value`.
    pub fn put(&mut self, key: K::Ref<'_>, value: V::Ref<'_>) -> Result<()> {
        let mut bytes = Vec::new();
        V::encode_value(&value, &mut bytes)?;
        self.tx.put(self.def.name, &encode_key::<K>(&key), &bytes)
    }

    /// Deletes `key` (a no-op if it is absent).
    pub fn delete(&mut self, key: K::Ref<'_>) -> Result<()> {
        self.tx.delete(self.def.name, &encode_key::<K>(&key))
    }
}

/// The entries of a typed table in key order, decoded; `.rev()` for descending.
///
/// An entry whose key or value does not decode as the table's types (one written
/// through the byte API, say) is an [`Error::Decode`](crate::Error::Decode) for that
/// entry alone, and the iteration goes on past it; an error reading the table (damage,
/// I/O) ends it, as it ends a [`Range`].
pub struct TypedRange<'t, 'c, K, V> {
    inner: Range<'t, 'c>,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> std::fmt::Debug for TypedRange<'_, '_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedRange")
            .field("range", &self.inner)
            .field("key", &std::any::type_name::<K>())
            .field("value", &std::any::type_name::<V>())
            .finish()
    }
}

impl<'t, 'c, K: Key, V: Value> TypedRange<'t, 'c, K, V> {
    fn new(inner: Range<'t, 'c>) -> Self {
        TypedRange {
            inner,
            types: PhantomData,
        }
    }

    fn decode(item: Result<(Vec<u8>, crate::engine::ValueRef)>) -> Result<(K::Owned, V::Owned)> {
        let (k, v) = item?;
        Ok((decode_key::<K>(&k)?, V::decode_value(&v)?))
    }
}

impl<K: Key, V: Value> Iterator for TypedRange<'_, '_, K, V> {
    type Item = Result<(K::Owned, V::Owned)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(Self::decode)
    }
}

impl<K: Key, V: Value> std::iter::FusedIterator for TypedRange<'_, '_, K, V> {}

impl<K: Key, V: Value> DoubleEndedIterator for TypedRange<'_, '_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back().map(Self::decode)
    }
}

//! `Serde<T>`: any serde type as a typed table's value, in postcard's stable 1.x wire
//! format (`format-spec/keys.md`, "Values").

use super::{Value, decode_error};
use crate::error::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

/// A typed table's value type for a serde type `T`: the value is stored in postcard's
/// wire format, which is stable across postcard 1.x.
///
/// postcard does not describe its data, so `T`'s serde implementation must read back
/// by position what it wrote:
/// - no `deserialize_any`: internally tagged (`#[serde(tag = ...)]`) and untagged enums,
///   `serde_json::Value` and the like cannot be read. A `put` of such a value fails with
///   [`Error::Encode`] (every value is decoded once after encoding, to check), rather
///   than storing bytes no read could decode;
/// - no `#[serde(skip_serializing_if = ...)]` (or other fields left out when writing):
///   the fields after a left-out one are read from the wrong bytes, and a read can
///   return a *different value without an error*. This the check at `put` cannot always
///   see (the wrong value may encode to the same bytes);
/// - a recursive `T` (`enum Tree { Leaf, Node(Box<Tree>) }`) is decoded without a depth
///   limit: bytes nested deeper than the reading thread's stack allows (a million `0x01`
///   for that `Tree`, which any writer can store through the byte API, or a deep value
///   written on a thread with a larger stack) overflow it and abort the process;
/// - a collection of elements that encode to no bytes (`Vec<()>`, a set of unit
///   structs, `[T; 0]`) takes its length from the bytes without a bound: bytes naming
///   2^64 elements (written through the byte API, say) make a read step through that
///   many, for ever in effect. Such collections are not for values other code writes.
///
/// ```
/// # fn main() -> capsuledb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let db = capsuledb::Database::open(dir.path().join("a.db"))?;
/// use capsuledb::{Serde, TableDef};
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct User { name: String, age: u32 }
/// const USERS: TableDef<u64, Serde<User>> = TableDef::new("users");
///
/// let mut conn = db.connect();
/// conn.run(|tx| {
///     tx.create_table(USERS.name())?;
///     tx.table_mut(USERS).put(1, &User { name: "ada".into(), age: 36 })
/// })?;
/// let user = conn.read(|tx| tx.table(USERS).get(1))?;
/// assert_eq!(user.map(|u| u.age), Some(36));
/// # Ok(()) }
/// ```
pub struct Serde<T>(PhantomData<fn() -> T>);

impl<T> std::fmt::Debug for Serde<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Serde<{}>", std::any::type_name::<T>())
    }
}

impl<T: Serialize + DeserializeOwned + 'static> Value for Serde<T> {
    type Ref<'a> = &'a T;
    type Owned = T;

    fn encode_value(value: &&T, out: &mut Vec<u8>) -> Result<()> {
        let refused = |what: String| Error::Encode {
            ty: std::any::type_name::<T>(),
            what,
        };
        let bytes = postcard::to_stdvec(*value).map_err(|e| refused(format!("postcard: {e}")))?;
        // What a read will do with these bytes, done once now: a `T` postcard cannot
        // read back (it needs `deserialize_any`) fails here, not at every later read.
        match postcard::take_from_bytes::<T>(&bytes) {
            Ok((_, [])) => {}
            Ok((_, rest)) => {
                return Err(refused(format!(
                    "postcard: its decoder stops {} bytes before the end of the encoding",
                    rest.len()
                )));
            }
            Err(e) => {
                return Err(refused(format!(
                    "postcard cannot read the encoding back ({e}): see `Serde`"
                )));
            }
        }
        out.extend_from_slice(&bytes);
        Ok(())
    }

    fn decode_value(bytes: &[u8]) -> Result<T> {
        let ty = std::any::type_name::<T>();
        // `from_bytes` would ignore bytes after the value (`format-spec/keys.md`,
        // "Validation" 5: they are an error).
        let (value, rest) = postcard::take_from_bytes(bytes)
            .map_err(|e| decode_error(ty, format!("postcard: {e}")))?;
        if !rest.is_empty() {
            return Err(decode_error(
                ty,
                format!("{} bytes after the value", rest.len()),
            ));
        }
        Ok(value)
    }
}

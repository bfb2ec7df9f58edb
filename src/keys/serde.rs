//! `Serde<T>`: any serde type as a typed table's value, in postcard's stable 1.x wire
//! format (`format-spec/keys.md`, "Values").

use super::{Value, decode_error};
use crate::error::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

/// A typed table's value type for any `T` that serde can serialize: the value is
/// stored in postcard's wire format, which is stable across postcard 1.x.
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
        let bytes = postcard::to_stdvec(*value).map_err(|e| Error::Encode {
            ty: std::any::type_name::<T>(),
            what: format!("postcard: {e}"),
        })?;
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

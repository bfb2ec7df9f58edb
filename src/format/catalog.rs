//! The catalog's entries (`format-spec/btree.md`): a table's name, and its id as the
//! entry's 8-byte value.

use crate::error::{Error, Result};
use crate::types::{CATALOG_NAME, CATALOG_TABLE, MAX_TABLE_NAME_LEN, TABLE_ID_MAX, TableId};

/// Refuses a table name that is empty, too long or the catalog's own.
pub(crate) fn check_table_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_TABLE_NAME_LEN || name == CATALOG_NAME {
        return Err(Error::InvalidTableName {
            len: name.len(),
            max: MAX_TABLE_NAME_LEN,
        });
    }
    Ok(())
}

/// A catalog entry's value as a table id: 8 bytes, never the catalog's own id, never
/// past the largest a table can have.
pub(crate) fn decode_table_id(v: &[u8]) -> Result<TableId> {
    let bytes: [u8; 8] = v
        .try_into()
        .map_err(|_| Error::corrupted(0, "catalog entry is not an 8-byte table id"))?;
    // A damaged catalog entry naming the catalog's own id would let a table's keys be
    // written as table names (found by the `decode` fuzz target, modes 7 and 9).
    // An id past the largest a table can have would reach the history region's keys
    // (or overflow a reverse scan's bound): a read-only open, which reads the largest
    // id leniently, could otherwise read it.
    match u64::from_le_bytes(bytes) {
        CATALOG_TABLE => Err(Error::corrupted(
            0,
            "catalog entry names table id 0, the catalog's own",
        )),
        id if id > TABLE_ID_MAX => Err(Error::corrupted(
            0,
            format!("catalog entry names table id {id}, past the largest a table can have"),
        )),
        id => Ok(id),
    }
}

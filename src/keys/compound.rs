//! Arrays and tuples (`format-spec/keys.md`, "Compound types"): elements in order, each in
//! its element form.

use super::{Key, decode_error};
use crate::error::Result;

/// The bytes after the first `used` (empty when `used` reaches the end).
fn rest(bytes: &[u8], used: usize) -> &[u8] {
    bytes.get(used..).unwrap_or_default()
}

impl<T: Key, const N: usize> Key for [T; N] {
    type Ref<'a> = [T::Ref<'a>; N];
    type Owned = [T::Owned; N];
    const NAME: &'static str = "array";

    fn encode(value: &Self::Ref<'_>, _element: bool, out: &mut Vec<u8>) {
        for item in value {
            T::encode(item, true, out);
        }
    }

    fn decode(bytes: &[u8], _element: bool) -> Result<(Self::Owned, usize)> {
        let mut items = Vec::with_capacity(N);
        let mut used = 0;
        for _ in 0..N {
            let (item, n) = T::decode(rest(bytes, used), true)?;
            items.push(item);
            used += n;
        }
        let array = <[T::Owned; N]>::try_from(items)
            .map_err(|_| decode_error(Self::NAME, "wrong number of elements"))?;
        Ok((array, used))
    }
}

macro_rules! tuple {
    ($($name:ident $idx:tt),+) => {
        impl<$($name: Key),+> Key for ($($name,)+) {
            type Ref<'a> = ($($name::Ref<'a>,)+);
            type Owned = ($($name::Owned,)+);
            const NAME: &'static str = "tuple";

            fn encode(value: &Self::Ref<'_>, _element: bool, out: &mut Vec<u8>) {
                $($name::encode(&value.$idx, true, out);)+
            }

            fn decode(bytes: &[u8], _element: bool) -> Result<(Self::Owned, usize)> {
                let mut used = 0;
                let value = ($({
                    let (item, n) = $name::decode(rest(bytes, used), true)?;
                    used += n;
                    item
                },)+);
                Ok((value, used))
            }
        }
    };
}

tuple!(A 0);
tuple!(A 0, B 1);
tuple!(A 0, B 1, C 2);
tuple!(A 0, B 1, C 2, D 3);
tuple!(A 0, B 1, C 2, D 3, E 4);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5);

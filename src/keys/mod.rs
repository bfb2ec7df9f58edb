//! Typed keys and values: the order-preserving byte encoding of `format-spec/keys.md`.
//!
//! [`Key`] types encode so that byte order equals value order (integers, `bool`,
//! strings, byte strings, arrays and tuples of these); every key type is also a
//! [`Value`], and with the `serde` feature [`Serde<T>`] stores any serde type. Decoding
//! checks every rule of the spec's "Validation" and returns [`Error::Decode`], never
//! panics. This layer knows nothing of tables or transactions (`crate::api::typed` puts
//! it over the byte API).

mod compound;
mod scalar;
#[cfg(feature = "serde")]
mod serde;

#[cfg(feature = "serde")]
pub use self::serde::Serde;

use crate::error::{Error, Result};

/// A type that can be a typed table's key: it encodes to bytes whose order is the
/// type's order (`format-spec/keys.md`).
///
/// Implemented for the unsigned and signed integers (`u8` to `u128`, `i8` to `i128`),
/// `bool`, `&str` and `String`, `&[u8]` and `Vec<u8>`, arrays `[T; N]` and tuples of up to
/// six elements of key types. An implementation outside capsuledb must keep the
/// contract the tests check for these: `a < b` exactly when `encode(a) < encode(b)`,
/// the element form is self-delimiting and no element encoding is a prefix of another,
/// and `decode` accepts exactly what `encode` writes, returning an error (never
/// panicking) on anything else.
///
/// ```
/// use capsuledb::{Key, decode_key, encode_key};
/// let a = encode_key::<(u32, &str)>(&(7, "apple"));
/// let b = encode_key::<(u32, &str)>(&(7, "banana"));
/// assert!(a < b);
/// assert_eq!(decode_key::<(u32, &str)>(&a)?, (7, "apple".to_string()));
/// # Ok::<(), capsuledb::Error>(())
/// ```
pub trait Key {
    /// What the typed API takes: the value borrowed where it can be (`&str` for `String`).
    type Ref<'a>;
    /// What the typed API gives back: the value owned (`String` for `&str`).
    type Owned;
    /// The type's name in [`Error::Decode`].
    const NAME: &'static str;

    /// Appends the encoding of `value` to `out`: the element form (self-delimiting,
    /// for tuples and arrays) when `element`, else the bare form.
    fn encode(value: &Self::Ref<'_>, element: bool, out: &mut Vec<u8>);

    /// Decodes one value from the start of `bytes`, returning it and the number of
    /// bytes it took. Strings and byte strings in the bare form (`element == false`)
    /// take every byte they are given; other types take what they use, and the callers
    /// that decode a whole key or value refuse any bytes left over.
    fn decode(bytes: &[u8], element: bool) -> Result<(Self::Owned, usize)>;
}

/// A type that can be a typed table's value. Every [`Key`] type is one (stored in its
/// bare form); with the `serde` feature, so is `Serde<T>` for any serde type.
pub trait Value {
    /// What the typed API takes.
    type Ref<'a>;
    /// What the typed API gives back.
    type Owned;

    /// Appends the encoding of `value` to `out`. Fails ([`Error::Encode`]) only for a
    /// value its codec cannot express.
    fn encode_value(value: &Self::Ref<'_>, out: &mut Vec<u8>) -> Result<()>;

    /// Decodes a whole stored value.
    fn decode_value(bytes: &[u8]) -> Result<Self::Owned>;
}

impl<K: Key> Value for K {
    type Ref<'a> = K::Ref<'a>;
    type Owned = K::Owned;

    fn encode_value(value: &Self::Ref<'_>, out: &mut Vec<u8>) -> Result<()> {
        K::encode(value, false, out);
        Ok(())
    }

    fn decode_value(bytes: &[u8]) -> Result<Self::Owned> {
        decode_key::<K>(bytes)
    }
}

/// The bytes of a key in its bare form: what a typed table stores.
pub fn encode_key<K: Key>(value: &K::Ref<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    K::encode(value, false, &mut out);
    out
}

/// Decodes a whole stored key; bytes left over are an error.
pub fn decode_key<K: Key>(bytes: &[u8]) -> Result<K::Owned> {
    let (value, used) = K::decode(bytes, false)?;
    if used != bytes.len() {
        return Err(decode_error(
            K::NAME,
            format!("{} bytes left after the value", bytes.len() - used),
        ));
    }
    Ok(value)
}

/// The bytes of a value: what a typed table stores.
pub fn encode_value<V: Value>(value: &V::Ref<'_>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    V::encode_value(value, &mut out)?;
    Ok(out)
}

pub(crate) fn decode_error(ty: &'static str, what: impl Into<String>) -> Error {
    Error::Decode {
        ty,
        what: what.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The examples of `format-spec/keys.md`, byte for byte.
    #[test]
    fn spec_examples_match() {
        assert_eq!(hex(&encode_key::<i32>(&-1)), "7F FF FF FF");
        assert_eq!(hex(&encode_key::<i32>(&0)), "80 00 00 00");
        assert_eq!(hex(&encode_key::<i32>(&i32::MIN)), "00 00 00 00");
        assert_eq!(
            hex(&encode_key::<(u64, &str, i16)>(&(7, "a\0b", -2))),
            "00 00 00 00 00 00 00 07 61 00 FF 62 00 00 7F FE"
        );
        assert_eq!(hex(&encode_key::<&str>(&"a\0b")), "61 00 62");
        assert_eq!(hex(&encode_key::<[u8; 3]>(&[1, 0, 2])), "01 00 02");
        assert_eq!(hex(&encode_key::<bool>(&true)), "01");
    }

    #[test]
    fn decoding_checks_every_rule() {
        let err = |r: Result<()>| matches!(r, Err(Error::Decode { .. }));
        assert!(err(decode_key::<u32>(&[1, 2, 3]).map(drop)));
        assert!(err(decode_key::<u32>(&[1, 2, 3, 4, 5]).map(drop)));
        assert!(err(decode_key::<bool>(&[2]).map(drop)));
        assert!(err(decode_key::<(&str,)>(&[0x61, 0, 1]).map(drop)));
        assert!(err(decode_key::<(&str,)>(&[0x61]).map(drop)));
        assert!(err(decode_key::<&str>(&[0xFF]).map(drop)));
        assert!(err(decode_key::<(u8, u8)>(&[1, 2, 3]).map(drop)));
        assert_eq!(
            decode_key::<(&[u8],)>(&[0, 0xFF, 0, 0]).ok(),
            Some((vec![0],))
        );
    }
}

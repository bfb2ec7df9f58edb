//! Integers, `bool`, strings and byte strings (`format-spec/keys.md`, "Scalar types").

use super::{Key, decode_error};
use crate::error::Result;

/// The first `N` bytes, or a decode error naming `ty`.
fn take<const N: usize>(bytes: &[u8], ty: &'static str) -> Result<[u8; N]> {
    bytes
        .get(..N)
        .and_then(|b| <[u8; N]>::try_from(b).ok())
        .ok_or_else(|| decode_error(ty, format!("{} bytes where {N} are needed", bytes.len())))
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl Key for $t {
            type Ref<'a> = $t;
            type Owned = $t;
            const NAME: &'static str = stringify!($t);

            fn encode(value: &$t, _element: bool, out: &mut Vec<u8>) {
                out.extend_from_slice(&value.to_be_bytes());
            }

            fn decode(bytes: &[u8], _element: bool) -> Result<($t, usize)> {
                let b = take::<{ size_of::<$t>() }>(bytes, Self::NAME)?;
                Ok((<$t>::from_be_bytes(b), size_of::<$t>()))
            }
        }
    )*};
}

unsigned!(u8, u16, u32, u64, u128);

macro_rules! signed {
    ($($t:ty => $u:ty),*) => {$(
        impl Key for $t {
            type Ref<'a> = $t;
            type Owned = $t;
            const NAME: &'static str = stringify!($t);

            fn encode(value: &$t, _element: bool, out: &mut Vec<u8>) {
                // Flipping the sign bit maps MIN..=MAX onto 0..=unsigned MAX in order.
                let flipped = (*value as $u) ^ (1 << (<$u>::BITS - 1));
                out.extend_from_slice(&flipped.to_be_bytes());
            }

            fn decode(bytes: &[u8], _element: bool) -> Result<($t, usize)> {
                let b = take::<{ size_of::<$t>() }>(bytes, Self::NAME)?;
                let flipped = <$u>::from_be_bytes(b) ^ (1 << (<$u>::BITS - 1));
                Ok((flipped as $t, size_of::<$t>()))
            }
        }
    )*};
}

signed!(i8 => u8, i16 => u16, i32 => u32, i64 => u64, i128 => u128);

impl Key for bool {
    type Ref<'a> = bool;
    type Owned = bool;
    const NAME: &'static str = "bool";

    fn encode(value: &bool, _element: bool, out: &mut Vec<u8>) {
        out.push(u8::from(*value));
    }

    fn decode(bytes: &[u8], _element: bool) -> Result<(bool, usize)> {
        match take::<1>(bytes, Self::NAME)? {
            [0] => Ok((false, 1)),
            [1] => Ok((true, 1)),
            [b] => Err(decode_error(
                Self::NAME,
                format!("byte 0x{b:02X} is neither 0x00 nor 0x01"),
            )),
        }
    }
}

/// Writes `content` escaped (each 0x00 as 0x00 0xFF) and terminated by 0x00 0x00.
fn encode_escaped(content: &[u8], out: &mut Vec<u8>) {
    out.reserve(content.len() + 2);
    for &b in content {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// Reads an escaped, terminated byte string from the start of `bytes`.
fn decode_escaped(bytes: &[u8], ty: &'static str) -> Result<(Vec<u8>, usize)> {
    let mut content = Vec::new();
    let mut i = 0;
    loop {
        match (bytes.get(i), bytes.get(i + 1)) {
            (None, _) | (Some(0), None) => {
                return Err(decode_error(ty, "the bytes end before the terminator"));
            }
            (Some(0), Some(0)) => return Ok((content, i + 2)),
            (Some(0), Some(0xFF)) => {
                content.push(0);
                i += 2;
            }
            (Some(0), Some(b)) => {
                return Err(decode_error(
                    ty,
                    format!("0x00 followed by 0x{b:02X}, neither an escape nor the terminator"),
                ));
            }
            (Some(&b), _) => {
                content.push(b);
                i += 1;
            }
        }
    }
}

/// Bytes in either form: all of them (bare) or escaped and terminated (element).
fn decode_bytes(bytes: &[u8], element: bool, ty: &'static str) -> Result<(Vec<u8>, usize)> {
    if element {
        decode_escaped(bytes, ty)
    } else {
        Ok((bytes.to_vec(), bytes.len()))
    }
}

fn encode_bytes(content: &[u8], element: bool, out: &mut Vec<u8>) {
    if element {
        encode_escaped(content, out);
    } else {
        out.extend_from_slice(content);
    }
}

fn decode_str(bytes: &[u8], element: bool, ty: &'static str) -> Result<(String, usize)> {
    let (content, used) = decode_bytes(bytes, element, ty)?;
    let s = String::from_utf8(content)
        .map_err(|e| decode_error(ty, format!("not UTF-8: {}", e.utf8_error())))?;
    Ok((s, used))
}

impl Key for &str {
    type Ref<'a> = &'a str;
    type Owned = String;
    const NAME: &'static str = "&str";

    fn encode(value: &&str, element: bool, out: &mut Vec<u8>) {
        encode_bytes(value.as_bytes(), element, out);
    }

    fn decode(bytes: &[u8], element: bool) -> Result<(String, usize)> {
        decode_str(bytes, element, Self::NAME)
    }
}

impl Key for String {
    type Ref<'a> = &'a str;
    type Owned = String;
    const NAME: &'static str = "String";

    fn encode(value: &&str, element: bool, out: &mut Vec<u8>) {
        encode_bytes(value.as_bytes(), element, out);
    }

    fn decode(bytes: &[u8], element: bool) -> Result<(String, usize)> {
        decode_str(bytes, element, Self::NAME)
    }
}

impl Key for &[u8] {
    type Ref<'a> = &'a [u8];
    type Owned = Vec<u8>;
    const NAME: &'static str = "&[u8]";

    fn encode(value: &&[u8], element: bool, out: &mut Vec<u8>) {
        encode_bytes(value, element, out);
    }

    fn decode(bytes: &[u8], element: bool) -> Result<(Vec<u8>, usize)> {
        decode_bytes(bytes, element, Self::NAME)
    }
}

impl Key for Vec<u8> {
    type Ref<'a> = &'a [u8];
    type Owned = Vec<u8>;
    const NAME: &'static str = "Vec<u8>";

    fn encode(value: &&[u8], element: bool, out: &mut Vec<u8>) {
        encode_bytes(value, element, out);
    }

    fn decode(bytes: &[u8], element: bool) -> Result<(Vec<u8>, usize)> {
        decode_bytes(bytes, element, Self::NAME)
    }
}

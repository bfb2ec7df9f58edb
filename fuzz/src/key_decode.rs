//! The typed-key decoder (`format-spec/keys.md`) on arbitrary bytes: the first byte
//! picks a key type, the second where the rest splits into two candidate keys. Each
//! must decode to a value or give `Error::Decode`, never panic; a value must re-encode
//! to exactly its bytes (the decoder is canonical); and when both decode, the values
//! must compare as their bytes do (the encoding keeps the type's order).

use capsuledb::{Error, Key, decode_key, encode_key};

/// Decodes `bytes` as `K`; an accepted value re-encodes with `encode` to `bytes`.
fn decode_one<K: Key>(bytes: &[u8], encode: &impl Fn(&K::Owned) -> Vec<u8>) -> Option<K::Owned> {
    match decode_key::<K>(bytes) {
        Ok(value) => {
            assert_eq!(encode(&value), bytes, "{} is not canonical", K::NAME);
            Some(value)
        }
        Err(Error::Decode { .. }) => None,
        Err(e) => panic!("decoding as {} gave {e:?}", K::NAME),
    }
}

/// Both halves decoded as `K`: checked, and ordered as their bytes are.
fn check<K: Key>(a: &[u8], b: &[u8], encode: impl Fn(&K::Owned) -> Vec<u8>)
where
    K::Owned: Ord,
{
    let (x, y) = (decode_one::<K>(a, &encode), decode_one::<K>(b, &encode));
    if let (Some(x), Some(y)) = (x, y) {
        assert_eq!(
            x.cmp(&y),
            a.cmp(b),
            "{}: the encoding does not keep the order",
            K::NAME
        );
    }
}

/// The `key_decode` target: `[type, split, bytes...]`.
pub fn fuzz_key_decode(data: &[u8]) {
    let [which, split, rest @ ..] = data else {
        return;
    };
    let (a, b) = rest.split_at(usize::from(*split).min(rest.len()));
    match which % 10 {
        0 => check::<u64>(a, b, encode_key::<u64>),
        1 => check::<i32>(a, b, encode_key::<i32>),
        2 => check::<bool>(a, b, encode_key::<bool>),
        3 => check::<&str>(a, b, |v| encode_key::<&str>(&v.as_str())),
        4 => check::<(&str,)>(a, b, |(v,)| encode_key::<(&str,)>(&(v.as_str(),))),
        5 => check::<(u64, &str, i16)>(a, b, |(n, s, i)| {
            encode_key::<(u64, &str, i16)>(&(*n, s.as_str(), *i))
        }),
        6 => check::<(Vec<u8>, Vec<u8>, bool)>(a, b, |(x, y, f)| {
            encode_key::<(Vec<u8>, Vec<u8>, bool)>(&(x.as_slice(), y.as_slice(), *f))
        }),
        7 => check::<[(&str, u8); 3]>(a, b, |v| {
            encode_key::<[(&str, u8); 3]>(&[
                (v[0].0.as_str(), v[0].1),
                (v[1].0.as_str(), v[1].1),
                (v[2].0.as_str(), v[2].1),
            ])
        }),
        8 => check::<((i64, &[u8]), [u8; 4])>(a, b, |((i, x), y)| {
            encode_key::<((i64, &[u8]), [u8; 4])>(&((*i, x.as_slice()), *y))
        }),
        _ => check::<(u8, i8, u16, i16, &str, &[u8])>(a, b, |(p, q, r, s, t, u)| {
            encode_key::<(u8, i8, u16, i16, &str, &[u8])>(&(
                *p,
                *q,
                *r,
                *s,
                t.as_str(),
                u.as_slice(),
            ))
        }),
    }
}

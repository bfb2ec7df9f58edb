#![no_main]
//! The typed-key decoder (`format-spec/keys.md`) on arbitrary bytes: the first byte picks
//! a key type, the rest is decoded as that type. Decoding must return a value or
//! `Error::Decode`, never panic, and a value must re-encode to exactly the input
//! (the decoder is canonical). Values go through the same decoder in their bare form.

use capsuledb::{Error, Key, decode_key, encode_key};

/// Decodes `bytes` as `K`; re-encodes an accepted value with `encode`.
fn check<K: Key>(bytes: &[u8], encode: impl Fn(&K::Owned) -> Vec<u8>) {
    match decode_key::<K>(bytes) {
        Ok(value) => assert_eq!(encode(&value), bytes, "{} is not canonical", K::NAME),
        Err(Error::Decode { .. }) => {}
        Err(e) => panic!("decoding as {} gave {e:?}", K::NAME),
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 10 {
        0 => check::<u64>(bytes, encode_key::<u64>),
        1 => check::<i32>(bytes, encode_key::<i32>),
        2 => check::<bool>(bytes, encode_key::<bool>),
        3 => check::<&str>(bytes, |v| encode_key::<&str>(&v.as_str())),
        4 => check::<(&str,)>(bytes, |(v,)| encode_key::<(&str,)>(&(v.as_str(),))),
        5 => check::<(u64, &str, i16)>(bytes, |(n, s, i)| {
            encode_key::<(u64, &str, i16)>(&(*n, s.as_str(), *i))
        }),
        6 => check::<(Vec<u8>, Vec<u8>, bool)>(bytes, |(a, b, f)| {
            encode_key::<(Vec<u8>, Vec<u8>, bool)>(&(a.as_slice(), b.as_slice(), *f))
        }),
        7 => check::<[(&str, u8); 3]>(bytes, |a| {
            encode_key::<[(&str, u8); 3]>(&[
                (a[0].0.as_str(), a[0].1),
                (a[1].0.as_str(), a[1].1),
                (a[2].0.as_str(), a[2].1),
            ])
        }),
        8 => check::<((i64, &[u8]), [u8; 4])>(bytes, |((i, b), a)| {
            encode_key::<((i64, &[u8]), [u8; 4])>(&((*i, b.as_slice()), *a))
        }),
        _ => check::<(u8, i8, u16, i16, &str, &[u8])>(bytes, |(a, b, c, d, s, t)| {
            encode_key::<(u8, i8, u16, i16, &str, &[u8])>(&(
                *a,
                *b,
                *c,
                *d,
                s.as_str(),
                t.as_slice(),
            ))
        }),
    }
});

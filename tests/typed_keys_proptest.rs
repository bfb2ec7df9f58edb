//! The key encoding of `format-spec/keys.md`: byte order equals value order for every
//! key type, tuples and arrays included, in the bare and the element form; every encoding
//! round-trips; decoding any bytes (another type's encoding, random bytes) is a value or
//! `Error::Decode`, never a panic, and what decodes re-encodes to the same bytes.

use capsuledb::{Error, Key, decode_key, encode_key};
use proptest::prelude::*;
use std::cmp::Ordering;
use std::fmt::Debug;

/// Order and round trip of `a` and `b` of key type `K`, whose owned values `oa`, `ob`
/// carry the expected order. Checked bare and as the middle element of a tuple.
fn check<'r, K: Key>(a: K::Ref<'r>, b: K::Ref<'r>, oa: &K::Owned, ob: &K::Owned)
where
    K::Ref<'r>: Clone,
    K::Owned: Ord + Debug,
{
    let (ea, eb) = (encode_key::<K>(&a), encode_key::<K>(&b));
    assert_eq!(ea.cmp(&eb), oa.cmp(ob), "bare order of {oa:?} and {ob:?}");
    assert_eq!(&decode_key::<K>(&ea).unwrap(), oa);
    assert_eq!(&decode_key::<K>(&eb).unwrap(), ob);
    // As an element, between fixed elements that would decide a tie the other way.
    let ta = encode_key::<(u8, K, u8)>(&(1, a, 0xFF));
    let tb = encode_key::<(u8, K, u8)>(&(1, b, 0));
    let expected = oa.cmp(ob).then(Ordering::Greater);
    assert_eq!(ta.cmp(&tb), expected, "element order of {oa:?} and {ob:?}");
    let (_, back, _) = decode_key::<(u8, K, u8)>(&ta).unwrap();
    assert_eq!(&back, oa);
    let (_, back, _) = decode_key::<(u8, K, u8)>(&tb).unwrap();
    assert_eq!(&back, ob);
}

/// Decoding arbitrary bytes as `K`: `Ok` re-encodes to the same bytes, `Err` is
/// `Error::Decode`; never a panic.
fn decodes_or_refuses<K: Key>(bytes: &[u8], reencode: impl Fn(&K::Owned) -> Vec<u8>) {
    match decode_key::<K>(bytes) {
        Ok(v) => assert_eq!(reencode(&v), bytes, "{} decoding is not canonical", K::NAME),
        Err(Error::Decode { .. }) => {}
        Err(e) => panic!("decoding as {} gave {e:?}", K::NAME),
    }
}

/// Strings rich in the bytes the escaping is about (0x00, and 0xFF inside UTF-8).
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just('\0'),
            Just('a'),
            Just('ÿ'),
            Just('\u{10FFFF}'),
            any::<char>()
        ],
        0..6,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![Just(0u8), Just(0xFF), Just(1), any::<u8>()],
        0..8,
    )
}

macro_rules! scalar_order {
    ($($name:ident: $t:ty),*) => {$(
        proptest! {
            #[test]
            fn $name(a in any::<$t>(), b in any::<$t>()) {
                check::<$t>(a, b, &a, &b);
                check::<$t>(a, a, &a, &a);
            }
        }
    )*};
}

scalar_order!(
    order_u8: u8, order_u16: u16, order_u32: u32, order_u64: u64, order_u128: u128,
    order_i8: i8, order_i16: i16, order_i32: i32, order_i64: i64, order_i128: i128,
    order_bool: bool
);

proptest! {
    #[test]
    fn order_strings(a in text(), b in text()) {
        check::<&str>(&a, &b, &a, &b);
        check::<String>(&a, &b, &a, &b);
        let prefixed = format!("{a}\0");
        check::<&str>(&a, &prefixed, &a, &prefixed);
    }

    #[test]
    fn order_byte_strings(a in bytes(), b in bytes()) {
        check::<&[u8]>(&a, &b, &a, &b);
        check::<Vec<u8>>(&a, &b, &a, &b);
    }

    #[test]
    fn order_arrays(a in any::<[i16; 3]>(), b in any::<[i16; 3]>(), sa in text(), sb in text(), ba in any::<[u8; 4]>(), bb in any::<[u8; 4]>()) {
        check::<[i16; 3]>(a, b, &a, &b);
        check::<[u8; 4]>(ba, bb, &ba, &bb);
        let (ra, rb) = ([sa.as_str(), "x"], [sb.as_str(), "x"]);
        check::<[&str; 2]>(ra, rb, &[sa.clone(), "x".into()], &[sb.clone(), "x".into()]);
    }

    #[test]
    fn order_tuples(
        (n1, s1, i1) in (any::<u64>(), text(), any::<i16>()),
        (n2, s2, i2) in (any::<u64>(), text(), any::<i16>()),
        (b1, b2) in (bytes(), bytes()),
        (f1, f2) in (any::<bool>(), any::<bool>()),
    ) {
        check::<(u64, &str, i16)>((n1, &s1, i1), (n2, &s2, i2), &(n1, s1.clone(), i1), &(n2, s2.clone(), i2));
        // Equal first elements, so the later ones decide.
        check::<(&str, Vec<u8>)>((&s1, &b1), (&s1, &b2), &(s1.clone(), b1.clone()), &(s1.clone(), b2.clone()));
        check::<(Vec<u8>, bool)>((&b1, f1), (&b2, f2), &(b1.clone(), f1), &(b2.clone(), f2));
        // Nested tuples and arrays inside tuples.
        check::<((bool, &str), [u8; 2], i32)>(
            ((f1, &s1), [1, 2], i1.into()),
            ((f2, &s2), [1, 2], i2.into()),
            &((f1, s1.clone()), [1, 2], i1.into()),
            &((f2, s2.clone()), [1, 2], i2.into()),
        );
        check::<(u8, i8, u16, i16, &str, &[u8])>(
            (1, -1, 2, -2, &s1, &b1),
            (1, -1, 2, -2, &s2, &b2),
            &(1, -1, 2, -2, s1.clone(), b1.clone()),
            &(1, -1, 2, -2, s2.clone(), b2.clone()),
        );
    }

    #[test]
    fn other_types_bytes_decode_or_refuse(n in any::<u64>(), s in text(), b in bytes(), f in any::<bool>()) {
        let samples = [
            encode_key::<u64>(&n),
            encode_key::<(u64, &str)>(&(n, &s)),
            encode_key::<(&str, u64)>(&(&s, n)),
            encode_key::<(&[u8], bool)>(&(&b, f)),
            encode_key::<&[u8]>(&b.as_slice()),
            encode_key::<[u32; 2]>(&[n as u32, 7]),
        ];
        for bytes in &samples {
            decodes_or_refuses::<u64>(bytes, encode_key::<u64>);
            decodes_or_refuses::<i32>(bytes, encode_key::<i32>);
            decodes_or_refuses::<bool>(bytes, encode_key::<bool>);
            decodes_or_refuses::<&str>(bytes, |v| encode_key::<&str>(&v.as_str()));
            decodes_or_refuses::<(u64, &str)>(bytes, |(n, s)| encode_key::<(u64, &str)>(&(*n, s)));
            decodes_or_refuses::<(&str, u64)>(bytes, |(s, n)| encode_key::<(&str, u64)>(&(s, *n)));
            decodes_or_refuses::<(&[u8], bool)>(bytes, |(b, f)| encode_key::<(&[u8], bool)>(&(b, *f)));
            decodes_or_refuses::<[u32; 2]>(bytes, encode_key::<[u32; 2]>);
            decodes_or_refuses::<([&str; 2], i8)>(bytes, |(a, i)| encode_key::<([&str; 2], i8)>(&([&a[0], &a[1]], *i)));
        }
    }

    #[test]
    fn random_bytes_decode_or_refuse(bytes in prop::collection::vec(prop_oneof![Just(0u8), Just(0xFF), any::<u8>()], 0..24)) {
        decodes_or_refuses::<u16>(&bytes, encode_key::<u16>);
        decodes_or_refuses::<i128>(&bytes, encode_key::<i128>);
        decodes_or_refuses::<String>(&bytes, |v| encode_key::<String>(&v.as_str()));
        decodes_or_refuses::<(String,)>(&bytes, |(v,)| encode_key::<(String,)>(&(v,)));
        decodes_or_refuses::<(Vec<u8>, Vec<u8>)>(&bytes, |(a, b)| encode_key::<(Vec<u8>, Vec<u8>)>(&(a, b)));
        decodes_or_refuses::<(bool, i16, &str)>(&bytes, |(f, i, s)| encode_key::<(bool, i16, &str)>(&(*f, *i, s)));
        decodes_or_refuses::<[(u8, &str); 2]>(&bytes, |a| encode_key::<[(u8, &str); 2]>(&[(a[0].0, &a[0].1), (a[1].0, &a[1].1)]));
    }
}

#[test]
fn wrong_shapes_are_decode_errors() {
    let decode_err = |r: Result<(), Error>| matches!(r, Err(Error::Decode { .. }));
    let four = encode_key::<u32>(&7);
    assert!(decode_err(decode_key::<u64>(&four).map(drop)));
    assert!(decode_err(decode_key::<u16>(&four).map(drop)));
    assert!(decode_err(decode_key::<bool>(&[7]).map(drop)));
    assert!(decode_err(decode_key::<&str>(&[0xC0, 0x80]).map(drop)));
    let tuple = encode_key::<(&str, u64)>(&("abc", 1));
    assert!(decode_err(decode_key::<(u64, &str)>(&tuple).map(drop)));
    assert!(decode_err(decode_key::<(&str, u64, u8)>(&tuple).map(drop)));
    assert!(decode_err(decode_key::<[&str; 2]>(&tuple).map(drop)));
    let message = decode_key::<bool>(&[7]).unwrap_err().to_string();
    assert!(message.contains("bool"), "{message}");
}

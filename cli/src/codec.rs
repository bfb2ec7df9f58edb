//! How keys and values cross the command line: UTF-8 text by default, hex with `--hex`.

use crate::error::{CliError, CliResult};

/// The encoding of keys and values given as arguments and printed as output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Text: arguments are taken as their UTF-8 bytes; output must be valid UTF-8.
    Utf8,
    /// Hex digits, two per byte (an optional `0x` prefix is accepted on input).
    Hex,
}

impl Encoding {
    /// `Hex` when `hex` is set.
    pub fn from_flag(hex: bool) -> Encoding {
        if hex { Encoding::Hex } else { Encoding::Utf8 }
    }

    /// Turns an argument into bytes; `what` names it in errors ("key", "value").
    pub fn decode(self, what: &str, arg: &str) -> CliResult<Vec<u8>> {
        match self {
            Encoding::Utf8 => Ok(arg.as_bytes().to_vec()),
            Encoding::Hex => {
                from_hex(arg).map_err(|e| CliError::msg(format!("bad hex {what}: {e}")))
            }
        }
    }

    /// Turns bytes into printable text; `what` names them in errors.
    pub fn encode(self, what: &str, bytes: &[u8]) -> CliResult<String> {
        match self {
            Encoding::Hex => Ok(to_hex(bytes)),
            Encoding::Utf8 => match std::str::from_utf8(bytes) {
                Ok(s) => Ok(s.to_string()),
                Err(_) => Err(CliError::msg(format!(
                    "{what} 0x{} is not valid UTF-8; use --hex",
                    to_hex(bytes.get(..32).unwrap_or(bytes))
                ))),
            },
        }
    }

    /// [`Encoding::encode`] for a field of a `key<TAB>value` line: text holding a tab or
    /// a line break is refused (the line could not be split back), like bytes that are
    /// not UTF-8.
    pub fn encode_field(self, what: &str, bytes: &[u8]) -> CliResult<String> {
        let text = self.encode(what, bytes)?;
        if self == Encoding::Utf8 && text.contains(['\t', '\n', '\r']) {
            return Err(CliError::msg(format!(
                "{what} 0x{} holds a tab or a line break, which a key<TAB>value line cannot carry; use --hex",
                to_hex(bytes.get(..32).unwrap_or(bytes))
            )));
        }
        Ok(text)
    }
}

/// Lower-case hex, two digits per byte.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Parses hex digits (either case, optional `0x` prefix) into bytes.
pub fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    // Characters first, whole: a byte of a multi-byte one named a character never typed.
    if let Some(c) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("{text:?} has a non-hex character {c:?}"));
    }
    if !digits.len().is_multiple_of(2) {
        return Err(format!("{text:?} has an odd number of digits"));
    }
    let nibble = |c: u8| -> Result<u8, String> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(format!(
                "{text:?} has a non-hex character {:?}",
                char::from(c)
            )),
        }
    };
    digits
        .as_bytes()
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Ok((nibble(*hi)? << 4) | nibble(*lo)?),
            _ => Err(format!("{text:?} has an odd number of digits")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes = vec![0u8, 1, 0x7f, 0x80, 0xff];
        assert_eq!(to_hex(&bytes), "00017f80ff");
        assert_eq!(from_hex("00017f80ff").unwrap(), bytes);
        assert_eq!(from_hex("0x00017F80FF").unwrap(), bytes);
        assert_eq!(from_hex("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn bad_hex_is_an_error() {
        assert!(from_hex("abc").is_err());
        assert!(from_hex("zz").is_err());
        assert!(from_hex("é1").unwrap_err().contains("'é'"));
        assert!(from_hex("éé").unwrap_err().contains("'é'"));
    }

    #[test]
    fn line_fields_refuse_tabs_and_line_breaks_in_text() {
        for bad in [&b"a\tb"[..], b"a\nb", b"a\r"] {
            let e = Encoding::Utf8.encode_field("key", bad).unwrap_err();
            assert!(e.to_string().contains("use --hex"), "{e}");
            assert_eq!(Encoding::Hex.encode_field("key", bad).unwrap(), to_hex(bad));
        }
        assert_eq!(Encoding::Utf8.encode_field("key", b"a b").unwrap(), "a b");
    }

    #[test]
    fn utf8_output_refuses_binary() {
        assert!(Encoding::Utf8.encode("value", &[0xff]).is_err());
        assert_eq!(Encoding::Hex.encode("value", &[0xff]).unwrap(), "ff");
    }
}

//! The unified social credit code (USCC, GB 32100-2015): normalisation, check, and
//! [`Uscc`], a code packed losslessly into an integer for the engine's keys.

use std::fmt;

/// The 31 code characters; a character's value is its index.
pub const CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Weights of positions 1–17: `3^i mod 31`.
pub const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Why a code fails the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsccError {
    /// Not 18 characters after normalisation.
    #[error("a USCC has 18 characters, this one has {0}")]
    Length(usize),
    /// A character outside the code alphabet.
    #[error("character {0:?} at position {1} is not allowed in a USCC")]
    Char(char, usize),
    /// Position 1 is not a registration authority.
    #[error("position 1 must be 1-9, A, N or Y")]
    Authority,
    /// Positions 3–8 are not digits.
    #[error("positions 3-8 (region code) must be digits")]
    Region,
    /// Wrong check character.
    #[error("check character should be {0:?}")]
    Check(char),
}

/// Trims, drops spaces and hyphens, and upper-cases.
pub fn normalise(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

fn value(c: u8) -> Option<u32> {
    CHARS.iter().position(|&x| x == c).map(|v| v as u32)
}

/// The check character for the first 17 characters (values must be valid code chars).
pub fn check_char(first17: &[u8]) -> Option<char> {
    let mut s = 0u32;
    for (i, &c) in first17.iter().take(17).enumerate() {
        s += value(c)? * WEIGHTS[i];
    }
    Some(CHARS[((31 - s % 31) % 31) as usize] as char)
}

/// Checks a normalised code.
pub fn check(code: &str) -> Result<(), UsccError> {
    let b = code.as_bytes();
    let n = code.chars().count();
    if n != 18 || b.len() != 18 {
        return Err(UsccError::Length(n));
    }
    for (i, &c) in b.iter().enumerate() {
        if value(c).is_none() {
            return Err(UsccError::Char(c as char, i + 1));
        }
    }
    if !matches!(b[0], b'1'..=b'9' | b'A' | b'N' | b'Y') {
        return Err(UsccError::Authority);
    }
    if !b[2..8].iter().all(u8::is_ascii_digit) {
        return Err(UsccError::Region);
    }
    let want = check_char(&b[..17]).ok_or(UsccError::Authority)?;
    if b[17] as char != want {
        return Err(UsccError::Check(want));
    }
    Ok(())
}

/// Completes 17 characters with their check character.
pub fn with_check(first17: &str) -> Option<String> {
    let c = check_char(first17.as_bytes())?;
    (first17.len() == 17).then(|| format!("{first17}{c}"))
}

/// The most characters a [`Uscc`] holds: 18 for a GB 32100-2015 code, up to 20 for an
/// allow-listed legacy code.
pub const PACKED_LEN: usize = 20;

/// A byte that no packed code holds, in [`PACKED_VALUE`].
const NOT_PACKED: u8 = u8::MAX;

/// Each byte's value in a packed code: `0-9` are 1–10, `A-Z` 11–36, any other byte
/// [`NOT_PACKED`].
const PACKED_VALUE: [u8; 256] = {
    let mut t = [NOT_PACKED; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = match c as u8 {
            d @ b'0'..=b'9' => d - b'0' + 1,
            a @ b'A'..=b'Z' => a - b'A' + 11,
            _ => NOT_PACKED,
        };
        c += 1;
    }
    t
};

/// A USCC packed losslessly into an integer (engine v2's compact keys, D67): each
/// character `0-9`, `A-Z` as 6 bits (1–36, in ASCII order), first character in the highest
/// bits, 0 after the last. Equal codes pack equal and the order of packed codes is the
/// order of their strings, so a key's place in any sorted output is unchanged; it is
/// `Copy`, 16 bytes, with no allocation, and hashes and compares as one integer.
///
/// Every code the decoder admits packs: a valid GB 32100-2015 code always does, and an
/// allow-listed legacy code is admitted only if it does ([`Uscc::new`]).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Uscc(u128);

impl Uscc {
    /// Packs a normalised code; `None` if it has more than [`PACKED_LEN`] characters, none,
    /// or one outside `0-9`, `A-Z`.
    pub fn new(code: &str) -> Option<Uscc> {
        let b = code.as_bytes();
        if b.is_empty() || b.len() > PACKED_LEN {
            return None;
        }
        // Ten characters to each half, in 64-bit arithmetic (the 128-bit shifts cost more),
        // each character's value read from a table.
        let mut halves = [0u64; 2];
        let mut chars = b.iter().map(|&c| PACKED_VALUE[usize::from(c)]);
        for half in &mut halves {
            for _ in 0..PACKED_LEN / 2 {
                let v = chars.next().unwrap_or(0);
                if v == NOT_PACKED {
                    return None;
                }
                *half = (*half << 6) | u64::from(v);
            }
        }
        Some(Uscc(
            u128::from(halves[0]) << (6 * PACKED_LEN / 2) | u128::from(halves[1]),
        ))
    }

    /// Packs a code the decoder admitted (see the type's documentation).
    ///
    /// # Panics
    /// If `code` does not pack: a record that did not pass the decoder.
    pub fn admitted(code: &str) -> Uscc {
        Uscc::new(code).unwrap_or_else(|| panic!("USCC {code:?} was not admitted by the decoder"))
    }

    /// The packed bits (as kept in engine v2's record table, D94).
    pub fn to_bits(self) -> u128 {
        self.0
    }

    /// The code of packed bits from [`Uscc::to_bits`].
    pub fn from_bits(bits: u128) -> Uscc {
        Uscc(bits)
    }

    /// The characters in a buffer, and how many there are.
    fn bytes(self) -> ([u8; PACKED_LEN], usize) {
        let mut b = [0u8; PACKED_LEN];
        let mut n = 0;
        for (i, c) in b.iter_mut().enumerate() {
            *c = match ((self.0 >> (6 * (PACKED_LEN - 1 - i))) & 0x3f) as u8 {
                0 => break,
                v @ 1..=10 => b'0' + v - 1,
                v => b'A' + v - 11,
            };
            n += 1;
        }
        (b, n)
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (b, n) = self.bytes();
        // Only `0-9` and `A-Z` are packed.
        f.write_str(std::str::from_utf8(&b[..n]).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uscc({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vectors() {
        assert_eq!(check("91110000600037341L"), Ok(()));
        assert_eq!(check("91350200MA2YJ1XR9G"), Ok(()));
        assert_eq!(check("91110000600037341A"), Err(UsccError::Check('L')));
        assert!(check("91350100M0001TGQXM").is_err());
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalise(" 9111-0000 6000 37341l "), "91110000600037341L");
    }

    #[test]
    fn generated_codes_pass() {
        let code = with_check("91330802MA2A0001K").unwrap();
        assert_eq!(check(&code), Ok(()));
        assert!(check("I1110000600037341L").is_err());
        assert_eq!(check("91110000600037341"), Err(UsccError::Length(17)));
    }

    #[test]
    fn packed_codes_round_trip_and_keep_the_string_order() {
        let codes = [
            "91110000600037341L",
            "91350200MA2YJ1XR9G",
            "91350100M0001TGQXM",
            "0",
            "ZZZZZZZZZZZZZZZZZZZZ",
            "9135",
            "91350",
            "913500",
            "A1",
        ];
        for a in codes {
            let p = Uscc::new(a).unwrap();
            assert_eq!(p.to_string(), a);
            for b in codes {
                assert_eq!(p.cmp(&Uscc::new(b).unwrap()), a.cmp(b), "{a} against {b}");
            }
        }
        for bad in ["", "91350100M0001TGQX-", "ZZZZZZZZZZZZZZZZZZZZZ", "9135a"] {
            assert_eq!(Uscc::new(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Any codes of up to 20 characters: the round trip, and the order of the strings.
        #[test]
        fn packing_is_lossless_and_ordered(a in "[0-9A-Z]{1,20}", b in "[0-9A-Z]{1,20}") {
            let (p, q) = (Uscc::new(&a).unwrap(), Uscc::new(&b).unwrap());
            proptest::prop_assert_eq!(p.to_string(), a.clone());
            proptest::prop_assert_eq!(p.cmp(&q), a.cmp(&b));
            proptest::prop_assert_eq!(p == q, a == b);
        }

        /// Any text packs exactly when it is 1–20 characters of `0-9`, `A-Z`.
        #[test]
        fn only_codes_of_digits_and_capitals_pack(a in "[0-9A-Za-z\\-~é ]{0,22}") {
            let code = !a.is_empty()
                && a.len() <= PACKED_LEN
                && a.bytes().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase());
            proptest::prop_assert_eq!(Uscc::new(&a).is_some(), code, "{:?}", a);
        }
    }
}

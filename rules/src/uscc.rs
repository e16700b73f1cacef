//! The unified social credit code (USCC, GB 32100-2015): normalisation and check.

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
}

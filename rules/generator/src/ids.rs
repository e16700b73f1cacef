//! Identities: USCCs, person and account hashes, per-enterprise random streams.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::config::GenConfig;
use rules::uscc;

/// 31^7: the number of distinct 7-character tails of an organisation code.
const TAIL_SPACE: u64 = 27_512_614_111;
/// A multiplier coprime to 31, so `i ↦ (i·M + offset) mod 31^7` is a bijection.
const TAIL_MULTIPLIER: u64 = 6_364_136_223;

/// The enterprise's random stream, determined by `(seed, enterprise index)` only, so that
/// enterprises can be generated in any order.
pub(super) fn rng(seed: u64, ent: u32) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..12].copy_from_slice(&ent.to_le_bytes());
    key[16..].copy_from_slice(b"credit-steward-g");
    ChaCha8Rng::from_seed(key)
}

/// SplitMix64 finaliser: a cheap, well-mixed hash of a `u64`.
pub(super) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A 32-hex-digit salted hash standing in for a person's or an account's identifier.
pub(super) fn hash_hex(seed: u64, domain: u64, id: u64) -> String {
    let a = mix64(seed ^ mix64(domain ^ mix64(id)));
    format!("{a:016x}{:016x}", mix64(a))
}

/// The district (index into `GenConfig::districts`) of an enterprise: earlier districts are
/// more frequent (weights n, n−1, …, 1).
pub(super) fn district(seed: u64, ent: u32, n: usize) -> usize {
    let total = (n * (n + 1) / 2) as u64;
    let mut x = mix64(seed ^ mix64(u64::from(ent) ^ 0xd157)) % total;
    for i in 0..n {
        let w = (n - i) as u64;
        if x < w {
            return i;
        }
        x -= w;
    }
    n - 1
}

/// The USCC of every enterprise, by index: `9` (industry and commerce), `1` (company),
/// region code, organisation code `MA` + 7 characters unique per index, check character.
pub(super) fn usccs(cfg: &GenConfig) -> Vec<[u8; 18]> {
    let offset = mix64(cfg.seed) % TAIL_SPACE;
    (0..cfg.enterprises)
        .map(|ent| {
            let d = &cfg.districts[district(cfg.seed, ent, cfg.districts.len())];
            let mut tail = (u64::from(ent) * TAIL_MULTIPLIER + offset) % TAIL_SPACE;
            let mut code = [0u8; 18];
            code[..2].copy_from_slice(b"91");
            code[2..6].copy_from_slice(cfg.region.as_bytes());
            code[6..8].copy_from_slice(d.as_bytes());
            code[8..10].copy_from_slice(b"MA");
            for c in code[10..17].iter_mut().rev() {
                *c = uscc::CHARS[(tail % 31) as usize];
                tail /= 31;
            }
            code[17] = uscc::check_char(&code[..17]).map_or(b'0', |c| c as u8);
            code
        })
        .collect()
}

//! Provably fair case rolls.
//!
//! The server commits to a secret seed before the player opens anything and
//! reveals it only once the seed pair is retired, so a player can check
//! afterwards that no roll was chosen after seeing their client seed. The
//! whole scheme is specified in `docs/provably-fair.md`; `docs/fair-verify.js`
//! reimplements it independently, so any change here is a breaking change for
//! every already-published roll.
//!
//! In short, for a pair (server seed, client seed) and a nonce:
//! 1. `hmac = HMAC-SHA256(key = 32 raw server-seed bytes, msg = "<clientSeed>:<nonce>")`
//! 2. `k` = the first 13 hex digits of `hmac` (52 bits), `roll = k / 2^52`
//! 3. `target = (k * W) >> 52` with `W` the sum of the item weights, and the
//!    picked item is the first whose running weight sum exceeds `target`.

use hmac::{Hmac, Mac};
use rand::{rngs::OsRng, RngCore};
use sha2::{Digest, Sha256};
use std::fmt;

pub const SERVER_SEED_LEN: usize = 32;

/// 52 bits is what a JS double holds exactly, so browsers can recompute
/// `roll` with plain `parseInt(hex.slice(0, 13), 16) / 2 ** 52`.
const K_BITS: u32 = 52;
const CLIENT_SEED_MAX_LEN: usize = 64;
const DEFAULT_CLIENT_SEED_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FairError {
    #[error("server seed must be exactly 64 hexadecimal characters")]
    InvalidServerSeed,
    #[error("commitment must be exactly 64 hexadecimal characters")]
    InvalidCommitment,
    #[error("client seed must be 1-64 printable ASCII characters")]
    InvalidClientSeed,
}

/// The secret half of a seed pair.
///
/// There is deliberately no `Display`, and `Debug` is redacted: until the
/// pair is rotated the seed must only leave the process as its commitment,
/// and a stray `tracing` field must not be enough to leak it.
#[derive(Clone)]
pub struct ServerSeed([u8; SERVER_SEED_LEN]);

impl ServerSeed {
    /// Uses the OS CSPRNG: whoever can predict the seed can predict every
    /// roll of the pair long before it is revealed.
    pub fn generate() -> Self {
        let mut bytes = [0u8; SERVER_SEED_LEN];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Accepts either hex case so a seed pasted from anywhere still parses;
    /// `to_hex` always writes lowercase.
    pub fn from_hex(s: &str) -> Result<Self, FairError> {
        let mut bytes = [0u8; SERVER_SEED_LEN];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| FairError::InvalidServerSeed)?;
        Ok(Self(bytes))
    }

    /// Only for storage and for the reveal after rotation; never show it
    /// while the pair is active.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; SERVER_SEED_LEN] {
        &self.0
    }

    /// Hashes the raw bytes, not the hex string, so the commitment is
    /// independent of how the seed happens to be written down.
    pub fn commitment(&self) -> String {
        hex::encode(Sha256::digest(self.0))
    }
}

impl fmt::Debug for ServerSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerSeed(<redacted>)")
    }
}

/// Random rather than a constant so every pair rolls a distinct sequence even
/// for players who never set their own seed; anyone who would rather not
/// trust a server-made seed can replace it through the client-seed rotation.
pub fn default_client_seed() -> String {
    let mut bytes = [0u8; DEFAULT_CLIENT_SEED_LEN];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Printable ASCII only, so the seed reads and copies the same everywhere
/// (no Unicode normalisation or invisible characters changing the HMAC
/// message), and short enough to store and display without truncation.
pub fn validate_client_seed(s: &str) -> Result<(), FairError> {
    let ok = (1..=CLIENT_SEED_MAX_LEN).contains(&s.len()) && s.bytes().all(|b| (0x20..=0x7e).contains(&b));
    ok.then_some(()).ok_or(FairError::InvalidClientSeed)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Roll {
    /// The full HMAC is kept so a player can compare it digit by digit.
    pub hmac: String,
    /// First 52 bits of the HMAC; `pick` works on this, not on `value`, so
    /// item selection never depends on floating point.
    pub k: u64,
    /// `k / 2^52` in `[0, 1)`, exact in an `f64`; for display.
    pub value: f64,
}

/// Does not validate `client_seed`: the server validates it when the pair is
/// created, and a roll must stay reproducible for whatever was stored.
pub fn roll(seed: &ServerSeed, client_seed: &str, nonce: u64) -> Roll {
    let mut mac = HmacSha256::new_from_slice(&seed.0).expect("HMAC accepts keys of any length");
    mac.update(format!("{client_seed}:{nonce}").as_bytes());
    let digest = mac.finalize().into_bytes();
    let head: [u8; 8] = digest[..8].try_into().expect("SHA-256 output is 32 bytes");
    let k = u64::from_be_bytes(head) >> (64 - K_BITS);
    Roll { hmac: hex::encode(digest), k, value: k as f64 / (1u64 << K_BITS) as f64 }
}

/// `weights` must be in the case's fixed item order; the same roll picks a
/// different item if the order changes.
pub fn pick(weights: &[u32], roll: &Roll) -> Option<usize> {
    pick_k(weights, roll.k)
}

/// Integer-only selection: `target = (k * W) >> 52` maps `k` onto
/// `[0, W)` with no float rounding, so Rust, JS `BigInt` and pen-and-paper
/// agree on every boundary. Returns `None` for an empty list, a zero weight
/// (an unpickable item must not sit in the list) or `k >= 2^52`.
pub fn pick_k(weights: &[u32], k: u64) -> Option<usize> {
    if weights.is_empty() || weights.contains(&0) || k >> K_BITS != 0 {
        return None;
    }
    let total: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    let target = (u128::from(k) * total) >> K_BITS;
    let mut cumulative = 0u128;
    weights.iter().position(|&w| {
        cumulative += u128::from(w);
        target < cumulative
    })
}

/// Compares decoded bytes, so the case of either input does not matter.
/// Both values are public after the reveal, so no constant-time compare.
pub fn verify_commitment(server_seed_hex: &str, commitment_hex: &str) -> Result<bool, FairError> {
    let seed = ServerSeed::from_hex(server_seed_hex)?;
    let mut expected = [0u8; 32];
    hex::decode_to_slice(commitment_hex, &mut expected).map_err(|_| FairError::InvalidCommitment)?;
    Ok(Sha256::digest(seed.0).as_slice() == expected)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    pub commitment: String,
    pub hmac: String,
    pub roll: f64,
    /// `None` when `weights` is empty or has a zero, so the CLI can also
    /// check just the HMAC and roll.
    pub index: Option<usize>,
}

/// Everything a player needs to check one open, from revealed values only.
/// Unlike `roll`, this rejects client seeds the server would never have
/// accepted: a mistyped seed should fail loudly, not verify "some" roll.
pub fn verify(
    server_seed_hex: &str,
    client_seed: &str,
    nonce: u64,
    weights: &[u32],
) -> Result<Verification, FairError> {
    let seed = ServerSeed::from_hex(server_seed_hex)?;
    validate_client_seed(client_seed)?;
    let r = roll(&seed, client_seed, nonce);
    Ok(Verification { commitment: seed.commitment(), index: pick(weights, &r), hmac: r.hmac, roll: r.value })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes 0x00..=0x1f.
    const SEED_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const COMMITMENT: &str = "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd";
    const CLIENT_SEED: &str = "cyberhub";
    const WEIGHTS: [u32; 4] = [1, 10, 100, 889];

    fn seed() -> ServerSeed {
        ServerSeed::from_hex(SEED_HEX).unwrap()
    }

    /// Expected values computed independently with Python's `hmac`/`hashlib`
    /// (and cross-checked with `docs/fair-verify.js`), not from this code.
    /// Nonces 9, 32 and 1400 are the first to land on items 2, 1 and 0.
    #[test]
    fn known_answer_vectors() {
        #[rustfmt::skip]
        let cases: [(u64, &str, u64, f64, usize); 6] = [
            (0, "4b7c0e218b1bfc21e054bff1051239e4900441bab1cd31dd9941376cdcce2ed6", 1327938961715647, 0.2948616821187071, 3),
            (1, "4acc7fb47bdfacb74616e65440bcd8744d9475904b9527533d0e67daf21feddc", 1315874821094906, 0.29218290478081466, 3),
            (9, "09ffd06b08064360a2ef5cfbc8551768183262c903d5bf1a71b0b0829c51f253", 175909087772772, 0.039059663897227814, 2),
            (32, "008098f1a58c8ce57dd90ff3f97626db2c018ce6011a8e90249464f67f030f88", 8837148596424, 0.001962241168756762, 1),
            (42, "297c7bf0f9e2fec390d9e8627a018808f3b7d9ed3df8556a2fb1be486da00ad5", 729834113179183, 0.16205572732168227, 3),
            (1400, "0004e48a402cfce8870f2472a160186b51c61aef623ef2a341349bf9dddbe005", 336226157263, 7.465720425492428e-05, 0),
        ];
        let seed = seed();
        assert_eq!(seed.to_hex(), SEED_HEX);
        assert_eq!(seed.commitment(), COMMITMENT);
        for (nonce, hmac, k, value, index) in cases {
            let r = roll(&seed, CLIENT_SEED, nonce);
            assert_eq!(r.hmac, hmac, "nonce {nonce}");
            assert_eq!(r.k, k, "nonce {nonce}");
            assert_eq!(r.value, value, "nonce {nonce}");
            assert_eq!(pick(&WEIGHTS, &r), Some(index), "nonce {nonce}");

            let v = verify(SEED_HEX, CLIENT_SEED, nonce, &WEIGHTS).unwrap();
            assert_eq!(v.commitment, COMMITMENT);
            assert_eq!(v.hmac, hmac);
            assert_eq!(v.roll, value);
            assert_eq!(v.index, Some(index));
        }
    }

    #[test]
    fn chi_square_goodness_of_fit() {
        const N: u64 = 100_000;
        let weights = [1u32, 5, 10, 34, 50];
        let total: u32 = weights.iter().sum();
        let seed = seed();
        let mut counts = [0u64; 5];
        for nonce in 0..N {
            counts[pick(&weights, &roll(&seed, CLIENT_SEED, nonce)).unwrap()] += 1;
        }
        let chi2: f64 = counts
            .iter()
            .zip(weights)
            .map(|(&observed, w)| {
                let expected = N as f64 * f64::from(w) / f64::from(total);
                (observed as f64 - expected).powi(2) / expected
            })
            .sum();
        // Chi-square critical value for df = 5 - 1 = 4 at significance 0.001.
        const CRITICAL_DF4_P001: f64 = 18.467;
        assert!(chi2 < CRITICAL_DF4_P001, "chi2 = {chi2}, counts = {counts:?}");
        // Same counts as an independent Python run (chi2 ~= 3.3087).
        assert_eq!(counts, [997, 4961, 10114, 33789, 50139]);
    }

    #[test]
    fn pick_edges() {
        const MAX_K: u64 = (1 << 52) - 1;
        assert_eq!(pick_k(&[7], 0), Some(0));
        assert_eq!(pick_k(&[7], MAX_K), Some(0));
        assert_eq!(pick(&[1], &roll(&seed(), CLIENT_SEED, 0)), Some(0));

        assert_eq!(pick_k(&WEIGHTS, 0), Some(0));
        assert_eq!(pick_k(&WEIGHTS, MAX_K), Some(3));
        assert_eq!(pick_k(&[u32::MAX; 3], MAX_K), Some(2));

        // With two equal weights the split is exactly at k = 2^51.
        assert_eq!(pick_k(&[1, 1], (1 << 51) - 1), Some(0));
        assert_eq!(pick_k(&[1, 1], 1 << 51), Some(1));

        assert_eq!(pick_k(&[], 0), None);
        assert_eq!(pick_k(&[1, 0, 1], 0), None);
        assert_eq!(pick_k(&[1, 1], 1 << 52), None);
    }

    #[test]
    fn client_seed_validation() {
        for bad in ["", "\n", "é", "a\tb", &"a".repeat(65)] {
            assert_eq!(validate_client_seed(bad), Err(FairError::InvalidClientSeed), "{bad:?}");
        }
        for good in [" ", "~", "cyberhub", &"a".repeat(64)] {
            assert_eq!(validate_client_seed(good), Ok(()), "{good:?}");
        }
        let default = default_client_seed();
        assert_eq!(default.len(), 32);
        assert!(default.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(validate_client_seed(&default), Ok(()));
        assert_eq!(verify(SEED_HEX, "", 0, &WEIGHTS), Err(FairError::InvalidClientSeed));
    }

    #[test]
    fn server_seed_hex() {
        for bad in ["", "00", &SEED_HEX[..62], &format!("{SEED_HEX}00"), &SEED_HEX.replace('f', "g")] {
            assert_eq!(ServerSeed::from_hex(bad).unwrap_err(), FairError::InvalidServerSeed);
        }
        let upper = ServerSeed::from_hex(&SEED_HEX.to_uppercase()).unwrap();
        assert_eq!(upper.to_hex(), SEED_HEX);
        assert_eq!(upper.as_bytes()[31], 0x1f);

        let fresh = ServerSeed::generate();
        assert_eq!(ServerSeed::from_hex(&fresh.to_hex()).unwrap().as_bytes(), fresh.as_bytes());
        assert_ne!(fresh.as_bytes(), ServerSeed::generate().as_bytes());
        assert_eq!(fresh.commitment().len(), 64);
    }

    #[test]
    fn commitment_verification() {
        assert_eq!(verify_commitment(SEED_HEX, COMMITMENT), Ok(true));
        assert_eq!(verify_commitment(SEED_HEX, &COMMITMENT.to_uppercase()), Ok(true));
        assert_eq!(verify_commitment(SEED_HEX, &"0".repeat(64)), Ok(false));
        assert_eq!(verify_commitment(SEED_HEX, "abc"), Err(FairError::InvalidCommitment));
        assert_eq!(verify_commitment("abc", COMMITMENT), Err(FairError::InvalidServerSeed));
    }

    #[test]
    fn debug_does_not_leak() {
        let seed = seed();
        let shown = format!("{seed:?} {seed:#?} {:?}", Some(&seed));
        assert!(!shown.contains(SEED_HEX) && !shown.contains("1, 2, 3"), "{shown}");
        assert_eq!(format!("{seed:?}"), "ServerSeed(<redacted>)");
    }
}

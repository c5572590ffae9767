//! Wallet recovery words (SPEC §1): 24-word BIP-39 (English) and SLIP-0010
//! Ed25519 derivation along `m/44'/2026'/0'`.

use crate::crypto::SecretSeed;
use ring::hmac;
use zeroize::{Zeroize, Zeroizing};

/// The derivation path of a WATT account key (all hardened, as Ed25519 requires).
pub const WATT_PATH: [u32; 3] = [44, 2026, 0];
const HARDENED: u32 = 0x8000_0000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MnemonicError {
    #[error("a recovery phrase has 24 words, this one has {0}")]
    WordCount(usize),
    #[error("word {position} ({word:?}) is not in the BIP-39 English word list")]
    UnknownWord { position: usize, word: String },
    #[error("the words are valid but their checksum is not: a word is wrong or out of order")]
    BadChecksum,
    #[error("the system random number generator failed")]
    NoRandomness,
}

/// A 24-word recovery phrase. Its text is zeroized on drop and never printed by `Debug`.
pub struct Mnemonic {
    inner: bip39::Mnemonic,
}

impl Mnemonic {
    /// A fresh phrase from 256 bits of system randomness.
    pub fn generate() -> Result<Mnemonic, MnemonicError> {
        use ring::rand::SecureRandom;
        let mut entropy = Zeroizing::new([0u8; 32]);
        ring::rand::SystemRandom::new().fill(&mut entropy[..]).map_err(|_| MnemonicError::NoRandomness)?;
        Mnemonic::from_entropy(&entropy)
    }

    pub fn from_entropy(entropy: &[u8; 32]) -> Result<Mnemonic, MnemonicError> {
        // 32 bytes is always a valid BIP-39 entropy length.
        let inner = bip39::Mnemonic::from_entropy(entropy).map_err(|_| MnemonicError::WordCount(0))?;
        Ok(Mnemonic { inner })
    }

    /// Parses a phrase typed by a person: case and extra whitespace are forgiven,
    /// anything else is an error naming the problem.
    pub fn parse(phrase: &str) -> Result<Mnemonic, MnemonicError> {
        let normalized = Zeroizing::new(phrase.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" "));
        let count = normalized.split(' ').filter(|w| !w.is_empty()).count();
        if count != 24 {
            return Err(MnemonicError::WordCount(count));
        }
        let list = bip39::Language::English.word_list();
        for (i, word) in normalized.split(' ').enumerate() {
            if list.binary_search(&word).is_err() {
                return Err(MnemonicError::UnknownWord { position: i + 1, word: word.to_string() });
            }
        }
        let inner = bip39::Mnemonic::parse_in_normalized(bip39::Language::English, &normalized)
            .map_err(|_| MnemonicError::BadChecksum)?;
        Ok(Mnemonic { inner })
    }

    /// The 256-bit entropy the phrase encodes (what a wallet stores, sealed).
    pub fn entropy(&self) -> Zeroizing<[u8; 32]> {
        let (bytes, len) = self.inner.to_entropy_array();
        let mut out = Zeroizing::new([0u8; 32]);
        let n = len.min(32);
        out[..n].copy_from_slice(&bytes[..n]);
        out
    }

    /// The phrase as text (for showing to the user once, on their screen).
    pub fn phrase(&self) -> Zeroizing<String> {
        Zeroizing::new(self.inner.to_string())
    }

    pub fn words(&self) -> Vec<&'static str> {
        self.inner.words().collect()
    }

    /// The 64-byte BIP-39 seed (PBKDF2-HMAC-SHA512, 2048 rounds).
    pub fn to_seed(&self, passphrase: &str) -> Zeroizing<[u8; 64]> {
        Zeroizing::new(self.inner.to_seed(passphrase))
    }

    /// The account's Ed25519 secret seed at `m/44'/2026'/0'`.
    pub fn account_seed(&self) -> SecretSeed {
        let seed = self.to_seed("");
        slip10_derive(&seed[..], &WATT_PATH).0
    }
}

impl std::fmt::Debug for Mnemonic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mnemonic(<redacted>)")
    }
}

/// SLIP-0010 Ed25519 derivation: returns the key and chain code at `path`
/// (every index hardened). Zeroizes the intermediate material.
pub fn slip10_derive(seed: &[u8], path: &[u32]) -> (SecretSeed, [u8; 32]) {
    let master = hmac::Key::new(hmac::HMAC_SHA512, b"ed25519 seed");
    let mut i = Zeroizing::new([0u8; 64]);
    i.copy_from_slice(hmac::sign(&master, seed).as_ref());
    let (mut key, mut chain) = split(&i);
    let mut data = Zeroizing::new([0u8; 37]);
    for &index in path {
        data[0] = 0;
        data[1..33].copy_from_slice(&key);
        data[33..].copy_from_slice(&(index | HARDENED).to_be_bytes());
        let k = hmac::Key::new(hmac::HMAC_SHA512, &chain);
        i.copy_from_slice(hmac::sign(&k, &data[..]).as_ref());
        key.zeroize();
        (key, chain) = split(&i);
    }
    let out = (SecretSeed::from_bytes(key), chain);
    key.zeroize();
    out
}

fn split(i: &[u8; 64]) -> ([u8; 32], [u8; 32]) {
    let mut key = [0u8; 32];
    let mut chain = [0u8; 32];
    key.copy_from_slice(&i[..32]);
    chain.copy_from_slice(&i[32..]);
    (key, chain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;

    // BIP-39 reference vectors (trezor/python-mnemonic vectors.json, passphrase "TREZOR").
    #[test]
    fn bip39_vector_all_zero_entropy() {
        let m = Mnemonic::from_entropy(&[0u8; 32]).unwrap();
        let words = m.words();
        assert_eq!(words.len(), 24);
        assert!(words[..23].iter().all(|w| *w == "abandon"));
        assert_eq!(words[23], "art");
        assert_eq!(
            hex::encode(&m.to_seed("TREZOR")[..]),
            "bda85446c68413707090a52022edd26a1c9462295029f2e60cd7c4f2bbd3097170af7a4d73245cafa9c3cca8d561a7c3de6f5d4a10be8ed2a5e608d68f92fcc8"
        );
    }

    #[test]
    fn bip39_vector_all_ff_entropy() {
        let m = Mnemonic::from_entropy(&[0xffu8; 32]).unwrap();
        assert_eq!(
            m.phrase().as_str(),
            "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo vote"
        );
        assert_eq!(
            hex::encode(&m.to_seed("TREZOR")[..]),
            "dd48c104698c30cfe2b6142103248622fb7bb0ff692eebb00089b32d22484e1613912f0a5b694407be899ffd31ed3992c456cdf60f5d4564b8ba3f05a69890ad"
        );
    }

    // SLIP-0010 test vector 1 for ed25519 (seed 000102...0f).
    #[test]
    fn slip10_ed25519_vector_1() {
        let seed = hex::decode("000102030405060708090a0b0c0d0e0f").unwrap();
        let (k, c) = slip10_derive(&seed, &[]);
        assert_eq!(hex::encode(k.expose()), "2b4be7f19ee27bbf30c667b642d5f4aa69fd169872f8fc3059c08ebae2eb19e7");
        assert_eq!(hex::encode(&c), "90046a93de5380a72b5e45010748567d5ea02bbf6522f979e05c0d8d8ca9fffb");
        let (k, c) = slip10_derive(&seed, &[0]);
        assert_eq!(hex::encode(k.expose()), "68e0fe46dfb67e368c75379acec591dad19df3cde26e63b93a8e704f1dade7a3");
        assert_eq!(hex::encode(&c), "8b59aa11380b624e81507a27fedda59fea6d0b779a778918a2fd3590e16e9c69");
        let (k, c) = slip10_derive(&seed, &[0, 1, 2, 2]);
        assert_eq!(hex::encode(k.expose()), "30d1dc7e5fc04c31219ab25a27ae00b50f6fd66622f6e9c913253d6511d1e662");
        assert_eq!(hex::encode(&c), "8f6d87f93d750e0efccda017d662a1b31a266e4a6f5993b15f5c1f07f74dd5cc");
    }

    #[test]
    fn parse_names_the_problem() {
        let good = Mnemonic::from_entropy(&[7u8; 32]).unwrap().phrase();
        assert!(Mnemonic::parse(&good.to_uppercase()).is_ok());
        assert_eq!(Mnemonic::parse("abandon abandon").unwrap_err(), MnemonicError::WordCount(2));
        let mut words: Vec<&str> = good.split(' ').collect();
        words[4] = "notaword";
        assert_eq!(
            Mnemonic::parse(&words.join(" ")).unwrap_err(),
            MnemonicError::UnknownWord { position: 5, word: "notaword".into() }
        );
        let mut words: Vec<&str> = good.split(' ').collect();
        words.swap(0, 1);
        if words[0] != words[1] {
            assert_eq!(Mnemonic::parse(&words.join(" ")).unwrap_err(), MnemonicError::BadChecksum);
        }
    }

    #[test]
    fn account_seed_is_deterministic_per_phrase() {
        let a = Mnemonic::from_entropy(&[1u8; 32]).unwrap();
        let b = Mnemonic::parse(&a.phrase()).unwrap();
        assert_eq!(a.account_seed(), b.account_seed());
        assert_ne!(a.account_seed(), Mnemonic::from_entropy(&[2u8; 32]).unwrap().account_seed());
    }
}

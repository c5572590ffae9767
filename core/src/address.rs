//! Text forms of keys, like Stellar strkeys (SPEC §1): version byte ‖ 32-byte
//! key ‖ CRC16-XModem (little-endian), base32 (RFC 4648, no padding).
//! 35 bytes are exactly 56 base32 characters, so there are no spare bits and
//! every key has one text form. The CRC catches every single-character typo.

use crate::crypto::{PublicKey, SecretSeed};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a strkey names; the version byte makes the first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `W...`: an account (wallet).
    Account,
    /// `N...`: a validator node.
    Node,
    /// `S...`: a secret seed.
    Secret,
}

impl KeyKind {
    const fn version(self) -> u8 {
        // Base32 index of the first letter, shifted into the top five bits.
        match self {
            KeyKind::Account => 22 << 3, // 'W'
            KeyKind::Node => 13 << 3,    // 'N'
            KeyKind::Secret => 18 << 3,  // 'S'
        }
    }
    fn from_version(v: u8) -> Option<KeyKind> {
        [KeyKind::Account, KeyKind::Node, KeyKind::Secret].into_iter().find(|k| k.version() == v)
    }
    pub const fn letter(self) -> char {
        match self {
            KeyKind::Account => 'W',
            KeyKind::Node => 'N',
            KeyKind::Secret => 'S',
        }
    }
    pub const fn name(self) -> &'static str {
        match self {
            KeyKind::Account => "account address",
            KeyKind::Node => "node id",
            KeyKind::Secret => "secret seed",
        }
    }
}

const STRKEY_LEN: usize = 56;
const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("wrong length: {len} characters, a key is 56")]
    BadLength { len: usize },
    #[error("invalid character {ch:?} at position {pos} (only A-Z and 2-7 occur)")]
    BadCharacter { ch: char, pos: usize },
    #[error("checksum mismatch: there is a typo somewhere in this key")]
    BadChecksum,
    #[error("unknown key type (first character {first:?}; expected W, N or S)")]
    UnknownKind { first: char },
    #[error("this is a {found}, expected a {expected}")]
    WrongKind { expected: &'static str, found: &'static str },
}

/// CRC16-XModem: poly 0x1021, init 0, no reflection, no final xor.
pub fn crc16_xmodem(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

pub fn encode_strkey(kind: KeyKind, key: &[u8; 32]) -> String {
    let mut raw = [0u8; 35];
    raw[0] = kind.version();
    raw[1..33].copy_from_slice(key);
    let crc = crc16_xmodem(&raw[..33]);
    raw[33..].copy_from_slice(&crc.to_le_bytes());
    let mut out = String::with_capacity(STRKEY_LEN);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for b in raw {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    debug_assert_eq!(bits, 0);
    out
}

/// Decodes any strkey, returning its kind and key.
pub fn decode_strkey(text: &str) -> Result<(KeyKind, [u8; 32]), AddressError> {
    let len = text.chars().count();
    if len != STRKEY_LEN {
        return Err(AddressError::BadLength { len });
    }
    let mut raw = [0u8; 35];
    let mut buffer: u32 = 0;
    let mut bits = 0;
    let mut n = 0;
    for (pos, ch) in text.chars().enumerate() {
        let v = match ch {
            'A'..='Z' => ch as u32 - 'A' as u32,
            '2'..='7' => ch as u32 - '2' as u32 + 26,
            _ => return Err(AddressError::BadCharacter { ch, pos }),
        };
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            raw[n] = (buffer >> bits) as u8;
            n += 1;
        }
    }
    let crc = u16::from_le_bytes([raw[33], raw[34]]);
    if crc16_xmodem(&raw[..33]) != crc {
        return Err(AddressError::BadChecksum);
    }
    let kind =
        KeyKind::from_version(raw[0]).ok_or(AddressError::UnknownKind { first: text.chars().next().unwrap_or('?') })?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&raw[1..33]);
    Ok((kind, key))
}

fn decode_kind(text: &str, expected: KeyKind) -> Result<[u8; 32], AddressError> {
    let (kind, key) = decode_strkey(text)?;
    if kind != expected {
        return Err(AddressError::WrongKind { expected: expected.name(), found: kind.name() });
    }
    Ok(key)
}

macro_rules! strkey_id {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub PublicKey);

        impl $name {
            pub fn public_key(&self) -> &PublicKey {
                &self.0
            }
            pub fn to_strkey(&self) -> String {
                encode_strkey($kind, &self.0 .0)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_strkey())
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}…", &self.to_strkey()[..8])
            }
        }
        impl FromStr for $name {
            type Err = AddressError;
            fn from_str(s: &str) -> Result<Self, AddressError> {
                decode_kind(s, $kind).map(|k| $name(PublicKey(k)))
            }
        }
        /// Raw 32 bytes in the codec, the strkey in JSON/TOML.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&self.to_strkey())
                } else {
                    self.0.serialize(s)
                }
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = String::deserialize(d)?;
                    s.parse().map_err(serde::de::Error::custom)
                } else {
                    PublicKey::deserialize(d).map($name)
                }
            }
        }
    };
}

impl crate::codec::Wire for AccountId {
    const MAX_ENCODED_LEN: usize = 32;
}
impl crate::codec::Wire for NodeId {
    const MAX_ENCODED_LEN: usize = 32;
}

strkey_id!(
    /// An account: `W...`.
    AccountId,
    KeyKind::Account
);
strkey_id!(
    /// A validator node: `N...`.
    NodeId,
    KeyKind::Node
);

/// The `S...` text form of a secret seed.
pub fn encode_secret(seed: &SecretSeed) -> String {
    encode_strkey(KeyKind::Secret, seed.expose())
}

pub fn decode_secret(text: &str) -> Result<SecretSeed, AddressError> {
    decode_kind(text, KeyKind::Secret).map(SecretSeed::from_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crc16_xmodem_check_value() {
        // The standard check value of CRC-16/XMODEM over "123456789".
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
    }

    #[test]
    fn prefixes_match_kinds() {
        let key = [0xabu8; 32];
        assert!(encode_strkey(KeyKind::Account, &key).starts_with('W'));
        assert!(encode_strkey(KeyKind::Node, &key).starts_with('N'));
        assert!(encode_strkey(KeyKind::Secret, &key).starts_with('S'));
    }

    #[test]
    fn wrong_kind_is_named() {
        let node = encode_strkey(KeyKind::Node, &[1; 32]);
        assert_eq!(
            node.parse::<AccountId>(),
            Err(AddressError::WrongKind { expected: "account address", found: "node id" })
        );
        assert!(node.parse::<NodeId>().is_ok());
    }

    #[test]
    fn length_and_characters_are_checked() {
        let a = encode_strkey(KeyKind::Account, &[3; 32]);
        assert_eq!(a[..55].parse::<AccountId>(), Err(AddressError::BadLength { len: 55 }));
        let lower = a.to_lowercase();
        assert!(matches!(lower.parse::<AccountId>(), Err(AddressError::BadCharacter { pos: 0, .. })));
        let mut with_one = a.clone();
        with_one.replace_range(10..11, "1");
        assert_eq!(with_one.parse::<AccountId>(), Err(AddressError::BadCharacter { ch: '1', pos: 10 }));
    }

    proptest! {
        // Encoding then decoding any key of any kind gives it back.
        #[test]
        fn strkey_round_trip(key in any::<[u8; 32]>()) {
            for kind in [KeyKind::Account, KeyKind::Node, KeyKind::Secret] {
                let text = encode_strkey(kind, &key);
                prop_assert_eq!(text.len(), 56);
                prop_assert_eq!(decode_strkey(&text).unwrap(), (kind, key));
            }
        }

        // Every single-character change of a valid address is rejected.
        #[test]
        fn every_single_character_change_is_rejected(key in any::<[u8; 32]>()) {
            let text = encode_strkey(KeyKind::Account, &key);
            let bytes = text.as_bytes();
            for pos in 0..bytes.len() {
                for &c in ALPHABET.iter() {
                    if c == bytes[pos] { continue; }
                    let mut typo = bytes.to_vec();
                    typo[pos] = c;
                    let typo = String::from_utf8(typo).unwrap();
                    prop_assert!(typo.parse::<AccountId>().is_err(), "typo accepted: {}", typo);
                }
            }
        }
    }
}

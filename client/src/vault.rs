//! The wallet secret at rest: the 32 bytes of BIP-39 entropy, sealed with
//! ChaCha20-Poly1305 under a 32-byte key that the platform holds (Android
//! Keystore / iOS Keychain through [`SecretKeyStore`]). The key and every
//! plaintext copy are zeroized after use; the sealed blob alone reveals nothing.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The platform's key store: hands out the key that seals the wallet secret.
/// On Android, a Keystore-backed key; on iOS, a Keychain item; in the `watt`
/// CLI, [`FileKeyStore`].
pub trait SecretKeyStore: Send + Sync {
    /// The 32-byte wrapping key, created on first use and the same ever after.
    fn wrapping_key(&self) -> Result<Vec<u8>, KeyStoreError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyStoreError {
    #[error("the platform key store is unavailable: {0}")]
    Unavailable(String),
    #[error("the platform key must be 32 bytes, got {0}")]
    BadKeyLength(usize),
    #[error("the wallet secret does not open with this device's key (wrong key, or the sealed secret is damaged)")]
    WrongKey,
    #[error("no secure random numbers available")]
    NoRandomness,
}

/// Domain separation for the sealed wallet secret (associated data).
const AAD: &[u8] = b"watt/v1/wallet-secret";
const VERSION: u8 = 1;

fn cipher(store: &dyn SecretKeyStore) -> Result<LessSafeKey, KeyStoreError> {
    let key = Zeroizing::new(store.wrapping_key()?);
    if key.len() != 32 {
        return Err(KeyStoreError::BadKeyLength(key.len()));
    }
    let unbound = UnboundKey::new(&CHACHA20_POLY1305, &key).map_err(|_| KeyStoreError::BadKeyLength(key.len()))?;
    Ok(LessSafeKey::new(unbound))
}

/// `version ‖ nonce ‖ ciphertext ‖ tag`.
pub fn seal(store: &dyn SecretKeyStore, secret: &[u8]) -> Result<Vec<u8>, KeyStoreError> {
    let key = cipher(store)?;
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).map_err(|_| KeyStoreError::NoRandomness)?;
    let mut buf = Zeroizing::new(secret.to_vec());
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(AAD), &mut *buf)
        .map_err(|_| KeyStoreError::WrongKey)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Opens what [`seal`] produced; the plaintext is zeroized when dropped.
pub fn open(store: &dyn SecretKeyStore, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyStoreError> {
    if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VERSION {
        return Err(KeyStoreError::WrongKey);
    }
    let key = cipher(store)?;
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&sealed[1..1 + NONCE_LEN]);
    let mut buf = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
    let plain = key
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(AAD), &mut buf)
        .map_err(|_| KeyStoreError::WrongKey)?;
    Ok(Zeroizing::new(plain.to_vec()))
}

/// A key kept in a file readable only by its owner: the terminal's stand-in
/// for a hardware-backed key store (the `watt` CLI and tests).
pub struct FileKeyStore {
    path: PathBuf,
}

impl FileKeyStore {
    pub fn new(path: impl AsRef<Path>) -> FileKeyStore {
        FileKeyStore { path: path.as_ref().to_path_buf() }
    }

    fn create(&self) -> Result<Vec<u8>, KeyStoreError> {
        let mut key = vec![0u8; 32];
        SystemRandom::new().fill(&mut key).map_err(|_| KeyStoreError::NoRandomness)?;
        let tmp = self.path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp)?;
            f.write_all(&key)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| KeyStoreError::Unavailable(format!("{}: {e}", self.path.display())))?;
        Ok(key)
    }
}

impl SecretKeyStore for FileKeyStore {
    fn wrapping_key(&self) -> Result<Vec<u8>, KeyStoreError> {
        match std::fs::read(&self.path) {
            Ok(k) => Ok(k),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.create(),
            Err(e) => Err(KeyStoreError::Unavailable(format!("{}: {e}", self.path.display()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Vec<u8>);
    impl SecretKeyStore for Fixed {
        fn wrapping_key(&self) -> Result<Vec<u8>, KeyStoreError> {
            Ok(self.0.clone())
        }
    }

    #[test]
    fn sealed_secret_opens_only_with_its_key_and_hides_the_plaintext() {
        let secret = [7u8; 32];
        let sealed = seal(&Fixed(vec![1; 32]), &secret).unwrap();
        assert!(!sealed.windows(32).any(|w| w == secret), "plaintext visible in the sealed blob");
        assert_eq!(&open(&Fixed(vec![1; 32]), &sealed).unwrap()[..], &secret);
        assert_eq!(open(&Fixed(vec![2; 32]), &sealed).unwrap_err(), KeyStoreError::WrongKey);
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(open(&Fixed(vec![1; 32]), &bad).is_err(), "flipped byte {i} accepted");
        }
        assert_eq!(seal(&Fixed(vec![1; 16]), &secret).unwrap_err(), KeyStoreError::BadKeyLength(16));
        // Fresh nonce every time.
        assert_ne!(seal(&Fixed(vec![1; 32]), &secret).unwrap(), sealed);
    }

    #[test]
    fn file_key_store_creates_once_private_and_stable() {
        let dir = std::env::temp_dir().join(format!("watt-vault-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("device.key");
        let _ = std::fs::remove_file(&path);
        let store = FileKeyStore::new(&path);
        let k1 = store.wrapping_key().unwrap();
        assert_eq!(k1.len(), 32);
        assert_eq!(store.wrapping_key().unwrap(), k1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

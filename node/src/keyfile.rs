//! The terminal wallet's key file: `<data-dir>/account.key`, holding the `S...`
//! secret seed, readable by the owner only. (Phones keep the seed encrypted by
//! a Keystore/Keychain key inside the mobile core's store instead.)

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use watt_core::address::{decode_secret, encode_secret};
use watt_core::crypto::{Keypair, SecretSeed};
use zeroize::Zeroizing;

pub const KEY_FILE: &str = "account.key";

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("no key in {0}: run `watt keys new` (or `watt keys restore`) first")]
    Missing(PathBuf),
    #[error("a key already exists in {0}; refusing to overwrite it (move it away first)")]
    Exists(PathBuf),
    #[error("cannot {action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{path} does not hold a valid secret seed: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

/// Writes a new key file atomically (temp file + rename), mode 0600.
pub fn save(data_dir: &Path, seed: &SecretSeed) -> Result<PathBuf, KeyFileError> {
    save_as(data_dir, Path::new(KEY_FILE), seed)
}

/// Like [`save`], under another file name.
pub fn save_as(data_dir: &Path, name: &Path, seed: &SecretSeed) -> Result<PathBuf, KeyFileError> {
    let path = data_dir.join(name);
    if path.exists() {
        return Err(KeyFileError::Exists(path));
    }
    let io = |action, source| KeyFileError::Io { action, path: path.clone(), source };
    fs::create_dir_all(data_dir).map_err(|e| io("create the directory of", e))?;
    let tmp = path.with_extension("tmp");
    let text = Zeroizing::new(format!("{}\n", encode_secret(seed)));
    {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(|e| io("create", e))?;
        f.write_all(text.as_bytes()).map_err(|e| io("write", e))?;
        f.sync_all().map_err(|e| io("sync", e))?;
    }
    fs::rename(&tmp, &path).map_err(|e| io("rename into", e))?;
    Ok(path)
}

pub fn load(data_dir: &Path) -> Result<Keypair, KeyFileError> {
    load_from(data_dir, Path::new(KEY_FILE))
}

pub fn load_from(data_dir: &Path, name: &Path) -> Result<Keypair, KeyFileError> {
    let path = data_dir.join(name);
    let text = match fs::read_to_string(&path) {
        Ok(t) => Zeroizing::new(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(KeyFileError::Missing(path)),
        Err(e) => return Err(KeyFileError::Io { action: "read", path, source: e }),
    };
    let seed =
        decode_secret(text.trim()).map_err(|e| KeyFileError::Corrupt { path: path.clone(), reason: e.to_string() })?;
    Keypair::from_seed(seed).map_err(|e| KeyFileError::Corrupt { path, reason: e.to_string() })
}

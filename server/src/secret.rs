//! The relay's own HS256 signing secret, created in its data folder on first start when no
//! key is configured, so that a relay is secure by default and still one command away.

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

/// The file name of the generated secret inside the data folder.
pub const SECRET_FILE: &str = "relay-secret.key";

/// The secret kept in `path` (its text, trimmed). Any text works: `openssl rand -hex 32`.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let text = fs::read_to_string(path)?;
    let secret = text.trim();
    if secret.len() < 32 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: a signing secret needs at least 32 characters",
                path.display()
            ),
        ));
    }
    Ok(secret.as_bytes().to_vec())
}

/// The secret in `data`'s secret file, created (32 random bytes as hex, readable by the
/// owner only) if missing. Returns it, its path, and whether it was just created.
pub fn read_or_create(data: &Path) -> io::Result<(Vec<u8>, PathBuf, bool)> {
    let path = data.join(SECRET_FILE);
    match read(&path) {
        Ok(secret) => return Ok((secret, path, false)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    fs::create_dir_all(data)?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| io::Error::other(error.to_string()))?;
    let text = hex::encode(bytes);
    // Written whole under a temporary name, then linked into place: a reader never sees a
    // half-written secret, a crash leaves no empty one, and of two processes creating it at
    // once (the relay and `weft-relay token`) one wins and the other reads the winner's.
    let temporary = data.join(format!(".{SECRET_FILE}.{}", hex::encode(&bytes[..4])));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    });
    let linked = written.and_then(|()| fs::hard_link(&temporary, &path));
    let _ = fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok((text.into_bytes(), path, true)),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            Ok((read(&path)?, path, false))
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn created_once_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (first, path, created) = read_or_create(dir.path()).unwrap();
        assert!(created && first.len() == 64);
        let (again, _, created) = read_or_create(dir.path()).unwrap();
        assert!(!created && again == first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::write(&path, "short").unwrap();
        assert!(read_or_create(dir.path()).is_err());
    }
}

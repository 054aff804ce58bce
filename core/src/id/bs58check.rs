//! Base58 text with a 4-byte double-SHA-256 checksum, as the `bs58check` npm package writes it.
//!
//! automerge-repo encodes document ids and change hashes in URLs this way. The `bs58` crate
//! does the base58 alphabet; the checksum is four lines over `sha2`, which the crate already
//! uses for content hashes.

use sha2::{Digest, Sha256};

const CHECKSUM_LEN: usize = 4;

fn checksum(payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    let twice = Sha256::digest(Sha256::digest(payload));
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&twice[..CHECKSUM_LEN]);
    out
}

/// Encodes `payload` as bs58check text.
pub(crate) fn encode(payload: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(payload.len() + CHECKSUM_LEN);
    bytes.extend_from_slice(payload);
    bytes.extend_from_slice(&checksum(payload));
    bs58::encode(bytes).into_string()
}

/// Why a bs58check string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bs58CheckError {
    /// A character outside the base58 alphabet.
    NotBase58,
    /// Fewer bytes than the checksum alone.
    TooShort,
    /// The checksum does not match the payload: a typo or a truncated id.
    BadChecksum,
}

/// Decodes bs58check text into its payload, verifying the checksum.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, Bs58CheckError> {
    let mut bytes = bs58::decode(text)
        .into_vec()
        .map_err(|_| Bs58CheckError::NotBase58)?;
    if bytes.len() < CHECKSUM_LEN {
        return Err(Bs58CheckError::TooShort);
    }
    let split = bytes.len() - CHECKSUM_LEN;
    if checksum(&bytes[..split]) != bytes[split..] {
        return Err(Bs58CheckError::BadChecksum);
    }
    bytes.truncate(split);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_a_changed_character() {
        let text = encode(b"weft");
        assert_eq!(decode(&text), Ok(b"weft".to_vec()));
        // Change one character: the checksum must catch it.
        let mut chars: Vec<char> = text.chars().collect();
        chars[0] = if chars[0] == '2' { '3' } else { '2' };
        let altered: String = chars.into_iter().collect();
        assert_eq!(decode(&altered), Err(Bs58CheckError::BadChecksum));
        assert_eq!(decode("0OIl"), Err(Bs58CheckError::NotBase58));
        assert_eq!(decode("2"), Err(Bs58CheckError::TooShort));
    }
}

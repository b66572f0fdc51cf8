//! Short stable hashes for chain names, as upstream: base32 of a SHA-256 prefix.

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The first `len` base32 characters of SHA-256(`input`).
pub fn hash_prefix(input: &str, len: usize) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, input.as_bytes());
    let mut out = String::with_capacity(len);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in digest.as_ref() {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            let index = ((buffer >> bits) & 0x1f) as usize;
            out.push(char::from(ALPHABET[index]));
            if out.len() == len {
                return out;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_base32() {
        // SHA-256("abc") = ba7816bf..., base32 "XJ4BNP4P..."
        assert_eq!(hash_prefix("abc", 8), "XJ4BNP4P");
        assert_eq!(hash_prefix("abc", 16).len(), 16);
        assert_ne!(hash_prefix("a", 8), hash_prefix("b", 8));
    }
}

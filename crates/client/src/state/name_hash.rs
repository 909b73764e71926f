//! [`NameHash`]: a fast, non-keyed hasher for maps keyed by names the application chose
//! (topic names on the per-record path), where SipHash's flooding resistance buys nothing.
//! Multiply-rotate over 8-byte words; not for keys an outsider controls.

use std::hash::{BuildHasherDefault, Hasher};

/// Build a [`NameHasher`].
pub(crate) type NameHash = BuildHasherDefault<NameHasher>;

const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// The hasher behind [`NameHash`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NameHasher {
    hash: u64,
}

impl NameHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for NameHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
        // The length tells "a" from "a\0" (the padding of the last word is zeros).
        self.add(bytes.len() as u64);
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn names_that_differ_hash_apart_and_maps_work() {
        let mut map: HashMap<String, u32, NameHash> = HashMap::default();
        for i in 0..1000u32 {
            map.insert(format!("topic-{i}"), i);
        }
        assert_eq!(map.len(), 1000);
        assert!((0..1000u32).all(|i| map.get(&format!("topic-{i}")) == Some(&i)));
        let hash = |s: &str| {
            let mut h = NameHasher::default();
            h.write(s.as_bytes());
            h.finish()
        };
        assert_ne!(hash("orders"), hash("orderz"));
        assert_ne!(hash("a"), hash("a\0"));
    }
}

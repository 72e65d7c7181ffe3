//! FNV-1a, 64-bit: the one non-cryptographic checksum zkernel uses everywhere a page or a table must be
//! recognised again — the page file xtask hands the kernel (`ramdisk_fnv`), the file disk's table and
//! file contents (`fsimage`), the workload's per-page checks (`swap`) and the file workload's per-page
//! checks. One copy, so that the host and the kernel can never disagree on a checksum.
//!
//! FNV-1a folds each byte into the hash: `h = (h ^ byte) * PRIME`, starting from `OFFSET_BASIS`.
//! It is fast, has no tables, and is streaming: hashing `a` then continuing with `b` gives the hash of
//! `a ++ b` ([`Fnv1a::write`]).
//!
//! Worked example: `fnv1a64(b"a")` = `(0xcbf29ce484222325 ^ 0x61) * 0x100000001b3` = `0xaf63dc4c8601ec8c`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

/// The 64-bit FNV offset basis: the hash of no bytes.
pub const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// The 64-bit FNV prime.
pub const PRIME: u64 = 0x0000_0100_0000_01b3;

/// A streaming FNV-1a hasher: `Fnv1a::new().write(a).write(b).finish() == fnv1a64(a ++ b)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self::new()
    }
}

impl Fnv1a {
    /// A hasher that has seen no bytes.
    pub const fn new() -> Self {
        Fnv1a(OFFSET_BASIS)
    }

    /// Continue a hash from a value returned by [`Fnv1a::finish`].
    pub const fn resume(hash: u64) -> Self {
        Fnv1a(hash)
    }

    /// Fold `bytes` into the hash.
    pub const fn write(mut self, bytes: &[u8]) -> Self {
        let mut i = 0;
        while i < bytes.len() {
            self.0 = (self.0 ^ bytes[i] as u64).wrapping_mul(PRIME);
            i += 1;
        }
        self
    }

    /// The hash of every byte written so far.
    pub const fn finish(self) -> u64 {
        self.0
    }
}

/// FNV-1a 64 of `bytes`.
pub const fn fnv1a64(bytes: &[u8]) -> u64 {
    Fnv1a::new().write(bytes).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn streaming_equals_whole() {
        let whole = fnv1a64(b"hello, world");
        let parts = Fnv1a::new().write(b"hello, ").write(b"world").finish();
        assert_eq!(whole, parts);
        assert_eq!(Fnv1a::resume(fnv1a64(b"hello, ")).write(b"world").finish(), whole);
    }
}

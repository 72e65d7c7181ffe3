//! Page contents for tests, benchmarks and workloads.
//!
//! # Why
//!
//! What a compressed-memory layer achieves depends entirely on what is in the pages. zkernel measures on
//! two kinds of content, and every test, benchmark and workload takes them from here so that figures
//! quoted side by side were made from the same bytes:
//!
//! | source | what | where it runs |
//! |---|---|---|
//! | [`ratio_page`] | synthetic pages that compress to a chosen fraction, for every algorithm | host and kernel (`no_std`) |
//! | [`mixed_page`] | the kernel demos' synthetic mix: one page in ten zero, the rest [`ratio_page`]s of 10–100 % | host and kernel (`no_std`) |
//! | [`sample::perl_pages`] | the real page sample `data/perl-heap.pages.gz` (2048 pages of a perl process) | host, feature `sample`; the kernel gets the same file as its ramdisk |
//!
//! # How a page of chosen compressibility is made
//!
//! The page is cut into 32-byte segments. Each is, with probability `fresh_percent`, fresh random bytes
//! (which no compressor shrinks), or else a copy of an earlier segment (which LZ4 and deflate both
//! encode as a match of a few bytes). The stored size therefore tracks `fresh_percent` for either
//! algorithm: [`THREE_QUARTERS_FRESH`] (72 %) gives pages whose stored bytes are close to 75 % of a page,
//! the workload of the xcfmalloc cover letter (`shared/anchors.md`). Same seed, same page, everywhere.
//!
//! # The mixed page set
//!
//! The pools demo and the swap workload's `Mixed` source, when no real pages are given, use one mix of
//! pages so their figures can be compared ([`mixed_page`]). Page `i` is
//!
//! | `i` | page |
//! |---|---|
//! | `i mod 10 = 0` | all zero (a same-filled page: tmem keeps the word, no pool sees it) |
//! | otherwise | `ratio_page(i, 10 + (37·i mod 91), ..)`: fresh share 10..=100 %, spread over the set |
//!
//! Worked example: page 0 is zero; page 1 is `ratio_page(1, 47)`; page 2 `ratio_page(2, 84)`; page 3
//! `ratio_page(3, 30)` (10 + 111 mod 91 = 10 + 20); page 10 is zero again.
#![cfg_attr(not(feature = "sample"), no_std)]
#![forbid(unsafe_code)]

/// Bytes in a page.
pub const PAGE_SIZE: usize = 4096;

/// The `fresh_percent` that makes pages compress to about 75 % with LZ4 and deflate level 1.
pub const THREE_QUARTERS_FRESH: usize = 72;

/// xorshift64*: deterministic, seedable, good enough to pick positions and make incompressible bytes.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub const fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`, with negligible bias for small `n`; 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }

    /// Fill `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let w = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }
}

/// Fill `page` with random bytes from `seed`: a page no compressor shrinks.
pub fn random_page(seed: u64, page: &mut [u8; PAGE_SIZE]) {
    Rng::new(seed).fill(page);
}

/// Fill `page` so that it compresses to roughly `fresh_percent` % (see the module header).
pub fn ratio_page(seed: u64, fresh_percent: usize, page: &mut [u8; PAGE_SIZE]) {
    const SEG: usize = 32;
    let mut rng = Rng::new(seed);
    for s in 0..PAGE_SIZE / SEG {
        let at = s * SEG;
        if s == 0 || rng.below(100) < fresh_percent {
            rng.fill(&mut page[at..at + SEG]);
        } else {
            let from = rng.below(s) * SEG;
            page.copy_within(from..from + SEG, at);
        }
    }
}

/// Fill `page` with page `i` of the mixed set (see "The mixed page set" in the module header): zero when
/// `i` is a multiple of 10, else `ratio_page(i, 10 + (37·i mod 91), page)`. Every byte is written.
pub fn mixed_page(i: u64, page: &mut [u8; PAGE_SIZE]) {
    if i % 10 == 0 {
        page.fill(0);
    } else {
        // (i mod 91)·37 mod 91 = 37·i mod 91, without overflow for any i.
        let fresh_percent = 10 + ((i % 91) * 37 % 91) as usize;
        ratio_page(i, fresh_percent, page);
    }
}

/// The real page sample (host only).
#[cfg(feature = "sample")]
pub mod sample {
    use std::io::Read;
    use std::sync::OnceLock;

    use super::PAGE_SIZE;

    /// Pages in `perl-heap.pages.gz` (its README).
    pub const PERL_PAGES: usize = 2048;

    /// Where the sample is: `shared/` beside the workspace.
    pub const PERL_SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../data/perl-heap.pages.gz");

    /// The 2048 pages of the perl sample, loaded once. Panics (this is test and benchmark code) if the
    /// file is missing or not 2048 pages.
    pub fn perl_pages() -> &'static [[u8; PAGE_SIZE]] {
        static PAGES: OnceLock<Vec<[u8; PAGE_SIZE]>> = OnceLock::new();
        PAGES.get_or_init(|| {
            let file = std::fs::File::open(PERL_SAMPLE).unwrap_or_else(|e| panic!("{PERL_SAMPLE}: {e}"));
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(file).read_to_end(&mut raw).unwrap_or_else(|e| panic!("{PERL_SAMPLE}: {e}"));
            assert_eq!(raw.len(), PERL_PAGES * PAGE_SIZE, "{PERL_SAMPLE}: not {PERL_PAGES} pages");
            raw.as_chunks::<PAGE_SIZE>().0.to_vec()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_page_and_seeds_differ() {
        let (mut a, mut b, mut c) = ([0; PAGE_SIZE], [0; PAGE_SIZE], [0; PAGE_SIZE]);
        ratio_page(7, THREE_QUARTERS_FRESH, &mut a);
        ratio_page(7, THREE_QUARTERS_FRESH, &mut b);
        ratio_page(8, THREE_QUARTERS_FRESH, &mut c);
        assert!(a == b && a != c);
    }

    #[test]
    fn fresh_percent_sets_the_share_of_distinct_segments() {
        let mut page = [0; PAGE_SIZE];
        ratio_page(1, 0, &mut page);
        assert!(page.chunks(32).all(|s| s == &page[..32]), "0 % fresh: every segment copies the first");
        random_page(1, &mut page);
        let mut segs: Vec<&[u8]> = page.chunks(32).collect();
        segs.sort();
        segs.dedup();
        assert_eq!(segs.len(), PAGE_SIZE / 32, "random: every segment distinct");
    }

    /// The mix's bytes, pinned: a change to `mixed_page`, `ratio_page` or `Rng` shows here.
    #[test]
    fn mixed_pages_are_pinned() {
        let mut page = [0xaa; PAGE_SIZE];
        mixed_page(0, &mut page);
        assert_eq!(page, [0; PAGE_SIZE], "page 0 is zero, whatever the buffer held");
        let want: [(u64, u64); 6] = [
            (0, PINNED_ZERO_PAGE),
            (1, 0x88ce_2e2a_99ef_0dca),
            (2, 0x7d97_207a_7d49_a273),
            (3, 0x30ff_2a99_e1c4_6ac7),
            (11, 0x8f1b_61f7_7fdd_995f),
            (2047, 0xfa72_3a3f_9171_84c1),
        ];
        for (i, fnv) in want {
            mixed_page(i, &mut page);
            assert_eq!(fnv1a::fnv1a64(&page), fnv, "page {i}");
        }
        // The whole demo set: 2048 pages, hashed as one stream.
        let mut h = fnv1a::Fnv1a::new();
        for i in 0..2048 {
            mixed_page(i, &mut page);
            h = h.write(&page);
        }
        assert_eq!(h.finish(), 0x223d_9b75_cba3_bcd9);
    }

    /// FNV-1a 64 of 4096 zero bytes.
    const PINNED_ZERO_PAGE: u64 = 0xb93a_0c83_ce3b_6325;

    /// `mixed_page` is what the pools demo (`i: usize`, a zeroed buffer left alone for `i % 10 == 0`) and the
    /// swap workload's `Mixed` source (`i: u64`, zero-filled) each wrote by hand.
    #[test]
    fn mixed_page_is_both_kernel_forms() {
        let (mut ours, mut swap) = ([0xaa; PAGE_SIZE], [0xaa; PAGE_SIZE]);
        for i in 0..2048usize {
            mixed_page(i as u64, &mut ours);
            let mut demo = [0; PAGE_SIZE];
            if i % 10 != 0 {
                ratio_page(i as u64, 10 + (i * 37) % 91, &mut demo);
            }
            let j = i as u64;
            if j % 10 == 0 {
                swap.fill(0)
            } else {
                ratio_page(j, 10 + (j as usize * 37) % 91, &mut swap)
            }
            assert!(ours == demo && ours == swap, "page {i}");
        }
        // Far indexes, where 37·i would overflow, still make a page; 37·i mod 91 is what is used.
        mixed_page(u64::MAX, &mut ours);
        ratio_page(u64::MAX, 10 + ((u64::MAX % 91) * 37 % 91) as usize, &mut swap);
        assert!(ours == swap);
    }

    #[test]
    fn the_sample_is_there() {
        assert_eq!(sample::perl_pages().len(), sample::PERL_PAGES);
    }
}

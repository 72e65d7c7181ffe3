//! Workload access streams over a region of `pages` pages: sequential, uniform random and Zipf.
//!
//! A [`Workload`] first writes every page once in order (the fill: each page gets its contents), then
//! yields `accesses` accesses in its [`Pattern`]; one access in `write_every` is a write (the page's
//! contents change, so a stale copy anywhere would be caught by its checksum).
//!
//! Zipf (s = 1) is the skewed pattern of real memory: rank r is drawn with probability ∝ 1/(r+1). Ranks
//! are spread over the region by a fixed permutation (r · stride mod pages, stride coprime with pages),
//! so hot pages are not simply the first ones. The cumulative weights are integers (2^32 / (r+1)):
//! no floating point in the kernel.

use alloc::vec::Vec;

use pagedata::Rng;

/// The order of accesses after the fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// 0, 1, 2, … wrapping: the worst case for LRU-like reclaim (every access misses once the region is
    /// larger than memory).
    Sequential,
    /// Uniformly random pages.
    Random,
    /// Zipf-distributed pages (s = 1): a few hot pages, a long cold tail.
    Zipf,
}

impl Pattern {
    pub const ALL: [Pattern; 3] = [Pattern::Sequential, Pattern::Random, Pattern::Zipf];

    pub fn name(self) -> &'static str {
        match self {
            Pattern::Sequential => "sequential",
            Pattern::Random => "random",
            Pattern::Zipf => "zipf",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == s || (s == "seq" && *p == Pattern::Sequential))
    }
}

/// One access: a page and whether it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub page: u64,
    pub write: bool,
}

/// A deterministic stream of accesses (same arguments, same stream).
#[derive(Debug, Clone)]
pub struct Workload {
    pattern: Pattern,
    pages: u64,
    accesses: u64,
    write_every: u64,
    rng: Rng,
    done: u64,
    /// Cumulative Zipf weights by rank (only for `Pattern::Zipf`).
    cdf: Vec<u64>,
    stride: u64,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Workload {
    /// `pages` ≥ 1; `write_every` = 0 means reads only after the fill.
    pub fn new(pattern: Pattern, pages: u64, accesses: u64, write_every: u64, seed: u64) -> Self {
        let pages = pages.max(1);
        let cdf = if pattern == Pattern::Zipf {
            let mut sum = 0u64;
            (0..pages)
                .map(|r| {
                    sum += (1u64 << 32) / (r + 1);
                    sum
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut stride = (pages * 5 / 8) | 1;
        while gcd(stride, pages) != 1 {
            stride += 2;
        }
        Self { pattern, pages, accesses, write_every, rng: Rng::new(seed), done: 0, cdf, stride: stride % pages }
    }

    /// Accesses in all, the fill included.
    pub fn len(&self) -> u64 {
        self.pages + self.accesses
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn pages(&self) -> u64 {
        self.pages
    }

    fn zipf_rank(&mut self) -> u64 {
        let total = *self.cdf.last().unwrap_or(&1);
        let x = self.rng.next_u64() % total;
        self.cdf.partition_point(|&c| c <= x) as u64
    }
}

impl Iterator for Workload {
    type Item = Access;

    fn next(&mut self) -> Option<Access> {
        let i = self.done;
        if i >= self.len() {
            return None;
        }
        self.done += 1;
        if i < self.pages {
            return Some(Access { page: i, write: true });
        }
        let n = i - self.pages;
        let page = match self.pattern {
            Pattern::Sequential => n % self.pages,
            Pattern::Random => self.rng.next_u64() % self.pages,
            Pattern::Zipf => {
                let r = self.zipf_rank();
                // The permutation r ↦ r·stride mod pages (stride coprime with pages).
                ((u128::from(r) * u128::from(self.stride.max(1))) % u128::from(self.pages)) as u64
            }
        };
        let write = self.write_every != 0 && self.rng.next_u64().is_multiple_of(self.write_every);
        Some(Access { page, write })
    }
}

/// Change a page the way a write access does: stamp `version` into its first 8 bytes and one more
/// word chosen by the version, keeping the rest (and so its compressibility).
pub fn stamp(page: &mut [u8; 4096], version: u64) {
    page[..8].copy_from_slice(&version.to_le_bytes());
    let at = 8 + (version as usize * 8) % (4096 - 16);
    page[at..at + 8].copy_from_slice(&(!version).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_then_pattern() {
        let w: Vec<_> = Workload::new(Pattern::Sequential, 4, 6, 0, 1).collect();
        let pages: Vec<_> = w.iter().map(|a| a.page).collect();
        assert_eq!(pages, [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]);
        assert!(w[..4].iter().all(|a| a.write));
        assert!(w[4..].iter().all(|a| !a.write));
    }

    #[test]
    fn streams_are_deterministic_and_in_range() {
        for p in Pattern::ALL {
            let a: Vec<_> = Workload::new(p, 1000, 5000, 4, 7).collect();
            let b: Vec<_> = Workload::new(p, 1000, 5000, 4, 7).collect();
            assert_eq!(a, b);
            assert_eq!(a.len(), 6000);
            assert!(a.iter().all(|x| x.page < 1000));
            let writes = a[1000..].iter().filter(|x| x.write).count();
            assert!((1000..1500).contains(&writes), "{p:?}: {writes} writes of 5000 at 1 in 4");
        }
    }

    #[test]
    fn zipf_is_skewed_and_random_is_not() {
        let top_decile_share = |p: Pattern| {
            let mut counts = vec![0u64; 1000];
            for a in Workload::new(p, 1000, 100_000, 0, 3).skip(1000) {
                counts[a.page as usize] += 1;
            }
            counts.sort_unstable_by(|a, b| b.cmp(a));
            counts[..100].iter().sum::<u64>() as f64 / 100_000.0
        };
        let zipf = top_decile_share(Pattern::Zipf);
        let random = top_decile_share(Pattern::Random);
        // H(100)/H(1000) ≈ 0.69 for s = 1; uniform gives a little over 0.10.
        assert!((0.64..0.74).contains(&zipf), "zipf top decile {zipf}");
        assert!((0.10..0.13).contains(&random), "random top decile {random}");
    }

    #[test]
    fn zipf_permutation_covers_the_region() {
        for pages in [1, 2, 8, 1000, 3072] {
            let w = Workload::new(Pattern::Zipf, pages, 0, 0, 1);
            let mut seen: Vec<u64> = (0..pages).map(|r| (r * w.stride.max(1)) % pages).collect();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len() as u64, pages);
        }
    }

    /// Each pattern parses from its name (and sequential from "seq"); anything else is refused.
    #[test]
    fn patterns_parse_from_their_names() {
        assert_eq!(Pattern::ALL.map(Pattern::name), ["sequential", "random", "zipf"]);
        for p in Pattern::ALL {
            assert_eq!(Pattern::parse(p.name()), Some(p));
        }
        assert_eq!(Pattern::parse("seq"), Some(Pattern::Sequential));
        assert_eq!(Pattern::parse("rand"), None);
        assert_eq!(Pattern::parse(""), None);
    }

    /// A workload is never empty: `pages` is at least 1, and the fill writes each page once.
    #[test]
    fn a_workload_has_at_least_one_page() {
        let w = Workload::new(Pattern::Random, 0, 0, 0, 1);
        assert_eq!((w.pages(), w.len()), (1, 1));
        assert!(!w.is_empty());
        let w = Workload::new(Pattern::Zipf, 1000, 5, 0, 1);
        assert_eq!((w.pages(), w.len()), (1000, 1005));
        assert!(!w.is_empty());
    }

    /// Zipf rank r lands on page r · stride mod pages: rank 0 (the hottest) on page 0, rank 1 on the stride.
    #[test]
    fn zipf_ranks_land_on_multiples_of_the_stride() {
        let w = Workload::new(Pattern::Zipf, 1000, 100_000, 0, 3);
        // 1000 · 5 / 8 = 625, odd; 625 and 627 share a factor with 1000, 627 = 3 · 11 · 19 does not.
        assert_eq!(w.stride, 627);
        let mut counts = vec![0u64; 1000];
        for a in w.skip(1000) {
            counts[a.page as usize] += 1;
        }
        let mut by_count: Vec<u64> = (0..1000).collect();
        by_count.sort_by_key(|&p| core::cmp::Reverse(counts[p as usize]));
        assert_eq!(by_count[..3], [0, 627, 254], "ranks 0, 1, 2 at 0, 627 and 2 · 627 mod 1000");
    }

    /// `stamp` writes the version at byte 0 and its complement at 8 + (8 · version mod 4080), nothing else.
    #[test]
    fn stamp_writes_two_words_at_known_places() {
        for (version, at) in [(1u64, 16usize), (509, 4080), (600, 728)] {
            let mut page = [7u8; 4096];
            stamp(&mut page, version);
            let mut expected = [7u8; 4096];
            expected[..8].copy_from_slice(&version.to_le_bytes());
            expected[at..at + 8].copy_from_slice(&(!version).to_le_bytes());
            assert!(page == expected, "version {version}: the second word belongs at {at}");
        }
    }

    #[test]
    fn stamp_changes_the_checksum() {
        let mut page = [7u8; 4096];
        let before = fnv1a::fnv1a64(&page);
        stamp(&mut page, 1);
        assert_ne!(fnv1a::fnv1a64(&page), before);
        let once = page;
        stamp(&mut page, 2);
        assert_ne!(page, once);
    }
}

//! Swap workloads: touch a region larger than the resident budget and check every page on every access.
//!
//! A run installs a swapper ([`super::install`]), writes every page of the region once (its contents
//! come from a [`PageSource`]), then makes `accesses` accesses in a [`Pattern`]. Each access copies the
//! page out of the region — faulting it in if it was swapped out — and compares its FNV-1a checksum with
//! the one recorded when the page was last written; one access in `write_every` then changes the page
//! ([`swap::pattern::stamp`]) and writes it back. A page that comes back with other bytes, from tmem or
//! from the disk, is a mismatch: every run must end with zero.

use alloc::vec;
use alloc::vec::Vec;

use swap::Pattern;
use swap::pattern::{Workload, fnv64, stamp};

use super::{REGION_BASE, SwapConfig, SwapError, SwapStats};
use crate::arch::tsc::rdtsc;

/// Where the region's initial page contents come from.
#[derive(Debug, Clone, Copy)]
pub enum PageSource {
    /// Page `i` is `pages[i % pages.len()]` (the ramdisk: the perl sample or `--pages FILE`).
    Sample(&'static [[u8; 4096]]),
    /// Page `i` compresses to about `fresh_percent` of a page (`pagedata::ratio_page`).
    Fresh(usize),
    /// One page in ten zero, the rest compressing to 10-100 % (the pools demo's mix).
    Mixed,
}

impl PageSource {
    pub fn name(&self) -> &'static str {
        match self {
            PageSource::Sample(_) => "ramdisk pages",
            PageSource::Fresh(_) => "pages of chosen compressibility",
            PageSource::Mixed => "mixed synthetic pages",
        }
    }

    /// The initial contents of page `i`.
    pub fn fill(&self, i: u64, out: &mut [u8; 4096]) {
        match *self {
            PageSource::Sample(pages) if !pages.is_empty() => *out = pages[(i % pages.len() as u64) as usize],
            PageSource::Sample(_) => out.fill(0),
            PageSource::Fresh(pct) => pagedata::ratio_page(i, pct, out),
            PageSource::Mixed => {
                if i % 10 == 0 {
                    out.fill(0)
                } else {
                    pagedata::ratio_page(i, 10 + (i as usize * 37) % 91, out)
                }
            }
        }
    }
}

/// One workload run.
#[derive(Debug, Clone, Copy)]
pub struct RunSpec {
    pub swap: SwapConfig,
    pub pattern: Pattern,
    /// Accesses after the fill.
    pub accesses: u64,
    /// One access in this many writes the page (0: reads only).
    pub write_every: u64,
    pub seed: u64,
    pub source: PageSource,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub spec: RunSpec,
    pub stats: SwapStats,
    /// tmem when the workload ended, and after teardown (nothing may be left).
    pub tmem: Option<tmem::TmemStats>,
    pub tmem_after: Option<tmem::TmemStats>,
    /// Accesses made (fill included).
    pub accesses: u64,
    /// Pages whose checksum did not match (must be 0).
    pub mismatches: u64,
    /// Fresh pages that did not read as zeros on their first touch (must be 0).
    pub dirty_zero_fills: u64,
    /// TSC cycles the run took.
    pub cycles: u64,
}

/// Copy page `page` of the region out (faulting it in if needed).
fn read_page(page: u64, out: &mut [u8; 4096]) {
    let src = (REGION_BASE + page * 4096) as *const u8;
    // SAFETY: the region page is mapped on demand by the installed swapper's fault handler; this is the
    // only code that touches region memory while it runs, and `out` is a separate buffer.
    unsafe { core::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), 4096) };
}

fn write_page(page: u64, data: &[u8; 4096]) {
    let dst = (REGION_BASE + page * 4096) as *mut u8;
    // SAFETY: as for `read_page`.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), dst, 4096) };
}

/// Run `spec` to the end. `Err` when the swap subsystem could not start or its teardown found damage; a
/// fault the handler cannot resolve is fatal (the access cannot complete) and logged with its reason. A
/// mismatch is not an error here but a count the caller checks.
pub fn run(spec: &RunSpec) -> Result<RunResult, SwapError> {
    super::install(spec.swap)?;
    let start = rdtsc();
    let pages = spec.swap.region_pages;
    let mut sums = vec![0u64; pages as usize];
    let mut versions: Vec<u32> = vec![0; pages as usize];
    let mut buf = alloc::boxed::Box::new([0u8; 4096]);
    let (mut mismatches, mut dirty_zero_fills, mut accesses) = (0u64, 0u64, 0u64);
    for (i, a) in Workload::new(spec.pattern, pages, spec.accesses, spec.write_every, spec.seed).enumerate() {
        read_page(a.page, &mut buf);
        accesses += 1;
        if (i as u64) < pages {
            // The fill: a never-touched page must read as zeros.
            if buf.iter().any(|&b| b != 0) {
                dirty_zero_fills += 1;
            }
            spec.source.fill(a.page, &mut buf);
        } else if fnv64(&buf[..]) != sums[a.page as usize] {
            mismatches += 1;
            if mismatches <= 5 {
                log::error!("swap: page {} came back changed (access {i})", a.page);
            }
            continue;
        } else if a.write {
            let v = &mut versions[a.page as usize];
            *v += 1;
            stamp(&mut buf, u64::from(*v) | (a.page << 32));
        } else {
            continue;
        }
        sums[a.page as usize] = fnv64(&buf[..]);
        write_page(a.page, &buf);
    }
    let cycles = rdtsc() - start;
    let f = super::uninstall().ok_or(SwapError::Busy)?;
    if let Some(e) = f.error {
        return Err(e);
    }
    Ok(RunResult {
        spec: *spec,
        stats: f.stats,
        tmem: f.tmem,
        tmem_after: f.tmem_after,
        accesses,
        mismatches,
        dirty_zero_fills,
        cycles,
    })
}

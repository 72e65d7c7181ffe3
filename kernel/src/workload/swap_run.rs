//! Swap workloads: touch a region larger than the resident budget and check every page on every access.
//!
//! A run installs a swapper ([`crate::swap::install`]), writes every page of the region once (its contents
//! come from a [`PageSource`]), then makes `accesses` accesses in a [`Pattern`]. Each access copies the
//! page out of the region — faulting it in if it was swapped out — and compares its FNV-1a checksum with
//! the one recorded when the page was last written; one access in `write_every` then changes the page
//! ([`swap::pattern::stamp`]) and writes it back. A page that comes back with other bytes, from tmem or
//! from the disk, is a mismatch: every run must end with zero.

use alloc::vec;
use alloc::vec::Vec;

use alloc::sync::Arc;

use fnv1a::fnv1a64;
use swap::Pattern;
use swap::pattern::{Workload, stamp};

use crate::arch::tsc::rdtsc;
use crate::mm::region::Region;
use crate::swap::{SwapConfig, SwapError, SwapStats};

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
            PageSource::Mixed => pagedata::mixed_page(i, out),
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

/// tmem sampled during a run, every [`SAMPLE_EVERY`] accesses.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Accesses made so far (fill included).
    pub access: u64,
    /// Pool frames and pages tmem held.
    pub pool_pages: u64,
    pub stored_pages: u64,
    /// Its zsmalloc pools' fragmentation and floor (none without a zsmalloc pool).
    pub fragmentation: Option<tmem::Fragmentation>,
}

/// How often a run samples tmem.
pub const SAMPLE_EVERY: u64 = 1000;

/// Accesses between two points of a run's time series: at least 64, and at most 64 points a run
/// (plus the one at the end), so the report stays small whatever the run's length.
pub fn series_every(total: u64) -> u64 {
    (total / 64).max(64)
}

/// The counters now, for a run's time series (after `access` accesses).
fn series_point(access: u64) -> zstats::SeriesPoint {
    let s = crate::swap::stats().unwrap_or_default();
    let mut p = zstats::SeriesPoint {
        access,
        resident: s.resident,
        disk_reads: s.disk_reads,
        disk_writes: s.disk_writes,
        ..Default::default()
    };
    if let Some(t) = crate::zcache::stats() {
        p.pool_pages = t.pool_pages;
        p.stored_pages = t.stored_pages;
        p.compr_data_size = t.compr_data_size;
        p.frag_free_bytes = crate::zcache::fragmentation().map_or(0, |f| f.free_bytes_in_partial);
    } else if let Some(m) = crate::zram::mm_stat() {
        p.pool_pages = m.mem_used_total / 4096;
        p.stored_pages = m.orig_data_size / 4096;
        p.compr_data_size = m.compr_data_size;
    }
    p
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub spec: RunSpec,
    pub stats: SwapStats,
    /// tmem when the workload ended, and after teardown (nothing may be left).
    pub tmem: Option<tmem::TmemStats>,
    pub tmem_after: Option<tmem::TmemStats>,
    /// The zram device's `mm_stat` when the workload ended and after teardown, when it was the device.
    pub zram: Option<zram::MmStat>,
    pub zram_after: Option<zram::MmStat>,
    /// tmem's index and zram's slot table in bytes when the workload ended.
    pub tmem_index_bytes: u64,
    pub zram_table_bytes: u64,
    /// tmem every [`SAMPLE_EVERY`] accesses, when the run has frontswap.
    pub samples: Vec<Sample>,
    /// The run over time for the report (`zstats::SwapRunReport::series`): every [`series_every`]
    /// accesses and at the end.
    pub series: Vec<zstats::SeriesPoint>,
    /// Accesses made (fill included).
    pub accesses: u64,
    /// Pages whose checksum did not match (must be 0).
    pub mismatches: u64,
    /// Fresh pages that did not read as zeros on their first touch (must be 0).
    pub dirty_zero_fills: u64,
    /// Pages the workload found lost (an access failed with `RegionError::PageLost`), each counted once;
    /// must equal the swapper's `pages_lost`.
    pub pages_lost: u64,
    /// Accesses that failed because their page was lost (every access to a lost page must).
    pub lost_accesses: u64,
    /// TSC cycles the run took, the memory picture's redraws left out.
    pub cycles: u64,
}

/// A run's checks so far ([`SwapRun::progress`]), readable before [`SwapRun::finish`] (which may end in an
/// error the checks should still be seen with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub accesses: u64,
    pub mismatches: u64,
    pub dirty_zero_fills: u64,
    pub pages_lost: u64,
    pub lost_accesses: u64,
}

/// A swap workload in progress, one access per [`SwapRun::step`], so another workload (the file
/// workload of `--workload all`) can be interleaved with it.
#[derive(Debug)]
pub struct SwapRun {
    spec: RunSpec,
    region: Arc<Region>,
    stream: Workload,
    sums: Vec<u64>,
    versions: Vec<u32>,
    buf: alloc::boxed::Box<[u8; 4096]>,
    done: u64,
    mismatches: u64,
    dirty_zero_fills: u64,
    /// Pages found lost; an access to one must fail again, and never read back bytes.
    lost: Vec<bool>,
    /// Pages whose fill (first write of their contents) went through: until then a page must read as
    /// zeros, and its next access fills it (the fill's access can fail, under injected faults).
    filled: Vec<bool>,
    lost_accesses: u64,
    samples: Vec<Sample>,
    start: u64,
    /// The configuration's name and the accesses in all (fill included), for the memory picture.
    name: alloc::string::String,
    total: u64,
    /// TSC cycles the memory picture took during this run: left out of [`RunResult::cycles`].
    picture_cycles: u64,
    series: Vec<zstats::SeriesPoint>,
}

impl SwapRun {
    /// Install the swapper and get ready; nothing is touched yet.
    pub fn start(spec: &RunSpec) -> Result<Self, SwapError> {
        crate::swap::install(spec.swap)?;
        let region = crate::swap::region().ok_or(SwapError::NotInstalled)?;
        let pages = spec.swap.region_pages;
        Ok(Self {
            spec: *spec,
            region,
            stream: Workload::new(spec.pattern, pages, spec.accesses, spec.write_every, spec.seed),
            sums: vec![0; pages as usize],
            versions: vec![0; pages as usize],
            buf: alloc::boxed::Box::new([0; 4096]),
            done: 0,
            mismatches: 0,
            dirty_zero_fills: 0,
            lost: vec![false; pages as usize],
            filled: vec![false; pages as usize],
            lost_accesses: 0,
            samples: Vec::new(),
            start: rdtsc(),
            name: super::swap::config_name(&spec.swap),
            total: pages + spec.accesses,
            picture_cycles: 0,
            series: Vec::new(),
        })
    }

    /// Make the next access; `false` once the stream is done.
    pub fn step(&mut self) -> bool {
        let Some(a) = self.stream.next() else { return false };
        let i = self.done;
        self.done += 1;
        self.picture_cycles += super::picture::step(&self.name, i, self.total);
        if i > 0 && i.is_multiple_of(series_every(self.total)) {
            self.series.push(series_point(i));
        }
        if self.spec.swap.tmem.is_some()
            && i.is_multiple_of(SAMPLE_EVERY)
            && i > 0
            && let Some(t) = crate::zcache::stats()
        {
            {
                self.samples.push(Sample {
                    access: i,
                    pool_pages: t.pool_pages,
                    stored_pages: t.stored_pages,
                    fragmentation: crate::zcache::fragmentation(),
                });
            }
        }
        let page = a.page as usize;
        // Copies through the region's addresses: a page that is not present faults in on the way.
        if let Err(e) = self.region.read(a.page, &mut self.buf) {
            self.failed(a.page, e, "unreadable");
            return true;
        }
        if self.lost[page] {
            // A lost page read back bytes: they cannot be its own.
            self.mismatches += 1;
            log::error!("swap: page {} was lost but read back", a.page);
            return true;
        }
        let fill = !self.filled[page];
        if fill {
            // The fill (the page's first access, or the first after a fill that failed): a page never
            // written must read as zeros.
            if self.buf.iter().any(|&b| b != 0) {
                self.dirty_zero_fills += 1;
            }
            self.spec.source.fill(a.page, &mut self.buf);
        } else if fnv1a64(&self.buf[..]) != self.sums[page] {
            self.mismatches += 1;
            if self.mismatches <= 5 {
                log::error!("swap: page {} came back changed (access {i})", a.page);
            }
            return true;
        } else if a.write {
            self.versions[page] += 1;
            stamp(&mut self.buf, u64::from(self.versions[page]) | (a.page << 32));
        } else {
            return true;
        }
        // The model moves on only with a write that went through: a failed one left the page as it was.
        if let Err(e) = self.region.write(a.page, &self.buf) {
            self.failed(a.page, e, "unwritable");
            if !fill {
                self.versions[page] -= 1;
            }
        } else {
            self.sums[page] = fnv1a64(&self.buf[..]);
            self.filled[page] = true;
        }
        true
    }

    /// An access to `page` failed: a lost page is counted (once per page, every access); anything else
    /// is a mismatch.
    fn failed(&mut self, page: u64, e: crate::mm::region::RegionError, what: &str) {
        // A refused fault is a lost page only if the PTE says so (the lost marker): anything else that
        // failed the access (no frame even after reclaiming, say) is a failure of the run.
        let marked = self.region.entry(page).is_ok_and(|p| p.raw() == swap::entry::LOST);
        if let crate::mm::region::RegionError::PageLost { .. } = e
            && marked
        {
            self.lost_accesses += 1;
            self.lost[page as usize] = true;
        } else {
            log::error!("swap: page {page} {what}: {e:?}");
            self.mismatches += 1;
        }
    }

    /// What this run was started with.
    /// The time series recorded so far (`zstats::SwapRunReport::series`).
    pub fn series(&self) -> &[zstats::SeriesPoint] {
        &self.series
    }

    pub fn spec(&self) -> &RunSpec {
        &self.spec
    }

    /// TSC cycles since the run started.
    pub fn cycles(&self) -> u64 {
        rdtsc() - self.start
    }

    /// Accesses the stream makes in all: the fill, then `spec.accesses`.
    pub fn total_accesses(&self) -> u64 {
        self.spec.swap.region_pages + self.spec.accesses
    }

    /// The checks so far.
    pub fn progress(&self) -> Progress {
        Progress {
            accesses: self.done,
            mismatches: self.mismatches,
            dirty_zero_fills: self.dirty_zero_fills,
            pages_lost: self.lost.iter().filter(|&&l| l).count() as u64,
            lost_accesses: self.lost_accesses,
        }
    }

    /// Tear the region down and report.
    pub fn finish(mut self) -> Result<RunResult, SwapError> {
        self.series.push(series_point(self.done));
        // The memory picture's redraws are not the workload's time.
        let cycles = (rdtsc() - self.start).saturating_sub(self.picture_cycles);
        // Let go of the region before the swapper tears it down, so its claim ends with the swapper.
        drop(self.region);
        let f = crate::swap::uninstall().ok_or(SwapError::NotInstalled)?;
        if let Some(e) = f.error {
            return Err(e);
        }
        Ok(RunResult {
            spec: self.spec,
            stats: f.stats,
            tmem: f.tmem,
            tmem_after: f.tmem_after,
            zram: f.zram,
            zram_after: f.zram_after,
            tmem_index_bytes: f.tmem_index_bytes,
            zram_table_bytes: f.zram_table_bytes,
            samples: self.samples,
            series: self.series,
            accesses: self.done,
            mismatches: self.mismatches,
            dirty_zero_fills: self.dirty_zero_fills,
            pages_lost: self.lost.iter().filter(|&&l| l).count() as u64,
            lost_accesses: self.lost_accesses,
            cycles,
        })
    }
}

/// Run `spec` to the end. `Err` when the swap subsystem could not start or its teardown found damage; a
/// fault the handler cannot resolve is fatal (the access cannot complete) and logged with its reason. A
/// mismatch is not an error here but a count the caller checks.
pub fn run(spec: &RunSpec) -> Result<RunResult, SwapError> {
    let mut r = SwapRun::start(spec)?;
    while r.step() {}
    r.finish()
}

//! The swap workload on several CPUs at once: one worker per CPU over one swap region, every access
//! checked.
//!
//! # Two ways to share the region
//!
//! | [`Sharing`] | pages a worker touches | bytes of a page it owns |
//! |---|---|---|
//! | `Split` | its own slice: worker `w` of `n` has pages `w·P/n .. (w+1)·P/n` | all 4096 |
//! | `Shared` | every page of the region | its stripe: `4096 / n` bytes at `w · 4096 / n` |
//!
//! In `Split` the CPUs contend only for the swapper, tmem and the frame allocator. In `Shared` every
//! page is used by every CPU at once, so reclaim on one CPU unmaps pages the others are reading and
//! writing: the TLB shootdown (`arch::tlb`), the fault path waiting for another CPU's lock
//! (`arch::lock`) and the atomic PTE exchange (`mm::paging`) are what keep every byte. Each worker
//! checks only its own bytes, which no other CPU writes, so a check never races with a legitimate
//! write; a lost write or a torn swap-in of any CPU's stripe still shows up, to that stripe's owner.
//!
//! # One worker's run
//!
//! As [`super::swap_run`]: a fill (each page once, in order: the stripe must read as zeros, then gets
//! the page source's bytes; a fill whose write failed is made again at the page's next access), then
//! `accesses` accesses in the pattern (seed + worker index), one in `write_every` a write that stamps a
//! new version. Each access reads the owned bytes back through the
//! region (faulting the page in if needed) and compares their FNV-1a with the last written; any
//! difference is a mismatch, and a run must end with none.
//!
//! Example: `swap_cpus=4 swap_sharing=shared` on a 3072-page region: four workers each make 3072 fill
//! accesses and 12288 more, each on its 1024-byte stripe of every page.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use fnv1a::fnv1a64;
use spin::Mutex;
use swap::Pattern;
use swap::pattern::Workload;

use super::swap_run::PageSource;
use crate::arch::cpu::{self, MAX_CPUS};
use crate::arch::smp;
use crate::arch::tsc::rdtsc;
use crate::mm::region::Region;
use crate::swap::{Finished, SwapConfig, SwapError};

/// How the workers share the region (module header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    Split,
    Shared,
}

impl Sharing {
    pub fn name(self) -> &'static str {
        match self {
            Sharing::Split => "split",
            Sharing::Shared => "shared",
        }
    }
}

/// One multi-CPU run.
#[derive(Debug, Clone, Copy)]
pub struct SmpRunSpec {
    pub swap: SwapConfig,
    pub pattern: Pattern,
    /// Accesses of each worker after its fill.
    pub accesses: u64,
    /// One access in this many writes (0: reads only).
    pub write_every: u64,
    pub seed: u64,
    pub source: PageSource,
    /// Workers: the first `cpus` online CPUs, the boot CPU first.
    pub cpus: usize,
    pub sharing: Sharing,
}

/// What one worker did.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerResult {
    pub cpu: usize,
    /// Accesses made, fill included.
    pub accesses: u64,
    /// Owned bytes that came back changed (must be 0).
    pub mismatches: u64,
    /// Owned bytes that were not zero at their first touch (must be 0).
    pub dirty_zero_fills: u64,
    /// Accesses that failed because the page was lost (its swapped copy could not be read back).
    pub lost_accesses: u64,
    /// TSC cycles from its first access to its last.
    pub cycles: u64,
}

/// A whole run: every worker, and what the swapper found at teardown.
#[derive(Debug)]
pub struct SmpRunResult {
    pub spec: SmpRunSpec,
    pub workers: Vec<WorkerResult>,
    pub finished: Finished,
    /// TSC cycles of the whole run (workers started to all finished).
    pub cycles: u64,
}

impl SmpRunResult {
    pub fn mismatches(&self) -> u64 {
        self.workers.iter().map(|w| w.mismatches + w.dirty_zero_fills).sum()
    }

    pub fn accesses(&self) -> u64 {
        self.workers.iter().map(|w| w.accesses).sum()
    }
}

/// The job every worker reads (a mailbox holds only a function pointer).
struct Job {
    spec: SmpRunSpec,
    region: Arc<Region>,
    /// Worker index of each CPU that takes part.
    worker_of: [Option<usize>; MAX_CPUS],
    results: Mutex<Vec<WorkerResult>>,
}

static JOB: Mutex<Option<Arc<Job>>> = Mutex::new(None);

/// Why a run could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmpRunError {
    Swap(SwapError),
    /// Fewer CPUs are up than the run asks for.
    TooFewCpus {
        asked: usize,
        up: usize,
    },
    /// Split mode with fewer region pages than workers, or no worker at all.
    BadSpec(&'static str),
}

impl core::fmt::Display for SmpRunError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SmpRunError::Swap(e) => write!(f, "{e}"),
            SmpRunError::TooFewCpus { asked, up } => write!(f, "{asked} workers asked for, {up} CPUs up"),
            SmpRunError::BadSpec(why) => write!(f, "{why}"),
        }
    }
}

/// Run `spec`: install the swapper, run one worker on each of the first `spec.cpus` CPUs, tear down.
pub fn run(spec: &SmpRunSpec) -> Result<SmpRunResult, SmpRunError> {
    let up = smp::online_count();
    if spec.cpus == 0 {
        return Err(SmpRunError::BadSpec("at least one worker"));
    }
    if spec.cpus > up {
        return Err(SmpRunError::TooFewCpus { asked: spec.cpus, up });
    }
    if spec.sharing == Sharing::Split && spec.swap.region_pages < spec.cpus as u64 {
        return Err(SmpRunError::BadSpec("split mode needs a region page per worker"));
    }
    crate::swap::install(spec.swap).map_err(SmpRunError::Swap)?;
    let region = crate::swap::region().ok_or(SmpRunError::Swap(SwapError::NotInstalled))?;
    let mut worker_of = [None; MAX_CPUS];
    let me = cpu::id();
    worker_of[me] = Some(0);
    for (w, c) in (0..MAX_CPUS).filter(|&c| c != me && smp::online(c)).take(spec.cpus - 1).enumerate() {
        worker_of[c] = Some(w + 1);
    }
    *JOB.lock() = Some(Arc::new(Job { spec: *spec, region, worker_of, results: Mutex::new(Vec::new()) }));
    let start = rdtsc();
    smp::run_on_first(spec.cpus, worker);
    let cycles = rdtsc() - start;
    let job = JOB.lock().take().expect("the job is still posted");
    let mut workers = core::mem::take(&mut *job.results.lock());
    workers.sort_by_key(|w| w.cpu);
    // Let go of the region before the swapper tears it down (its claim ends with the swapper).
    drop(job);
    let finished = crate::swap::uninstall().ok_or(SmpRunError::Swap(SwapError::NotInstalled))?;
    Ok(SmpRunResult { spec: *spec, workers, finished, cycles })
}

/// One CPU's part (runs on every CPU of the run through `smp::run_on_first`).
fn worker(cpu: usize) {
    let Some(job) = JOB.lock().clone() else { return };
    let Some(w) = job.worker_of[cpu] else { return };
    let r = work(&job, w, cpu);
    job.results.lock().push(r);
}

/// The pages and bytes worker `w` owns: (first page, pages, byte offset, bytes).
fn share(spec: &SmpRunSpec, w: usize) -> (u64, u64, usize, usize) {
    let n = spec.cpus as u64;
    match spec.sharing {
        Sharing::Split => {
            let per = spec.swap.region_pages / n;
            (w as u64 * per, per, 0, 4096)
        }
        Sharing::Shared => {
            // Stripes of whole 8-byte words, so a worker's version stamp is never split.
            let stripe = (4096 / spec.cpus) & !7;
            (0, spec.swap.region_pages, w * stripe, stripe)
        }
    }
}

fn work(job: &Job, w: usize, cpu: usize) -> WorkerResult {
    let spec = &job.spec;
    let (first, pages, offset, len) = share(spec, w);
    let stream = Workload::new(spec.pattern, pages, spec.accesses, spec.write_every, spec.seed + w as u64);
    let mut sums = vec![0u64; pages as usize];
    let mut versions = vec![0u64; pages as usize];
    // As in swap_run: a page whose fill did not go through is filled on its next access.
    let mut filled = vec![false; pages as usize];
    let mut page_buf = [0u8; 4096];
    let mut mine = vec![0u8; len];
    let mut r = WorkerResult { cpu, ..WorkerResult::default() };
    let start = rdtsc();
    for a in stream {
        let i = r.accesses;
        r.accesses += 1;
        let page = first + a.page;
        if let Err(e) = job.region.read_at(page, offset, &mut mine) {
            if lost(&job.region, page, e) {
                r.lost_accesses += 1;
            } else {
                log::error!("swap smp: cpu{cpu}: page {page} unreadable: {e:?}");
                r.mismatches += 1;
            }
            continue;
        }
        let k = a.page as usize;
        let fill = !filled[k];
        if fill {
            if mine.iter().any(|&b| b != 0) {
                r.dirty_zero_fills += 1;
            }
            spec.source.fill(page, &mut page_buf);
            mine.copy_from_slice(&page_buf[offset..offset + len]);
        } else if fnv1a64(&mine) != sums[k] {
            r.mismatches += 1;
            if r.mismatches <= 3 {
                log::error!("swap smp: cpu{cpu}: bytes {offset}..+{len} of page {page} came back changed (access {i})");
            }
            continue;
        } else if a.write {
            versions[k] += 1;
            let stamp = versions[k] | (page << 24) | ((w as u64) << 56);
            mine[..8].copy_from_slice(&stamp.to_le_bytes());
        } else {
            continue;
        }
        // The model moves on only with a write that went through: a failed one left the bytes as they were.
        if let Err(e) = job.region.write_at(page, offset, &mine) {
            if lost(&job.region, page, e) {
                r.lost_accesses += 1;
            } else {
                log::error!("swap smp: cpu{cpu}: page {page} unwritable: {e:?}");
                r.mismatches += 1;
            }
            if !fill {
                versions[k] -= 1;
            }
        } else {
            sums[k] = fnv1a64(&mine);
            filled[k] = true;
        }
    }
    r.cycles = rdtsc() - start;
    r
}

/// Whether an access failed because its page is lost (the PTE holds the lost marker), and not for
/// another reason, which is a failure of the run.
fn lost(region: &Region, page: u64, e: crate::mm::region::RegionError) -> bool {
    matches!(e, crate::mm::region::RegionError::PageLost { .. })
        && region.entry(page).is_ok_and(|p| p.raw() == swap::entry::LOST)
}

//! The file workload of `cargo xtask run --workload files|all` and the `cleancache` test kernel: reads
//! over a file set a few times larger than the page cache (`fs::pagecache`), with cleancache below it.
//!
//! The file disk never changes, so the workload *pretends* files change: every so often it invalidates
//! one (`FileCache::invalidate_file` → `zcache::cleancache::invalidate_inode`), as a kernel does when a
//! file is rewritten. From then on none of that file's pages may come from tmem until read from the disk
//! again; the run counts any that do (`stale_hits`, which must stay 0).
//!
//! Every page read is compared with the page's FNV-1a, computed when the run starts from the disk itself
//! after checking each whole file against the checksum in the file table.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::vec::Vec;

use compress::Algorithm;
use fnv1a::{Fnv1a, fnv1a64};
use kopts::Settings;
use pagecache::{PageCacheError, PageCacheStats, PageKey, Source};
use pagedata::Rng;
use tmem::cleancache::CleancacheStats;
use tmem::{Backend, TmemStats};
use zstats::{FileRunReport, FilesReport, Report};

use crate::arch::tsc::rdtsc;
use crate::fs::pagecache::FileCache;
use crate::fs::{FsError, MountError};
use crate::zcache::ZcacheError;

use super::report::{self, Failures};

/// How one file workload is set up.
#[derive(Debug, Clone, Copy)]
pub struct FileSpec {
    /// Pages the page cache may hold.
    pub cache_pages: usize,
    /// The file set is about this many times the cache (3–5 in the issue).
    pub set_factor: u64,
    /// cleancache's tmem backend, or `None` for no cleancache.
    pub cleancache: Option<Backend>,
    /// tmem's limit when this run installs zcache itself.
    pub tmem_limit_pages: u64,
    /// Operations: each is a scan of one file or a burst of 16 random page reads.
    pub ops: u64,
    /// Invalidate a random file every this many operations (0: never).
    pub invalidate_every: u64,
    pub seed: u64,
    pub algorithm: Algorithm,
    /// Workers, one per CPU (`files_cpus`): 1 runs on the boot CPU alone; more share one page cache
    /// ([`run`] → `run_smp`), each making its share of `ops` with its own random stream.
    pub cpus: usize,
}

/// Why a file run could not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRunError {
    Mount(MountError),
    Fs(FsError),
    /// A file's contents do not match the table's checksum.
    Checksum {
        inode: u32,
    },
    /// More workers than CPUs up.
    TooFewCpus {
        asked: usize,
        up: usize,
    },
    /// The disk has no non-empty file.
    NoFiles,
    Zcache(ZcacheError),
    /// The page cache could not serve a read (a disk error, or a frame it could not map).
    PageCache(PageCacheError),
}

impl core::fmt::Display for FileRunError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FileRunError::Mount(e) => write!(f, "mount: {e}"),
            FileRunError::Fs(e) => write!(f, "{e}"),
            FileRunError::Checksum { inode } => write!(f, "file {inode} does not match the table's checksum"),
            FileRunError::NoFiles => write!(f, "the file disk has no non-empty file"),
            FileRunError::TooFewCpus { asked, up } => {
                write!(f, "{asked} workers asked for, {up} CPUs up (QEMU -smp, `cargo xtask run --smp N`)")
            }
            FileRunError::Zcache(e) => write!(f, "zcache: {e}"),
            FileRunError::PageCache(e) => write!(f, "page cache: {e}"),
        }
    }
}

/// What a file run did.
#[derive(Debug, Clone)]
pub struct FileResult {
    pub spec: FileSpec,
    /// Files and pages in the set.
    pub files: usize,
    pub set_pages: u64,
    pub reads: u64,
    pub cache: PageCacheStats,
    /// Pages read from the file disk by the workload (the verification pass not included).
    pub disk_reads: u64,
    pub cleancache: Option<CleancacheStats>,
    /// tmem when the workload ended and after teardown.
    pub tmem: Option<TmemStats>,
    pub tmem_after: Option<TmemStats>,
    /// Reads whose bytes did not match (must be 0).
    pub mismatches: u64,
    /// Reads of an invalidated page served by cleancache before a disk read (must be 0).
    pub stale_hits: u64,
    /// Files invalidated.
    pub invalidations: u64,
    pub cycles: u64,
    /// The page cache's lock when several CPUs shared it (`files_cpus` > 1): acquisitions, contentions.
    pub lock: Option<crate::arch::lock::LockStats>,
}

/// A file workload in progress ([`FileRun::step`] makes one operation).
pub struct FileRun {
    spec: FileSpec,
    cache: FileCache,
    /// (inode, pages) of the set.
    set: Vec<(u32, u64)>,
    /// FNV-1a of every page of the set, by set position then page.
    truth: Vec<Vec<u64>>,
    /// Pages of invalidated files not read from the disk since.
    stale: BTreeSet<PageKey>,
    rng: Rng,
    done: u64,
    reads: u64,
    mismatches: u64,
    stale_hits: u64,
    invalidations: u64,
    start: u64,
}

impl core::fmt::Debug for FileRun {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FileRun").field("done", &self.done).field("reads", &self.reads).finish()
    }
}

impl FileRun {
    /// Mount the file disk, choose the file set, check every file of it against the table (reading it
    /// once, before the counters start), set up cleancache if asked.
    pub fn start(spec: &FileSpec) -> Result<Self, FileRunError> {
        let mut disk = crate::fs::mount_files_disk().map_err(FileRunError::Mount)?;
        let target = spec.cache_pages as u64 * spec.set_factor.max(1);
        let mut set = Vec::new();
        let mut truth = Vec::new();
        let mut pages_in_set = 0;
        let mut page = [0u8; 4096];
        for inode in 0..disk.files().len() as u32 {
            if pages_in_set >= target {
                break;
            }
            let (pages, len, want) = {
                let e = disk.entry(inode).map_err(FileRunError::Fs)?;
                (e.pages(), e.len, e.fnv)
            };
            if pages == 0 || pages > u64::from(u32::MAX) {
                continue;
            }
            let mut sums = Vec::with_capacity(pages as usize);
            let mut h = Fnv1a::new();
            for i in 0..pages {
                disk.read_page(inode, i, &mut page).map_err(FileRunError::Fs)?;
                let used = (len - i * 4096).min(4096) as usize;
                h = h.write(&page[..used]);
                sums.push(fnv1a64(&page));
            }
            if h.finish() != want {
                return Err(FileRunError::Checksum { inode });
            }
            set.push((inode, pages));
            truth.push(sums);
            pages_in_set += pages;
        }
        if set.is_empty() {
            return Err(FileRunError::NoFiles);
        }
        let cache = FileCache::mount(disk, spec.cache_pages, spec.cleancache, spec.tmem_limit_pages, spec.algorithm)
            .map_err(FileRunError::Zcache)?;
        Ok(Self {
            spec: *spec,
            cache,
            set,
            truth,
            stale: BTreeSet::new(),
            rng: Rng::new(spec.seed),
            done: 0,
            reads: 0,
            mismatches: 0,
            stale_hits: 0,
            invalidations: 0,
            start: rdtsc(),
        })
    }

    /// Pages in the file set.
    pub fn set_pages(&self) -> u64 {
        self.set.iter().map(|s| s.1).sum()
    }

    fn read(&mut self, pos: usize, index: u64) -> Result<(), FileRunError> {
        let (inode, _) = self.set[pos];
        let key = PageKey::new(inode, index as u32);
        let mut out = [0u8; 4096];
        let src = self.cache.read(key, &mut out).map_err(FileRunError::PageCache)?;
        self.reads += 1;
        if fnv1a64(&out) != self.truth[pos][index as usize] {
            self.mismatches += 1;
            if self.mismatches <= 5 {
                log::error!("files: inode {inode} page {index} read wrong bytes (from {src:?})");
            }
        }
        if self.stale.remove(&key) && src == Source::Cleancache {
            self.stale_hits += 1;
        }
        Ok(())
    }

    /// The file at set position `pos` was rewritten: drop it from the cache and cleancache, and remember
    /// its pages as stale until each is read from the disk again.
    fn invalidate(&mut self, pos: usize) {
        let (inode, pages) = self.set[pos];
        self.cache.invalidate_file(inode);
        self.invalidations += 1;
        for i in 0..pages {
            self.stale.insert(PageKey::new(inode, i as u32));
        }
    }

    /// One operation: a scan of a random file, or 16 random page reads over the set; every
    /// `invalidate_every` operations a random file is invalidated first. `Ok(false)` once done.
    pub fn step(&mut self) -> Result<bool, FileRunError> {
        if self.done >= self.spec.ops {
            return Ok(false);
        }
        self.done += 1;
        if self.spec.invalidate_every != 0 && self.done.is_multiple_of(self.spec.invalidate_every) {
            let pos = self.rng.below(self.set.len());
            self.invalidate(pos);
        }
        if self.rng.below(2) == 0 {
            let pos = self.rng.below(self.set.len());
            for i in 0..self.set[pos].1 {
                self.read(pos, i)?;
            }
        } else {
            for _ in 0..16 {
                let pos = self.rng.below(self.set.len());
                let index = self.rng.below(self.set[pos].1 as usize) as u64;
                self.read(pos, index)?;
            }
        }
        Ok(true)
    }

    /// Whether cleancache holds any page of an invalidated file (checked right after invalidation by
    /// the test kernel: it must not).
    pub fn cleancache_holds_stale(&self) -> bool {
        self.stale.iter().any(|k| self.cache.cleancache_holds(*k))
    }

    /// The run so far as a report object (the serial shell's `stats`), without ending it.
    pub fn live_report(&self) -> FileRunReport {
        let mut out = FileRunReport {
            cleancache: self.spec.cleancache.map_or("off", |b| b.name()).into(),
            files: self.set.len() as u64,
            set_pages: self.set_pages(),
            cache_pages: self.spec.cache_pages as u64,
            reads: self.reads,
            mismatches: self.mismatches,
            stale_hits: self.stale_hits,
            ms: crate::arch::tsc::centi_ns(rdtsc() - self.start) / 100_000_000,
            cleancache_stats: crate::zcache::cleancache::stats().as_ref().map(report::cleancache),
            tmem_stats: crate::zcache::stats().as_ref().map(report::tmem),
            cpus: 1,
            ..Default::default()
        };
        report::page_cache_into(&self.cache.stats(), &mut out);
        out
    }

    /// Operations made so far, and of how many.
    pub fn ops(&self) -> (u64, u64) {
        (self.done, self.spec.ops)
    }

    /// Drop the page cache and cleancache's fs and report.
    pub fn finish(self) -> FileResult {
        let cycles = rdtsc() - self.start;
        let disk_reads = self.cache.disk_reads();
        let set_pages = self.set_pages();
        let u = self.cache.unmount();
        FileResult {
            spec: self.spec,
            files: self.set.len(),
            set_pages,
            reads: self.reads,
            cache: u.cache,
            disk_reads,
            cleancache: u.cleancache,
            tmem: u.tmem,
            tmem_after: u.tmem_after,
            mismatches: self.mismatches,
            stale_hits: self.stale_hits,
            invalidations: self.invalidations,
            cycles,
            lock: None,
        }
    }
}

/// Run `spec` to the end (on `spec.cpus` CPUs when that is more than one).
pub fn run(spec: &FileSpec) -> Result<FileResult, FileRunError> {
    if spec.cpus > 1 {
        return run_smp(spec);
    }
    let mut r = FileRun::start(spec)?;
    while r.step()? {}
    Ok(r.finish())
}

// ------------------------------------------------------------------------------------------------
// Several CPUs over one page cache
// ------------------------------------------------------------------------------------------------
//
// The page cache is one structure, as a file's page cache is in Linux (`address_space`): the workers
// share it behind one lock (`files`, rank 15 in `arch::lock`'s order: cleancache's zcache lock, the
// disk and the frame allocator are taken inside it). Each worker draws its own operations — which file
// to scan, which pages to read, when to invalidate — from its own random stream, outside the lock, and
// takes the lock for each page read and each invalidation. The reference checksums and the stale set
// live with the cache, so every read is still checked against the truth and a stale hit is still
// caught, whichever CPU invalidated the file.

struct FileJob {
    run: crate::arch::lock::Lock<FileRun>,
    /// (inode, pages) of the set, for drawing operations without the lock.
    set: Vec<(u32, u64)>,
    spec: FileSpec,
    worker_of: [Option<usize>; crate::arch::cpu::MAX_CPUS],
    error: spin::Mutex<Option<FileRunError>>,
}

static FILE_JOB: spin::Mutex<Option<alloc::sync::Arc<FileJob>>> = spin::Mutex::new(None);

fn run_smp(spec: &FileSpec) -> Result<FileResult, FileRunError> {
    use crate::arch::{cpu, smp};
    let up = smp::online_count();
    if spec.cpus > up {
        return Err(FileRunError::TooFewCpus { asked: spec.cpus, up });
    }
    let run = FileRun::start(spec)?;
    let set = run.set.clone();
    let mut worker_of = [None; cpu::MAX_CPUS];
    let me = cpu::id();
    worker_of[me] = Some(0);
    for (w, c) in (0..cpu::MAX_CPUS).filter(|&c| c != me && smp::online(c)).take(spec.cpus - 1).enumerate() {
        worker_of[c] = Some(w + 1);
    }
    let job = alloc::sync::Arc::new(FileJob {
        run: crate::arch::lock::Lock::new("files", 15, run),
        set,
        spec: *spec,
        worker_of,
        error: spin::Mutex::new(None),
    });
    *FILE_JOB.lock() = Some(job.clone());
    let start = rdtsc();
    smp::run_on_first(spec.cpus, file_worker);
    let cycles = rdtsc() - start;
    FILE_JOB.lock().take();
    let job = alloc::sync::Arc::try_unwrap(job).unwrap_or_else(|_| panic!("a file worker kept the job"));
    if let Some(e) = job.error.lock().take() {
        return Err(e);
    }
    let lock = job.run.stats();
    let mut run = job.run.into_inner();
    run.start = rdtsc() - cycles;
    Ok(FileResult { lock: Some(lock), ..run.finish() })
}

fn file_worker(cpu: usize) {
    let Some(job) = FILE_JOB.lock().clone() else { return };
    let Some(w) = job.worker_of[cpu] else { return };
    let spec = &job.spec;
    let n = spec.cpus as u64;
    // Worker w makes ops w, w + n, w + 2n, … of the run: together exactly `ops`.
    let mine = spec.ops / n + u64::from((w as u64) < spec.ops % n);
    let mut rng = Rng::new(spec.seed + 1 + w as u64);
    let set = &job.set;
    let fail = |e: FileRunError| {
        job.error.lock().get_or_insert(e);
    };
    for k in 0..mine {
        let op = k * n + w as u64 + 1;
        if spec.invalidate_every != 0 && op.is_multiple_of(spec.invalidate_every) {
            let pos = rng.below(set.len());
            job.run.lock().invalidate(pos);
        }
        let reads: Vec<(usize, u64)> = if rng.below(2) == 0 {
            let pos = rng.below(set.len());
            (0..set[pos].1).map(|i| (pos, i)).collect()
        } else {
            (0..16)
                .map(|_| {
                    let pos = rng.below(set.len());
                    (pos, rng.below(set[pos].1 as usize) as u64)
                })
                .collect()
        };
        for (pos, index) in reads {
            if let Err(e) = job.run.lock().read(pos, index) {
                return fail(e);
            }
        }
        job.run.lock().done += 1;
    }
}

/// One line per run, for people.
pub fn print_run(r: &FileResult) {
    let c = &r.cache;
    crate::println!(
        "  files {:<8} {} reads of {} files ({} pages, cache {}): hits {}, misses {} = cleancache {} + disk {}; \
         invalidated {} files; mismatches {}, stale {} | {} ms{}",
        match r.spec.cleancache {
            None => "off",
            Some(b) => b.name(),
        },
        r.reads,
        r.files,
        r.set_pages,
        r.spec.cache_pages,
        c.hits,
        c.misses,
        c.cleancache_hits,
        r.disk_reads,
        r.invalidations,
        r.mismatches,
        r.stale_hits,
        crate::arch::tsc::centi_ns(r.cycles) / 100_000_000,
        match r.lock {
            Some(l) => format!(
                " on {} CPUs (page cache lock: {} acquisitions, {} contentions)",
                r.spec.cpus, l.acquisitions, l.contentions
            ),
            None => alloc::string::String::new(),
        },
    );
    if let (Some(cc), Some(t)) = (&r.cleancache, &r.tmem) {
        crate::println!(
            "  {:<14} cleancache: puts {} (refused {}), gets {} hit / {} missed, invalidates {} pages + {} inodes; \
             tmem: {} ephemeral pages in {} pool pages, ephemeral drops {}",
            "",
            cc.puts,
            cc.failed_puts,
            cc.succ_gets,
            cc.failed_gets,
            cc.invalidates,
            cc.invalidated_inodes,
            t.ephemeral_pages,
            t.pool_pages,
            t.ephemeral_drops
        );
    }
}

/// One run as a report object.
pub fn run_report(r: &FileResult) -> FileRunReport {
    let mut out = FileRunReport {
        cleancache: r.spec.cleancache.map_or("off", |b| b.name()).into(),
        files: r.files as u64,
        set_pages: r.set_pages,
        cache_pages: r.spec.cache_pages as u64,
        reads: r.reads,
        mismatches: r.mismatches,
        stale_hits: r.stale_hits,
        ms: crate::arch::tsc::centi_ns(r.cycles) / 100_000_000,
        cleancache_stats: r.cleancache.as_ref().map(report::cleancache),
        tmem_stats: r.tmem.as_ref().map(report::tmem),
        cpus: r.spec.cpus.max(1) as u64,
        ..Default::default()
    };
    report::page_cache_into(&r.cache, &mut out);
    out
}

/// What must hold at the end of every file run: every page read intact, no stale hit, tmem emptied.
pub fn check_run(r: &FileResult, failures: &mut Failures) {
    let what = format!("files with cleancache {}", r.spec.cleancache.map_or("off", |b| b.name()));
    failures.nonzero(r.mismatches, || format!("{what}: {} reads returned wrong bytes", r.mismatches));
    failures.nonzero(r.stale_hits, || format!("{what}: {} invalidated pages served from tmem", r.stale_hits));
    if let Some(t) = r.tmem_after.filter(|t| t.ephemeral_pages != 0) {
        failures.add(format!("{what}: tmem kept {} cleancache pages after umount", t.ephemeral_pages));
    }
}

/// Per-page reference checksums are built from 4 KiB pages; keep the truth table honest about it.
const _: () = assert!(pagecache::PAGE_SIZE == 4096);

/// The file workload the options ask for (`files_cache`, `files_factor`, `files_ops`,
/// `files_invalidate_every`), with cleancache off; the caller sets `cleancache`.
pub fn spec_from(settings: &Settings, algorithm: Algorithm, tmem_limit_pages: u64) -> FileSpec {
    FileSpec {
        cache_pages: settings.files_cache() as usize,
        set_factor: settings.files_factor(),
        cleancache: None,
        tmem_limit_pages,
        ops: settings.files_ops(),
        invalidate_every: settings.files_invalidate_every().unwrap_or(0),
        seed: 42,
        algorithm,
        cpus: settings.files_cpus() as usize,
    }
}

/// `cargo xtask run --workload files`: the file workload without and with cleancache; fills the report's
/// `files` member.
pub fn run_demo(facts: &crate::init::BootFacts, report: &mut Report, failures: &mut Failures) {
    let settings = &facts.settings;
    let alg = super::pools::algorithm(settings);
    let limit = settings.tmem_limit_pages(crate::mm::frames::stats().managed);
    let off = spec_from(settings, alg, limit);
    let on = FileSpec { cleancache: Some(super::swap::backend(settings.cleancache())), ..off };
    crate::println!(
        "files: page cache of {} pages over a file set of up to {}x its size; {} operations (a file scan or 16 \
         random reads each), a file invalidated every {}; tmem limit {limit} pages",
        off.cache_pages,
        off.set_factor,
        off.ops,
        off.invalidate_every
    );
    let mut out = FilesReport::default();
    let mut reads = [None; 2];
    for (i, spec) in [off, on].iter().enumerate() {
        match run(spec) {
            Ok(r) => {
                print_run(&r);
                check_run(&r, failures);
                reads[i] = Some(r.disk_reads);
                out.runs.push(run_report(&r));
            }
            Err(e) => {
                failures.add(format!("files with cleancache {}: {e}", spec.cleancache.map_or("off", |b| b.name())))
            }
        }
    }
    if let [Some(without), Some(with)] = reads {
        out.disk_reads_without = without;
        out.disk_reads_with = with;
        out.percent_avoided = zstats::percent_avoided(without, with);
        crate::println!(
            "files: with cleancache ({}): {with} disk reads instead of {without}: {:.1} % of file reads avoided",
            on.cleancache.map_or("off", |b| b.name()),
            out.percent_avoided
        );
    }
    report.files = Some(out);
}

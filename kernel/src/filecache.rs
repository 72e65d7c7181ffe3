//! The file side of zcache: a bounded page cache over the read-only file disk, with cleancache below it,
//! and the file workload of `cargo xtask run --workload files|all` and the `cleancache` test kernel.
//!
//! # A read
//!
//! ```text
//!  FileRun::read(file, index) ──► PageCache::read (kernel/libs/pagecache)
//!     hit  ──► copy out of the cached frame (kmap)
//!     miss ──► full? evict the LRU page ──► KernelLower::evicted ──► Cleancache::put_page (tmem, ephemeral)
//!          ──► KernelLower::cleancache_get ──► Cleancache::get_page: a hit removes tmem's copy (exclusive)
//!          ──► else KernelLower::read_disk ──► FileDisk::read_page (virtio-blk "files")
//! ```
//!
//! The file disk never changes, so the workload *pretends* files change: every so often it invalidates
//! one (`PageCache::invalidate_file` → `Cleancache::invalidate_inode`), as a kernel does when a file is
//! rewritten. From then on none of that file's pages may come from tmem until read from the disk again;
//! the run counts any that do (`stale_hits`, which must stay 0).
//!
//! Every page read is compared with the page's FNV-1a, computed when the run starts from the disk itself
//! after checking each whole file against the checksum in the file table.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use compress::Algorithm;
use pagecache::{DiskError, Lower, Page, PageCache, PageCacheError, PageCacheStats, PageKey, Source};
use pagedata::Rng;
use swap::pattern::fnv64;
use tmem::cleancache::{CleancacheStats, FsId};
use tmem::{Backend, TmemStats};

use crate::arch::tsc::rdtsc;
use crate::fs::{FileDisk, FsError, MountError};
use crate::mm::KernelMemory;
use crate::zcache;

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
    /// The disk has no non-empty file.
    NoFiles,
    Zcache(&'static str),
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
            FileRunError::Zcache(what) => write!(f, "zcache: {what}"),
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
}

/// What is below the kernel's page cache: cleancache in zcache, then the file disk.
struct KernelLower<'a> {
    disk: &'a mut FileDisk,
    fs: Option<FsId>,
    disk_reads: u64,
}

impl Lower for KernelLower<'_> {
    fn evicted(&mut self, key: PageKey, page: &Page) {
        if let Some(fs) = self.fs {
            // A refused put is normal for cleancache (tmem full, poor page): the page is on disk anyway.
            let _ = zcache::with(|z| {
                z.with_compressor(|tmem, _, cc, c| cc.put_page(tmem, c, fs, key.file.into(), key.index, page))
            });
        }
    }

    fn cleancache_get(&mut self, key: PageKey, out: &mut Page) -> bool {
        let Some(fs) = self.fs else { return false };
        let r = zcache::with(|z| {
            z.with_compressor(|tmem, _, cc, c| cc.get_page(tmem, c, fs, key.file.into(), key.index, out))
        });
        matches!(r, Some(Ok(Ok(true))))
    }

    fn read_disk(&mut self, key: PageKey, out: &mut Page) -> Result<(), DiskError> {
        self.disk_reads += 1;
        self.disk.read_page(key.file, key.index.into(), out).map_err(|e| match e {
            FsError::Disk { .. } => DiskError::Io,
            _ => DiskError::OutOfRange,
        })
    }

    fn invalidate_page(&mut self, key: PageKey) {
        if let Some(fs) = self.fs {
            zcache::with(|z| z.cleancache.invalidate_page(&mut z.tmem, fs, key.file.into(), key.index));
        }
    }

    fn invalidate_file(&mut self, file: u32) {
        if let Some(fs) = self.fs {
            zcache::with(|z| z.cleancache.invalidate_inode(&mut z.tmem, fs, file.into()));
        }
    }
}

/// A file workload in progress ([`FileRun::step`] makes one operation).
pub struct FileRun {
    spec: FileSpec,
    lower_disk: FileDisk,
    fs: Option<FsId>,
    cache: PageCache<KernelMemory>,
    /// (inode, pages) of the set.
    set: Vec<(u32, u64)>,
    /// FNV-1a of every page of the set, by set position then page.
    truth: Vec<Vec<u64>>,
    /// Pages of invalidated files not read from the disk since.
    stale: BTreeSet<PageKey>,
    rng: Rng,
    done: u64,
    reads: u64,
    disk_reads: u64,
    mismatches: u64,
    stale_hits: u64,
    invalidations: u64,
    owns_zcache: bool,
    start: u64,
}

impl core::fmt::Debug for FileRun {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FileRun").field("done", &self.done).field("reads", &self.reads).finish()
    }
}

/// FNV-1a 64 continued over more bytes (the file table's checksum covers a whole file).
fn fnv_continue(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

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
            let mut h = FNV_START;
            for i in 0..pages {
                disk.read_page(inode, i, &mut page).map_err(FileRunError::Fs)?;
                let used = (len - i * 4096).min(4096) as usize;
                h = fnv_continue(h, &page[..used]);
                sums.push(fnv64(&page));
            }
            if h != want {
                return Err(FileRunError::Checksum { inode });
            }
            set.push((inode, pages));
            truth.push(sums);
            pages_in_set += pages;
        }
        if set.is_empty() {
            return Err(FileRunError::NoFiles);
        }
        let mut owns_zcache = false;
        let fs = match spec.cleancache {
            None => None,
            Some(backend) => {
                if !zcache::installed() {
                    zcache::install(spec.tmem_limit_pages, spec.algorithm).map_err(|_| FileRunError::Zcache("busy"))?;
                    owns_zcache = true;
                }
                match zcache::init_cleancache_fs(Some(backend)).and_then(|r| r.ok()) {
                    Some(fs) => Some(fs),
                    None => {
                        if owns_zcache {
                            zcache::uninstall();
                        }
                        return Err(FileRunError::Zcache("cleancache init_fs refused"));
                    }
                }
            }
        };
        // SAFETY: the page cache reaches only the frames it allocates through this memory.
        let mem = unsafe { KernelMemory::new() };
        Ok(Self {
            spec: *spec,
            lower_disk: disk,
            fs,
            cache: PageCache::new(mem, spec.cache_pages),
            set,
            truth,
            stale: BTreeSet::new(),
            rng: Rng::new(spec.seed),
            done: 0,
            reads: 0,
            disk_reads: 0,
            mismatches: 0,
            stale_hits: 0,
            invalidations: 0,
            owns_zcache,
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
        let mut lower = KernelLower { disk: &mut self.lower_disk, fs: self.fs, disk_reads: 0 };
        let src = self.cache.read(key, &mut out, &mut lower).map_err(FileRunError::PageCache);
        self.disk_reads += lower.disk_reads;
        let src = src?;
        self.reads += 1;
        if fnv64(&out) != self.truth[pos][index as usize] {
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

    /// One operation: a scan of a random file, or 16 random page reads over the set; every
    /// `invalidate_every` operations a random file is invalidated first. `Ok(false)` once done.
    pub fn step(&mut self) -> Result<bool, FileRunError> {
        if self.done >= self.spec.ops {
            return Ok(false);
        }
        self.done += 1;
        if self.spec.invalidate_every != 0 && self.done.is_multiple_of(self.spec.invalidate_every) {
            let pos = self.rng.below(self.set.len());
            let (inode, pages) = self.set[pos];
            let mut lower = KernelLower { disk: &mut self.lower_disk, fs: self.fs, disk_reads: 0 };
            self.cache.invalidate_file(inode, &mut lower);
            self.invalidations += 1;
            for i in 0..pages {
                self.stale.insert(PageKey::new(inode, i as u32));
            }
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
        let Some(fs) = self.fs else { return false };
        zcache::with(|z| self.stale.iter().any(|k| z.cleancache.contains(&z.tmem, fs, k.file.into(), k.index)))
            .unwrap_or(false)
    }

    /// Drop the page cache and cleancache's fs and report.
    pub fn finish(mut self) -> FileResult {
        let cycles = rdtsc() - self.start;
        let cache = self.cache.stats();
        let tmem = self.fs.and(zcache::stats());
        let cleancache = self.fs.and(zcache::with(|z| z.cleancache.stats()));
        self.cache.clear();
        if let Some(fs) = self.fs {
            zcache::with(|z| z.cleancache.invalidate_fs(&mut z.tmem, fs));
        }
        let tmem_after = self.fs.and(zcache::stats());
        if self.owns_zcache {
            zcache::uninstall();
        }
        FileResult {
            spec: self.spec,
            files: self.set.len(),
            set_pages: self.set.iter().map(|s| s.1).sum(),
            reads: self.reads,
            cache,
            disk_reads: self.disk_reads,
            cleancache,
            tmem,
            tmem_after,
            mismatches: self.mismatches,
            stale_hits: self.stale_hits,
            invalidations: self.invalidations,
            cycles,
        }
    }
}

/// Run `spec` to the end.
pub fn run(spec: &FileSpec) -> Result<FileResult, FileRunError> {
    let mut r = FileRun::start(spec)?;
    while r.step()? {}
    Ok(r.finish())
}

/// One line per run, for people.
pub fn print_run(r: &FileResult) {
    let c = &r.cache;
    crate::println!(
        "  files {:<8} {} reads of {} files ({} pages, cache {}): hits {}, misses {} = cleancache {} + disk {}; \
         invalidated {} files; mismatches {}, stale {} | {} ms",
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

/// JSON of one run.
pub fn run_json(r: &FileResult) -> String {
    let c = &r.cache;
    let mut j = format!(
        "{{\"cleancache\":\"{}\",\"files\":{},\"set_pages\":{},\"cache_pages\":{},\"reads\":{},\"hits\":{},\
         \"misses\":{},\"cleancache_hits\":{},\"disk_reads\":{},\"evictions\":{},\"invalidated_files\":{},\
         \"mismatches\":{},\"stale_hits\":{}",
        r.spec.cleancache.map_or("off", |b| b.name()),
        r.files,
        r.set_pages,
        r.spec.cache_pages,
        r.reads,
        c.hits,
        c.misses,
        c.cleancache_hits,
        r.disk_reads,
        c.evictions,
        r.invalidations,
        r.mismatches,
        r.stale_hits
    );
    if let (Some(cc), Some(t)) = (&r.cleancache, &r.tmem) {
        j.push_str(&format!(
            ",\"cleancache_stats\":{{\"puts\":{},\"failed_puts\":{},\"succ_gets\":{},\"failed_gets\":{},\
             \"invalidates\":{},\"invalidated_inodes\":{}}},\"tmem\":{{\"ephemeral_pages\":{},\"pool_pages\":{},\
             \"ephemeral_drops\":{}}}",
            cc.puts,
            cc.failed_puts,
            cc.succ_gets,
            cc.failed_gets,
            cc.invalidates,
            cc.invalidated_inodes,
            t.ephemeral_pages,
            t.pool_pages,
            t.ephemeral_drops
        ));
    }
    j.push('}');
    j
}

/// Per-page reference checksums are built from 4 KiB pages; keep the truth table honest about it.
const _: () = assert!(pagecache::PAGE_SIZE == 4096);

/// The file workload the options ask for (`files_cache`, `files_factor`, `files_ops`,
/// `files_invalidate_every`, `cleancache`), with cleancache off; the caller sets `cleancache`.
pub fn spec_from(options: &kopts::Options, algorithm: Algorithm, tmem_limit_pages: u64) -> FileSpec {
    FileSpec {
        cache_pages: options.number("files_cache", 192).max(1) as usize,
        set_factor: options.number("files_factor", 4).max(1),
        cleancache: None,
        tmem_limit_pages,
        ops: options.number("files_ops", 300),
        invalidate_every: options.number("files_invalidate_every", 25),
        seed: 42,
        algorithm,
    }
}

/// The backend `cleancache=` asks for (default zbud, as zcache used for ephemeral pages).
pub fn backend_from(options: &kopts::Options) -> Backend {
    match options.get("cleancache") {
        Some("zsmalloc") => Backend::Zsmalloc,
        _ => Backend::Zbud,
    }
}

/// `cargo xtask run --workload files`: the file workload without and with cleancache; returns the
/// `"files":…` JSON member's value.
pub fn run_demo(facts: &crate::init::BootFacts) -> String {
    let options = kopts::Options::new(facts.options);
    let alg = crate::pooldemo::algorithm(&options);
    let limit = crate::swapdemo::tmem_limit(options.number("tmem_max_pool_percent", 20));
    let off = spec_from(&options, alg, limit);
    let on = FileSpec { cleancache: Some(backend_from(&options)), ..off };
    crate::println!(
        "files: page cache of {} pages over a file set of up to {}x its size; {} operations (a file scan or 16 \
         random reads each), a file invalidated every {}; tmem limit {limit} pages",
        off.cache_pages,
        off.set_factor,
        off.ops,
        off.invalidate_every
    );
    let mut json = String::from("{\"runs\":[");
    let mut reads = [0u64; 2];
    for (i, spec) in [off, on].iter().enumerate() {
        match run(spec) {
            Ok(r) => {
                print_run(&r);
                reads[i] = r.disk_reads;
                if i > 0 {
                    json.push(',');
                }
                json.push_str(&run_json(&r));
            }
            Err(e) => crate::println!("  files FAILED: {e}"),
        }
    }
    let avoided = 100.0 * (1.0 - reads[1] as f64 / reads[0].max(1) as f64);
    crate::println!(
        "files: with cleancache ({}): {} disk reads instead of {}: {avoided:.1} % of file reads avoided",
        on.cleancache.map_or("off", |b| b.name()),
        reads[1],
        reads[0]
    );
    json.push_str(&format!(
        "],\"disk_reads_without\":{},\"disk_reads_with\":{},\"percent_avoided\":{avoided:.1}}}",
        reads[0], reads[1]
    ));
    json
}

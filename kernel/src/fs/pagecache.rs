//! The kernel's page cache over the file disk, with cleancache below it: the `pagecache` crate's
//! [`PageCache`] on real frames ([`Owner::PAGE_CACHE`], reached through kmap), wired to
//! `zcache::cleancache` and to the virtio file disk.
//!
//! # A read
//!
//! ```text
//!  FileCache::read(key) ──► PageCache::read (kernel/libs/pagecache)
//!     hit  ──► copy out of the cached frame (kmap)
//!     miss ──► full? evict the LRU page ──► KernelLower::evicted ──► zcache::cleancache::put (tmem, ephemeral)
//!          ──► KernelLower::cleancache_get ──► zcache::cleancache::get: a hit removes tmem's copy (exclusive)
//!          ──► else KernelLower::read_disk ──► FileDisk::read_page (virtio-blk "files")
//! ```
//!
//! Invalidations (a file rewritten) go down to cleancache too, so no stale copy can be served.

use compress::Algorithm;
use frame::Owner;
use pagecache::{DiskError, Lower, Page, PageCache, PageCacheError, PageCacheStats, PageKey, Source};
use tmem::cleancache::{CleancacheStats, FsId};
use tmem::{Backend, TmemStats};

use super::{FileDisk, FsError};
use crate::mm::KernelMemory;
use crate::zcache::{self, ZcacheError};

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
            let _ = zcache::cleancache::put(fs, key.file.into(), key.index, page);
        }
    }

    fn cleancache_get(&mut self, key: PageKey, out: &mut Page) -> bool {
        let Some(fs) = self.fs else { return false };
        matches!(zcache::cleancache::get(fs, key.file.into(), key.index, out), Ok(true))
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
            let _ = zcache::cleancache::invalidate_page(fs, key.file.into(), key.index);
        }
    }

    fn invalidate_file(&mut self, file: u32) {
        if let Some(fs) = self.fs {
            let _ = zcache::cleancache::invalidate_inode(fs, file.into());
        }
    }
}

/// What the page cache held when it was unmounted.
#[derive(Debug, Clone, Copy)]
pub struct Unmounted {
    pub cache: PageCacheStats,
    pub cleancache: Option<CleancacheStats>,
    /// tmem when the cache was unmounted, and after cleancache's fs was destroyed.
    pub tmem: Option<TmemStats>,
    pub tmem_after: Option<TmemStats>,
}

/// The page cache of one mounted file disk, with cleancache under it if asked.
pub struct FileCache {
    disk: FileDisk,
    fs: Option<FsId>,
    cache: PageCache<KernelMemory>,
    owns_zcache: bool,
    disk_reads: u64,
}

impl core::fmt::Debug for FileCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FileCache").field("fs", &self.fs).field("disk_reads", &self.disk_reads).finish()
    }
}

impl FileCache {
    /// A page cache of `cache_pages` frames over `disk`; with `cleancache = Some(backend)`, a cleancache
    /// fs in zcache (installed here with `tmem_limit_pages` and `algorithm` if it is not yet).
    pub fn mount(
        disk: FileDisk,
        cache_pages: usize,
        cleancache: Option<Backend>,
        tmem_limit_pages: u64,
        algorithm: Algorithm,
    ) -> Result<FileCache, ZcacheError> {
        let mut owns_zcache = false;
        let fs = match cleancache {
            None => None,
            Some(backend) => {
                if !zcache::installed() {
                    zcache::install(tmem_limit_pages, algorithm)?;
                    owns_zcache = true;
                }
                match zcache::cleancache::init_fs(Some(backend)) {
                    Ok(fs) => Some(fs),
                    Err(e) => {
                        if owns_zcache {
                            zcache::uninstall();
                        }
                        return Err(e);
                    }
                }
            }
        };
        let cache = PageCache::new(KernelMemory::new(Owner::PAGE_CACHE), cache_pages);
        Ok(FileCache { disk, fs, cache, owns_zcache, disk_reads: 0 })
    }

    /// The file disk under the cache (for reads that must bypass it, such as verification).
    pub fn disk(&mut self) -> &mut FileDisk {
        &mut self.disk
    }

    /// cleancache's fs, if it has one.
    pub fn fs(&self) -> Option<FsId> {
        self.fs
    }

    /// Read one file page through the cache; says where it came from.
    pub fn read(&mut self, key: PageKey, out: &mut Page) -> Result<Source, PageCacheError> {
        let mut lower = KernelLower { disk: &mut self.disk, fs: self.fs, disk_reads: 0 };
        let r = self.cache.read(key, out, &mut lower);
        self.disk_reads += lower.disk_reads;
        r
    }

    /// Pages read from the disk through the cache so far.
    pub fn disk_reads(&self) -> u64 {
        self.disk_reads
    }

    /// The file was rewritten: drop its pages here and in cleancache.
    pub fn invalidate_file(&mut self, inode: u32) {
        let mut lower = KernelLower { disk: &mut self.disk, fs: self.fs, disk_reads: 0 };
        self.cache.invalidate_file(inode, &mut lower);
    }

    /// Whether cleancache holds `key` now.
    pub fn cleancache_holds(&self, key: PageKey) -> bool {
        self.fs.is_some_and(|fs| zcache::cleancache::contains(fs, key.file.into(), key.index))
    }

    pub fn stats(&self) -> PageCacheStats {
        self.cache.stats()
    }

    /// Drop every cached page and cleancache's fs (and zcache, if this cache installed it).
    pub fn unmount(mut self) -> Unmounted {
        let cache = self.cache.stats();
        let tmem = self.fs.and(zcache::stats());
        let cleancache = self.fs.and(zcache::cleancache::stats());
        self.cache.clear();
        if let Some(fs) = self.fs {
            let _ = zcache::cleancache::invalidate_fs(fs);
        }
        let tmem_after = self.fs.and(zcache::stats());
        if self.owns_zcache {
            zcache::uninstall();
        }
        Unmounted { cache, cleancache, tmem, tmem_after }
    }
}

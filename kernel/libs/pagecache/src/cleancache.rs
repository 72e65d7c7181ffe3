//! The glue between the page cache and `tmem::cleancache`: a [`Lower`] made of a cleancache fs over a
//! tmem and a [`Disk`] — the composition the kernel builds over its virtio disk — and [`DiskOnly`], the
//! same without cleancache (a kernel booted with cleancache off, or a benchmark's baseline).
//!
//! ```text
//!   PageCache::read ── miss ──► CleancacheLower::cleancache_get ──► Cleancache::get_page(fs, file, index)
//!                                        │ miss                        (exclusive: a hit leaves tmem)
//!                                        ▼
//!                               Disk::read_page
//!   eviction ──► CleancacheLower::evicted ──► Cleancache::put_page   (a refusal is fine: the disk has it)
//!   invalidate_page / invalidate_file ──► Cleancache::invalidate_page / invalidate_inode
//! ```
//!
//! # Example
//!
//! ```
//! use pagecache::cleancache::{CleancacheLower, Disk};
//! use pagecache::{DiskError, PAGE_SIZE, Page, PageCache, PageKey, Source};
//! use pagemem::HostMemory;
//! use tmem::cleancache::Cleancache;
//! use tmem::{Algorithm, Compressor, Config, Tmem};
//!
//! /// Every page of every file holds its file number.
//! struct Files;
//! impl Disk for Files {
//!     fn read_page(&mut self, key: PageKey, out: &mut Page) -> Result<(), DiskError> {
//!         out.fill(key.file as u8);
//!         Ok(())
//!     }
//! }
//!
//! let mut tmem = Tmem::new(Config::new(16));
//! let mut comp = Compressor::new(Algorithm::Lz4).unwrap();
//! let mut cc = Cleancache::new();
//! let fs = cc.init_fs(&mut tmem, HostMemory::new(16)).unwrap(); // mount
//! let mut pc = PageCache::new(HostMemory::new(4), 1); // room for one page
//! let mut out = [0u8; PAGE_SIZE];
//! let mut disk = Files;
//! let mut lower = CleancacheLower::new(&mut tmem, &mut comp, &mut cc, fs, &mut disk);
//! assert_eq!(pc.read(PageKey::new(7, 0), &mut out, &mut lower), Ok(Source::Disk));
//! assert_eq!(pc.read(PageKey::new(8, 0), &mut out, &mut lower), Ok(Source::Disk)); // evicts (7, 0) to cleancache
//! assert_eq!(pc.read(PageKey::new(7, 0), &mut out, &mut lower), Ok(Source::Cleancache));
//! assert_eq!(out, [7; PAGE_SIZE]);
//! ```
//!
//! The borrows are taken per call (`CleancacheLower { .. }` is cheap to build), so the kernel can keep the
//! tmem, the cleancache table and the compressor behind their own locks.

use pagemem::{FrameSource, PageMemory};
use tmem::cleancache::{Cleancache, FsId};
use tmem::{Compressor, Tmem};

use crate::{DiskError, Lower, Page, PageKey};

/// A read-only disk of files: what is below cleancache.
pub trait Disk {
    /// Read page `key.index` of file `key.file` into `out`.
    fn read_page(&mut self, key: PageKey, out: &mut Page) -> Result<(), DiskError>;
}

/// [`Lower`] over cleancache fs `fs` and a disk. The page's file is the cleancache inode.
#[derive(Debug)]
pub struct CleancacheLower<'a, M, D: ?Sized> {
    pub tmem: &'a mut Tmem<M>,
    pub comp: &'a mut Compressor,
    pub cleancache: &'a mut Cleancache,
    pub fs: FsId,
    pub disk: &'a mut D,
}

impl<'a, M, D: ?Sized> CleancacheLower<'a, M, D> {
    pub fn new(
        tmem: &'a mut Tmem<M>,
        comp: &'a mut Compressor,
        cleancache: &'a mut Cleancache,
        fs: FsId,
        disk: &'a mut D,
    ) -> Self {
        CleancacheLower { tmem, comp, cleancache, fs, disk }
    }
}

impl<M: PageMemory + FrameSource, D: Disk + ?Sized> Lower for CleancacheLower<'_, M, D> {
    fn evicted(&mut self, key: PageKey, page: &Page) {
        // A refused put is counted by cleancache (`failed_puts`) and costs nothing: the disk has the page.
        let _ = self.cleancache.put_page(self.tmem, self.comp, self.fs, key.file.into(), key.index, page);
    }

    fn cleancache_get(&mut self, key: PageKey, out: &mut Page) -> bool {
        // A corrupt page (counted by cleancache and tmem) is removed; the disk serves it like a miss.
        matches!(self.cleancache.get_page(self.tmem, self.comp, self.fs, key.file.into(), key.index, out), Ok(true))
    }

    fn read_disk(&mut self, key: PageKey, out: &mut Page) -> Result<(), DiskError> {
        self.disk.read_page(key, out)
    }

    fn invalidate_page(&mut self, key: PageKey) {
        // The only failure is an fs that is gone, which holds nothing to be stale.
        let _ = self.cleancache.invalidate_page(self.tmem, self.fs, key.file.into(), key.index);
    }

    fn invalidate_file(&mut self, file: u32) {
        let _ = self.cleancache.invalidate_inode(self.tmem, self.fs, file.into());
    }
}

/// [`Lower`] with no cleancache: evictions are forgotten, every miss reads the disk.
#[derive(Debug)]
pub struct DiskOnly<'a, D: ?Sized>(pub &'a mut D);

impl<D: Disk + ?Sized> Lower for DiskOnly<'_, D> {
    fn evicted(&mut self, _: PageKey, _: &Page) {}

    fn cleancache_get(&mut self, _: PageKey, _: &mut Page) -> bool {
        false
    }

    fn read_disk(&mut self, key: PageKey, out: &mut Page) -> Result<(), DiskError> {
        self.0.read_page(key, out)
    }

    fn invalidate_page(&mut self, _: PageKey) {}

    fn invalidate_file(&mut self, _: u32) {}
}

//! cleancache: the page cache's door into tmem — Linux's `mm/cleancache.c`, with zcache's ephemeral pools.
//!
//! # Why
//!
//! Most file pages the page cache evicts are *clean*: the disk holds the same bytes, so the kernel just
//! forgets them and reads the disk again on the next access. cleancache gives such a page a second chance
//! in RAM it already has: when the page cache evicts a clean page it offers it to tmem, compressed
//! ([`Cleancache::put_page`]); when the page cache misses, it asks tmem before it reads the disk
//! ([`Cleancache::get_page`]). A hit costs a decompression instead of a disk read. A miss costs a tree
//! lookup, and nothing is ever lost by a refusal or a miss: the disk still has the page. That is what
//! makes cleancache's pool *ephemeral* — tmem may drop its pages whenever it needs room (for frontswap's
//! persistent pages first of all), and every drop is counted in tmem's `ephemeral_drops`.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | fs | a mounted filesystem; [`Cleancache::init_fs`] (at mount) gives it an [`FsId`] and one ephemeral tmem pool (Linux stores the pool id in `sb->cleancache_poolid`) |
//! | inode, index | the file and the page's index in it: the tmem key is `(fs pool, oid = inode, index)` ([`cleancache_key`]; Linux's `cleancache_filekey` is the inode number for most filesystems) |
//! | put | a clean page leaves the page cache (`cleancache_put_page`, called from `__delete_from_page_cache`) |
//! | get | a page-cache miss, before the disk read (`cleancache_get_page`, called from `do_mpage_readpage`) |
//! | invalidate | the disk's copy changed or is gone: one page, one inode, or the whole fs at umount |
//!
//! # Why a get is exclusive
//!
//! frontswap's loads leave the page in tmem, because the swap slot is the only other copy and it may not
//! even be written. cleancache's gets *remove* the page (tmem's ephemeral get does that):
//!
//! 1. After a hit the page is back in the page cache, which now holds the only copy that matters; the
//!    disk has the same bytes anyway. A second copy in tmem would be compressed memory that can only help
//!    once the page is evicted again — and then it is put again.
//! 2. The page cache may *write* that page (it becomes dirty; the disk and the page cache change
//!    together). A copy left in tmem would be stale, and the next miss would return old bytes. With
//!    exclusive gets, a page is in tmem only while the page cache does not have it, and the page cache can
//!    change a page only while it has it: tmem cannot go stale through the page cache.
//!
//! What remains are changes that bypass the page cache (a file truncated, deleted or rewritten on disk,
//! the filesystem unmounted) — those are the invalidation rules.
//!
//! # Invalidation rules
//!
//! Before the next get could return old bytes, the page cache invalidates:
//!
//! | the disk's copy… | call | Linux caller |
//! |---|---|---|
//! | of one page changed or went away | [`Cleancache::invalidate_page`] | `truncate_complete_page`, `__delete_from_page_cache` of a page that is not uptodate |
//! | of a file changed or went away (truncate, unlink, rewritten behind the cache) | [`Cleancache::invalidate_inode`] | `truncate_inode_pages_range` (before and after it drops the page cache's pages) |
//! | of the whole fs is going away (umount) | [`Cleancache::invalidate_fs`] | `deactivate_locked_super` |
//!
//! An invalidated page must never be *put* either: the page cache drops it without offering it to
//! cleancache (Linux puts first and invalidates the inode after; the effect is the same).
//!
//! # Worked example
//!
//! ```text
//!   init_fs                   fs 0, ephemeral pool p (zbud)
//!   evict (ino 12, idx 3)     put_page: tmem holds (p, 12, 3)                          puts 1
//!   miss  (ino 12, idx 3)     get_page Ok(true): back in the page cache, gone from tmem  succ_gets 1
//!   evict (ino 12, idx 3)     put_page again                                            puts 2
//!   frontswap stores          tmem at its limit drops (p, 12, 3), its oldest ephemeral page
//!                                                                              tmem ephemeral_drops 1
//!   miss  (ino 12, idx 3)     get_page Ok(false): read the disk                         failed_gets 1
//!   evict (ino 12, idx 3)     put_page                                                  puts 3
//!   truncate ino 12           invalidate_inode Ok(1)                                    invalidated_inodes 1
//!   miss  (ino 12, idx 3)     get_page Ok(false): the disk's new bytes, never the old   failed_gets 2
//! ```
//!
//! # Example
//!
//! ```
//! use pagemem::HostMemory;
//! use tmem::cleancache::Cleancache;
//! use tmem::{Algorithm, Compressor, Config, PAGE_SIZE, Tmem};
//!
//! let mut comp = Compressor::new(Algorithm::Lz4).unwrap();
//! let mut tmem = Tmem::new(Config::new(64));
//! let mut cc = Cleancache::new();
//! let fs = cc.init_fs(&mut tmem, HostMemory::new(64)).unwrap();
//! let mut page = [0u8; PAGE_SIZE];
//! page[..5].copy_from_slice(b"hello");
//! cc.put_page(&mut tmem, &mut comp, fs, 12, 3, &page).unwrap(); // evicted from the page cache
//!
//! let mut out = [0u8; PAGE_SIZE];
//! assert_eq!(cc.get_page(&mut tmem, &mut comp, fs, 12, 3, &mut out), Ok(true)); // a miss, served by tmem
//! assert_eq!(out, page);
//! assert_eq!(cc.get_page(&mut tmem, &mut comp, fs, 12, 3, &mut out), Ok(false)); // exclusive: gone
//! assert_eq!(cc.invalidate_fs(&mut tmem, fs), Ok(0)); // umount
//! ```
//!
//! # Contracts
//!
//! - A put may be refused ([`CleancacheError::Tmem`] with `Full`, `Incompressible`, `OutOfMemory`): that
//!   is normal, counted in `failed_puts`, and the caller just drops its page. A refused put leaves nothing
//!   under its key, not even an older copy (tmem flushes a replaced page first).
//! - `get_page` returns `Ok(true)` with the exact bytes last put under the key, or `Ok(false)`; either
//!   way the key is empty afterwards. A page that fails its check is removed too and reported as
//!   `Err(Tmem(Corrupt))`; the caller reads the disk as for a miss.
//! - A page leaves tmem by a get, an invalidation, a replacing or refused put, or a tmem drop (counted in
//!   tmem's `ephemeral_drops`) — no other way.
//! - An fs id that was never given out or was invalidated is [`CleancacheError::NoSuchFs`]; fs ids are
//!   never reused, so a page put before `invalidate_fs` can never be got under a later mount. Such calls
//!   move no counter.
//! - Nothing panics. Like [`crate::frontswap`], cleancache holds only the fs table; every call takes the
//!   tmem, so the kernel can keep both behind one lock.

use alloc::collections::BTreeMap;
use core::fmt;

use pagemem::{FrameSource, PageMemory};

use crate::{Backend, Compressor, Key, Page, PoolId, PoolKind, Tmem, TmemError};

/// A filesystem cleancache serves (Linux keeps the pool id in the superblock). Ids count up from 0 and are
/// never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FsId(pub u32);

/// The tmem key of page `index` of file `inode` in `pool`: `(pool, oid = inode, index)`.
pub const fn cleancache_key(pool: PoolId, inode: u64, index: u32) -> Key {
    Key { pool, oid: inode, index }
}

/// Why a cleancache call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleancacheError {
    /// The fs was never initialised, or was invalidated.
    NoSuchFs(FsId),
    /// All 2^32 fs ids have been used.
    TooManyFs,
    /// tmem refused or failed: for a put the usual `Full`, `Incompressible` or `OutOfMemory` (the page is
    /// simply not cached); for a get, `Corrupt`.
    Tmem(TmemError),
}

impl From<TmemError> for CleancacheError {
    fn from(e: TmemError) -> Self {
        CleancacheError::Tmem(e)
    }
}

impl fmt::Display for CleancacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CleancacheError::NoSuchFs(fs) => write!(f, "cleancache fs {} is not initialised", fs.0),
            CleancacheError::TooManyFs => write!(f, "every cleancache fs id has been used"),
            CleancacheError::Tmem(e) => write!(f, "tmem: {e}"),
        }
    }
}

/// cleancache's counters (Linux's debugfs names): the shared report type itself (`zstats::CleancacheReport`),
/// so what cleancache counts is what `@@stats` prints.
pub use zstats::CleancacheReport as CleancacheStats;

/// cleancache over one [`Tmem`] (see the module header): the table from fs id to tmem pool.
#[derive(Debug, Default)]
pub struct Cleancache {
    fs: BTreeMap<u32, PoolId>,
    /// The next fs id; `u32::MAX + 1` once every id was used.
    next_fs: u64,
    stats: CleancacheStats,
}

impl Cleancache {
    pub fn new() -> Self {
        Self::default()
    }

    fn pool_of(&self, fs: FsId) -> Result<PoolId, CleancacheError> {
        self.fs.get(&fs.0).copied().ok_or(CleancacheError::NoSuchFs(fs))
    }

    /// Mount: a new fs with an ephemeral tmem pool (default backend, zbud) over `mem` (Linux
    /// `cleancache_init_fs`).
    pub fn init_fs<M: PageMemory + FrameSource>(
        &mut self,
        tmem: &mut Tmem<M>,
        mem: M,
    ) -> Result<FsId, CleancacheError> {
        self.init_fs_backend(tmem, None, mem)
    }

    /// [`Cleancache::init_fs`] with a chosen backend for the fs's pool (`None`: the ephemeral default).
    pub fn init_fs_backend<M: PageMemory + FrameSource>(
        &mut self,
        tmem: &mut Tmem<M>,
        backend: Option<Backend>,
        mem: M,
    ) -> Result<FsId, CleancacheError> {
        let Ok(id) = u32::try_from(self.next_fs) else { return Err(CleancacheError::TooManyFs) };
        let pool = tmem.new_pool(PoolKind::Ephemeral, backend, mem)?;
        self.fs.insert(id, pool);
        self.next_fs += 1;
        self.stats.inited_fs += 1;
        Ok(FsId(id))
    }

    /// A clean page `(inode, index)` of `fs` leaves the page cache: offer it to tmem. `Err` is normal (tmem
    /// refused; counted in `failed_puts`) and the caller just drops the page.
    pub fn put_page<M: PageMemory + FrameSource>(
        &mut self,
        tmem: &mut Tmem<M>,
        comp: &mut Compressor,
        fs: FsId,
        inode: u64,
        index: u32,
        page: &Page,
    ) -> Result<(), CleancacheError> {
        let pool = self.pool_of(fs)?;
        self.stats.puts += 1;
        // On `Err` tmem has stored nothing under the key, not even the copy it held before.
        tmem.put(comp, cleancache_key(pool, inode, index), page).inspect_err(|_| self.stats.failed_puts += 1)?;
        Ok(())
    }

    /// A page-cache miss on `(inode, index)` of `fs`: `Ok(true)` if tmem had the page and copied it into
    /// `out` — and no longer has it (exclusive get); `Ok(false)` if the caller must read the disk. On `Err`,
    /// `out` holds garbage, the key is empty, and the caller reads the disk too.
    pub fn get_page<M: PageMemory + FrameSource>(
        &mut self,
        tmem: &mut Tmem<M>,
        comp: &mut Compressor,
        fs: FsId,
        inode: u64,
        index: u32,
        out: &mut Page,
    ) -> Result<bool, CleancacheError> {
        let pool = self.pool_of(fs)?;
        match tmem.get(comp, cleancache_key(pool, inode, index), out) {
            Ok(()) => {
                self.stats.succ_gets += 1;
                Ok(true)
            }
            Err(TmemError::NotFound) => {
                self.stats.failed_gets += 1;
                Ok(false)
            }
            Err(e) => {
                self.stats.failed_gets += 1;
                if e == TmemError::Corrupt {
                    self.stats.corrupt_gets += 1;
                }
                Err(e.into())
            }
        }
    }

    /// The disk's copy of `(inode, index)` changed or went away: drop tmem's copy. `Ok(true)` if there was
    /// one.
    pub fn invalidate_page<M: PageMemory + FrameSource>(
        &mut self,
        tmem: &mut Tmem<M>,
        fs: FsId,
        inode: u64,
        index: u32,
    ) -> Result<bool, CleancacheError> {
        let pool = self.pool_of(fs)?;
        self.stats.invalidates += 1;
        let had = tmem.flush_page(cleancache_key(pool, inode, index))?;
        self.stats.invalidated_pages += u64::from(had);
        Ok(had)
    }

    /// File `inode` was truncated, deleted or rewritten: drop all its pages (tmem `flush_object`). Returns
    /// how many there were.
    pub fn invalidate_inode<M: PageMemory + FrameSource>(
        &mut self,
        tmem: &mut Tmem<M>,
        fs: FsId,
        inode: u64,
    ) -> Result<u64, CleancacheError> {
        let pool = self.pool_of(fs)?;
        self.stats.invalidated_inodes += 1;
        let n = tmem.flush_object(pool, inode)?;
        self.stats.invalidated_inode_pages += n;
        Ok(n)
    }

    /// umount: drop every page of `fs` and its pool; the id is refused from now on. Returns the pages
    /// dropped.
    pub fn invalidate_fs<M: PageMemory + FrameSource>(
        &mut self,
        tmem: &mut Tmem<M>,
        fs: FsId,
    ) -> Result<u64, CleancacheError> {
        let pool = self.pool_of(fs)?;
        self.fs.remove(&fs.0);
        self.stats.invalidated_fs += 1;
        let n = tmem.destroy_pool(pool)?;
        self.stats.invalidated_fs_pages += n;
        Ok(n)
    }

    /// Whether tmem holds page `(inode, index)` of `fs` (a get would hit, and remove it).
    pub fn contains<M: PageMemory + FrameSource>(&self, tmem: &Tmem<M>, fs: FsId, inode: u64, index: u32) -> bool {
        self.pool(fs).is_some_and(|pool| tmem.contains(cleancache_key(pool, inode, index)))
    }

    /// Pages of `fs` in tmem; 0 for an fs that does not exist.
    pub fn pages<M: PageMemory + FrameSource>(&self, tmem: &Tmem<M>, fs: FsId) -> u64 {
        self.pool(fs).map_or(0, |pool| tmem.pool_pages(pool))
    }

    /// The tmem pool of `fs`, if it is initialised.
    pub fn pool(&self, fs: FsId) -> Option<PoolId> {
        self.fs.get(&fs.0).copied()
    }

    /// The initialised filesystems, in id order.
    pub fn filesystems(&self) -> impl Iterator<Item = FsId> + '_ {
        self.fs.keys().map(|&id| FsId(id))
    }

    pub fn stats(&self) -> CleancacheStats {
        self.stats
    }
}

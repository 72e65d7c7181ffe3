//! zcache: the one tmem that both hooks share, as Linux's zcache driver had it.
//!
//! frontswap (anonymous pages, `kernel/src/swap`) and cleancache (clean file pages, the page cache) put
//! their pages into the same [`Tmem`]: persistent pools for swap types, ephemeral pools for
//! filesystems, and one memory limit over all of them. That sharing is the point. When frontswap needs
//! room, tmem drops ephemeral (cleancache) pages first, since they can be read from disk again. With
//! `cargo xtask run --workload all` those drops can be watched under swap pressure.
//!
//! # The room
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the one [`Zcache`] (tmem + the state of both hooks) behind one lock; install/uninstall |
//! | [`frontswap`] | the frontswap glue the swap subsystem calls: init, store (with zswap-style writeback), load, invalidate |
//! | [`cleancache`] | the cleancache glue the page cache calls: init_fs, put, get, invalidate page/inode/fs |
//! | [`streams`] | per-CPU compression streams (zram's zcomp) |
//!
//! # Locking
//!
//! One lock, [`ZCACHE`]. The swap fault handler takes it while holding the swapper's lock (order: swap,
//! then zcache); the page cache takes it alone. Nothing holding it touches the swap region, so it can
//! never be wanted by a fault taken under it.
//!
//! A frontswap store compresses *before* it takes the lock, with this CPU's stream, into an owned
//! [`zstore::Prepared`] page ([`frontswap::store`]); only the pool allocation, the copy and tmem's
//! indexing run under it. Every other CPU's store waits only for that part (`cargo xtask bench`'s
//! bench_smp measures the lock's share of a store). Loads still decompress under the lock.

pub mod cleancache;
pub mod frontswap;
pub mod streams;

use compress::Algorithm;
use spin::Mutex;

use crate::arch::lock::{Lock, LockStats};
use tmem::cleancache::{Cleancache, CleancacheError, FsId};
use tmem::frontswap::{Frontswap, FrontswapError};
use tmem::{Config, Tmem, TmemStats};

use crate::mm::KernelMemory;
use streams::with_stream;

/// tmem and the state of both hooks.
#[derive(Debug)]
pub struct Zcache {
    pub tmem: Tmem<KernelMemory>,
    pub frontswap: Frontswap,
    pub cleancache: Cleancache,
    /// The compressor every put uses.
    pub algorithm: Algorithm,
}

static ZCACHE: Lock<Option<Zcache>> = Lock::new("zcache", 40, None);

/// zcache's compressor while it is installed, readable without its lock (id in the low byte, deflate
/// level in the next; 0: not installed), so a store can compress before it takes the lock.
static ALGORITHM: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// The compressor of the installed zcache, read without its lock (`None`: not installed).
pub fn algorithm() -> Option<Algorithm> {
    let v = ALGORITHM.load(core::sync::atomic::Ordering::Acquire);
    (v != 0).then(|| Algorithm::from_id(v as u8, (v >> 8) as u8)).flatten()
}

/// Why a zcache operation could not be done (a refusal by tmem is not an error: see each call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZcacheError {
    /// It is already installed.
    Busy,
    /// zcache is not installed.
    NotInstalled,
    /// The lock is held: on the fault path that is a fault inside the fault path.
    Held,
    /// No compression stream for zcache's algorithm.
    NoStream(compress::CompressError),
    /// frontswap failed in a way that is not a refusal.
    Frontswap(FrontswapError),
    /// cleancache failed in a way that is not a refusal.
    Cleancache(CleancacheError),
}

impl core::fmt::Display for ZcacheError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ZcacheError::Busy => write!(f, "zcache is already installed"),
            ZcacheError::NotInstalled => write!(f, "zcache is not installed"),
            ZcacheError::Held => write!(f, "zcache's lock is held (a fault inside the fault path?)"),
            ZcacheError::NoStream(e) => write!(f, "no compression stream: {e:?}"),
            ZcacheError::Frontswap(e) => write!(f, "frontswap: {e:?}"),
            ZcacheError::Cleancache(e) => write!(f, "cleancache: {e:?}"),
        }
    }
}

/// zcache's tunables, as Linux's zcache had them (module parameters and sysfs files): they apply to the
/// next [`install`]. Defaults are zcache's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunables {
    /// `zv_max_zsize`: a persistent page stored bigger than this is refused.
    pub zv_max_zsize: usize,
    /// `zv_max_mean_zsize`: while the persistent pools' mean bytes per page exceed this, a page stored
    /// bigger than it is refused.
    pub zv_max_mean_zsize: usize,
    /// `zv_page_count_policy_percent`: persistent pages may be at most this percent of RAM's pages
    /// (0: the rule is off).
    pub zv_page_count_policy_percent: u32,
    /// How room is made among ephemeral pages.
    pub ephemeral_reclaim: tmem::EphemeralReclaim,
}

impl Tunables {
    /// zcache's defaults.
    pub const ZCACHE: Tunables = Tunables {
        zv_max_zsize: Config::ZV_MAX_ZSIZE,
        zv_max_mean_zsize: Config::ZV_MAX_MEAN_ZSIZE,
        zv_page_count_policy_percent: Config::ZV_PAGE_COUNT_POLICY_PERCENT,
        ephemeral_reclaim: tmem::EphemeralReclaim::ObjectOrder,
    };
}

static TUNABLES: Mutex<Tunables> = Mutex::new(Tunables::ZCACHE);

/// Set the tunables the next [`install`] uses (the workloads set them from the kernel options).
pub fn set_tunables(t: Tunables) {
    *TUNABLES.lock() = t;
}

/// The tmem configuration [`install`] builds: the limit, the tunables, and RAM's size for the page-count
/// rule.
fn config(limit_pages: u64) -> Config {
    let t = *TUNABLES.lock();
    let mut c = Config::new(limit_pages);
    c.zv_max_zsize = t.zv_max_zsize;
    c.zv_max_mean_zsize = t.zv_max_mean_zsize;
    c.zv_page_count_policy_percent = t.zv_page_count_policy_percent;
    c.ephemeral_reclaim = t.ephemeral_reclaim;
    // A percent of 0 turns the page-count rule off (tmem skips it while it knows no RAM size).
    c.totalram_pages = if t.zv_page_count_policy_percent == 0 { 0 } else { crate::mm::frames::stats().managed };
    c
}

/// Install zcache with a limit of `limit_pages` pool frames and the current [`Tunables`].
pub fn install(limit_pages: u64, algorithm: Algorithm) -> Result<(), ZcacheError> {
    let mut z = ZCACHE.lock();
    if z.is_some() {
        return Err(ZcacheError::Busy);
    }
    // Every CPU's stream now, in task context: the fault path never builds one (zcomp's rule).
    streams::prepare(algorithm).map_err(ZcacheError::NoStream)?;
    let mut tmem = Tmem::new(config(limit_pages));
    // Every put asks the heap first: out of heap is a refused store (to the disk), never a failed
    // allocation inside one (mm::heap's module header).
    tmem.set_metadata_gate(Some(crate::mm::heap::admit));
    *z = Some(Zcache { tmem, frontswap: Frontswap::new(), cleancache: Cleancache::new(), algorithm });
    let level = match algorithm {
        Algorithm::Deflate { level } => u32::from(level),
        Algorithm::Lz4 => 0,
    };
    ALGORITHM.store(u32::from(algorithm.id()) | level << 8, core::sync::atomic::Ordering::Release);
    Ok(())
}

/// Remove zcache and return tmem's last counters. Refused (`None`, zcache stays) while any pool is
/// live: its user still needs it, and its frames would leak. Each user ends its own pool first
/// (`Frontswap::invalidate_area` and a destroyed pool, `Cleancache::invalidate_fs`).
pub fn uninstall() -> Option<TmemStats> {
    let mut z = ZCACHE.lock();
    let stats = z.as_ref()?.tmem.stats();
    if stats.pools > 0 {
        log::warn!("zcache: not removed, {} tmem pools are still live", stats.pools);
        return None;
    }
    z.take();
    ALGORITHM.store(0, core::sync::atomic::Ordering::Release);
    Some(stats)
}

/// Empty every pool its users left behind and remove zcache (the cleanup of an error path).
pub fn force_uninstall() -> Option<TmemStats> {
    with(|z| {
        for ty in 0..tmem::frontswap::MAX_SWAPFILES {
            let _ = z.frontswap.invalidate_area(&mut z.tmem, ty as u8);
        }
        let filesystems: alloc::vec::Vec<FsId> = z.cleancache.filesystems().collect();
        for fs in filesystems {
            let _ = z.cleancache.invalidate_fs(&mut z.tmem, fs);
        }
    });
    uninstall()
}

pub fn installed() -> bool {
    ZCACHE.lock().is_some()
}

/// Run `f` on zcache, if installed.
pub fn with<R>(f: impl FnOnce(&mut Zcache) -> R) -> Option<R> {
    ZCACHE.lock().as_mut().map(f)
}

/// [`with`] for the page-fault path: waits while another CPU holds the lock (the page cache, or another
/// CPU's fault), and gives `None` at once when *this* CPU holds it. Nothing that holds it may touch the
/// swap region, so that would be a fault inside the fault path: the fault then fails (fatal) instead
/// of waiting for itself.
pub fn try_with<R>(f: impl FnOnce(&mut Zcache) -> R) -> Option<R> {
    ZCACHE.lock_or_recursion().ok()?.as_mut().map(f)
}

/// zcache's lock and every CPU's compression-stream lock (summed): the tmem lock is the one
/// every pool's put, get and flush takes, zcache's "single pool lock".
pub fn lock_stats() -> [LockStats; 2] {
    [ZCACHE.stats(), streams::lock_stats()]
}

/// tmem's counters, if installed.
pub fn stats() -> Option<TmemStats> {
    with(|z| z.tmem.stats())
}

/// Bytes of tmem's own index now (`Tmem::index_bytes`), if zcache is installed.
pub fn index_bytes() -> Option<u64> {
    with(|z| z.tmem.index_bytes())
}

/// The fragmentation of tmem's zsmalloc pools now (free bytes in partly used zspages, and the floor a
/// full compaction would leave), if zcache is installed and holds a zsmalloc pool.
pub fn fragmentation() -> Option<tmem::Fragmentation> {
    with(|z| z.tmem.fragmentation()).flatten()
}

/// Memory for a new tmem pool: pool frames only (see [`KernelMemory`]).
fn pool_memory() -> KernelMemory {
    KernelMemory::new(frame::Owner::POOL)
}

impl Zcache {
    /// Run `f` with the tmem, the hook state and this CPU's compressor for zcache's algorithm.
    pub fn with_compressor<R>(
        &mut self,
        f: impl FnOnce(&mut Tmem<KernelMemory>, &mut Frontswap, &mut Cleancache, &mut compress::Compressor) -> R,
    ) -> Result<R, compress::CompressError> {
        let (tmem, fs, cc) = (&mut self.tmem, &mut self.frontswap, &mut self.cleancache);
        with_stream(self.algorithm, |c| f(tmem, fs, cc, c))
    }
}

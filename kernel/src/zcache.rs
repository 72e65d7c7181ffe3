//! zcache: the one tmem that both hooks share, as Linux's zcache driver had it.
//!
//! frontswap (anonymous pages, `kernel/src/swap`) and cleancache (clean file pages, the page cache) put
//! their pages into the same [`Tmem`]: persistent pools for swap types, ephemeral pools for
//! filesystems, and one memory limit over all of them. That sharing is the point. When frontswap needs
//! room, tmem drops ephemeral (cleancache) pages first, since they can be read from disk again. With
//! `cargo xtask run --workload all` those drops can be watched under swap pressure.
//!
//! # Locking
//!
//! One lock, [`ZCACHE`]. The swap fault handler takes it while holding the swapper's lock (order: swap,
//! then zcache); the page cache takes it alone. Nothing holding it touches the swap region, so it can
//! never be wanted by a fault taken under it.

use compress::Algorithm;
use spin::Mutex;
use tmem::cleancache::Cleancache;
use tmem::frontswap::Frontswap;
use tmem::{Config, Tmem, TmemStats};

use crate::mm::KernelMemory;
use crate::zcomp::with_stream;

/// tmem and the state of both hooks.
#[derive(Debug)]
pub struct Zcache {
    pub tmem: Tmem<KernelMemory>,
    pub frontswap: Frontswap,
    pub cleancache: Cleancache,
    /// The compressor every put uses.
    pub algorithm: Algorithm,
}

static ZCACHE: Mutex<Option<Zcache>> = Mutex::new(None);

/// Why zcache could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZcacheError {
    /// It is already installed.
    Busy,
}

/// Install zcache with a limit of `limit_pages` pool frames.
pub fn install(limit_pages: u64, algorithm: Algorithm) -> Result<(), ZcacheError> {
    let mut z = ZCACHE.lock();
    if z.is_some() {
        return Err(ZcacheError::Busy);
    }
    *z = Some(Zcache {
        tmem: Tmem::new(Config::new(limit_pages)),
        frontswap: Frontswap::new(),
        cleancache: Cleancache::new(),
        algorithm,
    });
    Ok(())
}

/// Remove zcache; its pools are dropped with it (their pages must have been flushed: the hooks'
/// `invalidate_area` / `invalidate_fs`). Returns tmem's last counters.
pub fn uninstall() -> Option<TmemStats> {
    ZCACHE.lock().take().map(|z| z.tmem.stats())
}

pub fn installed() -> bool {
    ZCACHE.lock().is_some()
}

/// Run `f` on zcache, if installed.
pub fn with<R>(f: impl FnOnce(&mut Zcache) -> R) -> Option<R> {
    ZCACHE.lock().as_mut().map(f)
}

/// tmem's counters, if installed.
pub fn stats() -> Option<TmemStats> {
    with(|z| z.tmem.stats())
}

/// Memory for a new tmem pool.
pub fn pool_memory() -> KernelMemory {
    // SAFETY: each call's value goes to exactly one tmem pool, which reaches only the frames it
    // allocated through it and frees each once.
    unsafe { KernelMemory::new() }
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

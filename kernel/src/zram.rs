//! The zram device: one compressed RAM block device (the `zram` crate's [`Zram`]) over zsmalloc on real
//! pool frames, behind one lock — Linux's `/dev/zram0`. The swap subsystem uses it as its swap device
//! with `swap_device=zram` (no frontswap then, no disk behind it).
//!
//! | call | Linux |
//! |---|---|
//! | [`install`]`(disksize, limit)` | `echo N > disksize`, `echo M > mem_limit` |
//! | [`write_page`] / [`read_page`] | `zram_bvec_write` / `zram_bvec_read` |
//! | [`slot_free_notify`] | `zram_slot_free_notify` (the swap layer freed the slot) |
//! | [`pool_pages`] | `zs_get_total_pages`: what the equal-memory accounting charges |
//! | [`mm_stat`] / [`io_stat`] | `/sys/block/zram0/mm_stat`, `io_stat` |
//! | [`uninstall`] | `echo 1 > reset` |
//!
//! The device is taken on the page-fault path (swap-in, reclaim), so every call there uses `try_lock`:
//! a held lock means a fault inside the fault path ([`ZramDevError::Held`]), never a wait with interrupts
//! off. Compression goes through this CPU's stream (`zcache::streams`), as zram's per-CPU `zcomp` does.

use zram::{IoStat, MmStat, Zram, ZramError};
use zsmalloc::Zsmalloc;
use zstore::Policy;

use crate::arch::lock::{Lock, LockStats};
use crate::mm::KernelMemory;
use crate::zcache::streams::with_stream;

/// Why the device could not do a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZramDevError {
    /// No device is installed.
    NotInstalled,
    /// A device is installed already.
    Busy,
    /// The lock is held: on the fault path that is a fault inside the fault path.
    Held,
    /// No compression stream.
    NoStream(compress::CompressError),
    /// The device refused or failed (out of range, memory limit, pool, corrupt).
    Zram(ZramError),
}

impl core::fmt::Display for ZramDevError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ZramDevError::NotInstalled => write!(f, "no zram device"),
            ZramDevError::Busy => write!(f, "a zram device is installed already"),
            ZramDevError::Held => write!(f, "the zram device's lock is held (a fault inside the fault path?)"),
            ZramDevError::NoStream(e) => write!(f, "no compression stream: {e:?}"),
            ZramDevError::Zram(e) => write!(f, "zram: {e}"),
        }
    }
}

type Device = Zram<Zsmalloc<KernelMemory>>;

static ZRAM: Lock<Option<Device>> = Lock::new("zram", 30, None);

/// The device's lock.
pub fn lock_stats() -> LockStats {
    ZRAM.stats()
}

/// Make the device: `disksize_pages` slots over a fresh zsmalloc pool, zram's huge-page rule, a memory
/// limit of `limit_pages` pool frames (0: none).
pub fn install(disksize_pages: u64, limit_pages: u64) -> Result<(), ZramDevError> {
    let mut z = ZRAM.lock();
    if z.is_some() {
        return Err(ZramDevError::Busy);
    }
    let pool = Zsmalloc::new(KernelMemory::new(frame::Owner::ZSMALLOC));
    let policy = Policy::zram(pool.huge_class_size());
    let mut dev = Zram::new(pool, disksize_pages, policy).map_err(ZramDevError::Zram)?;
    dev.set_mem_limit(limit_pages);
    *z = Some(dev);
    Ok(())
}

/// Remove the device, returning its last `mm_stat` (every slot is discarded first, so its frames go back).
pub fn uninstall() -> Option<MmStat> {
    let mut z = ZRAM.lock();
    let dev = z.as_mut()?;
    let n = dev.disksize_pages();
    let _ = dev.discard(0, n);
    let stat = dev.mm_stat();
    *z = None;
    Some(stat)
}

/// Whether a device is installed.
pub fn installed() -> bool {
    ZRAM.lock().is_some()
}

fn try_with<R>(f: impl FnOnce(&mut Device) -> R) -> Result<R, ZramDevError> {
    // Another CPU's access is waited for; this CPU holding it already is a fault inside the fault path.
    let mut g = ZRAM.lock_or_recursion().map_err(|_| ZramDevError::Held)?;
    g.as_mut().map(f).ok_or(ZramDevError::NotInstalled)
}

/// Write `page` to slot `index`. A refused write (memory limit) leaves the slot's old contents.
pub fn write_page(index: u64, page: &[u8; 4096]) -> Result<(), ZramDevError> {
    try_with(|d| with_stream(compress::Algorithm::Lz4, |c| d.write_page(index, page, c)))?
        .map_err(ZramDevError::NoStream)?
        .map_err(ZramDevError::Zram)
}

/// Read slot `index` into `out` (an unwritten slot reads as zeros).
pub fn read_page(index: u64, out: &mut [u8; 4096]) -> Result<(), ZramDevError> {
    try_with(|d| with_stream(compress::Algorithm::Lz4, |c| d.read_page(index, out, c)))?
        .map_err(ZramDevError::NoStream)?
        .map_err(ZramDevError::Zram)
}

/// The swap layer freed slot `index`: drop what it holds.
pub fn slot_free_notify(index: u64) -> Result<(), ZramDevError> {
    try_with(|d| d.slot_free_notify(index))?.map(|_| ()).map_err(ZramDevError::Zram)
}

/// Pool frames the device holds now (Linux's `zs_get_total_pages`).
pub fn pool_pages() -> Result<u64, ZramDevError> {
    try_with(|d| d.mm_stat().mem_used_total / 4096)
}

/// Bytes of the slot table (RAM the device costs before it holds a page).
pub fn table_bytes() -> Option<u64> {
    ZRAM.lock().as_ref().map(|d| d.table_bytes())
}

/// `mm_stat`, if installed.
pub fn mm_stat() -> Option<MmStat> {
    ZRAM.lock().as_ref().map(|d| d.mm_stat())
}

/// `io_stat`, if installed.
pub fn io_stat() -> Option<IoStat> {
    ZRAM.lock().as_ref().map(|d| d.io_stat())
}

//! The cleancache glue: what the page cache (`kernel/src/fs/pagecache.rs`) calls to keep clean file
//! pages it evicts in tmem, and to find them again before it reads the disk (Linux's `mm/cleancache.c`
//! calling zcache's `zcache_cleancache_*`).
//!
//! # Calls
//!
//! | call | Linux | does |
//! |---|---|---|
//! | [`init_fs`]`(backend)` | `cleancache_init_fs` at mount | an ephemeral tmem pool for a new fs |
//! | [`put`]`(fs, inode, index, page)` | `cleancache_put_page` when a clean page is evicted | keep a compressed copy, if tmem takes it (a refusal is normal: the page is on disk) |
//! | [`get`]`(fs, inode, index, out)` | `cleancache_get_page` before a disk read | `true` with the page in `out`; the get is exclusive: tmem's copy is gone |
//! | [`invalidate_page`], [`invalidate_inode`] | when a page or file is written | no stale copy may be served |
//! | [`invalidate_fs`]`(fs)` | at umount | the pool is destroyed |
//!
//! The page cache runs in task context, so these take zcache's lock with an ordinary `lock`.

use tmem::Backend;
use tmem::cleancache::{CleancacheStats, FsId};

use super::{ZcacheError, pool_memory, with};

/// Mount: a new fs with an ephemeral tmem pool (`backend`, or zbud).
pub fn init_fs(backend: Option<Backend>) -> Result<FsId, ZcacheError> {
    let owner_of = backend.unwrap_or(tmem::PoolKind::Ephemeral.default_backend());
    with(|z| z.cleancache.init_fs_backend(&mut z.tmem, backend, pool_memory(owner_of)))
        .ok_or(ZcacheError::NotInstalled)?
        .map_err(ZcacheError::Cleancache)
}

/// cleancache_put_page: `Ok(true)` if tmem kept the page, `Ok(false)` if it refused it.
pub fn put(fs: FsId, inode: u64, index: u32, page: &[u8; 4096]) -> Result<bool, ZcacheError> {
    let r = with(|z| z.with_compressor(|tmem, _, cc, c| cc.put_page(tmem, c, fs, inode, index, page)))
        .ok_or(ZcacheError::NotInstalled)?
        .map_err(ZcacheError::NoStream)?;
    Ok(r.is_ok())
}

/// cleancache_get_page (exclusive): `Ok(true)` with the page in `out`.
pub fn get(fs: FsId, inode: u64, index: u32, out: &mut [u8; 4096]) -> Result<bool, ZcacheError> {
    with(|z| z.with_compressor(|tmem, _, cc, c| cc.get_page(tmem, c, fs, inode, index, out)))
        .ok_or(ZcacheError::NotInstalled)?
        .map_err(ZcacheError::NoStream)?
        .map_err(ZcacheError::Cleancache)
}

/// cleancache_invalidate_page.
pub fn invalidate_page(fs: FsId, inode: u64, index: u32) -> Result<(), ZcacheError> {
    with(|z| z.cleancache.invalidate_page(&mut z.tmem, fs, inode, index))
        .ok_or(ZcacheError::NotInstalled)?
        .map(|_| ())
        .map_err(ZcacheError::Cleancache)
}

/// cleancache_invalidate_inode.
pub fn invalidate_inode(fs: FsId, inode: u64) -> Result<(), ZcacheError> {
    with(|z| z.cleancache.invalidate_inode(&mut z.tmem, fs, inode))
        .ok_or(ZcacheError::NotInstalled)?
        .map(|_| ())
        .map_err(ZcacheError::Cleancache)
}

/// cleancache_invalidate_fs: the fs's pool is destroyed.
pub fn invalidate_fs(fs: FsId) -> Result<(), ZcacheError> {
    with(|z| z.cleancache.invalidate_fs(&mut z.tmem, fs))
        .ok_or(ZcacheError::NotInstalled)?
        .map(|_| ())
        .map_err(ZcacheError::Cleancache)
}

/// Whether tmem holds (`fs`, `inode`, `index`) now (for checks: an invalidated page must not be there).
pub fn contains(fs: FsId, inode: u64, index: u32) -> bool {
    with(|z| z.cleancache.contains(&z.tmem, fs, inode, index)).unwrap_or(false)
}

/// cleancache's counters (Linux's debugfs names), if zcache is installed.
pub fn stats() -> Option<CleancacheStats> {
    with(|z| z.cleancache.stats())
}

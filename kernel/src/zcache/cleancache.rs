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
    // The page trace follows one file's pages (one atomic load when off).
    let traced = crate::mm::trace::is_file(inode) && crate::mm::trace::record();
    let mut placed = None;
    let r = with(|z| {
        z.with_compressor(|tmem, _, cc, c| {
            let r = cc.put_page(tmem, c, fs, inode, index, page);
            if traced
                && r.is_ok()
                && let Some(pool) = cc.pool(fs)
            {
                let key = tmem::cleancache::cleancache_key(pool, inode, index);
                placed = tmem.placement(key).map(|p| (key, p));
            }
            r
        })
    })
    .ok_or(ZcacheError::NotInstalled)?
    .map_err(ZcacheError::NoStream);
    if traced {
        crate::println!("trace: cleancache_put(fs {}, inode {inode}, index {index})", fs.0);
        match placed {
            Some((key, p)) => {
                crate::println!("trace:   compress: 4096 -> {} bytes", p.stored_len);
                super::trace::placement("put", key, &p);
                super::trace::slots(Some(&p));
            }
            None => {
                crate::println!("trace:   tmem refused the page: the page cache simply forgets it");
                crate::mm::trace::take();
            }
        }
    }
    Ok(r?.is_ok())
}

/// cleancache_get_page (exclusive): `Ok(true)` with the page in `out`.
pub fn get(fs: FsId, inode: u64, index: u32, out: &mut [u8; 4096]) -> Result<bool, ZcacheError> {
    let traced = crate::mm::trace::is_file(inode) && crate::mm::trace::record();
    let mut placed = None;
    let r = with(|z| {
        z.with_compressor(|tmem, _, cc, c| {
            if traced && let Some(pool) = cc.pool(fs) {
                let key = tmem::cleancache::cleancache_key(pool, inode, index);
                placed = tmem.placement(key).map(|p| (key, p));
            }
            cc.get_page(tmem, c, fs, inode, index, out)
        })
    })
    .ok_or(ZcacheError::NotInstalled)?
    .map_err(ZcacheError::NoStream)?
    .map_err(ZcacheError::Cleancache);
    if traced {
        // A miss (the page was never put, or was dropped) prints nothing: the file's pages miss often.
        if let (Ok(true), Some((key, p))) = (&r, placed) {
            crate::println!("trace: cleancache_get(fs {}, inode {inode}, index {index}): hit", fs.0);
            super::trace::placement("get", key, &p);
            super::trace::slots(Some(&p));
            crate::println!("trace:   decompress: {} -> 4096 bytes", p.stored_len);
            super::trace::free("exclusive get: tmem_flush_page", key, &p);
        } else {
            crate::mm::trace::take();
        }
    }
    r
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

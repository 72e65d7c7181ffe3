//! The frontswap glue: what the swap subsystem (`kernel/src/swap`) calls to keep a swapped-out page in
//! tmem instead of writing it to the swap disk (Linux's `mm/frontswap.c` calling zcache's
//! `zcache_frontswap_*`).
//!
//! # Calls
//!
//! | call | Linux | does |
//! |---|---|---|
//! | [`init`]`(ty, slots, backend)` | `frontswap_init` at swapon | a persistent tmem pool for swap type `ty` |
//! | [`store`]`(ty, offset, page, sink)` | `frontswap_store` | compress and keep the page; a full tmem first writes its oldest pages back through `sink` (zswap's shrink), then tries once more |
//! | [`load`]`(ty, offset, out)` | `frontswap_load` | `Ok(true)` with the page in `out`, `Ok(false)` if tmem does not hold it |
//! | [`invalidate_page`]`(ty, offset)` | `frontswap_invalidate_page` at `swap_free` | drop tmem's copy |
//! | [`invalidate_area`]`(ty)` | `frontswap_invalidate_area` at swapoff | drop every page of `ty` |
//! | [`writeback_one`]`(ty, sink)` | zswap's `shrink_worker`, one page | the oldest page of `ty` to the device |
//! | [`pool_pages`] | `zswap_pool_total_size` | frames tmem holds now |
//!
//! Every call runs on the page-fault path and so takes zcache's lock with `try_lock`: a held lock there
//! is a fault inside the fault path ([`ZcacheError::Held`]), never a wait with interrupts off.

use tmem::frontswap::FrontswapError;
use tmem::{Backend, TmemError};

use super::{ZcacheError, pool_memory, try_with, with};

/// Most tmem pages written back to the disk per tmem-full event.
pub const WRITEBACK_BATCH: u64 = 32;

/// What one [`store`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreOutcome {
    /// tmem kept the page; `false`: refused (incompressible, pool out of frames, tmem full), so the
    /// caller writes it to the disk.
    pub stored: bool,
    /// tmem pages written back through the sink to make room (each is one disk write).
    pub written_back: u64,
    /// cleancache (ephemeral) pages tmem dropped to make room for this store.
    pub cleancache_dropped: u64,
    /// Pool frames tmem held after the store.
    pub tmem_pages: u64,
}

/// swapon: a persistent tmem pool with `backend` for swap type `ty` of `slots` slots.
pub fn init(ty: u8, slots: u64, backend: Backend) -> Result<(), ZcacheError> {
    with(|z| z.frontswap.init_backend(&mut z.tmem, ty, slots, Some(backend), pool_memory(backend)))
        .ok_or(ZcacheError::NotInstalled)?
        .map_err(ZcacheError::Frontswap)
}

/// frontswap_store of `page` at (`ty`, `offset`). When tmem is full, its oldest pages of `ty` are
/// written back through `sink(offset, page) -> written` until the pools are below the accept threshold
/// (at most [`WRITEBACK_BATCH`]), and the store is tried once more.
pub fn store(
    ty: u8,
    offset: u64,
    page: &[u8; 4096],
    sink: &mut dyn FnMut(u64, &[u8; 4096]) -> bool,
) -> Result<StoreOutcome, ZcacheError> {
    // Compress first, with this CPU's stream and without zcache's lock: only the allocation, the copy
    // and the indexing below run under it, so other CPUs' stores are not held up by this compression.
    let alg = super::algorithm().ok_or(ZcacheError::NotInstalled)?;
    // The page trace: the swap room started recording for the followed page (one atomic load).
    let traced = crate::mm::trace::recording();
    if traced {
        crate::println!("trace: frontswap_store(type {ty}, offset {offset})");
    }
    let prepared = super::streams::with_stream(alg, |c| zstore::Prepared::new(c, page))
        .and_then(|r| r)
        .map_err(ZcacheError::NoStream)?;
    if traced {
        match &prepared {
            zstore::Prepared::Compressed { len, .. } => {
                crate::println!("trace:   compress: {} 4096 -> {len} bytes", alg.name())
            }
            zstore::Prepared::Same { word } => crate::println!("trace:   compress: same-filled ({word:#x})"),
            zstore::Prepared::Poor { size } => crate::println!("trace:   compress: {size} bytes, too poor to keep"),
        }
    }
    let mut placed = None;
    let r = try_with(|z| {
        z.with_compressor(|tmem, fs, _, c| {
            let mut out = StoreOutcome::default();
            for attempt in 0..2 {
                let drops = tmem.stats().ephemeral_drops;
                let r = fs.store_prepared(tmem, &prepared, ty, offset, page);
                out.cleancache_dropped += tmem.stats().ephemeral_drops - drops;
                out.tmem_pages = tmem.total_pages();
                match r {
                    Ok(()) => {
                        out.stored = true;
                        if traced && let Some(pool) = fs.pool(ty) {
                            let key = tmem::frontswap::swap_key(pool, ty, offset);
                            placed = tmem.placement(key).map(|p| (key, p));
                        }
                        return out;
                    }
                    Err(FrontswapError::Tmem(TmemError::Full)) if attempt == 0 => {
                        let accept = tmem.config().accept_pages();
                        while out.written_back < WRITEBACK_BATCH && tmem.total_pages() >= accept {
                            match fs.writeback_oldest(tmem, c, ty, sink) {
                                Ok(Some(_)) => out.written_back += 1,
                                _ => break,
                            }
                        }
                    }
                    Err(_) => return out,
                }
            }
            out
        })
    })
    .ok_or(ZcacheError::Held)?
    .map_err(ZcacheError::NoStream);
    if traced {
        match (&r, placed) {
            (_, Some((key, p))) => {
                super::trace::placement("put", key, &p);
                super::trace::slots(Some(&p));
            }
            _ => crate::println!("trace:   tmem refused the page: it goes to the swap disk"),
        }
    }
    r
}

/// frontswap_load of (`ty`, `offset`) into `out`: `Ok(true)` on a hit. The copy stays in tmem
/// (persistent pool) until [`invalidate_page`].
pub fn load(ty: u8, offset: u64, out: &mut [u8; 4096]) -> Result<bool, ZcacheError> {
    let traced = crate::mm::trace::recording();
    let mut placed = None;
    let r = try_with(|z| {
        z.with_compressor(|tmem, fs, _, c| {
            if traced && let Some(pool) = fs.pool(ty) {
                let key = tmem::frontswap::swap_key(pool, ty, offset);
                placed = tmem.placement(key).map(|p| (key, p));
            }
            fs.load(tmem, c, ty, offset, out)
        })
    })
    .ok_or(ZcacheError::Held)?
    .map_err(ZcacheError::NoStream)?
    .map_err(ZcacheError::Frontswap);
    if traced {
        crate::println!(
            "trace: frontswap_load(type {ty}, offset {offset}): {}",
            match r {
                Ok(true) => "hit",
                Ok(false) => "miss: the page is on the swap disk",
                Err(_) => "failed",
            }
        );
        if let (Ok(true), Some((key, p))) = (&r, placed) {
            super::trace::placement("get", key, &p);
            super::trace::slots(Some(&p));
            crate::println!("trace:   decompress: {} -> 4096 bytes", p.stored_len);
        }
    }
    r
}

/// frontswap_invalidate_page: drop tmem's copy of (`ty`, `offset`), if any.
pub fn invalidate_page(ty: u8, offset: u64) -> Result<(), ZcacheError> {
    if crate::mm::trace::is_slot(offset) {
        crate::mm::trace::set_slot(None);
        let placed = try_with(|z| {
            let key = tmem::frontswap::swap_key(z.frontswap.pool(ty)?, ty, offset);
            z.tmem.placement(key).map(|p| (key, p))
        })
        .flatten();
        if let Some((key, p)) = placed {
            super::trace::free("frontswap_invalidate_page", key, &p);
        }
    }
    try_with(|z| z.frontswap.invalidate_page(&mut z.tmem, ty, offset))
        .ok_or(ZcacheError::Held)?
        .map(|_| ())
        .map_err(ZcacheError::Frontswap)
}

/// frontswap_invalidate_area: drop every page of swap type `ty` (swapoff).
pub fn invalidate_area(ty: u8) -> Result<(), ZcacheError> {
    with(|z| z.frontswap.invalidate_area(&mut z.tmem, ty))
        .ok_or(ZcacheError::NotInstalled)?
        .map(|_| ())
        .map_err(ZcacheError::Frontswap)
}

/// zswap's shrink, one page: write the oldest page of swap type `ty` in tmem back through `sink` and drop
/// it from tmem. `Ok(Some(offset))`: that slot's page is on the device now; `Ok(None)`: tmem holds no
/// page of `ty`, or the sink refused.
pub fn writeback_one(ty: u8, sink: &mut dyn FnMut(u64, &[u8; 4096]) -> bool) -> Result<Option<u64>, ZcacheError> {
    try_with(|z| z.with_compressor(|tmem, fs, _, c| fs.writeback_oldest(tmem, c, ty, sink)))
        .ok_or(ZcacheError::Held)?
        .map_err(ZcacheError::NoStream)?
        .map_err(ZcacheError::Frontswap)
}

/// Fault injection for tests: flip a byte of the compressed copy tmem holds for `(ty, offset)`
/// (`Tmem::corrupt_object`). `Ok(false)` when tmem holds none.
pub fn corrupt(ty: u8, offset: u64) -> Result<bool, ZcacheError> {
    with(|z| {
        let pool = z.frontswap.pool(ty)?;
        z.frontswap
            .contains(ty, offset)
            .then(|| z.tmem.corrupt_object(tmem::frontswap::swap_key(pool, ty, offset)).is_ok())
    })
    .ok_or(ZcacheError::NotInstalled)
    .map(|r| r.unwrap_or(false))
}

/// The oldest page of swap type `ty` in tmem (the next one writeback takes), as its swap offset.
pub fn oldest(ty: u8) -> Option<u64> {
    with(|z| z.frontswap.pool(ty).and_then(|p| z.tmem.oldest(p)).map(|k| tmem::frontswap::swap_entry(k).1)).flatten()
}

/// frontswap's own counters (stores, loads, writebacks, corrupt pages skipped), if installed.
pub fn frontswap_stats() -> Option<tmem::frontswap::FrontswapStats> {
    with(|z| z.frontswap.stats())
}

/// Pool frames tmem holds now (every pool: frontswap's and cleancache's share the one limit).
pub fn pool_pages() -> Result<u64, ZcacheError> {
    try_with(|z| z.tmem.total_pages()).ok_or(ZcacheError::Held)
}

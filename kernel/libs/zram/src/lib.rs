//! zram: a compressed RAM block device — a disk of `disksize` pages whose every written page is kept,
//! compressed, in a pool of RAM (Linux's `drivers/block/zram/zram_drv.c`), over the same pools
//! ([`zpool::ZPool`]: zsmalloc, zbud) and the same page store ([`zstore::Zstore`]) as tmem.
//!
//! # Why
//!
//! frontswap puts compressed pages *in front of* a swap disk: a page it refuses goes to the disk, and
//! the disk must exist. zram (compcache, 2008; in staging from 2.6.33, in `drivers/block` since 3.14)
//! is the other answer to "compress instead of swapping": the swap device *is* compressed RAM. Nothing
//! is refused for being poorly compressible (such a page is kept whole, a *huge page*), there is no disk
//! behind it, and the only bound is a memory limit the administrator sets. zkernel has both so they can
//! be compared at equal memory (design.md): `swap_device=zram` writes swapped pages here,
//! `swap_device=disk` to virtio-blk, with or without frontswap in front of the disk. This crate is the
//! device; the kernel wires it.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | disksize | the device's size in pages ([`Zram::disksize_pages`]): how many pages of *uncompressed* data it can name, not how much RAM it uses |
//! | sector | one page here ([`SECTOR_SIZE`] = 4096): slot `i` is the device's page `i` |
//! | slot | one entry of the slot table per page of the disk (Linux's `struct zram_table_entry`): empty, or a [`zstore::Entry`] |
//! | same page | a page of one 8-byte word repeated: the slot keeps the word (Linux's `element`), no pool object (`ZRAM_SAME`) |
//! | huge page | a page whose stored bytes reach the huge class size, kept as its 4096 raw bytes (`ZRAM_HUGE`, [`zstore::Policy::zram`]) |
//! | discard | "these pages hold nothing any more": their slots are freed (`REQ_OP_DISCARD`, `zram_bio_discard`) |
//! | notify_free | the swap layer's "this swap slot is free" (`swap_slot_free_notify`): the same, one page |
//! | mem_limit | the most pool frames the device may hold; a write that would pass it fails (`-ENOMEM`) |
//!
//! # Sectors: Linux's 512 bytes, our pages
//!
//! Linux's block layer counts 512-byte sectors (`SECTOR_SHIFT` 9); zram turns a sector into a slot
//! with `index = sector >> SECTORS_PER_PAGE_SHIFT` (8 sectors a page) and rounds `disksize` up to whole
//! pages (`PAGE_ALIGN`). A request smaller than a page (`is_partial_io`) costs zram a read, a patch and a
//! recompression of the whole page, and a discard that does not cover a whole page frees nothing. zkernel's
//! block users (swap, the QEMU tests) speak in pages only, so here a sector *is* a page: every call takes
//! a slot index and a whole page, and partial I/O does not exist.
//!
//! # The slot table
//!
//! | Linux (`zram_table_entry`, 16 bytes on x86-64) | here (`Option<Entry>`, 16 bytes) |
//! |---|---|
//! | `handle` (a zsmalloc handle) or `element` (the word of a same page) | [`Entry::Compressed`]`{ handle, .. }` / [`Entry::Whole`]`{ handle }` / [`Entry::Same`]`{ word }` |
//! | `flags` bits `0..PAGE_SHIFT+1`: the object's size | `len` of [`Entry::Compressed`]; 4096 for [`Entry::Whole`] |
//! | `ZRAM_SAME` | [`Entry::Same`] — [`SlotState::Same`] |
//! | `ZRAM_HUGE` | [`Entry::Whole`] — [`SlotState::Huge`] |
//! | `ZRAM_WB`, `ZRAM_IDLE`, `ZRAM_PP_SLOT`, `ZRAM_INCOMPRESSIBLE`, comp priority bits | none: no writeback to a backing device, no idle tracking, no recompression |
//! | `ZRAM_LOCK` (slot lock) | none: `&mut self`; the kernel puts the whole device behind one lock |
//! | an empty slot: `handle == 0`, no flag | `None` — [`SlotState::Empty`], reads as zeros |
//!
//! The table is allocated once, `disksize` entries, when the device is made (Linux: `vzalloc` in
//! `zram_meta_alloc`), and [`Zram::table_bytes`] reports it: RAM the device costs before it holds a
//! single page, and which the equal-memory accounting counts beside the pool's frames.
//!
//! # Writing a page (`zram_write_page`), and the memory limit
//!
//! 1. A same-filled page: no compression, no allocation, no limit check; `same_pages` +1.
//! 2. Otherwise the page is compressed and a new pool object allocated and filled (the store: the page
//!    whole when its stored bytes reach the huge class size, `huge_pages` and `huge_pages_since` +1).
//! 3. Then `used = zs_get_total_pages()`; `mem_used_max = max(mem_used_max, used)` — *before* the check,
//!    so the peak of a refused write is recorded; and if a limit is set and `used > limit`, the new object
//!    is freed and the write fails with [`ZramError::MemLimit`] (Linux: `-ENOMEM`, `failed_writes` +1).
//! 4. Only now is the slot's old entry freed and the new one put in its place.
//!
//! The order is what keeps data safe: the old page is let go only once its replacement is stored, so a
//! write refused for any reason (the limit, the pool out of frames, zbud unable to hold a whole page)
//! leaves the slot exactly as it was — nothing is lost. Its price: an overwrite at the limit is refused
//! even when freeing the old page would have made room, as in Linux. The limit is on pool frames alone
//! (`mem_used_total`); the slot table is not counted against it (nor is it in Linux).
//!
//! zbud holds at most 4032 bytes an object, so it cannot keep a page whole: over zbud a page that does
//! not compress below that is refused ([`StoreError::Pool`] with [`zpool::PoolError::TooLarge`],
//! `failed_writes` +1), and the swap layer keeps it or writes it elsewhere. Linux's zram has only zsmalloc.
//!
//! # Reading, discard, notify_free
//!
//! - [`Zram::read_page`]: an empty slot reads as zeros (`zram_read_page` on a slot with no handle);
//!   a same page is refilled from its word; anything else is decompressed. Stored bytes that fail the
//!   compressor's check are [`ZramError::Corrupt`] (`failed_reads` +1) and the slot stays as it is.
//! - [`Zram::discard`]`(index, count)`: frees `count` whole slots from `index` (`zram_bio_discard`
//!   frees the whole pages a discard covers), `notify_free` +1 for each, whether it held a page or not.
//! - [`Zram::slot_free_notify`]`(index)`: the same for one slot, the swap layer's call when it frees a
//!   swap slot (`zram_slot_free_notify`), `notify_free` +1.
//! - A call naming a slot at or past `disksize` changes nothing and fails with [`ZramError::OutOfRange`],
//!   `invalid_io` +1 (Linux before 6.5: `valid_io_request`; since then the block layer checks the range
//!   and `io_stat` prints 0 in that column).
//!
//! # `mm_stat` and `io_stat`
//!
//! [`Zram::mm_stat`] and [`Zram::io_stat`] are `/sys/block/zram<id>/mm_stat` and `io_stat`, field for
//! field, in Linux's order (`mm_stat_show`, `io_stat_show`); their `Display` prints Linux's line.
//!
//! | # | `mm_stat` field | Linux (`mm_stat_show`) | here | unit |
//! |---|---|---|---|---|
//! | 1 | `orig_data_size` | `pages_stored << PAGE_SHIFT` | pages held × 4096, same and huge pages included | bytes |
//! | 2 | `compr_data_size` | Σ `comp_len` (bare stream; 4096 a huge page) | Σ stored bytes (stream + 5-byte frame; 4096 a huge page; 0 a same page) | bytes |
//! | 3 | `mem_used_total` | `zs_get_total_pages() << PAGE_SHIFT` | the pool's frames × 4096 | bytes |
//! | 4 | `mem_limit` | `limit_pages << PAGE_SHIFT` (0: none) | [`Zram::set_mem_limit`] × 4096 (0: none) | bytes |
//! | 5 | `mem_used_max` | `max_used_pages << PAGE_SHIFT` | the most frames seen after a write's allocation × 4096 | bytes |
//! | 6 | `same_pages` | same-filled pages held | the same | pages |
//! | 7 | `pages_compacted` | `zs_pool_stats.pages_compacted` | the pool's `pages_compacted` | pages |
//! | 8 | `huge_pages` | pages held with `ZRAM_HUGE` | pages held whole | pages |
//! | 9 | `huge_pages_since` | huge pages written since the device was set up | the same, never decremented | pages |
//!
//! | # | `io_stat` field | Linux | here |
//! |---|---|---|---|
//! | 1 | `failed_reads` | reads that returned an error | reads that found a corrupt or lost object |
//! | 2 | `failed_writes` | writes that returned an error (`-ENOMEM`: no memory or over the limit) | writes refused: [`ZramError::MemLimit`], [`ZramError::Store`] |
//! | 3 | `invalid_io` | requests outside the device or not page-aligned (0 since Linux 6.5) | calls naming a slot outside the device |
//! | 4 | `notify_free` | pages freed by swap slot free notifications and by discard | slots freed by [`Zram::slot_free_notify`] and [`Zram::discard`], held or not |
//!
//! # Worked example
//!
//! A device of 8 pages over zsmalloc (chains of 4: huge class from 3257 bytes), zram's policy, LZ4:
//!
//! ```text
//!   write(0, zero page)           same page: slot 0 = Same { word: 0 }, no pool object   same_pages 1
//!   write(1, first perl page)     1781 stored bytes < 3257: a 1808-byte place (merged class) in a new 4-frame zspage
//!   write(2, random page)         LZ4: 4119 ≥ 3257, kept whole: a new 1-frame huge zspage  huge_pages 1
//!   mm_stat   12288 5877 20480 0 20480 1 0 1 1
//!             (3 pages; 1781 + 4096; 5 frames; no limit; peak 5 frames; same 1; none compacted; huge 1, since 1)
//!   read(5)                       slot 5 never written: a page of zeros, Ok
//!   set_mem_limit(5)              mm_stat's mem_limit 20480
//!   write(3, another random page) a new huge zspage: 6 frames > 5 → the object is freed, Err(MemLimit
//!                                 { used_pages: 6, limit_pages: 5 }), slot 3 stays empty   failed_writes 1
//!                                 mem_used_max 24576: the peak of the refused write is kept
//!   write(2, another random page) an overwrite is refused the same way: slot 2 still reads the first
//!                                 random page                                             failed_writes 2
//!   write(2, zero page)           same pages take no memory and pass the limit; the huge page is
//!                                 freed: 4 frames                           same_pages 2, huge_pages 0
//!   discard(0, 2)                 slots 0 and 1 freed; the zspage empties: 0 frames       notify_free 2
//!   slot_free_notify(7)           slot 7 was empty: nothing freed, still counted          notify_free 3
//!   read(8)                       slot 8 is past the disk: Err(OutOfRange), nothing else   invalid_io 1
//!   mm_stat   4096 0 0 20480 24576 1 0 0 1       io_stat   0 2 1 3
//! ```
//!
//! The test `worked_example_from_the_header` replays it line by line.
//!
//! # Contracts
//!
//! - A call that fails changes no slot: a refused write keeps the slot's old page, a failed read keeps
//!   the slot, an out-of-range call touches nothing. Only its `io_stat` counter moves (and
//!   `mem_used_max`, which records the peak a refused write reached, as Linux's does).
//! - A read returns the page last written to the slot, byte for byte; zeros if the slot is empty
//!   (never written, discarded, or freed by `slot_free_notify`); or an error.
//! - `mm_stat` always satisfies `orig_data_size = 4096 × (slots held)`, `same_pages + huge_pages ≤ slots
//!   held` and `mem_used_max ≥ mem_used_total` once any object was allocated.
//! - Freeing a slot's object cannot fail unless the pool lost it behind the device's back (an evicting
//!   pool, [`Zram::pool_mut`], a bug). If it does, the call reports [`ZramError::Store`] and the slot is
//!   as the call would have left it: empty after `discard`/`slot_free_notify`, the new page after a
//!   write — the old object is gone either way.
//! - No call panics on any input; the device allocates on the heap only its table, once.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;

pub use compress::{Compressor, PAGE_SIZE};
use zpool::ZPool;
pub use zstore::{Entry, Policy, StoreError, StoreStats, Zstore};

#[cfg(test)]
mod tests;

/// Bytes a sector of this device holds: one page. Linux's sectors are 512 bytes
/// ([`LINUX_SECTOR_SIZE`]) and zram maps [`LINUX_SECTORS_PER_PAGE`] of them to one slot.
pub const SECTOR_SIZE: usize = PAGE_SIZE;

/// Linux's block-layer sector (`SECTOR_SIZE`, `1 << SECTOR_SHIFT`).
pub const LINUX_SECTOR_SIZE: usize = 512;

/// Linux's `SECTORS_PER_PAGE`: 512-byte sectors in one zram slot.
pub const LINUX_SECTORS_PER_PAGE: usize = PAGE_SIZE / LINUX_SECTOR_SIZE;

/// One page of data.
pub type Page = [u8; PAGE_SIZE];

/// Why a call failed. A failed call changed no slot (see the module header's contracts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZramError {
    /// Slots `index .. index + count` are not all inside the device of `disksize_pages` pages
    /// (counted in `invalid_io`).
    OutOfRange { index: u64, count: u64, disksize_pages: u64 },
    /// The write's new object took the pool to `used_pages` frames, above the limit of `limit_pages`
    /// (Linux's `-ENOMEM` from `zram_write_page`); the object was freed again, the slot kept its page.
    MemLimit { used_pages: u64, limit_pages: u64 },
    /// The store or the pool refused: out of frames, an object too large for the pool (a whole page in
    /// zbud), a stale handle.
    Store(StoreError),
    /// The stored bytes of slot `index` failed the compressor's check or name no known algorithm; the
    /// slot is kept (the caller decides) and the page buffer holds garbage.
    Corrupt { index: u64 },
    /// [`Zram::new`]: a disk of 0 pages, or one whose table cannot be indexed on this machine (Linux's
    /// `disksize_store`: `-EINVAL`).
    BadDisksize { pages: u64 },
    /// [`Zram::new`]: the slot table could not be allocated (Linux: `-ENOMEM` from `zram_meta_alloc`).
    NoMemory { pages: u64 },
}

impl From<StoreError> for ZramError {
    fn from(e: StoreError) -> Self {
        ZramError::Store(e)
    }
}

impl fmt::Display for ZramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ZramError::OutOfRange { index, count, disksize_pages } => {
                write!(f, "slots {index}..+{count} are outside the device of {disksize_pages} pages")
            }
            ZramError::MemLimit { used_pages, limit_pages } => {
                write!(f, "the write took the pool to {used_pages} pages, above the limit of {limit_pages}")
            }
            ZramError::Store(e) => write!(f, "store: {e}"),
            ZramError::Corrupt { index } => write!(f, "slot {index} holds corrupt stored bytes"),
            ZramError::BadDisksize { pages } => write!(f, "a disk of {pages} pages cannot be made"),
            ZramError::NoMemory { pages } => write!(f, "no memory for a slot table of {pages} entries"),
        }
    }
}

/// What one slot holds, as Linux's slot flags say it (see "The slot table").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// Never written, discarded or freed: no handle, no flag. Reads as zeros.
    Empty,
    /// `ZRAM_SAME`: a same-filled page, kept as its word (Linux's `element`).
    Same { element: u64 },
    /// A compressed object of `obj_size` stored bytes (Linux's `zram_get_obj_size`).
    Compressed { obj_size: u32 },
    /// `ZRAM_HUGE`: the page kept whole, an object of 4096 bytes.
    Huge,
}

/// `/sys/block/zram<id>/mm_stat`, in Linux's order (see the module header's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MmStat {
    /// Uncompressed size of the data stored: 4096 × pages held, same and huge pages included. Bytes.
    pub orig_data_size: u64,
    /// Compressed size of the data stored: the pool objects' bytes (Linux: the bare compressed streams;
    /// here each carries the `compress` crate's 5-byte frame); 4096 a huge page, 0 a same page. Bytes.
    pub compr_data_size: u64,
    /// Memory the pool holds for the device, its fragmentation and metadata pages included: the pool's
    /// frames × 4096 (Linux: `zs_get_total_pages`). Bytes.
    pub mem_used_total: u64,
    /// The most memory the pool may hold for the device; 0 for no limit. Bytes.
    pub mem_limit: u64,
    /// The most memory the pool has held, as seen right after each write's allocation (a refused write's
    /// peak included); [`Zram::reset_mem_used_max`] sets it to `mem_used_total`. Bytes.
    pub mem_used_max: u64,
    /// Same-filled pages held; no memory is allocated for them. Pages.
    pub same_pages: u64,
    /// Pool pages freed by compaction, ever. Pages.
    pub pages_compacted: u64,
    /// Incompressible pages held, each kept whole (`ZRAM_HUGE`). Pages.
    pub huge_pages: u64,
    /// Incompressible pages written since the device was set up. Pages.
    pub huge_pages_since: u64,
}

impl MmStat {
    /// The field names, in `mm_stat`'s order.
    pub const FIELDS: [&'static str; 9] = [
        "orig_data_size",
        "compr_data_size",
        "mem_used_total",
        "mem_limit",
        "mem_used_max",
        "same_pages",
        "pages_compacted",
        "huge_pages",
        "huge_pages_since",
    ];

    /// The values, in [`MmStat::FIELDS`]' order.
    pub const fn values(&self) -> [u64; 9] {
        [
            self.orig_data_size,
            self.compr_data_size,
            self.mem_used_total,
            self.mem_limit,
            self.mem_used_max,
            self.same_pages,
            self.pages_compacted,
            self.huge_pages,
            self.huge_pages_since,
        ]
    }
}

/// Linux's line: nine numbers, each right-aligned in 8 columns, one space apart.
impl fmt::Display for MmStat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_line(f, &self.values())
    }
}

/// `/sys/block/zram<id>/io_stat`, in Linux's order (see the module header's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoStat {
    /// Reads that failed: the stored bytes were corrupt or the pool had lost the object.
    pub failed_reads: u64,
    /// Writes that failed: over the memory limit, or refused by the store or the pool.
    pub failed_writes: u64,
    /// Requests naming slots outside the device (Linux: also non-page-aligned ones; 0 since 6.5).
    pub invalid_io: u64,
    /// Slots freed by swap slot free notifications and by discards, one per slot, held or not.
    pub notify_free: u64,
}

impl IoStat {
    /// The field names, in `io_stat`'s order.
    pub const FIELDS: [&'static str; 4] = ["failed_reads", "failed_writes", "invalid_io", "notify_free"];

    /// The values, in [`IoStat::FIELDS`]' order.
    pub const fn values(&self) -> [u64; 4] {
        [self.failed_reads, self.failed_writes, self.invalid_io, self.notify_free]
    }
}

/// Linux's line: four numbers, each right-aligned in 8 columns, one space apart.
impl fmt::Display for IoStat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_line(f, &self.values())
    }
}

fn write_line(f: &mut fmt::Formatter<'_>, values: &[u64]) -> fmt::Result {
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        write!(f, "{v:>8}")?;
    }
    Ok(())
}

/// A compressed RAM block device over the pool `P` (see the module header).
#[derive(Debug)]
pub struct Zram<P> {
    store: Zstore<P>,
    /// One entry per page of the disk (Linux's `zram->table`).
    table: Vec<Option<Entry>>,
    /// Pool frames the device may hold; 0 for no limit (Linux's `limit_pages`).
    limit_pages: u64,
    /// The most pool frames seen after a write's allocation (Linux's `max_used_pages`).
    max_used_pages: u64,
    huge_pages_since: u64,
    io: IoStat,
}

impl<P: ZPool> Zram<P> {
    /// A device of `disksize_pages` pages keeping its pages in `pool` under `policy` — zram's own rule is
    /// [`Policy::zram`]`(huge_class_size)` with the pool's huge class size (zsmalloc's
    /// `huge_class_size()`). The slot table is allocated here, all slots empty, no memory limit.
    /// A disk of 0 pages is [`ZramError::BadDisksize`]; a table that cannot be allocated
    /// [`ZramError::NoMemory`].
    pub fn new(pool: P, disksize_pages: u64, policy: Policy) -> Result<Self, ZramError> {
        let pages = usize::try_from(disksize_pages)
            .ok()
            .filter(|&n| n > 0)
            .ok_or(ZramError::BadDisksize { pages: disksize_pages })?;
        let mut table = Vec::new();
        table.try_reserve_exact(pages).map_err(|_| ZramError::NoMemory { pages: disksize_pages })?;
        table.resize_with(pages, || None);
        Ok(Zram {
            store: Zstore::new(pool, policy),
            table,
            limit_pages: 0,
            max_used_pages: 0,
            huge_pages_since: 0,
            io: IoStat::default(),
        })
    }

    /// Pages the device can name (Linux's `disksize >> PAGE_SHIFT`).
    pub fn disksize_pages(&self) -> u64 {
        self.table.len() as u64
    }

    /// The store beneath the device, for its own counters (`reject_alloc_fail`, `loads`, …).
    pub fn store(&self) -> &Zstore<P> {
        &self.store
    }

    /// The pool, for its own statistics.
    pub fn pool(&self) -> &P {
        self.store.pool()
    }

    /// The pool, mutably. Freeing or rewriting the device's objects through it breaks its slots (tests do
    /// it on purpose, to corrupt stored bytes).
    pub fn pool_mut(&mut self) -> &mut P {
        self.store.pool_mut()
    }

    /// Slots `index .. index + count`, or `OutOfRange` (counted in `invalid_io`).
    fn range(&mut self, index: u64, count: u64) -> Result<core::ops::Range<usize>, ZramError> {
        let disksize_pages = self.disksize_pages();
        match index.checked_add(count) {
            Some(end) if end <= disksize_pages => Ok(index as usize..end as usize),
            _ => {
                self.io.invalid_io += 1;
                Err(ZramError::OutOfRange { index, count, disksize_pages })
            }
        }
    }

    /// Store `page` as the device's page `index` (see "Writing a page" in the module header). The slot's
    /// old page is freed only after the new one is stored, so on `Err` the slot still holds its old page.
    pub fn write_page(&mut self, index: u64, page: &Page, comp: &mut Compressor) -> Result<(), ZramError> {
        let slot = self.range(index, 1)?.start;
        let entry = match self.store.store(comp, page) {
            Ok(e) => e,
            Err(e) => {
                self.io.failed_writes += 1;
                return Err(ZramError::Store(e));
            }
        };
        if entry.handle().is_some() {
            // zram_write_page: zs_get_total_pages, update_used_max, then the limit.
            let used = self.store.pool().total_pages();
            self.max_used_pages = self.max_used_pages.max(used);
            if self.limit_pages != 0 && used > self.limit_pages {
                self.io.failed_writes += 1;
                self.store.free(entry)?;
                return Err(ZramError::MemLimit { used_pages: used, limit_pages: self.limit_pages });
            }
        }
        if matches!(entry, Entry::Whole { .. }) {
            self.huge_pages_since += 1;
        }
        match self.table[slot].replace(entry) {
            Some(old) => Ok(self.store.free(old)?),
            None => Ok(()),
        }
    }

    /// Copy the device's page `index` into `page`: the page last written there, or zeros for an empty
    /// slot. On `Err` the slot is unchanged and `page` holds garbage.
    pub fn read_page(&mut self, index: u64, page: &mut Page, comp: &mut Compressor) -> Result<(), ZramError> {
        let slot = self.range(index, 1)?.start;
        let Some(entry) = &self.table[slot] else {
            page.fill(0);
            return Ok(());
        };
        match self.store.load(comp, entry, page) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.io.failed_reads += 1;
                Err(match e {
                    StoreError::Corrupt | StoreError::UnknownAlgorithm(_) => ZramError::Corrupt { index },
                    e => ZramError::Store(e),
                })
            }
        }
    }

    /// Free slots `index .. index + count` (`zram_bio_discard` over whole pages); `notify_free` +1 for
    /// every slot of the range, held or not. Returns the slots that held a page. A range that leaves the
    /// device frees nothing ([`ZramError::OutOfRange`]).
    pub fn discard(&mut self, index: u64, count: u64) -> Result<u64, ZramError> {
        let range = self.range(index, count)?;
        let mut freed = 0;
        let mut first_err = None;
        for slot in range {
            self.io.notify_free += 1;
            match self.free_slot(slot) {
                Ok(held) => freed += u64::from(held),
                Err(e) => {
                    freed += 1;
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(freed), Err)
    }

    /// The swap layer freed swap slot `index` (`swap_slot_free_notify`): free the slot; `notify_free`
    /// +1 whether it held a page or not. Returns whether it did.
    pub fn slot_free_notify(&mut self, index: u64) -> Result<bool, ZramError> {
        let slot = self.range(index, 1)?.start;
        self.io.notify_free += 1;
        self.free_slot(slot)
    }

    /// Empty one slot (`zram_free_page`); true if it held a page.
    fn free_slot(&mut self, slot: usize) -> Result<bool, ZramError> {
        match self.table[slot].take() {
            Some(entry) => {
                self.store.free(entry)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// What slot `index` holds, as Linux's slot flags say it. A query, not I/O: out of range is an error
    /// but not counted in `invalid_io`.
    pub fn slot(&self, index: u64) -> Result<SlotState, ZramError> {
        let disksize_pages = self.disksize_pages();
        let entry = usize::try_from(index).ok().and_then(|i| self.table.get(i)).ok_or(ZramError::OutOfRange {
            index,
            count: 1,
            disksize_pages,
        })?;
        Ok(match entry {
            None => SlotState::Empty,
            Some(Entry::Same { word }) => SlotState::Same { element: *word },
            Some(Entry::Compressed { len, .. }) => SlotState::Compressed { obj_size: *len },
            Some(Entry::Whole { .. }) => SlotState::Huge,
        })
    }

    /// The entry of slot `index` (zcache's *pampd*: the word, or the handle and length), `None` for an
    /// empty slot or one outside the device.
    pub fn entry(&self, index: u64) -> Option<&Entry> {
        usize::try_from(index).ok().and_then(|i| self.table.get(i)).and_then(Option::as_ref)
    }

    /// Let the pool hold at most `pages` frames for this device; 0 lifts the limit (Linux's `mem_limit`
    /// attribute, which takes bytes and rounds them up to pages). Pages already held above a lower limit
    /// stay; only later writes are refused.
    pub fn set_mem_limit(&mut self, pages: u64) {
        self.limit_pages = pages;
    }

    /// The limit in pages; 0 for none.
    pub fn mem_limit_pages(&self) -> u64 {
        self.limit_pages
    }

    /// Set `mem_used_max` to what the pool holds now (Linux: writing 0 to the `mem_used_max` attribute).
    pub fn reset_mem_used_max(&mut self) {
        self.max_used_pages = self.store.pool().total_pages();
    }

    /// Compact the pool (Linux's `compact` attribute, `zs_compact`); returns the pages freed, which
    /// `pages_compacted` then counts. Every slot keeps its page.
    pub fn compact(&mut self) -> Result<u64, ZramError> {
        Ok(self.store.compact()?)
    }

    /// Bytes of the slot table: `disksize` entries of 16 bytes (Linux: `disksize >> PAGE_SHIFT` times
    /// `sizeof(struct zram_table_entry)`). Memory the device holds besides the pool's frames.
    pub fn table_bytes(&self) -> u64 {
        (self.table.capacity() * core::mem::size_of::<Option<Entry>>()) as u64
    }

    /// `/sys/block/zram<id>/mm_stat` (see the module header's table).
    pub fn mm_stat(&self) -> MmStat {
        let s = self.store.stats();
        let page = PAGE_SIZE as u64;
        MmStat {
            orig_data_size: s.orig_data_size,
            compr_data_size: s.compr_data_size,
            mem_used_total: s.mem_used_total,
            mem_limit: self.limit_pages.saturating_mul(page),
            mem_used_max: self.max_used_pages.saturating_mul(page),
            same_pages: s.same_pages,
            pages_compacted: s.pages_compacted,
            huge_pages: s.huge_pages,
            huge_pages_since: self.huge_pages_since,
        }
    }

    /// `/sys/block/zram<id>/io_stat` (see the module header's table).
    pub fn io_stat(&self) -> IoStat {
        self.io
    }
}

//! xcfmalloc: a scatter-gather allocator of 64-byte blocks whose objects may lie in two blocks of two
//! different pages, and whose blocks can be moved because every block has a descriptor — Seth Jennings's
//! `drivers/staging/zcache/xcfmalloc.c` (linux-mm, v2 of 7 September 2011), behind the [`zpool::ZPool`]
//! interface, with the compaction the patch planned but never wrote.
//!
//! # Why
//!
//! zcache kept its persistent (frontswap) pages with xvmalloc, a TLSF allocator in which an object had to
//! fit into one page. Compressed pages are mostly larger than half a page (75 % is typical), and two
//! objects above `PAGE_SIZE / 2` never share a page: the rest of each page stays empty unless a small
//! object comes along. The patch's cover letter puts the loss at "up to 50 %" external fragmentation on
//! such sets, and xvmalloc could not compact either, since its objects were named by page and offset.
//!
//! xcfmalloc cuts pages into blocks of 64 bytes and lets one object take *two* blocks, anywhere: the head
//! of a 3000-byte object can fill the 1 KiB left at the end of one page and its tail the start of another.
//! No page has to stay partly empty for lack of a large enough hole: 10,000 objects of 3072 bytes take
//! 7657 pages here (every page but the last tiled full; the test `density_of_objects_at_75_percent`
//! explains the figure), where two-per-page-at-most would need 10,000. The price: the object is not
//! contiguous, so it is copied in and out ([`ZPool::map`] gathers and scatters, the patch's `xcf_read` and
//! `xcf_write`), and every block carries a header in the page and a descriptor in memory. The
//! descriptors are also what makes blocks movable: a handle names a descriptor, not a place, so
//! [`ZPool::compact`] can move a block and fix one descriptor.
//!
//! zsmalloc (2012) replaced it upstream: size classes put metadata nearly to zero and make compaction
//! simple. Nitin Gupta's review of this patch said exactly that — "high metadata overhead, difficult
//! implementation of compaction, need for extra memcpy()s" — and [`Xcfmalloc::metadata_bytes`] lets a
//! test or the report measure the first point.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | block | a run of whole 64-byte units ([`BLOCK_SIZE`]) inside one page, 64 to 4096 bytes; it starts with a header |
//! | header | the first 16 bytes ([`HEADER_LEN`]) of every block, free or used, in the page: a sentinel, the block's descriptor (the patch's `desc` back-pointer) and the previous block's offset (`prevoffset`) |
//! | descriptor | the block's record in a side table in memory (patch: `struct xcf_blkdesc`): page, offset, size, flags, two links; 24 bytes ([`DESCRIPTOR_BYTES`]) |
//! | free list | one per block size: list `i` holds the free blocks of `(i + 1) × 64` bytes, `i` in `0..64` ([`NUM_FREELISTS`], [`size_to_flindex`]) |
//! | reserve | the empty pages: a page with no used block is one free 4096-byte block on the last list; the pool keeps up to [`DEFAULT_RESERVE_PAGES`] (32) of them and gives back only the surplus |
//! | allocation | the 1 or 2 blocks ([`MAX_BLOCKS_PER_ALLOC`]) of one object, linked through their descriptors; the handle names the first |
//! | first / last block | of a 2-block allocation: the first is a whole free block, the last is split to size |
//! | extent | a used block's length: its size (object bytes + header) rounded up to 64 |
//! | compaction | moving used blocks out of the sparsest pages into holes of fuller pages, so emptied pages can go back |
//!
//! # Page layout
//!
//! A page is tiled by blocks; each block's header says which descriptor owns it and where the block
//! before it starts, so a free can find both neighbours in the page (the next one is at `offset + size`)
//! and merge with the free ones. Two free blocks are never adjacent. Object `b` of the worked example,
//! 2000 bytes in two blocks of two pages:
//!
//! ```text
//!   page P                                               page Q
//!   0    16                          3072 3088      4096  0    16          1024 1040              4096
//!   +----+------------------------------+----+---------+  +----+------------+----+------------------+
//!   | h  | a: 3000 bytes (+56 slack)    | h  | b[0..   |  | h  | b[1008..   | h  | free: 3072 bytes |
//!   |    |                              |    |   1008] |  |    |   2000]    |    | (list 47)        |
//!   +----+------------------------------+----+---------+  +----+------------+----+------------------+
//!    block 0..3072, used, 48 units       block, 16 units   block, 16 units   block, 48 units
//! ```
//!
//! The header, little-endian, 16 bytes as the patch's `struct xcf_blkhdr` on x86_64 (pointer, `int`,
//! debug `int` sentinel), so that the largest object is the same 4080 bytes:
//!
//! | bytes | field | meaning |
//! |---|---|---|
//! | `0..4` | sentinel | `b"XCFB"` ([`HEADER_SENTINEL`]; the patch's `0xdeadbeef`) |
//! | `4..8` | descriptor | `u32`: index of the block's descriptor (patch: a pointer to it) |
//! | `8..12` | prevoffset | `u32`: offset of the block before it in the page; 0 for the first block |
//! | `12..16` | — | zero |
//!
//! An object's bytes follow its header; a used block of `s` object bytes has size `s + 16` and extent
//! `⌈(s + 16) / 64⌉ × 64`. A page holds at most 64 blocks.
//!
//! # Descriptors
//!
//! One per block, free or used, in a side table (`Vec`) indexed by descriptor number; 24 bytes each:
//!
//! | field | bytes | meaning |
//! |---|---|---|
//! | pfn | 8 | the block's page (patch: `struct page *`) |
//! | next, prev | 4 + 4 | free block: its free-list neighbours; used block: the allocation's other block (`NIL` = none) |
//! | offset and flags | 2 | the offset (a multiple of 64) with flags in the 6 low bits: free, used, head (first block of an allocation) |
//! | size | 2 | free: the block's length; used: object bytes in it + 16 |
//! | generation | 4 | bumped when the allocation this descriptor heads is freed: part of the handle |
//!
//! A descriptor whose block merged into its neighbour goes onto a chain of unused descriptors (through
//! `next`) for reuse; the table never shrinks.
//!
//! # Handles
//!
//! [`zpool::handle`]'s encoding with layout `(28, 0, 20)`: bits `0..28` the head descriptor's index,
//! `28..48` its generation, `48..64` the pool tag. A handle is live if the tag is this pool's, the
//! descriptor is the head of a used allocation, and the generations agree. A descriptor reissues a handle
//! after 2^20 − 1 frees of allocations it headed.
//!
//! # Choosing blocks (the patch's `xcf_find_remove_block`)
//!
//! For `need` = bytes still to place + 16, let `f` = [`size_to_flindex`]`(need)`:
//!
//! 1. *best fit*: the head of list `f`;
//! 2. only for the first block: the *largest smaller* block, the head of the highest non-empty list in
//!    `f − 1 ..= 1` (never list 0: a 64-byte block would carry 48 bytes) — this uses up the holes of
//!    partly used pages before a fresh page is touched, at the price of more 2-block objects;
//! 3. the *smallest larger* block, the head of the lowest non-empty list in `f + 1 ..= 63`.
//!
//! A first block that holds everything ends the search; otherwise it is used whole and a last block is
//! searched for the rest, steps 1 and 3 only ("all or nothing now"). The last block is split: its first
//! `⌈need / 64⌉ × 64` bytes are used, the rest becomes a free block on its own list. Reading note: the
//! copy of the patch we read guards step 2 with `blocknum == XCF_MAX_BLOCKS_PER_ALLOC`, the opposite of
//! its own comment ("if this is the last block … we shouldn't consider smaller blocks"); read literally it
//! would let a last block come up short and `xcf_write` overrun it. We follow the comment, which is also
//! how the issue states the rule.
//!
//! Before every `malloc` the reserve is refilled to its target (the patch's `xcf_increase_pool`), and the
//! reserve pages sit on list 63, the last one step 3 reaches: they are used only when no partly used page
//! has room. After every `free` (and compaction) the empty pages above the target are given back
//! (`xcf_decrease_pool`).
//!
//! # Worked example
//!
//! A new pool (reserve target 32, no pages yet):
//!
//! ```text
//!   a = malloc(3000)   refill: 32 empty pages. need 3016: f = 47. Lists 47, 46..=1 empty; smallest larger:
//!                      list 63, page P. Split at 3072: a = P[0..3072) (size 3016), free P[3072..4096)
//!                      on list 15. Reserve 31, pages 32.
//!   b = malloc(2000)   refill: page 33. need 2016: f = 31, empty. Largest smaller: list 15, P@3072,
//!                      1024 bytes = 1008 of b's. Rest 992: need 1008, f = 15 — empty now; smallest larger:
//!                      list 63, page Q. Split at 1024: Q[0..1024) holds b[1008..2000) (size 1008), free
//!                      Q[1024..4096) on list 47. Reserve 31, pages 33. b = (P@3072, Q@0).
//!   map(b, ReadOnly, f) P and Q mapped together (two-frame access): P[3088..4096) and Q[16..1008) copied
//!                      into one 2000-byte buffer; f reads it; nothing is written back.
//!   free(b)            P@3072: before it a (used), after it the page end: list 15. Q@0: after it
//!                      Q@1024 is free: merged, Q is one 4096-byte block on list 63. Reserve 32, pages 33.
//!   free(a)            P@0 merges with P@3072: reserve 33 > 32, so one empty page goes back. Pages 32.
//! ```
//!
//! The test `worked_example_from_the_header` replays it.
//!
//! # Compaction (planned by the patch, written here)
//!
//! [`ZPool::compact`] ranks the pages holding used blocks by used bytes, sparsest first. For each page in
//! that order, if the free bytes of the pages ranked after it cover its used bytes, it walks the page's
//! headers and moves each used block into a free block of a page ranked after it — the *fullest* such
//! page, then the smallest fitting block — splitting the destination like a last block. The moved block
//! keeps its descriptor (only page and offset change) and so its handle; the old place takes the
//! destination block's descriptor and merges with its neighbours. Moving only to pages ranked later
//! means a block never moves twice in one pass. A page that is emptied becomes a reserve page, and the
//! reserve's surplus is given back: that count is the result.
//!
//! # Choices where the patch is silent
//!
//! - Reserve pages are frames the pool holds: [`ZPool::total_pages`] and [`PoolStats::pages`] count them
//!   (the patch's `xcf_get_total_size_bytes` left them out; [`XcfStats::reserve_pages`] tells them
//!   apart). So a pool whose objects were all freed still holds its reserve — [`Xcfmalloc::release_reserve`]
//!   gives it back (the first half of `xcf_destroy_pool`).
//! - The reserve is first filled by the first `malloc`, not at creation: [`Xcfmalloc::new`] takes no frame.
//! - [`ZPool::map`] always works on a copy, as `xcf_read`/`xcf_write` did: the blocks are gathered into a
//!   contiguous buffer unless the mode is `WriteOnly` (the buffer is then zeroed, so no other object's bytes
//!   show through), the closure runs, and the buffer is scattered back unless the mode is `ReadOnly` — a
//!   write made in `ReadOnly` mode is lost. The page(s) are mapped once for the gather and once for the
//!   scatter, two pages together through `PageMemory::with_pages2`, so a failed mapping copies nothing.
//! - A refill that cannot get a frame stops quietly; if the `malloc` then finds no block it fails with the
//!   refill's error (else `OutOfMemory`) and gives back the pages the refill took, so nothing changed.
//! - An emptied page that the frame source refuses to take back stays in the reserve; the next `free`
//!   tries again.
//! - A header that disagrees with its descriptor (only after someone wrote into the pool's frames) makes
//!   `free` refuse with `Memory(Foreign(pfn))` before it changes anything, and [`Xcfmalloc::verify`] names it.
//! - Eviction: the patch had none; [`ZPool::evict`] returns `EvictRefused`.
//!
//! # Contracts
//!
//! - As [`zpool`]'s: every bad input is a typed [`PoolError`], a refused operation changes nothing
//!   (a `malloc` refused for lack of memory counts in `failures`), handles stay valid across `compact`.
//! - An object of 1..=[`MAX_SIZE`] (4080) bytes takes one block or two; its blocks are whole 64-byte units
//!   and each starts with a 16-byte header, so it takes `⌈(size + 16) / 64⌉` or `⌈(size + 32) / 64⌉` units.
//! - [`Xcfmalloc::metadata_bytes`] = 16 × used blocks (headers in pages) + 24 × descriptors of all blocks,
//!   free and used (in memory); the headers of free blocks lie in free space and are not counted.
//! - Not thread-safe by itself (`&mut self`), like every pool here.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use core::num::NonZeroU32;

use frame::{Owner, Pfn};
use pagemem::{FrameSource, MemError, PAGE, PageMemory};
use zpool::handle::{FIRST_GENERATION, HandleFields, HandleLayout, new_pool_tag};
use zpool::{Handle, MapMode, PoolError, PoolStats, ZPool};

#[cfg(test)]
mod tests;

/// log2 of the block unit (the patch's `XCF_BLOCK_SHIFT`).
pub const BLOCK_SHIFT: u32 = 6;
/// The block unit: every block is a whole number of these (`XCF_BLOCK_ALIGN`).
pub const BLOCK_SIZE: usize = 1 << BLOCK_SHIFT;
/// Free lists, one per block size from 64 to 4096 bytes (`XCF_NUM_FREELISTS`).
pub const NUM_FREELISTS: usize = PAGE / BLOCK_SIZE;
/// The list of whole free pages, the reserve (`XCF_RESERVED_INDEX`).
pub const RESERVED_INDEX: usize = NUM_FREELISTS - 1;
/// Bytes of the header at the start of every block (`sizeof(struct xcf_blkhdr)` on x86_64).
pub const HEADER_LEN: usize = 16;
/// The first four bytes of every header.
pub const HEADER_SENTINEL: [u8; 4] = *b"XCFB";
/// Largest object: one page less one header (`MAX_ALLOC_SIZE`).
pub const MAX_SIZE: usize = PAGE - HEADER_LEN;
/// Blocks one object may take (`XCF_MAX_BLOCKS_PER_ALLOC`).
pub const MAX_BLOCKS_PER_ALLOC: usize = 2;
/// Empty pages kept (`XCF_MAX_RESERVE_PAGES`).
pub const DEFAULT_RESERVE_PAGES: u32 = 32;
/// Bytes of one descriptor in the side table (checked by a test).
pub const DESCRIPTOR_BYTES: usize = 24;

/// The handle layout: 2^28 descriptors, 20-bit generations (module header, "Handles").
const LAYOUT: HandleLayout = HandleLayout::new(28, 0, 20);
/// "No descriptor".
const NIL: u32 = u32::MAX;

const FLAG_FREE: u16 = 1 << 0;
const FLAG_USED: u16 = 1 << 1;
const FLAG_HEAD: u16 = 1 << 2;
const FLAG_MASK: u16 = (BLOCK_SIZE - 1) as u16;

/// `size` rounded up to whole blocks (`xcf_align_to_block`).
pub const fn align_to_block(size: usize) -> usize {
    size.div_ceil(BLOCK_SIZE) * BLOCK_SIZE
}

/// The free list of a block of `size` bytes (`xcf_size_to_flindex`): `⌈size / 64⌉ − 1`, so 1..=64 → 0,
/// 65..=128 → 1, …, 4033..=4096 → 63. Meant for `1..=4096`; clamped to `0..=63` outside it.
pub const fn size_to_flindex(size: usize) -> usize {
    let units = align_to_block(size) / BLOCK_SIZE;
    let i = units.saturating_sub(1);
    if i > RESERVED_INDEX { RESERVED_INDEX } else { i }
}

/// One block's record (module header, "Descriptors"); exactly [`DESCRIPTOR_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Desc {
    pfn: Pfn,
    next: u32,
    prev: u32,
    offset_flags: u16,
    size: u16,
    generation: u32,
}

impl Desc {
    /// A free block of `size` bytes at `offset` of `pfn`, on no list.
    const fn free_block(pfn: Pfn, offset: usize, size: usize) -> Desc {
        Desc {
            pfn,
            next: NIL,
            prev: NIL,
            offset_flags: offset as u16 | FLAG_FREE,
            size: size as u16,
            generation: FIRST_GENERATION,
        }
    }

    const fn offset(&self) -> usize {
        (self.offset_flags & !FLAG_MASK) as usize
    }

    fn set_offset(&mut self, offset: usize) {
        self.offset_flags = offset as u16 | (self.offset_flags & FLAG_MASK);
    }

    fn set_flags(&mut self, flags: u16) {
        self.offset_flags = (self.offset_flags & !FLAG_MASK) | flags;
    }

    const fn is_free(&self) -> bool {
        self.offset_flags & FLAG_FREE != 0
    }

    const fn is_used(&self) -> bool {
        self.offset_flags & FLAG_USED != 0
    }

    const fn is_head(&self) -> bool {
        self.offset_flags & FLAG_HEAD != 0
    }

    /// Describes a block (free or used), rather than sitting on the unused chain.
    const fn is_live(&self) -> bool {
        self.is_free() || self.is_used()
    }

    /// The block's length in the page.
    const fn extent(&self) -> usize {
        align_to_block(self.size as usize)
    }

    /// Object bytes in a used block.
    const fn data(&self) -> usize {
        (self.size as usize).saturating_sub(HEADER_LEN)
    }
}

/// A header's fields: (descriptor, prevoffset), if `page` holds an intact one at `offset`.
fn read_header(page: &[u8], offset: usize) -> Option<(u32, usize)> {
    let h = page.get(offset..offset.checked_add(HEADER_LEN)?)?;
    if h[0..4] != HEADER_SENTINEL {
        return None;
    }
    let word =
        |r: core::ops::Range<usize>| u32::from_le_bytes([h[r.start], h[r.start + 1], h[r.start + 2], h[r.start + 3]]);
    Some((word(4..8), word(8..12) as usize))
}

/// Write a whole header; false if the page is too short.
fn write_header(page: &mut [u8], offset: usize, desc: u32, prevoffset: usize) -> bool {
    let Some(h) = page.get_mut(offset..offset + HEADER_LEN) else { return false };
    h[0..4].copy_from_slice(&HEADER_SENTINEL);
    h[4..8].copy_from_slice(&desc.to_le_bytes());
    h[8..12].copy_from_slice(&(prevoffset as u32).to_le_bytes());
    h[12..16].fill(0);
    true
}

/// Change only the prevoffset of the header at `offset`.
fn set_prevoffset(page: &mut [u8], offset: usize, prevoffset: usize) {
    if let Some(h) = page.get_mut(offset + 8..offset + 12) {
        h.copy_from_slice(&(prevoffset as u32).to_le_bytes());
    }
}

/// Wipe the header of a block that merged into its neighbour (the patch's `CLEAR_SENTINEL`).
fn clear_header(page: &mut [u8], offset: usize) {
    if let Some(h) = page.get_mut(offset..offset + HEADER_LEN) {
        h.fill(0);
    }
}

/// Run `f` on the page `a` and, when `b` is another page, on `b` too, both mapped at once
/// (`with_pages2`), so that the work on two pages is done whole or not at all.
fn access<M: PageMemory, R>(
    mem: &mut M,
    a: Pfn,
    b: Option<Pfn>,
    f: impl FnOnce(&mut [u8], Option<&mut [u8]>) -> R,
) -> Result<R, MemError> {
    match b {
        Some(b) if b != a => mem
            .with_pages2(a, b, |s| s.split_at_mut_checked(PAGE).map(|(x, y)| f(x, Some(y))))?
            .ok_or(MemError::Foreign(b)),
        _ => mem.with_page(a, |p| f(p, None)),
    }
}

/// The descriptor side table and the free lists: everything but the memory, so that it can be changed
/// while a page is mapped.
#[derive(Debug)]
struct Table {
    descs: Vec<Desc>,
    /// Head of the chain of unused descriptors (through `next`).
    unused: u32,
    /// Descriptors of blocks (free or used).
    live: u64,
    freelists: [u32; NUM_FREELISTS],
    list_len: [u32; NUM_FREELISTS],
    used_blocks: u64,
    /// Sum of the used blocks' extents.
    used_bytes: u64,
    two_block_objects: u64,
}

impl Table {
    const fn new() -> Table {
        Table {
            descs: Vec::new(),
            unused: NIL,
            live: 0,
            freelists: [NIL; NUM_FREELISTS],
            list_len: [0; NUM_FREELISTS],
            used_blocks: 0,
            used_bytes: 0,
            two_block_objects: 0,
        }
    }

    /// Descriptors that can still be made.
    fn room(&self) -> u64 {
        (LAYOUT.max_slots() - self.descs.len()) as u64 + (self.descs.len() as u64 - self.live)
    }

    /// A descriptor for `d` (its generation is the slot's own), or `None` when the index space is full.
    fn alloc(&mut self, d: Desc) -> Option<u32> {
        let i = if self.unused != NIL {
            let i = self.unused;
            let old = self.descs[i as usize];
            self.unused = old.next;
            self.descs[i as usize] = Desc { generation: old.generation, ..d };
            i
        } else if self.descs.len() < LAYOUT.max_slots() {
            self.descs.push(d);
            (self.descs.len() - 1) as u32
        } else {
            return None;
        };
        self.live += 1;
        Some(i)
    }

    /// Put a descriptor whose block is gone on the unused chain (its generation stays).
    fn release(&mut self, i: u32) {
        let d = &mut self.descs[i as usize];
        d.set_flags(0);
        d.prev = NIL;
        d.next = self.unused;
        self.unused = i;
        self.live -= 1;
    }

    /// Mark `i` free (size rounded up to whole blocks) and put it at the head of its list
    /// (`xcf_insert_block`).
    fn push(&mut self, i: u32) {
        let d = &mut self.descs[i as usize];
        d.size = align_to_block(d.size as usize) as u16;
        d.set_flags(FLAG_FREE);
        let l = size_to_flindex(d.size as usize);
        let old = self.freelists[l];
        d.prev = NIL;
        d.next = old;
        if old != NIL {
            self.descs[old as usize].prev = i;
        }
        self.freelists[l] = i;
        self.list_len[l] += 1;
    }

    /// Take free block `i` off its list (`xcf_remove_block`); it stays marked free.
    fn remove(&mut self, i: u32) {
        let d = self.descs[i as usize];
        let l = size_to_flindex(d.size as usize);
        if d.prev == NIL {
            self.freelists[l] = d.next;
        } else {
            self.descs[d.prev as usize].next = d.next;
        }
        if d.next != NIL {
            self.descs[d.next as usize].prev = d.prev;
        }
        let d = &mut self.descs[i as usize];
        (d.next, d.prev) = (NIL, NIL);
        self.list_len[l] -= 1;
    }

    /// The block choice (module header, "Choosing blocks"): remove and return the block for `left` more
    /// bytes as block number `blocknum` (1 or 2) of an allocation.
    fn find_remove(&mut self, left: usize, blocknum: usize) -> Option<u32> {
        let f = size_to_flindex(left + HEADER_LEN);
        let nonempty = |l: &usize| self.freelists[*l] != NIL;
        let l = if nonempty(&f) {
            f
        } else {
            let smaller = if blocknum < MAX_BLOCKS_PER_ALLOC { (1..f).rev().find(nonempty) } else { None };
            smaller.or_else(|| (f + 1..NUM_FREELISTS).find(nonempty))?
        };
        let i = self.freelists[l];
        self.remove(i);
        Some(i)
    }

    /// Put blocks taken by an unfinished allocation back where they were, last taken first.
    fn give_back(&mut self, taken: &[u32]) {
        for &i in taken.iter().rev() {
            self.push(i);
        }
    }

    /// Split free block `i` (on no list) of `page` after `keep` bytes: the rest becomes a free block with a
    /// new descriptor, on its list. False, with nothing changed, if the page is short or no descriptor is left.
    fn split(&mut self, page: &mut [u8], i: u32, keep: usize) -> bool {
        let d = self.descs[i as usize];
        let (off, size) = (d.offset(), d.size as usize);
        if page.len() < off + size {
            return false;
        }
        let Some(r) = self.alloc(Desc::free_block(d.pfn, off + keep, size - keep)) else { return false };
        write_header(page, off + keep, r, off);
        if off + size < PAGE {
            set_prevoffset(page, off + size, off + keep);
        }
        self.descs[i as usize].size = keep as u16;
        self.push(r);
        true
    }

    /// The descriptor of the block whose header is at `offset` of `page` (frame `pfn`), if the header is
    /// intact and its descriptor agrees about page and offset.
    fn block_at(&self, page: &[u8], pfn: Pfn, offset: usize) -> Option<u32> {
        let (i, _) = read_header(page, offset)?;
        let d = self.descs.get(i as usize)?;
        (d.is_live() && d.pfn == pfn && d.offset() == offset).then_some(i)
    }

    /// Whether block `i`'s own header in `page` names it.
    fn header_ok(&self, page: &[u8], i: u32) -> bool {
        let d = self.descs[i as usize];
        self.block_at(page, d.pfn, d.offset()) == Some(i) && page.len() >= d.offset() + d.extent()
    }

    /// Free block `i` (marked free, on no list, its header written): merge it with a free neighbour on
    /// either side in `page` and put the result on its list (`xcf_merge_free_block` + insert).
    fn merge_and_insert(&mut self, page: &mut [u8], i: u32) {
        let d = self.descs[i as usize];
        let (pfn, off) = (d.pfn, d.offset());
        let mut cur = i;
        if off != 0
            && let Some((_, prevoff)) = read_header(page, off)
            && let Some(p) = self.block_at(page, pfn, prevoff)
        {
            let pd = self.descs[p as usize];
            if pd.is_free() && pd.offset() + pd.size as usize == off {
                self.remove(p);
                self.descs[p as usize].size += d.size;
                clear_header(page, off);
                self.release(i);
                cur = p;
            }
        }
        let c = self.descs[cur as usize];
        let end = c.offset() + c.size as usize;
        if end < PAGE
            && let Some(n) = self.block_at(page, pfn, end)
        {
            let nd = self.descs[n as usize];
            if nd.is_free() {
                self.remove(n);
                self.descs[cur as usize].size += nd.size;
                clear_header(page, end);
                self.release(n);
                let after = end + nd.size as usize;
                if after < PAGE {
                    set_prevoffset(page, after, c.offset());
                }
            } else if cur != i {
                set_prevoffset(page, end, c.offset());
            }
        }
        self.push(cur);
    }

    /// Release used block `i` of `page` (its header checked): free it, bump the generation if it headed
    /// the allocation, merge, list.
    fn release_block(&mut self, page: &mut [u8], i: u32) {
        let d = &mut self.descs[i as usize];
        if d.is_head() {
            d.generation = LAYOUT.next_generation(d.generation);
        }
        let extent = d.extent() as u64;
        d.set_flags(FLAG_FREE);
        d.size = align_to_block(d.size as usize) as u16;
        (d.next, d.prev) = (NIL, NIL);
        self.used_blocks -= 1;
        self.used_bytes -= extent;
        self.merge_and_insert(page, i);
    }

    /// Move used block `b` of page `src` into free block `d` of page `dst`, which is on its list and at
    /// least as long: the payload is copied, `b` keeps its descriptor (so its handle), the destination is
    /// split to size, and `b`'s old place becomes a free block under `d`'s descriptor and merges. False, with
    /// nothing changed, if a header disagrees or no descriptor is left for the split.
    fn move_block(&mut self, src: &mut [u8], dst: &mut [u8], b: u32, d: u32) -> bool {
        let (bd, dd) = (self.descs[b as usize], self.descs[d as usize]);
        let (o, e) = (bd.offset(), bd.extent());
        let (q, f) = (dd.offset(), dd.size as usize);
        let (Some((bx, po)), Some((dx, qo))) = (read_header(src, o), read_header(dst, q)) else { return false };
        if bx != b || dx != d || !bd.is_used() || !dd.is_free() || f < e || src.len() < o + e || dst.len() < q + f {
            return false;
        }
        let rest = if f > e {
            match self.alloc(Desc::free_block(dd.pfn, q + e, f - e)) {
                Some(r) => Some(r),
                None => return false,
            }
        } else {
            None
        };
        self.remove(d);
        dst[q + HEADER_LEN..q + e].copy_from_slice(&src[o + HEADER_LEN..o + e]);
        write_header(dst, q, b, qo);
        if let Some(r) = rest {
            write_header(dst, q + e, r, q);
            if q + f < PAGE {
                set_prevoffset(dst, q + f, q + e);
            }
            self.push(r);
        }
        let moved = &mut self.descs[b as usize];
        moved.pfn = dd.pfn;
        moved.set_offset(q);
        self.descs[d as usize] = Desc { generation: dd.generation, ..Desc::free_block(bd.pfn, o, e) };
        write_header(src, o, d, po);
        self.merge_and_insert(src, d);
        true
    }

    /// The free block to move a block of `extent` bytes into during compaction: in a page ranked after
    /// `rank`, the fullest such page first, then the smallest fitting block. Never a whole empty page.
    fn destination(&self, extent: usize, rank: usize, pages: &BTreeMap<Pfn, PageUse>) -> Option<u32> {
        let mut best: Option<(usize, u32)> = None;
        for l in size_to_flindex(extent)..RESERVED_INDEX {
            let mut i = self.freelists[l];
            while i != NIL {
                let d = self.descs[i as usize];
                if let Some(u) = pages.get(&d.pfn)
                    && u.rank > rank
                    && best.is_none_or(|(used, _)| u.used > used)
                {
                    best = Some((u.used, i));
                }
                i = d.next;
            }
        }
        best.map(|(_, i)| i)
    }
}

/// A page's used bytes and its place in the compaction order.
#[derive(Debug, Clone, Copy, Default)]
struct PageUse {
    used: usize,
    rank: usize,
}

/// One block, as [`Xcfmalloc::locate`] and [`Xcfmalloc::free_blocks`] report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub pfn: Pfn,
    /// First byte of the block (its header) in the page.
    pub offset: usize,
    /// The block's length in the page: a multiple of 64.
    pub len: usize,
    /// Object bytes the block holds (after its header); 0 for a free block.
    pub data: usize,
}

impl Block {
    fn of(d: &Desc) -> Block {
        let (len, data) = if d.is_free() { (d.size as usize, 0) } else { (d.extent(), d.data()) };
        Block { pfn: d.pfn, offset: d.offset(), len, data }
    }
}

/// xcfmalloc's own counters, beside [`PoolStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XcfStats {
    /// Empty pages held (free 4096-byte blocks on list 63).
    pub reserve_pages: u64,
    /// Pages holding at least one used block: `pages − reserve_pages` (the patch's `xcf_get_total_size_bytes`).
    pub pages_in_use: u64,
    /// Used blocks (one or two per object).
    pub used_blocks: u64,
    /// Free blocks, reserve pages included.
    pub free_blocks: u64,
    /// Objects in two blocks.
    pub two_block_objects: u64,
    /// Sum of the used blocks' lengths: object bytes + headers + rounding.
    pub used_block_bytes: u64,
    /// 16 × used blocks: headers in pages.
    pub header_bytes: u64,
    /// 24 × (used + free blocks): descriptors in memory.
    pub descriptor_bytes: u64,
}

/// What [`Xcfmalloc::verify`] found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// A page could not be mapped.
    Memory(MemError),
    /// The header at `offset` of `pfn` is not the one the descriptors call for.
    Header { pfn: Pfn, offset: usize },
    /// The blocks of `pfn` do not tile it, two free blocks are adjacent, or a descriptor of it was not reached.
    Layout { pfn: Pfn },
    /// Descriptor `slot` is inconsistent (flags, size, allocation links, unused chain).
    Descriptor { slot: u32 },
    /// Free list `index` is inconsistent (links, sizes, length).
    List { index: usize },
    /// The counters do not match the descriptors.
    Counters,
}

/// An xcfmalloc pool over the frames and page memory of `M` (see the module header).
pub struct Xcfmalloc<M> {
    mem: M,
    t: Table,
    /// Empty pages to keep.
    reserve_target: u32,
    tag: u16,
    stats: PoolStats,
    /// The copy `map` lends.
    scratch: Vec<u8>,
}

impl<M> fmt::Debug for Xcfmalloc<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Xcfmalloc")
            .field("tag", &self.tag)
            .field("descriptors", &self.t.descs.len())
            .field("reserve", &self.t.list_len[RESERVED_INDEX])
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<M: PageMemory + FrameSource> Xcfmalloc<M> {
    /// An empty pool taking its frames from `mem`, keeping the patch's 32 reserve pages.
    pub fn new(mem: M) -> Self {
        Self::with_reserve(mem, NonZeroU32::new(DEFAULT_RESERVE_PAGES).expect("32 is not 0"))
    }

    /// An empty pool that keeps `reserve` empty pages. At least one: new pages reach the allocator only
    /// through the reserve.
    pub fn with_reserve(mem: M, reserve: NonZeroU32) -> Self {
        Xcfmalloc {
            mem,
            t: Table::new(),
            reserve_target: reserve.get(),
            tag: new_pool_tag(),
            stats: PoolStats::default(),
            scratch: Vec::new(),
        }
    }

    /// The memory the pool runs on.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// The memory, mutably (for its statistics). Writing or freeing the pool's frames through it breaks
    /// the pool.
    pub fn memory_mut(&mut self) -> &mut M {
        &mut self.mem
    }

    /// Take the memory back. Frames the pool still holds stay allocated.
    pub fn into_memory(self) -> M {
        self.mem
    }

    /// The number of empty pages the pool keeps.
    pub fn reserve_target(&self) -> u32 {
        self.reserve_target
    }

    /// xcfmalloc's own counters.
    pub fn xcf_stats(&self) -> XcfStats {
        let t = &self.t;
        let reserve = u64::from(t.list_len[RESERVED_INDEX]);
        XcfStats {
            reserve_pages: reserve,
            pages_in_use: self.stats.pages - reserve,
            used_blocks: t.used_blocks,
            free_blocks: t.live - t.used_blocks,
            two_block_objects: t.two_block_objects,
            used_block_bytes: t.used_bytes,
            header_bytes: t.used_blocks * HEADER_LEN as u64,
            descriptor_bytes: t.live * DESCRIPTOR_BYTES as u64,
        }
    }

    /// Bytes of bookkeeping: the used blocks' headers in the pages plus every block's descriptor in memory
    /// (module header, contracts).
    pub fn metadata_bytes(&self) -> u64 {
        let s = self.xcf_stats();
        s.header_bytes + s.descriptor_bytes
    }

    /// The blocks of a live object, first block first.
    pub fn locate(&self, handle: Handle) -> Result<Vec<Block>, PoolError> {
        let head = self.lookup(handle)?;
        let (first, last) = self.chain(head);
        Ok(core::iter::once(first).chain(last.map(|(_, d)| d)).map(|d| Block::of(&d)).collect())
    }

    /// Lengths of the 64 free lists; list 63 holds the reserve.
    pub fn free_lists(&self) -> [u32; NUM_FREELISTS] {
        self.t.list_len
    }

    /// The free blocks on list `index`, head (the next one taken) first; empty for an index above 63.
    pub fn free_blocks(&self, index: usize) -> Vec<Block> {
        let mut out = Vec::new();
        let mut i = self.t.freelists.get(index).copied().unwrap_or(NIL);
        while i != NIL && out.len() < self.t.descs.len() {
            let d = &self.t.descs[i as usize];
            out.push(Block::of(d));
            i = d.next;
        }
        out
    }

    /// Give every reserve page back to the frame source (the first half of `xcf_destroy_pool`); returns
    /// how many. The next `malloc` refills the reserve. Fails only if the frame source refuses a frame,
    /// which then stays in the reserve.
    pub fn release_reserve(&mut self) -> Result<u64, PoolError> {
        let mut freed = 0;
        while self.t.list_len[RESERVED_INDEX] > 0 {
            self.give_back_page()?;
            freed += 1;
        }
        Ok(freed)
    }

    /// Check every page's headers against the descriptors, the free lists, the allocations and the counters.
    pub fn verify(&mut self) -> Result<(), VerifyError> {
        let t = &self.t;
        let n = t.descs.len();
        // The unused chain: no loop, only unused descriptors.
        let (mut unused, mut i) = (0u64, t.unused);
        while i != NIL {
            let d = t.descs.get(i as usize).ok_or(VerifyError::Descriptor { slot: i })?;
            if d.is_live() || unused >= n as u64 {
                return Err(VerifyError::Descriptor { slot: i });
            }
            unused += 1;
            i = d.next;
        }
        if unused + t.live != n as u64 {
            return Err(VerifyError::Counters);
        }
        // The free lists.
        let mut listed = 0u64;
        for l in 0..NUM_FREELISTS {
            let (mut prev, mut i, mut len) = (NIL, t.freelists[l], 0u32);
            while i != NIL {
                let d = t.descs.get(i as usize).ok_or(VerifyError::List { index: l })?;
                let sane = d.is_free()
                    && (d.size as usize).is_multiple_of(BLOCK_SIZE)
                    && size_to_flindex(d.size as usize) == l;
                if !sane || d.prev != prev || u64::from(len) >= t.live {
                    return Err(VerifyError::List { index: l });
                }
                (prev, i, len) = (i, d.next, len + 1);
            }
            if len != t.list_len[l] {
                return Err(VerifyError::List { index: l });
            }
            listed += u64::from(len);
        }
        // Descriptors: flags, sizes, allocations; blocks per page.
        let mut per_page: BTreeMap<Pfn, u32> = BTreeMap::new();
        let (mut free, mut used, mut used_bytes, mut heads, mut bytes, mut two) = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
        for (slot, d) in t.descs.iter().enumerate() {
            let slot = slot as u32;
            let bad = Err(VerifyError::Descriptor { slot });
            if !d.is_live() {
                continue;
            }
            *per_page.entry(d.pfn).or_default() += 1;
            let size = d.size as usize;
            if d.is_free() {
                if d.is_used() || d.is_head() || size == 0 || size > PAGE {
                    return bad;
                }
                free += 1;
                continue;
            }
            if size <= HEADER_LEN || d.offset() + d.extent() > PAGE || !LAYOUT.is_generation(d.generation) {
                return bad;
            }
            used += 1;
            used_bytes += d.extent() as u64;
            if !d.is_head() {
                // A last block: named by exactly one head.
                let h = t.descs.get(d.prev as usize);
                if !h.is_some_and(|h| h.is_head() && h.next == slot) || d.next != NIL {
                    return bad;
                }
                continue;
            }
            heads += 1;
            bytes += d.data() as u64;
            if d.prev != NIL {
                return bad;
            }
            if d.next != NIL {
                let Some(l) = t.descs.get(d.next as usize) else { return bad };
                // The first of two blocks is used whole.
                if !l.is_used() || l.is_head() || l.prev != slot || d.extent() != size {
                    return bad;
                }
                two += 1;
                bytes += l.data() as u64;
            }
        }
        if free != listed {
            return Err(VerifyError::Counters);
        }
        let s = &self.stats;
        let counters = (s.objects, s.object_bytes, s.pages, t.used_blocks, t.used_bytes, t.two_block_objects);
        if counters != (heads, bytes, per_page.len() as u64, used, used_bytes, two) || free + used != t.live {
            return Err(VerifyError::Counters);
        }
        // Every page: its headers tile it, agree with the descriptors, and reach all of them.
        for (&pfn, &count) in &per_page {
            let walked = self.mem.with_page(pfn, |p| walk_page(t, p, pfn)).map_err(VerifyError::Memory)??;
            if walked != count {
                return Err(VerifyError::Layout { pfn });
            }
        }
        Ok(())
    }

    /// The head descriptor of a live handle.
    fn lookup(&self, handle: Handle) -> Result<u32, PoolError> {
        let f = LAYOUT.decode(handle);
        match self.t.descs.get(f.slot as usize) {
            Some(d) if f.tag == self.tag && d.is_head() && d.generation == f.generation => Ok(f.slot),
            _ => Err(PoolError::StaleHandle(handle)),
        }
    }

    /// The first block's record and the last block's (descriptor, record), if the allocation has two.
    fn chain(&self, head: u32) -> (Desc, Option<(u32, Desc)>) {
        let d = self.t.descs[head as usize];
        (d, (d.next != NIL).then(|| (d.next, self.t.descs[d.next as usize])))
    }

    /// Give the frame of the reserve page at the head of list 63 back. The page stays if the frame
    /// source refuses it.
    fn give_back_page(&mut self) -> Result<(), PoolError> {
        let i = self.t.freelists[RESERVED_INDEX];
        let pfn = self.t.descs[i as usize].pfn;
        self.mem.free_frame(pfn)?;
        self.t.remove(i);
        self.t.release(i);
        self.stats.pages -= 1;
        Ok(())
    }

    /// Give back reserve pages until at most `keep` are left (`xcf_decrease_pool`); best effort.
    fn trim_reserve(&mut self, keep: u32) -> u64 {
        let mut freed = 0;
        while self.t.list_len[RESERVED_INDEX] > keep && self.give_back_page().is_ok() {
            freed += 1;
        }
        freed
    }

    /// Fill the reserve up to its target (`xcf_increase_pool`), always leaving one descriptor for a split.
    /// Returns the pages added and the error that stopped it early, if any.
    fn refill(&mut self) -> (u32, Option<PoolError>) {
        let mut added = 0;
        while self.t.list_len[RESERVED_INDEX] < self.reserve_target {
            if self.t.room() < 2 {
                return (added, Some(PoolError::OutOfMemory));
            }
            let pfn = match self.mem.alloc_frame(Owner::POOL) {
                Ok(pfn) => pfn,
                Err(e) => return (added, Some(e.into())),
            };
            let Some(i) = self.t.alloc(Desc::free_block(pfn, 0, PAGE)) else {
                let _ = self.mem.free_frame(pfn);
                return (added, Some(PoolError::OutOfMemory));
            };
            let written = self.mem.with_page(pfn, |p| write_header(p, 0, i, 0));
            if written != Ok(true) {
                self.t.release(i);
                // Best effort: a frame that cannot go back either stays with nobody.
                let _ = self.mem.free_frame(pfn);
                return (added, Some(PoolError::Memory(written.err().unwrap_or(MemError::Foreign(pfn)))));
            }
            self.t.push(i);
            self.stats.pages += 1;
            added += 1;
        }
        (added, None)
    }

    /// Choose and take the blocks for `size` bytes (module header, "Choosing blocks"); the head descriptor.
    fn place(&mut self, size: usize) -> Result<u32, PoolError> {
        let mut taken = [NIL; MAX_BLOCKS_PER_ALLOC];
        let mut n = 0;
        let mut left = size;
        let mut fits = false;
        for blocknum in 1..=MAX_BLOCKS_PER_ALLOC {
            let Some(i) = self.t.find_remove(left, blocknum) else {
                self.t.give_back(&taken[..n]);
                return Err(PoolError::OutOfMemory);
            };
            taken[n] = i;
            n += 1;
            let room = self.t.descs[i as usize].size as usize - HEADER_LEN;
            if room >= left {
                fits = true;
                break;
            }
            left -= room;
        }
        if !fits || self.t.room() == 0 {
            // Not reachable: a last block is never smaller, and the refill keeps a descriptor spare.
            self.t.give_back(&taken[..n]);
            return Err(PoolError::OutOfMemory);
        }
        let last = taken[n - 1];
        let keep = align_to_block(left + HEADER_LEN);
        if self.t.descs[last as usize].size as usize > keep {
            let pfn = self.t.descs[last as usize].pfn;
            let t = &mut self.t;
            match self.mem.with_page(pfn, |p| t.split(p, last, keep)) {
                Ok(true) => {}
                r => {
                    self.t.give_back(&taken[..n]);
                    return Err(PoolError::Memory(r.err().unwrap_or(MemError::Foreign(pfn))));
                }
            }
        }
        for k in 0..n {
            let d = &mut self.t.descs[taken[k] as usize];
            d.set_flags(if k == 0 { FLAG_USED | FLAG_HEAD } else { FLAG_USED });
            if k == n - 1 {
                d.size = (left + HEADER_LEN) as u16;
            }
            d.prev = if k == 0 { NIL } else { taken[k - 1] };
            d.next = if k + 1 < n { taken[k + 1] } else { NIL };
            let extent = d.extent() as u64;
            self.t.used_bytes += extent;
        }
        self.t.used_blocks += n as u64;
        if n == 2 {
            self.t.two_block_objects += 1;
        }
        Ok(taken[0])
    }

    /// Copy an allocation's bytes into `buf` (`gather`) or from it (`!gather`), its pages mapped at once.
    fn copy(&mut self, head: u32, buf: &mut [u8], gather: bool) -> Result<(), PoolError> {
        let (first, last) = self.chain(head);
        let last = last.map(|(_, d)| d);
        let one = |page: &mut [u8], d: &Desc, part: &mut [u8]| -> bool {
            let r = d.offset() + HEADER_LEN..d.offset() + d.size as usize;
            match page.get_mut(r) {
                Some(bytes) if bytes.len() == part.len() => {
                    if gather {
                        part.copy_from_slice(bytes);
                    } else {
                        bytes.copy_from_slice(part);
                    }
                    true
                }
                _ => false,
            }
        };
        let (a, b) = buf.split_at_mut(first.data());
        let ok = access(&mut self.mem, first.pfn, last.map(|d| d.pfn), |pa, pb| {
            one(pa, &first, a)
                && match (last, pb) {
                    (None, _) => true,
                    (Some(l), Some(pb)) => one(pb, &l, b),
                    (Some(l), None) => one(pa, &l, b),
                }
        })?;
        if ok { Ok(()) } else { Err(PoolError::Memory(MemError::Foreign(first.pfn))) }
    }

    /// The used blocks of page `pfn`, in page order, by walking its headers.
    fn used_blocks_of(&mut self, pfn: Pfn) -> Result<Vec<u32>, PoolError> {
        let t = &self.t;
        Ok(self.mem.with_page(pfn, |p| {
            let (mut out, mut off) = (Vec::new(), 0);
            while off < PAGE
                && let Some(i) = t.block_at(p, pfn, off)
            {
                let d = &t.descs[i as usize];
                if d.is_used() {
                    out.push(i);
                }
                off += if d.is_free() { d.size as usize } else { d.extent() };
            }
            out
        })?)
    }
}

/// Walk the headers of `page`: each must name a live descriptor of this page and offset, with the right
/// prevoffset; blocks must tile the page, and no two free blocks may touch. Returns the blocks walked.
fn walk_page(t: &Table, page: &[u8], pfn: Pfn) -> Result<u32, VerifyError> {
    let (mut off, mut prev, mut prev_free, mut count) = (0, 0, false, 0);
    while off < PAGE {
        let header = Err(VerifyError::Header { pfn, offset: off });
        let Some((i, prevoffset)) = read_header(page, off) else { return header };
        if t.block_at(page, pfn, off) != Some(i) || prevoffset != prev {
            return header;
        }
        let d = &t.descs[i as usize];
        if d.is_free() && prev_free {
            return Err(VerifyError::Layout { pfn });
        }
        let len = if d.is_free() { d.size as usize } else { d.extent() };
        (prev, prev_free, count) = (off, d.is_free(), count + 1);
        off += len;
    }
    if off == PAGE { Ok(count) } else { Err(VerifyError::Layout { pfn }) }
}

impl<M: PageMemory + FrameSource> ZPool for Xcfmalloc<M> {
    fn name(&self) -> &'static str {
        "xcfmalloc"
    }

    fn max_size(&self) -> usize {
        MAX_SIZE
    }

    fn malloc(&mut self, size: usize) -> Result<Handle, PoolError> {
        PoolError::check_size(size, MAX_SIZE)?;
        let (added, refill_error) = self.refill();
        match self.place(size) {
            Ok(head) => {
                self.stats.objects += 1;
                self.stats.object_bytes += size as u64;
                self.stats.allocs += 1;
                let generation = self.t.descs[head as usize].generation;
                Ok(LAYOUT.encode(HandleFields { tag: self.tag, generation, sub: 0, slot: head }))
            }
            Err(e) => {
                // The pages this refill took are still empty: give them back, so nothing changed.
                let keep = self.t.list_len[RESERVED_INDEX].saturating_sub(added);
                self.trim_reserve(keep);
                self.stats.failures += 1;
                Err(match (e, refill_error) {
                    (PoolError::OutOfMemory, Some(r)) => r,
                    (e, _) => e,
                })
            }
        }
    }

    fn free(&mut self, handle: Handle) -> Result<(), PoolError> {
        let head = self.lookup(handle)?;
        let (first, last) = self.chain(head);
        let t = &mut self.t;
        let ok = access(&mut self.mem, first.pfn, last.map(|(_, d)| d.pfn), |pa, pb| {
            // Check both headers before changing anything.
            let second_ok = match (last, pb.as_deref()) {
                (None, _) => true,
                (Some((l, _)), Some(p)) => t.header_ok(p, l),
                (Some((l, _)), None) => t.header_ok(pa, l),
            };
            if !t.header_ok(pa, head) || !second_ok {
                return false;
            }
            t.release_block(pa, head);
            if let Some((l, _)) = last {
                match pb {
                    Some(p) => t.release_block(p, l),
                    None => t.release_block(pa, l),
                }
            }
            true
        })?;
        if !ok {
            return Err(PoolError::Memory(MemError::Foreign(first.pfn)));
        }
        if last.is_some() {
            self.t.two_block_objects -= 1;
        }
        self.stats.objects -= 1;
        self.stats.object_bytes -= (first.data() + last.map_or(0, |(_, d)| d.data())) as u64;
        self.stats.frees += 1;
        self.trim_reserve(self.reserve_target);
        Ok(())
    }

    /// Always a copy (module header, "Choices"): gathered unless `WriteOnly` (then zeroed), scattered back
    /// unless `ReadOnly` (a write made in `ReadOnly` mode is lost).
    fn map<R>(&mut self, handle: Handle, mode: MapMode, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, PoolError> {
        let head = self.lookup(handle)?;
        let size = self.size_of(handle)?;
        let mut buf = core::mem::take(&mut self.scratch);
        buf.clear();
        buf.resize(size, 0);
        if mode != MapMode::WriteOnly
            && let Err(e) = self.copy(head, &mut buf, true)
        {
            self.scratch = buf;
            return Err(e);
        }
        let r = f(&mut buf);
        let written = if mode == MapMode::ReadOnly { Ok(()) } else { self.copy(head, &mut buf, false) };
        self.scratch = buf;
        written.map(|()| r)
    }

    fn size_of(&self, handle: Handle) -> Result<usize, PoolError> {
        let head = self.lookup(handle)?;
        let (first, last) = self.chain(head);
        Ok(first.data() + last.map_or(0, |(_, d)| d.data()))
    }

    fn total_pages(&self) -> u64 {
        self.stats.pages
    }

    fn metadata_growth(&self) -> usize {
        // Descriptors: the reserve refilled (one per page) and the two halves of a split, past the unused
        // ones. Counting the unused chain would cost a walk; assume none, which only over-asks.
        zpool::vec_growth(&self.t.descs, self.reserve_target as usize + 2)
    }

    fn stats(&self) -> PoolStats {
        self.stats
    }

    /// Move used blocks out of the sparsest pages (module header, "Compaction"). On a mapping error the
    /// blocks moved so far stay moved (every handle valid, every byte intact) and nothing is given back.
    fn compact(&mut self) -> Result<u64, PoolError> {
        let mut pages: BTreeMap<Pfn, PageUse> = BTreeMap::new();
        for d in self.t.descs.iter().filter(|d| d.is_used()) {
            pages.entry(d.pfn).or_default().used += d.extent();
        }
        let mut order: Vec<(usize, Pfn)> = pages.iter().map(|(&p, u)| (u.used, p)).collect();
        order.sort_unstable();
        for (rank, (_, pfn)) in order.iter().enumerate() {
            if let Some(u) = pages.get_mut(pfn) {
                u.rank = rank;
            }
        }
        // Free bytes in the pages ranked after the current source.
        let mut room: usize = pages.values().map(|u| PAGE - u.used).sum();
        for (rank, &(_, src)) in order.iter().enumerate() {
            let used = pages.get(&src).map_or(0, |u| u.used);
            room -= PAGE - used;
            if used == 0 || used > room {
                continue;
            }
            for b in self.used_blocks_of(src)? {
                let extent = self.t.descs[b as usize].extent();
                let Some(d) = self.t.destination(extent, rank, &pages) else { break };
                let dst = self.t.descs[d as usize].pfn;
                let t = &mut self.t;
                let moved =
                    access(&mut self.mem, src, Some(dst), |ps, pd| pd.is_some_and(|pd| t.move_block(ps, pd, b, d)))?;
                if !moved {
                    break;
                }
                if let Some(u) = pages.get_mut(&src) {
                    u.used -= extent;
                }
                if let Some(u) = pages.get_mut(&dst) {
                    u.used += extent;
                }
                room -= extent;
            }
        }
        let freed = self.trim_reserve(self.reserve_target);
        self.stats.pages_compacted += freed;
        Ok(freed)
    }

    /// xcfmalloc does not evict (the patch had no writeback).
    fn evict(&mut self, _writeback: &mut dyn FnMut(Handle, &[u8]) -> bool) -> Result<u64, PoolError> {
        Err(PoolError::EvictRefused)
    }
}

//! xvmalloc: a two-level-bitmap, good-fit allocator of variable-size blocks inside single pages — Linux's
//! `drivers/staging/zram/xvmalloc.c` (2.6.33 until early 2012), behind the [`zpool::ZPool`] interface.
//!
//! # Why
//!
//! In 2009 Nitin Gupta's compcache project (merged as *ramzswap* in Linux 2.6.33, renamed *zram* in
//! 2.6.34) kept swapped-out pages compressed in RAM. It needed an allocator for objects of 1 byte to
//! almost a page that (1) used only 0-order pages, which stay available under the memory pressure that
//! makes a system swap; (2) could use highmem pages, reached through `kmap_atomic`, on 32-bit machines
//! where lowmem was scarce — so no pointers, but `<page, offset>` pairs; (3) allocated and freed in O(1).
//! kmalloc could not use highmem, backed its larger caches with higher-order pages (SLUB), and its
//! power-of-two caches wasted up to half of every object. So
//! Gupta adapted TLSF ("Two-Level Segregated Fit", Masmano et al., 2004), an O(1) allocator for real-time
//! systems: free blocks sit on segregated free lists by size, and a two-level bitmap finds the first
//! non-empty list that fits with two find-first-set instructions. xvmalloc simplified TLSF's second level
//! to one linear run of lists 8 bytes apart.
//!
//! What doomed it is the page boundary: an object never crosses one, so a page holding an object of more
//! than half a page holds nothing else of that size, and a page that compresses to 60 % wastes 40 % of a
//! page (the density test shows it exactly: 3072-byte objects take one page each). zsmalloc, merged into
//! staging in early 2012 (3.3-era kernels), lets objects span two pages; it replaced xvmalloc in zram, and
//! xvmalloc was deleted soon after. This crate is here to show that mechanism and that failure next to
//! zsmalloc, zbud and xcfmalloc.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | page | a frame from the [`FrameSource`] (owner [`Owner::POOL`]), cut into blocks that tile it exactly |
//! | block | a 4-byte header ([`BlockHeader`]) and a body; *used* (an object) or *free* |
//! | size | a header's size field: a used block's *requested* size (Linux keeps `origsize` there too), a free block's body bytes |
//! | extent | the body bytes a block really takes: its size rounded up to [`XV_ALIGN`] = 4 |
//! | free list | list `i` (0..[`NUM_FREE_LISTS`] = 508) holds free blocks of size `32 + 8i ..= 32 + 8i + 7` |
//! | small free block | a free block below [`XV_MIN_ALLOC_SIZE`] = 32 bytes: on no list, useless until a neighbour is freed and it merges |
//! | second-level bitmap | 8 words of 64 bits ([`MAX_FLI`]): bit `i % 64` of word `i / 64` says "list `i` is not empty" (Linux `slbitmap`) |
//! | first-level bitmap | one word: bit `w` says "second-level word `w` is not zero" (Linux `flbitmap`) |
//! | free node | the side-table entry of a listed free block: its page, offset, list and list links |
//! | handle slot | the side-table entry of an object: page, offset, size and generation (zram kept `<page, offset>` in its own table) |
//!
//! # Page layout
//!
//! Blocks follow each other from offset 0 to 4096 with no gap: the block at `o` with extent `e` is
//! followed by the one at `o + 4 + e`. A page after `a = malloc(100)`, `b = malloc(100)`:
//!
//! ```text
//!   0      4                   104    108                 208    212    216                    4096
//!   ┌──────┬───────────────────┬──────┬───────────────────┬──────┬──────┬───────────────────────┐
//!   │ hdr  │ object a          │ hdr  │ object b          │ hdr  │ node │ free                  │
//!   │100 0 │ 100 bytes         │100 0 │ 100 bytes         │3884 F│ idx  │                       │
//!   └──────┴───────────────────┴──────┴───────────────────┴──────┴──────┴───────────────────────┘
//!    size, prev|flags            prev = 0                   prev = 104, BLOCK_FREE; on list 481
//! ```
//!
//! The header, 4 bytes, little-endian, the layout of Linux's `struct block_header { u16 size; u16 prev; }`:
//!
//! | bytes | field | meaning |
//! |---|---|---|
//! | `0..2` | size | `u16`: the requested size (used) or the body bytes, a multiple of 4 (free) |
//! | `2..4` | prev | `u16`: the offset of the previous block's header (a multiple of 4, 0 for the first block), with [`BLOCK_FREE`] in bit 0 and [`PREV_FREE`] in bit 1 |
//!
//! A listed free block (size ≥ 32) keeps the index of its free node in body bytes `0..4` (page bytes
//! `o + 4 .. o + 8`); the rest of a free body is left as it was.
//!
//! # What lives where
//!
//! Linux threaded each free list through the free blocks themselves: a free body held `struct link_free`,
//! the previous and next block's `<page, offset>` (hence `XV_MIN_ALLOC_SIZE` 32 ≥ its 16 or 24 bytes).
//! Unlinking a block therefore mapped two *other* pages (`KM_USER1`) besides the block's own. Here a page
//! is reachable only while mapped (`pagemem`), and a refused operation must change nothing: with links in
//! the pages, a malloc or free would write up to three pages, and a mapping refused half-way would leave
//! a list torn. So the links live in a side table and every malloc and free maps exactly one page, once:
//! it reads and checks every header it needs, and only then writes. Only the node's *index* stays in the
//! free body, so that freeing a neighbour finds the neighbour's node from the page, as Linux found the
//! neighbour's links there.
//!
//! | datum | page bytes | side table |
//! |---|---|---|
//! | block headers: size, previous offset, `BLOCK_FREE`, `PREV_FREE` | yes: the only record of how a page is cut | — |
//! | a listed free block's node index | body bytes `0..4` | (the index) |
//! | free-list links, the block's page, offset and list | — (Linux: in the body) | free node, 24 bytes ([`FreeLists`]) |
//! | list heads, both bitmaps | — | 508 heads of 16 bytes, 9 words: 8,280 bytes with the counters (Linux: `struct xv_pool`, rounded up to a page) |
//! | an object's page, offset, size, generation | the size, in its header | handle slot, 16 bytes |
//!
//! Decisions about blocks (may it merge? where does the neighbour start?) are made from the headers, as
//! in Linux; every header and node index read is checked first (offsets inside the page, neighbours
//! agreeing, the node naming this very block), and a page that fails the checks is reported as
//! `Memory(MemError::Foreign(pfn))` — the page does not hold what the pool wrote — not indexed blindly.
//! Object mappings lend only the body, so no object write can reach a header.
//!
//! # The lists and the bitmap, worked
//!
//! A request of `size` bytes needs a body of `need = ⌈size / 4⌉ · 4`. The search starts at list
//! `search_index(need) = (⌈max(need, 32) / 8⌉ · 8 − 32) / 8` (Linux `get_index`): every block on it is at
//! least `need` — a good fit, not always the best (list 8, sizes 96..=103, might hold a 100-byte block for
//! a 100-byte request; it is not searched). It costs real pages: two 2044-byte objects would tile a page
//! (4 + 2044 + 4 + 2044), but the 2044-byte rest the first leaves sits on list 251 and the second request
//! searches from list 252, so each takes a page of its own (test `density_of_halves_and_small_objects`).
//! A free block of size `s` goes on list
//! `insert_index(s) = (⌊min(s, 4092) / 8⌋ · 8 − 32) / 8` (Linux `get_index_for_insert`). The search,
//! [`FreeLists::find`] (Linux `find_block`), in at most two find-first-set steps:
//!
//! 1. In second-level word `w = i / 64`, take the bits from `i % 64` up; if any is set, the lowest is the list.
//! 2. Otherwise shift the first-level word right by `w + 1`; if it is zero there is no fit. Else its
//!    lowest set bit names the next non-empty word, and that word's lowest set bit the list.
//!
//! `malloc` takes the head of that list, and splits it: the object keeps the front, the rest (if any)
//! becomes a free block of `s − need − 4` bytes, listed if ≥ 32. `free` merges the block with a free next
//! block (found at `o + 4 + extent`) and a free previous one (found through `prev`, when `PREV_FREE` says
//! it is free), so two free blocks are never neighbours; a page that is one free block again goes back
//! to the frame source. The example of the layout picture, then on:
//!
//! ```text
//!   a = malloc(100)   need 100, search_index 9. Both bitmap levels are 0: no fit. New page P; a at 0;
//!                     the rest, 4096-104-4 = 3988 bytes at 104, goes on list (3984-32)/8 = 494
//!                     = 7*64 + 46: slbitmap[7] = 1<<46, flbitmap = 1<<7.
//!   b = malloc(100)   list 9 is bit 9 of word 0. Word 0 >> 9 = 0. flbitmap >> 1 = 1<<6: word 1+6 = 7,
//!                     lowest bit 46: list 494, the 3988-byte block at 104. b takes 104..208; the rest,
//!                     3884 bytes at 208, goes on list 481 (bit 33 of word 7).
//!   free(a)           the next block (b) is used, there is no previous: a free 100-byte block at 0 on
//!                     list (96-32)/8 = 8. slbitmap[0] = 1<<8, flbitmap = 1<<0 | 1<<7. b's header gets PREV_FREE.
//!   c = malloc(90)    need 92, search_index (96-32)/8 = 8: bit 8 of word 0 is set, a hit at once. c takes
//!                     0..96 (header says 90); the rest is 100-92-4 = 4 bytes at 96: a small free block, on no
//!                     list. Word 0 is 0 again, so flbitmap bit 0 is cleared.
//!   free(b)           next (3884 at 208) is free: merge, 100+4+3884 = 3988. b has PREV_FREE, prev 96: the
//!                     small block merges too: 3988+4+4 = 3996 bytes at 96, on list 495.
//!   free(c)           next (3996 at 96) is free: 92+4+3996 = 4092 = the whole page. P goes back.
//! ```
//!
//! The test `worked_example_from_the_header` replays this, header by header and bit by bit.
//!
//! # Handles
//!
//! Linux's `xv_malloc` returned `<page, offset>` and zram kept the pair in its table. Here the handle
//! names a handle slot, which holds the pair (and the size, and a generation) — zpool's shared encoding
//! ([`zpool::handle`]) with [`HANDLE_LAYOUT`]:
//!
//! | bits | field |
//! |---|---|
//! | `0..28` | handle slot (at most 2^28 live objects) |
//! | `28..48` | generation, 1..2^20 (0 is never issued) |
//! | `48..64` | pool tag, drawn from [`zpool::handle::new_pool_tag`] when the pool is created |
//!
//! A handle is live if its tag is this pool's and its slot holds an object of its generation; anything
//! else is [`PoolError::StaleHandle`]. Freeing bumps the slot's generation, so a slot reissues a raw
//! value only after 2^20 − 1 frees of it.
//!
//! # No compaction, no eviction
//!
//! xvmalloc could not compact: zram held each object's `<page, offset>` itself, so an object could not
//! move. (Our handle table is an indirection that would allow it; we keep xvmalloc as it was.)
//! [`ZPool::compact`] returns `Ok(0)`. Nor could it evict: it kept no LRU and zram had no backing store to
//! write to, so [`ZPool::evict`] answers [`PoolError::EvictRefused`], as zsmalloc's does, without calling
//! `writeback`.
//!
//! # Contracts
//!
//! - Every bad input is a typed [`PoolError`], never a panic, and a refused operation changes nothing,
//!   except that a `malloc` refused for lack of memory counts in [`PoolStats::failures`] (zpool's rule).
//!   A `malloc` maps one page once (a new page: after taking the frame); a `free` maps one page once, and
//!   if that empties the page gives the frame back before it changes anything. If the page of a new frame
//!   cannot be mapped the frame is given back; should that fail too the frame is lost to the pool
//!   ([`XvStats::frames_lost`]) and the original error is the answer.
//! - The largest object is [`MAX_SIZE`] = 4092 bytes: a page minus one 4-byte header (Linux's
//!   `XV_MAX_ALLOC_SIZE`). An object of 4085..=4092 bytes takes a page alone. Linux's own search sent
//!   4089..=4092 (need 4092) to list 508, one past the last, and so failed them even after growing the
//!   pool; zram never asked, since it stored a page compressing worse than 3/4 uncompressed. Here
//!   [`search_index`] still says 508 for them, and `malloc` takes that to mean "only a new page fits" —
//!   true, because a page holding an object has no free block above 4084 bytes.
//! - Objects never cross a page, so every mapping is a direct view of one frame ([`MapMode`] changes
//!   nothing): a write through `ReadOnly` lands.
//! - [`PoolStats`] keeps zpool's invariants; [`XvStats`] adds where the other bytes of the pool's pages go,
//!   and `pages × 4096 = object_bytes + slack_bytes + header_bytes + free_bytes` always.
//! - The [`PageMemory`] must hand out 4096-byte pages; a shorter one is reported as
//!   `Memory(MemError::Foreign(pfn))` rather than indexed out of bounds.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::fmt;
use core::mem::size_of;

use frame::{Owner, Pfn};
use pagemem::{FrameSource, MemError, PAGE, PageMemory};
use zpool::handle::{self, FIRST_GENERATION, HandleFields, HandleLayout};
use zpool::slotlist::{self, EMPTY, Link, List, NIL, UNLINKED, push_front, unlink};
use zpool::{Handle, MapMode, PoolError, PoolStats, ZPool};

#[cfg(test)]
mod tests;

/// Bytes of a block header, and the alignment of every block and extent (Linux `XV_ALIGN`).
pub const XV_ALIGN: usize = 4;
/// Bytes of a block header (= [`XV_ALIGN`]).
pub const HEADER_SIZE: usize = XV_ALIGN;
/// The smallest free block kept on a list, and the size the search starts from (Linux `XV_MIN_ALLOC_SIZE`).
pub const XV_MIN_ALLOC_SIZE: usize = 32;
/// The largest block body: a page minus one header, 4092 (Linux `XV_MAX_ALLOC_SIZE`).
pub const XV_MAX_ALLOC_SIZE: usize = PAGE - XV_ALIGN;
/// Largest object `malloc` accepts: 4092 bytes.
pub const MAX_SIZE: usize = XV_MAX_ALLOC_SIZE;
/// log2 of the spacing of the free lists (Linux `FL_DELTA_SHIFT`, 3 for 4 KiB pages).
pub const FL_DELTA_SHIFT: u32 = 3;
/// The free lists are this many bytes apart (Linux `FL_DELTA`).
pub const FL_DELTA: usize = 1 << FL_DELTA_SHIFT;
const FL_DELTA_MASK: usize = FL_DELTA - 1;
/// Free lists: (4092 − 32) / 8 + 1 = 508 (Linux `NUM_FREE_LISTS`).
pub const NUM_FREE_LISTS: usize = (XV_MAX_ALLOC_SIZE - XV_MIN_ALLOC_SIZE) / FL_DELTA + 1;
/// Bits in a bitmap word (Linux `BITS_PER_LONG` on a 64-bit machine).
pub const BITS_PER_WORD: usize = 64;
/// Second-level bitmap words: ⌈508 / 64⌉ = 8 (Linux `MAX_FLI`).
pub const MAX_FLI: usize = NUM_FREE_LISTS.div_ceil(BITS_PER_WORD);
/// Header flag, bit 0 of `prev`: this block is free.
pub const BLOCK_FREE: u16 = 1 << 0;
/// Header flag, bit 1 of `prev`: the previous block is free.
pub const PREV_FREE: u16 = 1 << 1;
const FLAGS_MASK: u16 = (XV_ALIGN - 1) as u16;

/// xvmalloc's handle fields (see "Handles" in the module header): slot 28 bits, no sub-slot, generation 20.
pub const HANDLE_LAYOUT: HandleLayout = HandleLayout::new(28, 0, 20);
const MAX_SLOTS: usize = HANDLE_LAYOUT.max_slots();

/// The free-node offset of a vacant node (real offsets are at most 4092).
const VACANT: u16 = u16::MAX;

/// `size` rounded up to [`XV_ALIGN`]: the body a request takes (Linux `ALIGN(size, XV_ALIGN)`).
pub const fn align_size(size: usize) -> usize {
    (size + XV_ALIGN - 1) & !(XV_ALIGN - 1)
}

/// The first list whose every block holds `need` bytes (Linux `get_index`): `need` is raised to 32 and
/// rounded up to 8. For `need` above 4088 this is 508 = [`NUM_FREE_LISTS`], no list at all: only a new
/// page fits (module header, contracts).
pub const fn search_index(need: usize) -> usize {
    let s = if need < XV_MIN_ALLOC_SIZE { XV_MIN_ALLOC_SIZE } else { need };
    (((s + FL_DELTA_MASK) & !FL_DELTA_MASK) - XV_MIN_ALLOC_SIZE) >> FL_DELTA_SHIFT
}

/// The list a free block of `size` body bytes goes on (Linux `get_index_for_insert`): `size` is capped
/// at 4092 and rounded down to 8. `None` below [`XV_MIN_ALLOC_SIZE`]: a small free block is on no list.
pub const fn insert_index(size: usize) -> Option<usize> {
    if size < XV_MIN_ALLOC_SIZE {
        return None;
    }
    let s = if size > XV_MAX_ALLOC_SIZE { XV_MAX_ALLOC_SIZE } else { size };
    Some(((s & !FL_DELTA_MASK) - XV_MIN_ALLOC_SIZE) >> FL_DELTA_SHIFT)
}

/// A block header, decoded (see the layout table in the module header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    /// Used: the requested size. Free: the body bytes, a multiple of 4.
    pub size: u16,
    /// Offset of the previous block's header; 0 for the first block.
    pub prev: u16,
    /// [`BLOCK_FREE`].
    pub free: bool,
    /// [`PREV_FREE`].
    pub prev_free: bool,
}

impl BlockHeader {
    /// The 4 bytes as they are stored.
    pub const fn encode(self) -> [u8; HEADER_SIZE] {
        let s = self.size.to_le_bytes();
        let flags = if self.free { BLOCK_FREE } else { 0 } | if self.prev_free { PREV_FREE } else { 0 };
        let p = (self.prev & !FLAGS_MASK | flags).to_le_bytes();
        [s[0], s[1], p[0], p[1]]
    }

    /// The header stored in `b`.
    pub const fn decode(b: [u8; HEADER_SIZE]) -> BlockHeader {
        let prev = u16::from_le_bytes([b[2], b[3]]);
        BlockHeader {
            size: u16::from_le_bytes([b[0], b[1]]),
            prev: prev & !FLAGS_MASK,
            free: prev & BLOCK_FREE != 0,
            prev_free: prev & PREV_FREE != 0,
        }
    }

    /// The body bytes the block takes: its size rounded up to 4.
    pub const fn extent(self) -> usize {
        align_size(self.size as usize)
    }
}

/// One block of a page, as [`Xvmalloc::blocks`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Offset of the header in the page; the body starts 4 bytes later.
    pub offset: usize,
    pub header: BlockHeader,
}

/// Where a live object is ([`Xvmalloc::locate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub pfn: Pfn,
    /// Offset of the block header; the object's bytes start at `offset + 4` (Linux returned that).
    pub offset: usize,
    /// The requested size.
    pub size: usize,
    /// The handle slot.
    pub slot: u32,
}

/// xvmalloc's own figures, beside [`PoolStats`]: where the bytes of the pool's pages go, and what the
/// bookkeeping costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XvStats {
    /// Free blocks in the pool's pages, listed or small.
    pub free_blocks: u64,
    /// Their body bytes: the pool's fragmentation, bytes of its pages no object holds and no header takes.
    pub free_bytes: u64,
    /// Free blocks under [`XV_MIN_ALLOC_SIZE`], on no list (counted in `free_blocks` too).
    pub small_free_blocks: u64,
    /// Their body bytes (counted in `free_bytes` too).
    pub small_free_bytes: u64,
    /// Bytes lost to rounding objects up to 4: Σ (extent − size) over the live objects.
    pub slack_bytes: u64,
    /// Bytes of block headers in the pages: 4 × (objects + free blocks).
    pub header_bytes: u64,
    /// Heap bytes of the side tables: the free-list table, free nodes, handle slots and their vacancy
    /// stacks (capacities, not lengths).
    pub side_table_bytes: u64,
    /// `header_bytes + side_table_bytes`. (zsmalloc's `ZsStats::metadata_bytes` is its side table only.)
    pub metadata_bytes: u64,
    /// Frames the frame source refused to take back, ever; the pool no longer counts them.
    pub frames_lost: u64,
}

/// What [`Xvmalloc::verify`] found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// A page could not be mapped.
    Memory(MemError),
    /// The blocks of page `pfn` do not tile it, or the header at `offset` contradicts its neighbours, its
    /// free node, or the handle slot of the object there.
    Page { pfn: Pfn, offset: usize },
    /// A handle slot, or the vacant-slot stack, is inconsistent (or names an object no page holds).
    Handle { slot: u32 },
    /// A free node, free list `list` or the bitmaps are inconsistent; `list` is `usize::MAX` for the
    /// node table as a whole.
    Lists { list: usize },
    /// The counters do not match the pages.
    Counters,
}

/// A page whose headers or node indices fail the checks (module header, "What lives where").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Corrupt;

/// One free node: a listed free block (24 bytes).
#[derive(Debug, Clone, Copy)]
struct FreeNode {
    pfn: Pfn,
    /// Header offset of the block; [`VACANT`] when the node is unused.
    offset: u16,
    /// The list it is on.
    list: u16,
    link: Link,
}

/// The one chain free nodes have: their free list.
#[derive(Debug, Clone, Copy)]
struct OnList;

impl slotlist::Chain<FreeNode> for OnList {
    fn link<'a>(&self, n: &'a FreeNode) -> &'a Link {
        &n.link
    }

    fn link_mut<'a>(&self, n: &'a mut FreeNode) -> &'a mut Link {
        &mut n.link
    }
}

/// Counters of the free blocks (small ones included), kept by [`FreeLists::add`] and [`FreeLists::remove`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct FreeCounts {
    blocks: u64,
    bytes: u64,
    small_blocks: u64,
    small_bytes: u64,
}

/// The free lists, their two-level bitmap and the free nodes (Linux: the body of `struct xv_pool`).
pub struct FreeLists {
    /// Bit `w`: `slbitmap[w] != 0`.
    flbitmap: u64,
    /// Bit `i % 64` of word `i / 64`: list `i` is not empty.
    slbitmap: [u64; MAX_FLI],
    lists: [List; NUM_FREE_LISTS],
    nodes: Vec<FreeNode>,
    /// Vacant node indices, reused last-freed first.
    vacant: Vec<u32>,
    counts: FreeCounts,
}

impl fmt::Debug for FreeLists {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FreeLists")
            .field("flbitmap", &format_args!("{:#x}", self.flbitmap))
            .field("nodes", &(self.nodes.len() - self.vacant.len()))
            .finish_non_exhaustive()
    }
}

impl FreeLists {
    fn new() -> FreeLists {
        FreeLists {
            flbitmap: 0,
            slbitmap: [0; MAX_FLI],
            lists: [EMPTY; NUM_FREE_LISTS],
            nodes: Vec::new(),
            vacant: Vec::new(),
            counts: FreeCounts::default(),
        }
    }

    /// The first non-empty list at or above `search_index(need)`, in two find-first-set steps (module
    /// header; Linux `find_block`). `None`: no listed block fits.
    pub fn find(&self, need: usize) -> Option<usize> {
        let i = search_index(need);
        if i >= NUM_FREE_LISTS || self.flbitmap == 0 {
            return None;
        }
        let w = i / BITS_PER_WORD;
        // Step 1: the rest of the word the search starts in (Linux tests the start bit first, then the
        // bits above it; one shift does both).
        let here = self.slbitmap[w] >> (i % BITS_PER_WORD);
        if here != 0 {
            return Some(i + here.trailing_zeros() as usize);
        }
        // Step 2: the first level names the next word with a bit set.
        let above = self.flbitmap.checked_shr(w as u32 + 1).unwrap_or(0);
        if above == 0 {
            return None;
        }
        let w = w + 1 + above.trailing_zeros() as usize;
        let word = *self.slbitmap.get(w)?;
        Some(w * BITS_PER_WORD + word.trailing_zeros() as usize)
    }

    /// The first-level word.
    pub fn flbitmap(&self) -> u64 {
        self.flbitmap
    }

    /// The second-level words.
    pub fn slbitmap(&self) -> [u64; MAX_FLI] {
        self.slbitmap
    }

    /// How many blocks list `i` holds (0 for `i` past the last list).
    pub fn list_len(&self, i: usize) -> u64 {
        self.lists.get(i).map_or(0, |l| l.len)
    }

    /// The node index stored in the body of the free block at `off` of page `p`, if it is a listed block
    /// (`size` ≥ 32) and the node names this very block; `Ok(None)` for a small block.
    fn node_of(&self, p: &[u8], pfn: Pfn, off: usize, size: usize) -> Result<Option<u32>, Corrupt> {
        let Some(list) = insert_index(size) else { return Ok(None) };
        let b = p.get(off + HEADER_SIZE..off + HEADER_SIZE + 4).ok_or(Corrupt)?;
        let idx = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        match self.nodes.get(idx as usize) {
            Some(n) if n.pfn == pfn && usize::from(n.offset) == off && usize::from(n.list) == list => Ok(Some(idx)),
            _ => Err(Corrupt),
        }
    }

    /// Count a new free block of `size` body bytes at `off` of page `p` (`pfn`), and list it when it is
    /// not small: a node at the head of its list, both bitmap levels set, the node index in its body.
    /// Callers have checked that the block lies inside the page.
    fn add(&mut self, p: &mut [u8], pfn: Pfn, off: usize, size: usize) {
        self.counts.blocks += 1;
        self.counts.bytes += size as u64;
        let Some(list) = insert_index(size) else {
            self.counts.small_blocks += 1;
            self.counts.small_bytes += size as u64;
            return;
        };
        let node = FreeNode { pfn, offset: off as u16, list: list as u16, link: UNLINKED };
        let idx = match self.vacant.pop() {
            Some(idx) => {
                self.nodes[idx as usize] = node;
                idx
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        push_front(&mut self.nodes, &mut self.lists[list], idx, OnList);
        self.slbitmap[list / BITS_PER_WORD] |= 1 << (list % BITS_PER_WORD);
        self.flbitmap |= 1 << (list / BITS_PER_WORD);
        p[off + HEADER_SIZE..off + HEADER_SIZE + 4].copy_from_slice(&idx.to_le_bytes());
    }

    /// Forget a free block of `size` body bytes whose node (if listed) is `node`, as found by `node_of`:
    /// uncount it, unlink the node, clear the bitmap bits of a list that became empty.
    fn remove(&mut self, size: usize, node: Option<u32>) {
        self.counts.blocks -= 1;
        self.counts.bytes -= size as u64;
        let Some(idx) = node else {
            self.counts.small_blocks -= 1;
            self.counts.small_bytes -= size as u64;
            return;
        };
        let list = usize::from(self.nodes[idx as usize].list);
        unlink(&mut self.nodes, &mut self.lists[list], idx, OnList);
        self.nodes[idx as usize].offset = VACANT;
        self.vacant.push(idx);
        if self.lists[list].len == 0 {
            let w = list / BITS_PER_WORD;
            self.slbitmap[w] &= !(1 << (list % BITS_PER_WORD));
            if self.slbitmap[w] == 0 {
                self.flbitmap &= !(1 << w);
            }
        }
    }

    /// Heap bytes: the fixed table and the node table with its vacancy stack (capacities).
    fn bytes(&self) -> u64 {
        (size_of::<FreeLists>() + self.nodes.capacity() * size_of::<FreeNode>() + self.vacant.capacity() * 4) as u64
    }
}

/// The header at `off` of `p`, if it lies inside `p`.
fn header_at(p: &[u8], off: usize) -> Option<BlockHeader> {
    let b = p.get(off..off + HEADER_SIZE)?;
    Some(BlockHeader::decode([b[0], b[1], b[2], b[3]]))
}

/// Write header `h` at `off` of `p`; callers have checked that `off` is a header inside the page.
fn put_header(p: &mut [u8], off: usize, h: BlockHeader) {
    p[off..off + HEADER_SIZE].copy_from_slice(&h.encode());
}

/// Where the block `malloc` cuts its object from comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// The head of a free list: this node.
    Listed(u32),
    /// A new page: one free block of 4092 bytes at 0, on no list and not yet counted.
    Fresh,
}

/// Cut an object of `size` bytes (body `need`) from the front of the free block at `off` of page `p`
/// (Linux: the second half of `xv_malloc`). Checks every header it uses before it writes anything.
fn carve(
    p: &mut [u8],
    fl: &mut FreeLists,
    pfn: Pfn,
    off: usize,
    src: Source,
    need: usize,
    size: usize,
) -> Result<(), Corrupt> {
    if p.len() < PAGE {
        return Err(Corrupt);
    }
    if let Source::Fresh = src {
        put_header(p, 0, BlockHeader { size: XV_MAX_ALLOC_SIZE as u16, prev: 0, free: true, prev_free: false });
    }
    let h = header_at(p, off).ok_or(Corrupt)?;
    let have = usize::from(h.size);
    let end = off + HEADER_SIZE + have;
    if !h.free || h.prev_free || have < need || have % XV_ALIGN != 0 || end > PAGE {
        return Err(Corrupt);
    }
    let node = match src {
        Source::Listed(idx) if fl.node_of(p, pfn, off, have)? == Some(idx) => Some(idx),
        Source::Listed(_) => return Err(Corrupt),
        Source::Fresh => None,
    };
    // The block after a free block is used, has PREV_FREE and points back here.
    let next = match header_at(p, end) {
        Some(nh) if nh.free || !nh.prev_free || usize::from(nh.prev) != off => return Err(Corrupt),
        Some(nh) => Some(nh),
        None => None,
    };
    // Everything checked: now write.
    if node.is_some() {
        fl.remove(have, node);
    }
    let tail = off + HEADER_SIZE + need;
    if have > need {
        // Split: the rest is a free block of its own (a small one if under 32 bytes, even 0).
        let rest = have - need - HEADER_SIZE;
        put_header(p, tail, BlockHeader { size: rest as u16, prev: off as u16, free: true, prev_free: false });
        fl.add(p, pfn, tail, rest);
        if let Some(nh) = next {
            put_header(p, end, BlockHeader { prev: tail as u16, ..nh });
        }
    } else if let Some(nh) = next {
        // An exact fit: the next block's neighbour is used now.
        put_header(p, end, BlockHeader { prev_free: false, ..nh });
    }
    put_header(p, off, BlockHeader { size: size as u16, prev: h.prev, free: false, prev_free: false });
    Ok(())
}

/// What freeing one object does to its page, worked out before anything is written.
#[derive(Debug, Clone, Copy)]
struct Release {
    /// Header offset of the merged free block.
    start: usize,
    /// Its body bytes; 4092 means the page is empty.
    len: usize,
    /// Its `prev` field.
    prev: u16,
    /// The free neighbours it swallows: (size, node).
    gone: [Option<(usize, Option<u32>)>; 2],
    /// The used block after it, to get `PREV_FREE` and the new `prev`.
    next: Option<(usize, BlockHeader)>,
}

impl Release {
    const fn empties_page(&self) -> bool {
        self.len == XV_MAX_ALLOC_SIZE
    }
}

/// Plan the release of the object of `size` bytes at `off` of page `p` (Linux: `xv_free`'s merging),
/// checking every header and node it reads.
fn plan_release(p: &[u8], fl: &FreeLists, pfn: Pfn, off: usize, size: usize) -> Result<Release, Corrupt> {
    if p.len() < PAGE {
        return Err(Corrupt);
    }
    let h = header_at(p, off).ok_or(Corrupt)?;
    let mut len = align_size(size);
    let end = off + HEADER_SIZE + len;
    if h.free || usize::from(h.size) != size || end > PAGE {
        return Err(Corrupt);
    }
    let mut r = Release { start: off, len, prev: h.prev, gone: [None; 2], next: None };
    if let Some(nh) = header_at(p, end) {
        if usize::from(nh.prev) != off || nh.prev_free {
            return Err(Corrupt);
        }
        if nh.free {
            // Merge the next block.
            let n = usize::from(nh.size);
            let after = end + HEADER_SIZE + n;
            if n % XV_ALIGN != 0 || after > PAGE {
                return Err(Corrupt);
            }
            r.gone[0] = Some((n, fl.node_of(p, pfn, end, n)?));
            len += HEADER_SIZE + n;
            r.next = match header_at(p, after) {
                Some(nn) if nn.free || !nn.prev_free || usize::from(nn.prev) != end => return Err(Corrupt),
                Some(nn) => Some((after, nn)),
                None => None,
            };
        } else {
            r.next = Some((end, nh));
        }
    }
    if h.prev_free {
        // Merge the previous block.
        let po = usize::from(h.prev);
        let ph = header_at(p, po).ok_or(Corrupt)?;
        let n = usize::from(ph.size);
        if !ph.free || ph.prev_free || n % XV_ALIGN != 0 || po + HEADER_SIZE + n != off {
            return Err(Corrupt);
        }
        r.gone[1] = Some((n, fl.node_of(p, pfn, po, n)?));
        len += HEADER_SIZE + n;
        r.start = po;
        r.prev = ph.prev;
    }
    r.len = len;
    Ok(r)
}

/// Carry out a release that leaves the page in use: drop the swallowed neighbours, write the merged free
/// block and list it, and tell the next block.
fn apply_release(p: &mut [u8], fl: &mut FreeLists, pfn: Pfn, r: &Release) {
    for &(size, node) in r.gone.iter().flatten() {
        fl.remove(size, node);
    }
    put_header(p, r.start, BlockHeader { size: r.len as u16, prev: r.prev, free: true, prev_free: false });
    fl.add(p, pfn, r.start, r.len);
    if let Some((at, nh)) = r.next {
        put_header(p, at, BlockHeader { prev: r.start as u16, prev_free: true, ..nh });
    }
}

/// The blocks of page `p` from offset 0, following extents, until the page ends or a header would not
/// fit (a well-formed page ends exactly at 4096).
fn walk(p: &[u8]) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut off = 0;
    while let Some(header) = header_at(p, off).filter(|_| off < PAGE) {
        blocks.push(Block { offset: off, header });
        off += HEADER_SIZE + header.extent();
    }
    blocks
}

/// One handle slot (16 bytes).
#[derive(Debug, Clone, Copy)]
struct Slot {
    pfn: Pfn,
    /// Header offset of the object's block.
    offset: u16,
    /// The requested size; 0 while the slot is vacant.
    size: u16,
    /// The generation of the object there now, or of the next one.
    generation: u32,
}

/// An xvmalloc pool over the frames and page memory of `M` (see the module header).
pub struct Xvmalloc<M> {
    mem: M,
    /// Boxed: the 508 list heads make it 8 KiB.
    lists: Box<FreeLists>,
    handles: Vec<Slot>,
    /// Vacant handle slots, reused last-freed first.
    vacant_handles: Vec<u32>,
    tag: u16,
    stats: PoolStats,
    slack_bytes: u64,
    frames_lost: u64,
}

impl<M> fmt::Debug for Xvmalloc<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Xvmalloc")
            .field("tag", &self.tag)
            .field("lists", &self.lists)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<M: PageMemory + FrameSource> Xvmalloc<M> {
    /// An empty pool taking its frames from `mem` (Linux `xv_create_pool`).
    pub fn new(mem: M) -> Self {
        Xvmalloc {
            mem,
            lists: Box::new(FreeLists::new()),
            handles: Vec::new(),
            vacant_handles: Vec::new(),
            tag: handle::new_pool_tag(),
            stats: PoolStats::default(),
            slack_bytes: 0,
            frames_lost: 0,
        }
    }

    /// The memory the pool runs on.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// The memory the pool runs on, mutably (for its statistics). Freeing or writing the pool's frames
    /// through it breaks the pool.
    pub fn memory_mut(&mut self) -> &mut M {
        &mut self.mem
    }

    /// Take the memory back. Frames the pool still holds stay allocated.
    pub fn into_memory(self) -> M {
        self.mem
    }

    /// The free lists and bitmaps, to look at.
    pub fn free_lists(&self) -> &FreeLists {
        &self.lists
    }

    /// xvmalloc's own figures (see [`XvStats`]).
    pub fn xv_stats(&self) -> XvStats {
        let c = self.lists.counts;
        let header_bytes = HEADER_SIZE as u64 * (self.stats.objects + c.blocks);
        let side_table_bytes = self.lists.bytes()
            + (self.handles.capacity() * size_of::<Slot>() + self.vacant_handles.capacity() * 4) as u64;
        XvStats {
            free_blocks: c.blocks,
            free_bytes: c.bytes,
            small_free_blocks: c.small_blocks,
            small_free_bytes: c.small_bytes,
            slack_bytes: self.slack_bytes,
            header_bytes,
            side_table_bytes,
            metadata_bytes: header_bytes + side_table_bytes,
            frames_lost: self.frames_lost,
        }
    }

    /// Where a live object is.
    pub fn locate(&self, handle: Handle) -> Result<Location, PoolError> {
        let slot = self.lookup(handle)?;
        let s = self.handles[slot as usize];
        Ok(Location { pfn: s.pfn, offset: usize::from(s.offset), size: usize::from(s.size), slot })
    }

    /// The blocks of page `pfn` as its headers say, from offset 0 (for tests and the curious; it reads
    /// any page the memory holds).
    pub fn blocks(&mut self, pfn: Pfn) -> Result<Vec<Block>, MemError> {
        self.mem.with_page(pfn, |p| walk(p))
    }

    /// The pages the pool holds, ascending by pfn.
    pub fn pages(&self) -> Vec<Pfn> {
        let set: BTreeSet<Pfn> = self.handles.iter().filter(|s| s.size != 0).map(|s| s.pfn).collect();
        set.into_iter().collect()
    }

    /// Check every page's blocks against each other, the handle slots and the free nodes; every list and
    /// both bitmaps; and the counters.
    pub fn verify(&mut self) -> Result<(), VerifyError> {
        // Handle slots and their vacancy stack.
        let mut vacant = alloc::vec![false; self.handles.len()];
        for &slot in &self.vacant_handles {
            match (vacant.get_mut(slot as usize), self.handles.get(slot as usize)) {
                (Some(v), Some(s)) if !*v && s.size == 0 => *v = true,
                _ => return Err(VerifyError::Handle { slot }),
            }
        }
        let mut objects: BTreeMap<(Pfn, usize), (u32, usize)> = BTreeMap::new();
        let (mut bytes, mut slack) = (0u64, 0u64);
        for (slot, s) in self.handles.iter().enumerate() {
            let bad = Err(VerifyError::Handle { slot: slot as u32 });
            if !HANDLE_LAYOUT.is_generation(s.generation) || (s.size == 0) != vacant[slot] {
                return bad;
            }
            if s.size != 0 {
                let size = usize::from(s.size);
                if size > MAX_SIZE || objects.insert((s.pfn, usize::from(s.offset)), (slot as u32, size)).is_some() {
                    return bad;
                }
                bytes += size as u64;
                slack += (align_size(size) - size) as u64;
            }
        }
        // Every page: its blocks, and what they say about handles and nodes.
        let mut seen_nodes = alloc::vec![false; self.lists.nodes.len()];
        let mut counts = FreeCounts::default();
        let mut used = 0u64;
        let pages = self.pages();
        for &pfn in &pages {
            let blocks = self.mem.with_page(pfn, |p| {
                let mut out = Vec::new();
                for b in walk(p) {
                    let node = b.header.free.then(|| self.lists.node_of(p, pfn, b.offset, usize::from(b.header.size)));
                    out.push((b, node));
                }
                out
            });
            let blocks = blocks.map_err(VerifyError::Memory)?;
            let mut prev: Option<Block> = None;
            let mut end = 0;
            for (b, node) in blocks {
                let h = b.header;
                let bad = Err(VerifyError::Page { pfn, offset: b.offset });
                let linked = match prev {
                    None => b.offset == 0 && h.prev == 0 && !h.prev_free,
                    Some(q) => usize::from(h.prev) == q.offset && h.prev_free == q.header.free,
                };
                if !linked || (h.free && h.prev_free) {
                    return bad;
                }
                if h.free {
                    let size = usize::from(h.size);
                    if size % XV_ALIGN != 0 || size == XV_MAX_ALLOC_SIZE {
                        return bad;
                    }
                    counts.blocks += 1;
                    counts.bytes += size as u64;
                    match node {
                        Some(Ok(Some(idx))) => match seen_nodes.get_mut(idx as usize) {
                            Some(s) if !*s => *s = true,
                            _ => return bad,
                        },
                        Some(Ok(None)) => {
                            counts.small_blocks += 1;
                            counts.small_bytes += size as u64;
                        }
                        _ => return bad,
                    }
                } else {
                    match objects.remove(&(pfn, b.offset)) {
                        Some((_, size)) if size == usize::from(h.size) => used += 1,
                        _ => return bad,
                    }
                }
                end = b.offset + HEADER_SIZE + h.extent();
                prev = Some(b);
            }
            if end != PAGE {
                return Err(VerifyError::Page { pfn, offset: end });
            }
        }
        if let Some(&(slot, _)) = objects.values().next() {
            // This slot names a place that is no used block's header.
            return Err(VerifyError::Handle { slot });
        }
        // Nodes: every live one met in exactly one page, the vacant ones stacked once.
        let fl = &self.lists;
        let whole = Err(VerifyError::Lists { list: usize::MAX });
        let mut stacked = alloc::vec![false; fl.nodes.len()];
        for &idx in &fl.vacant {
            match (stacked.get_mut(idx as usize), fl.nodes.get(idx as usize)) {
                (Some(s), Some(n)) if !*s && n.offset == VACANT => *s = true,
                _ => return whole,
            }
        }
        if fl
            .nodes
            .iter()
            .zip(seen_nodes.iter().zip(&stacked))
            .any(|(n, (&seen, &stacked))| (n.offset == VACANT) != stacked || seen == stacked)
        {
            return whole;
        }
        // Lists and bitmaps.
        let mut listed = 0;
        for (i, list) in fl.lists.iter().enumerate() {
            let bad = VerifyError::Lists { list: i };
            let member = |n: &FreeNode| n.offset != VACANT && usize::from(n.list) == i;
            let n = slotlist::check(&fl.nodes, list, OnList, member).map_err(|_| bad)?;
            let bit = fl.slbitmap[i / BITS_PER_WORD] >> (i % BITS_PER_WORD) & 1;
            if (n > 0) != (bit == 1) {
                return Err(bad);
            }
            listed += n;
        }
        if listed != (fl.nodes.len() - fl.vacant.len()) as u64 {
            return whole;
        }
        let stray = fl.slbitmap[MAX_FLI - 1] >> (NUM_FREE_LISTS % BITS_PER_WORD);
        let first: u64 = (0..MAX_FLI).filter(|&w| fl.slbitmap[w] != 0).map(|w| 1 << w).sum();
        if stray != 0 || first != fl.flbitmap {
            return Err(VerifyError::Lists { list: NUM_FREE_LISTS });
        }
        // Counters.
        let s = &self.stats;
        let tiled = s.pages * PAGE as u64 == bytes + slack + HEADER_SIZE as u64 * (used + counts.blocks) + counts.bytes;
        if (s.objects, s.object_bytes, s.pages) != (used, bytes, pages.len() as u64)
            || counts != fl.counts
            || slack != self.slack_bytes
            || !tiled
        {
            return Err(VerifyError::Counters);
        }
        Ok(())
    }

    /// The slot of a live handle.
    fn lookup(&self, handle: Handle) -> Result<u32, PoolError> {
        let f = HANDLE_LAYOUT.decode(handle);
        match self.handles.get(f.slot as usize) {
            Some(s) if f.tag == self.tag && s.size != 0 && s.generation == f.generation => Ok(f.slot),
            _ => Err(PoolError::StaleHandle(handle)),
        }
    }

    fn fail(&mut self, e: impl Into<PoolError>) -> PoolError {
        self.stats.failures += 1;
        e.into()
    }

    /// Cut the object from the head of list `list` (its page mapped once).
    fn malloc_listed(&mut self, list: usize, need: usize, size: usize) -> Result<(Pfn, usize), PoolError> {
        let idx = self.lists.lists.get(list).map_or(NIL, |l| l.head);
        let Some(&node) = self.lists.nodes.get(idx as usize) else {
            return Err(self.fail(MemError::Foreign(Pfn(u64::MAX))));
        };
        let (pfn, off) = (node.pfn, usize::from(node.offset));
        let fl = &mut *self.lists;
        match self.mem.with_page(pfn, |p| carve(p, fl, pfn, off, Source::Listed(idx), need, size)) {
            Ok(Ok(())) => Ok((pfn, off)),
            Ok(Err(Corrupt)) => Err(self.fail(MemError::Foreign(pfn))),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Take a new page and cut the object from its front (Linux `grow_pool`, then the split).
    fn malloc_fresh(&mut self, need: usize, size: usize) -> Result<(Pfn, usize), PoolError> {
        let pfn = self.mem.alloc_frame(Owner::POOL).map_err(|e| self.fail(e))?;
        let fl = &mut *self.lists;
        let err = match self.mem.with_page(pfn, |p| carve(p, fl, pfn, 0, Source::Fresh, need, size)) {
            Ok(Ok(())) => {
                self.stats.pages += 1;
                return Ok((pfn, 0));
            }
            Ok(Err(Corrupt)) => PoolError::Memory(MemError::Foreign(pfn)),
            Err(e) => PoolError::Memory(e),
        };
        // Best effort: if the frame cannot go back either, it stays with nobody (module header).
        if self.mem.free_frame(pfn).is_err() {
            self.frames_lost += 1;
        }
        Err(self.fail(err))
    }
}

impl<M: PageMemory + FrameSource> ZPool for Xvmalloc<M> {
    fn name(&self) -> &'static str {
        "xvmalloc"
    }

    fn max_size(&self) -> usize {
        MAX_SIZE
    }

    fn malloc(&mut self, size: usize) -> Result<Handle, PoolError> {
        PoolError::check_size(size, MAX_SIZE)?;
        if self.vacant_handles.is_empty() && self.handles.len() >= MAX_SLOTS {
            return Err(self.fail(PoolError::OutOfMemory));
        }
        let need = align_size(size);
        let (pfn, off) = match self.lists.find(need) {
            Some(list) => self.malloc_listed(list, need, size)?,
            None => self.malloc_fresh(need, size)?,
        };
        let placed = Slot { pfn, offset: off as u16, size: size as u16, generation: FIRST_GENERATION };
        let slot = match self.vacant_handles.pop() {
            Some(slot) => {
                let s = &mut self.handles[slot as usize];
                *s = Slot { generation: s.generation, ..placed };
                slot
            }
            None => {
                self.handles.push(placed);
                (self.handles.len() - 1) as u32
            }
        };
        self.stats.objects += 1;
        self.stats.object_bytes += size as u64;
        self.stats.allocs += 1;
        self.slack_bytes += (need - size) as u64;
        let generation = self.handles[slot as usize].generation;
        Ok(HANDLE_LAYOUT.encode(HandleFields { tag: self.tag, generation, sub: 0, slot }))
    }

    fn free(&mut self, handle: Handle) -> Result<(), PoolError> {
        let slot = self.lookup(handle)?;
        let s = self.handles[slot as usize];
        let (pfn, off, size) = (s.pfn, usize::from(s.offset), usize::from(s.size));
        let fl = &mut *self.lists;
        let r = self.mem.with_page(pfn, |p| {
            let r = plan_release(p, fl, pfn, off, size)?;
            if !r.empties_page() {
                apply_release(p, fl, pfn, &r);
            }
            Ok::<Release, Corrupt>(r)
        })?;
        let r = r.map_err(|Corrupt| MemError::Foreign(pfn))?;
        if r.empties_page() {
            // The fallible step before any change: give the frame back (Linux `__free_page`).
            self.mem.free_frame(pfn)?;
            for &(size, node) in r.gone.iter().flatten() {
                self.lists.remove(size, node);
            }
            self.stats.pages -= 1;
        }
        let s = &mut self.handles[slot as usize];
        s.size = 0;
        s.generation = HANDLE_LAYOUT.next_generation(s.generation);
        self.vacant_handles.push(slot);
        self.stats.objects -= 1;
        self.stats.object_bytes -= size as u64;
        self.stats.frees += 1;
        self.slack_bytes -= (align_size(size) - size) as u64;
        Ok(())
    }

    /// All modes map the page directly: a write in `ReadOnly` mode lands (the caller must not make one).
    fn map<R>(&mut self, handle: Handle, _mode: MapMode, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, PoolError> {
        let slot = self.lookup(handle)?;
        let s = self.handles[slot as usize];
        let start = usize::from(s.offset) + HEADER_SIZE;
        let r = start..start + usize::from(s.size);
        Ok(self.mem.with_page(s.pfn, |p| p.get_mut(r).map(f))?.ok_or(MemError::Foreign(s.pfn))?)
    }

    fn size_of(&self, handle: Handle) -> Result<usize, PoolError> {
        let slot = self.lookup(handle)?;
        Ok(usize::from(self.handles[slot as usize].size))
    }

    fn total_pages(&self) -> u64 {
        self.stats.pages
    }

    fn metadata_growth(&self) -> usize {
        // A handle slot (if none is vacant) and up to two free nodes: a new page's node and the remainder
        // of a split block (only if no vacant node is left).
        let handle = if self.vacant_handles.is_empty() { zpool::vec_growth(&self.handles, 1) } else { 0 };
        let l = &self.lists;
        handle + zpool::vec_growth(&l.nodes, 2usize.saturating_sub(l.vacant.len()))
    }

    fn stats(&self) -> PoolStats {
        self.stats
    }

    /// xvmalloc cannot compact (module header, "No compaction, no eviction").
    fn compact(&mut self) -> Result<u64, PoolError> {
        Ok(0)
    }

    /// xvmalloc does not evict: `EvictRefused`, and `writeback` is never called.
    fn evict(&mut self, _writeback: &mut dyn FnMut(Handle, &[u8]) -> bool) -> Result<u64, PoolError> {
        Err(PoolError::EvictRefused)
    }
}

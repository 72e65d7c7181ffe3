//! Physical page-frame allocator: a binary buddy system over a table of per-frame records, with per-CPU
//! caches of single frames in front of it (Linux's `mm/page_alloc.c` and `struct page`, in miniature).
//!
//! # Why
//!
//! Everything above this crate — page tables, the kernel heap, stacks, the object pools — asks for physical
//! memory in whole 4 KiB frames, and some of it in physically contiguous runs (a 2 MiB huge page, a DMA
//! buffer, a multi-page pool). A free-frame bitmap answers "one frame" cheaply but "64 contiguous frames"
//! only by scanning; a free list of single frames cannot answer it at all. The buddy system keeps free
//! memory as power-of-two *blocks*, naturally aligned, on one list per size, so both questions take
//! O([`MAX_ORDER`]) list operations, and a freed block finds the neighbour it may merge with by flipping a
//! single bit of its frame number — no search, no sorting, and fragmentation repairs itself as memory is
//! returned. It needs one small record per frame ([`FrameInfo`], Linux's `struct page`) which also answers
//! "who owns this frame?" for the debugger, the scrubber and the memory statistics.
//!
//! The crate is portable (`no_std`, no `unsafe`, no `alloc`): the kernel hands it the frame table as a
//! `&mut [FrameInfo]` carved out of RAM it found in the memory map, and the host tests hand it a `Vec`.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | pfn | physical frame number: physical address / [`PAGE_SIZE`] ([`Pfn`]) |
//! | span | the pfns `[base, base + table.len())` the frame table describes; [`FrameAllocator::span`] |
//! | managed | a frame in the span that was handed over by [`FrameAllocator::add_free_range`]; every other frame of the span is *reserved* and never touched |
//! | order | log2 of a block's size in frames: an order-`n` block is `2^n` frames, 0 ≤ n ≤ [`MAX_ORDER`] (order 10 = 4 MiB) |
//! | block | `2^order` frames starting at a pfn that is a multiple of `2^order` (alignment is by absolute pfn, never relative to the span's base) |
//! | head / tail | a block's first frame is its head and carries the block's order; the others are tails |
//! | buddy | the other half of the order-`n+1` block an order-`n` block belongs to: `pfn ^ (1 << n)` |
//! | free list | one doubly linked list of free blocks per order, threaded through the heads' [`FrameInfo`] |
//! | pcp | per-CPU pages: a [`PcpList`] of order-0 frames a CPU keeps parked so most single-frame allocations and frees touch no shared state |
//! | owner | who holds an allocated frame ([`Owner`]); `last_owner` is who held it before |
//!
//! # The frame table
//!
//! `table[i]` describes pfn `base + i`. One entry is 24 bytes (0.6 % of RAM; Linux's `struct page` is 64):
//!
//! | field | type | bytes | meaning | Linux `struct page` counterpart |
//! |---|---|---|---|---|
//! | `state` | [`FrameState`] | 1 | Reserved / Free / Allocated / PerCpu | `PG_reserved`, the `PageBuddy` page type, `PageLRU`… |
//! | `order` | `u8` | 1 | order of the block this frame heads (0 for tails) | `page_private()` of a buddy page (`set_buddy_order`), `compound_order` |
//! | `head` | `bool` | 1 | first frame of its block | `PageHead` / `PageTail` (bit 0 of `compound_head`) |
//! | `owner` | [`Owner`] (`u16`) | 2 | who holds the frame now | `CONFIG_PAGE_OWNER`'s allocation record, `memcg_data` |
//! | `last_owner` | [`Owner`] (`u16`) | 2 | who held it before its last free | `CONFIG_PAGE_OWNER`'s "page last free" record |
//! | `prev`, `next` | `u32` ×2 | 8 | free-list neighbours as table indices (`u32::MAX` = none) | `lru` / `buddy_list` (a `list_head`) |
//! | `link` | `u64` (public) | 8 | a word for the owner, zeroed on every allocation | `private` / `index` (Linux's zsmalloc chains a zspage's pages through them; zkernel's keeps the chain in its side table and leaves `link` at 0) |
//!
//! Using 32-bit indices instead of pointers keeps the entry small and the crate free of `unsafe`; it limits
//! one allocator to 2^32 − 1 frames (16 TiB), far beyond a teaching kernel. Frames of a *free* block other
//! than the head are `Free` tails: only the head is on a list, and only the head's `order` is meaningful.
//!
//! # Worked example: split and merge
//!
//! Pretend [`MAX_ORDER`] were 4 and the allocator manages pfn `0x00..0x10`: one free order-4 block.
//! `alloc(0)` finds the smallest non-empty list (order 4) and halves the block until it is order 0,
//! putting each upper half back on its list:
//!
//! ```text
//!   take  [0x0..0x10) o4      lists: o4 = {}
//!   split [0x0..0x8) | [0x8..0x10) o3 -> list o3
//!   split [0x0..0x4) | [0x4..0x8)  o2 -> list o2
//!   split [0x0..0x2) | [0x2..0x4)  o1 -> list o1
//!   split [0x0]      | [0x1]       o0 -> list o0      return pfn 0x0; free lists: one block at o0..o3
//! ```
//!
//! `free(0x0, 0)` walks back up: the buddy of `0x0` at order 0 is `0x0 ^ 1 = 0x1`, a free order-0 head, so
//! it leaves its list and the pair becomes `[0x0..0x2)` of order 1; that block's buddy is `0x0 ^ 2 = 0x2`,
//! free at order 1, giving `[0x0..0x4)`; then `0x4` (order 2) and `0x8` (order 3) merge in the same way,
//! and the result is the single order-4 block again. Merging stops at the first buddy that is not a free
//! *head of the same order* (allocated, reserved, parked in a pcp, outside the span, or split smaller), or
//! at [`MAX_ORDER`]. The test `worked_example_from_the_header` replays exactly this with order 4 of 10.
//!
//! # Odd regions
//!
//! Firmware memory maps do not come in aligned powers of two. [`FrameAllocator::add_free_range`] carves
//! `[start, end)` greedily into the largest block that is aligned at the current pfn *and* fits before
//! `end`, and inserts each block as if it were being freed, so it merges with free neighbours already
//! present. `3..20` becomes `3` (o0), `4..8` (o2), `8..16` (o3), `16..20` (o2). Because freeing always
//! merges, the free lists only ever hold the *maximal* aligned blocks of the free frames: adding adjacent
//! ranges in any order, or in pieces, ends in the same lists.
//!
//! # Per-CPU lists
//!
//! Most allocations are single frames, and in the kernel the buddy allocator sits behind a lock. A
//! [`PcpList`] (Linux's `per_cpu_pages`) lets each CPU keep up to [`PCP_HIGH`] order-0 frames parked in
//! state `PerCpu`: an allocation pops one (newest first, still warm in cache), a free pushes one, and only
//! when the list runs empty or over [`PCP_HIGH`] does the CPU take the lock and move [`PCP_BATCH`] frames in
//! one go. The numbers are Linux's long-standing defaults for a zone of a few hundred MiB or more: a batch
//! of 31 (`zone_batchsize()` picks 2^n − 1 on purpose: power-of-two batches made frames of consecutive
//! refills alias in physically indexed caches) and a high mark of 6 × batch = 186 (the old
//! `pageset_set_batch()` rule). Parked frames are neither free nor used in [`FrameStats`]: they are counted
//! in `per_cpu`, cannot merge, and must be drained back before the buddy lists look whole again.
//!
//! # Owners
//!
//! Every allocation names an [`Owner`]. Freeing moves `owner` to `last_owner` and sets `owner` to
//! [`Owner::NONE`]; allocating sets `owner` and keeps `last_owner`, so the kernel can tell whether a frame
//! about to go to a new owner last held someone else's data and must be scrubbed first.
//!
//! `last_owner` also lets a bad free name its mistake. Freeing a frame that is free in the buddy lists is
//! [`FrameError::DoubleFree`] if its `last_owner` is set (it was allocated and has been freed already) and
//! [`FrameError::NotAllocated`] if it is [`Owner::NONE`] (never allocated since
//! [`FrameAllocator::add_free_range`] handed it over); freeing a parked frame is always `DoubleFree`. So an
//! allocation should name a real owner, never [`Owner::NONE`]: the allocator accepts it, but such a block,
//! once freed, records nobody as its last owner, and freeing it a second time reads as `NotAllocated`.
//!
//! # Complexity
//!
//! | operation | cost |
//! |---|---|
//! | `alloc(order)` | O(MAX_ORDER) list operations + O(2^order) to stamp the block's frames |
//! | `free(pfn, order)` | O(MAX_ORDER) merges + O(2^order) to stamp the block's frames |
//! | `add_free_range` | O(frames in the range) |
//! | `PcpList::alloc` / `free` | O(1) usually; O(PCP_BATCH × MAX_ORDER) on a refill, O(PCP_BATCH × MAX_ORDER + PCP_HIGH) on a spill |
//!
//! The list work never depends on how much memory is managed. Stamping every frame of a block (state,
//! owner, head/tail) is linear in the memory handed out, which the caller is about to touch anyway; Linux
//! does the same for compound pages in `prep_compound_page`.
//!
//! # Contracts
//!
//! - Every error is a typed [`FrameError`], never a panic, and a refused operation changes nothing — with
//!   one deliberate exception: an [`FrameError::OutOfMemory`] still counts in `alloc_failures`.
//! - [`FrameAllocator`] is not thread-safe by itself (`&mut self` everywhere); the kernel wraps it in a
//!   lock. A [`PcpList`] belongs to one CPU (the kernel keeps one per CPU and uses it with interrupts
//!   off), and it must always be used with the same allocator, whose lock is held for the call.
//! - The allocator does not enforce its [`Watermarks`]: it only reports them ([`FrameAllocator::below_low`]);
//!   deciding to reclaim, wait or fail is the caller's policy.
//! - The allocator never reads or writes the frames themselves, only their records.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use core::fmt;

/// Size of one frame (an x86_64 small page).
pub const PAGE_SIZE: u64 = 4096;

/// Largest order: blocks are 2^0 ..= 2^10 frames (4 KiB ..= 4 MiB).
pub const MAX_ORDER: u8 = 10;

/// Number of orders, and so of free lists.
const ORDERS: usize = MAX_ORDER as usize + 1;

/// "No neighbour" in a free-list link.
const NIL: u32 = u32::MAX;

/// Most frames one allocator can describe: every index must fit in a `u32` other than [`NIL`].
const MAX_FRAMES: usize = NIL as usize;

/// A physical frame number: physical address / [`PAGE_SIZE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pfn(pub u64);

impl Pfn {
    /// The frame's physical address. Pfns beyond 2^52 (no x86_64 machine has them) wrap.
    pub const fn addr(self) -> u64 {
        self.0.wrapping_mul(PAGE_SIZE)
    }

    /// The frame holding `addr` (rounds down).
    pub const fn from_addr(addr: u64) -> Pfn {
        Pfn(addr / PAGE_SIZE)
    }
}

/// Who holds an allocated frame. A plain number so the kernel can add owners without touching this crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner(pub u16);

impl Owner {
    /// Nobody: the frame is free, parked or reserved. Not meant for allocating with: a block allocated
    /// for `NONE` and freed twice is reported as [`FrameError::NotAllocated`], not
    /// [`FrameError::DoubleFree`] (see the module header).
    pub const NONE: Owner = Owner(0);
    /// The kernel itself, with no more specific owner.
    pub const KERNEL: Owner = Owner(1);
    /// A page-table page.
    pub const PAGE_TABLE: Owner = Owner(2);
    /// The frame table (this crate's `[FrameInfo]`).
    pub const FRAME_TABLE: Owner = Owner(3);
    /// The kernel heap.
    pub const HEAP: Owner = Owner(4);
    /// A kernel stack.
    pub const STACK: Owner = Owner(5);
    /// The kernel-mapping self test.
    pub const KMAP_TEST: Owner = Owner(6);
    /// An object pool of no particular kind; what the pool crates ask their `FrameSource` for. The kernel
    /// records each pool's frames under the pool's own owner below ([`Owner::is_pool`] is true for all).
    pub const POOL: Owner = Owner(7);
    /// A test workload.
    pub const WORKLOAD: Owner = Owner(8);
    /// A page of the page cache: a cached page of a file on disk (the `pagecache` crate).
    pub const PAGE_CACHE: Owner = Owner(9);
    /// A frame of a zsmalloc pool.
    pub const ZSMALLOC: Owner = Owner(10);
    /// A frame of a zbud pool.
    pub const ZBUD: Owner = Owner(11);
    /// A frame of an xvmalloc pool.
    pub const XVMALLOC: Owner = Owner(12);
    /// A frame of an xcfmalloc pool.
    pub const XCFMALLOC: Owner = Owner(13);
    /// A buffer a device reads or writes (virtio queues, bounce buffers).
    pub const DMA: Owner = Owner(14);

    /// Whether the frame belongs to a compressed-object pool: [`Owner::POOL`] or one of the named pools.
    pub const fn is_pool(self) -> bool {
        matches!(self.0, 7 | 10..=13)
    }

    /// A short name for tables and panics; `"other"` for numbers this crate does not know.
    pub const fn name(self) -> &'static str {
        match self.0 {
            0 => "none",
            1 => "kernel",
            2 => "page table",
            3 => "frame table",
            4 => "heap",
            5 => "stack",
            6 => "kmap test",
            7 => "pool",
            8 => "workload",
            9 => "page cache",
            10 => "zsmalloc",
            11 => "zbud",
            12 => "xvmalloc",
            13 => "xcfmalloc",
            14 => "dma",
            _ => "other",
        }
    }
}

/// What a frame is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameState {
    /// Not managed: never handed to the allocator (firmware, the kernel image, a hole in the map).
    Reserved,
    /// Part of a free block in the buddy lists.
    Free,
    /// Part of an allocated block.
    Allocated,
    /// An order-0 frame parked in a per-CPU list.
    PerCpu,
}

/// One entry per frame (Linux's `struct page`); see the module header for the field table.
#[derive(Debug, Clone, Copy)]
pub struct FrameInfo {
    /// A word the owner may use (e.g. a pool's next-page link); reset to 0 on every allocation.
    pub link: u64,
    prev: u32,
    next: u32,
    owner: Owner,
    last_owner: Owner,
    state: FrameState,
    order: u8,
    head: bool,
}

impl FrameInfo {
    /// The entry of a frame the allocator does not manage; what [`FrameAllocator::new`] writes everywhere.
    pub const fn reserved() -> Self {
        Self {
            link: 0,
            prev: NIL,
            next: NIL,
            owner: Owner::NONE,
            last_owner: Owner::NONE,
            state: FrameState::Reserved,
            order: 0,
            head: false,
        }
    }

    pub fn state(&self) -> FrameState {
        self.state
    }

    /// Order of the block this frame heads; 0 for a tail (and for a parked or reserved frame).
    pub fn order(&self) -> u8 {
        self.order
    }

    /// Whether this frame is the first frame of a free or allocated block (parked frames are heads too).
    pub fn is_head(&self) -> bool {
        self.head
    }

    /// The current owner; [`Owner::NONE`] unless the frame is allocated.
    pub fn owner(&self) -> Owner {
        self.owner
    }

    /// The owner before the frame's last free; [`Owner::NONE`] if it was never freed (or, against the
    /// module header's advice, was allocated for [`Owner::NONE`]). For a free frame this tells a double free
    /// ([`FrameError::DoubleFree`]) from freeing a frame never allocated ([`FrameError::NotAllocated`]).
    pub fn last_owner(&self) -> Owner {
        self.last_owner
    }
}

/// Why the allocator refused an operation. A refused operation changed nothing (except `alloc_failures`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// No free block of this order or larger.
    OutOfMemory { order: u8 },
    /// The order is above [`MAX_ORDER`].
    InvalidOrder(u8),
    /// The frame is outside the span, or inside it but reserved (never managed).
    Foreign(Pfn),
    /// The pfn is not a multiple of `2^order`, so no block of that order starts there.
    Misaligned { pfn: Pfn, order: u8 },
    /// The frame was allocated and has been freed already: it is free in the buddy lists with a
    /// `last_owner`, or parked in a per-CPU list; for [`FrameAllocator::add_free_range`], the first frame
    /// of the range that is already managed.
    DoubleFree(Pfn),
    /// The frame is not the head of an allocated block: freed, it is free in the buddy lists and was never
    /// allocated since it was added (its `last_owner` is [`Owner::NONE`]), or it is allocated but as a tail
    /// (only the head of a block may be freed); for [`FrameAllocator::set_link`], it is free or parked.
    NotAllocated(Pfn),
    /// The frame heads a block of order `allocated`, and the caller freed it as order `freed`.
    WrongOrder { pfn: Pfn, allocated: u8, freed: u8 },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::OutOfMemory { order } => write!(f, "out of memory for an order-{order} block"),
            FrameError::InvalidOrder(order) => write!(f, "order {order} is above the maximum {MAX_ORDER}"),
            FrameError::Foreign(pfn) => write!(f, "frame {:#x} is not managed by this allocator", pfn.0),
            FrameError::Misaligned { pfn, order } => {
                write!(f, "frame {:#x} is not aligned for an order-{order} block", pfn.0)
            }
            FrameError::DoubleFree(pfn) => write!(f, "frame {:#x} is already free", pfn.0),
            FrameError::NotAllocated(pfn) => write!(f, "frame {:#x} does not head an allocated block", pfn.0),
            FrameError::WrongOrder { pfn, allocated, freed } => {
                write!(f, "frame {:#x} heads an order-{allocated} block, freed as order {freed}", pfn.0)
            }
        }
    }
}

/// Counters, all in frames except where noted.
///
/// Always `managed == free + used + per_cpu` and `free == Σ free_per_order[o] << o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameStats {
    /// Frames ever added with [`FrameAllocator::add_free_range`].
    pub managed: u64,
    /// Frames in the buddy lists.
    pub free: u64,
    /// Frames allocated to owners.
    pub used: u64,
    /// Frames parked in per-CPU lists.
    pub per_cpu: u64,
    /// Number of free *blocks* (not frames) on each order's list.
    pub free_per_order: [u64; MAX_ORDER as usize + 1],
    /// Successful allocations (buddy and per-CPU; refills are not counted).
    pub allocs: u64,
    /// Successful frees (buddy and per-CPU; drains are not counted).
    pub frees: u64,
    /// Allocations refused with [`FrameError::OutOfMemory`].
    pub alloc_failures: u64,
}

/// Free-memory thresholds in frames, Linux style: below `min` only emergencies should allocate, below
/// `low` the kernel should start reclaiming, above `high` it may stop. Derived from `managed`:
/// `min = max(managed / 256, 16)`, `low = min × 5/4`, `high = min × 3/2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    pub min: u64,
    pub low: u64,
    pub high: u64,
}

impl Watermarks {
    /// The watermarks for this many managed frames.
    pub const fn for_managed(managed: u64) -> Watermarks {
        let min = if managed / 256 > 16 { managed / 256 } else { 16 };
        Watermarks { min, low: min * 5 / 4, high: min * 3 / 2 }
    }
}

/// The buddy allocator over one span of frames (see the module header).
pub struct FrameAllocator<'t> {
    /// `table[i]` describes pfn `base + i`; at most [`MAX_FRAMES`] entries.
    table: &'t mut [FrameInfo],
    base: Pfn,
    /// Index of the first free block on each order's list, or [`NIL`].
    heads: [u32; ORDERS],
    stats: FrameStats,
}

impl fmt::Debug for FrameAllocator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (start, end) = self.span();
        f.debug_struct("FrameAllocator")
            .field("start", &start)
            .field("end", &end)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<'t> FrameAllocator<'t> {
    /// Frames the table must hold to cover the span `[start, end)` (0 if `end <= start`).
    pub const fn table_len(start: Pfn, end: Pfn) -> usize {
        let frames = end.0.saturating_sub(start.0);
        if frames > usize::MAX as u64 { usize::MAX } else { frames as usize }
    }

    /// An allocator whose `table[i]` describes frame `base + i`; every entry is overwritten with
    /// [`FrameInfo::reserved`], so nothing is free until [`add_free_range`](Self::add_free_range).
    /// Entries beyond 2^32 − 1, or beyond the top of the pfn space, are left alone and not part of the span.
    pub fn new(table: &'t mut [FrameInfo], base: Pfn) -> Self {
        let room = usize::try_from(u64::MAX - base.0).unwrap_or(usize::MAX);
        let len = table.len().min(MAX_FRAMES).min(room);
        let (table, _) = table.split_at_mut(len);
        table.fill(FrameInfo::reserved());
        Self { table, base, heads: [NIL; ORDERS], stats: FrameStats::default() }
    }

    /// Hand `[start, end)` to the allocator as free memory; an empty (or inverted) range is a no-op.
    ///
    /// Refused, changing nothing, with [`FrameError::Foreign`] (the first pfn outside the span) if the range
    /// leaves the span, or [`FrameError::DoubleFree`] (the first managed pfn) if part of it is already
    /// managed. The range is carved into the largest naturally aligned blocks, each merged with free
    /// neighbours, so the result does not depend on how memory is split into calls or their order.
    pub fn add_free_range(&mut self, start: Pfn, end: Pfn) -> Result<(), FrameError> {
        if start >= end {
            return Ok(());
        }
        let (lo, hi) = self.span();
        if start < lo {
            return Err(FrameError::Foreign(start));
        }
        if end > hi {
            return Err(FrameError::Foreign(start.max(hi)));
        }
        let Some(first) = self.index(start) else {
            return Err(FrameError::Foreign(start));
        };
        let frames = end.0 - start.0;
        let range = first..first + frames as usize;
        if let Some(k) = self.table[range.clone()].iter().position(|f| f.state != FrameState::Reserved) {
            return Err(FrameError::DoubleFree(Pfn(start.0 + k as u64)));
        }
        for f in &mut self.table[range] {
            f.state = FrameState::Free;
            f.head = false;
            f.order = 0;
        }
        self.stats.managed += frames;
        let mut pfn = start.0;
        while pfn < end.0 {
            let aligned = pfn.trailing_zeros(); // 64 for pfn 0: aligned for any order
            let fits = (end.0 - pfn).ilog2();
            let order = aligned.min(fits).min(u32::from(MAX_ORDER)) as u8;
            self.insert(first + (pfn - start.0) as usize, order);
            pfn += 1 << order;
        }
        Ok(())
    }

    /// Allocate a block of `2^order` frames for `owner`: take the smallest free block of order ≥ `order`
    /// and put the halves split off it back on the lower lists. Every frame of the block becomes
    /// `Allocated` with `owner` and `link = 0`; the first is the head and carries the order. `owner` should
    /// be a real owner, not [`Owner::NONE`], or a later double free of the block reads as
    /// [`FrameError::NotAllocated`] (see the module header).
    pub fn alloc(&mut self, order: u8, owner: Owner) -> Result<Pfn, FrameError> {
        if order > MAX_ORDER {
            return Err(FrameError::InvalidOrder(order));
        }
        let Some(i) = self.take(order) else {
            self.stats.alloc_failures += 1;
            return Err(FrameError::OutOfMemory { order });
        };
        let frames = 1usize << order;
        for (k, f) in self.table[i..i + frames].iter_mut().enumerate() {
            f.state = FrameState::Allocated;
            f.head = k == 0;
            f.order = if k == 0 { order } else { 0 };
            f.owner = owner;
            f.link = 0;
        }
        self.stats.used += frames as u64;
        self.stats.allocs += 1;
        Ok(self.pfn_of(i))
    }

    /// Free the order-`order` block headed by `pfn`, merging it with its buddy while the buddy is a free
    /// block of the same order inside the span. The checks, in order: [`FrameError::InvalidOrder`],
    /// [`FrameError::Foreign`] (outside the span), [`FrameError::Misaligned`], then by the frame's state:
    /// `Foreign` (reserved), [`FrameError::NotAllocated`] (free and never allocated since it was added:
    /// `last_owner` is [`Owner::NONE`]), [`FrameError::DoubleFree`] (free and allocated before, or parked),
    /// `NotAllocated` (an allocated tail), [`FrameError::WrongOrder`].
    pub fn free(&mut self, pfn: Pfn, order: u8) -> Result<(), FrameError> {
        let i = self.check_free(pfn, order)?;
        let frames = 1usize << order;
        for f in &mut self.table[i..i + frames] {
            f.state = FrameState::Free;
            f.head = false;
            f.order = 0;
            f.last_owner = f.owner;
            f.owner = Owner::NONE;
        }
        self.stats.used -= frames as u64;
        self.stats.frees += 1;
        self.insert(i, order);
        Ok(())
    }

    /// The record of `pfn`, or `None` outside the span.
    pub fn info(&self, pfn: Pfn) -> Option<&FrameInfo> {
        self.index(pfn).map(|i| &self.table[i])
    }

    /// Set the owner's word of an allocated frame (head or tail). [`FrameError::Foreign`] outside the span
    /// or for a reserved frame, [`FrameError::NotAllocated`] for a free or parked one.
    pub fn set_link(&mut self, pfn: Pfn, link: u64) -> Result<(), FrameError> {
        let i = self.index(pfn).ok_or(FrameError::Foreign(pfn))?;
        let f = &mut self.table[i];
        match f.state {
            FrameState::Allocated => {
                f.link = link;
                Ok(())
            }
            FrameState::Reserved => Err(FrameError::Foreign(pfn)),
            FrameState::Free | FrameState::PerCpu => Err(FrameError::NotAllocated(pfn)),
        }
    }

    pub fn stats(&self) -> FrameStats {
        self.stats
    }

    /// The watermarks for the memory managed so far ([`Watermarks::for_managed`]).
    pub fn watermarks(&self) -> Watermarks {
        Watermarks::for_managed(self.stats.managed)
    }

    /// Whether free memory (buddy lists plus parked frames) is below the `low` watermark.
    pub fn below_low(&self) -> bool {
        self.stats.free + self.stats.per_cpu < self.watermarks().low
    }

    /// The pfns `[start, end)` the table describes.
    pub fn span(&self) -> (Pfn, Pfn) {
        (self.base, Pfn(self.base.0 + self.table.len() as u64))
    }

    // ---- internals -------------------------------------------------------------------------------

    fn index(&self, pfn: Pfn) -> Option<usize> {
        let offset = usize::try_from(pfn.0.checked_sub(self.base.0)?).ok()?;
        (offset < self.table.len()).then_some(offset)
    }

    fn pfn_of(&self, i: usize) -> Pfn {
        Pfn(self.base.0 + i as u64)
    }

    /// Push the block headed by `table[i]` on the front of list `order`.
    fn push(&mut self, order: u8, i: usize) {
        let o = usize::from(order);
        let old = self.heads[o];
        let f = &mut self.table[i];
        f.prev = NIL;
        f.next = old;
        if old != NIL {
            self.table[old as usize].prev = i as u32;
        }
        self.heads[o] = i as u32;
        self.stats.free_per_order[o] += 1;
    }

    /// Take the block headed by `table[i]` off list `order`.
    fn unlink(&mut self, order: u8, i: usize) {
        let o = usize::from(order);
        let (prev, next) = (self.table[i].prev, self.table[i].next);
        if prev == NIL {
            self.heads[o] = next;
        } else {
            self.table[prev as usize].next = next;
        }
        if next != NIL {
            self.table[next as usize].prev = prev;
        }
        self.table[i].prev = NIL;
        self.table[i].next = NIL;
        self.stats.free_per_order[o] -= 1;
    }

    /// Put the block of `2^order` frames at `table[i]`, whose frames are already `Free`, on the lists,
    /// merging it with its buddy as long as possible (see the worked example).
    fn insert(&mut self, mut i: usize, mut order: u8) {
        self.stats.free += 1 << order;
        let mut pfn = self.pfn_of(i).0;
        while order < MAX_ORDER {
            let buddy = pfn ^ (1 << order);
            let Some(j) = self.index(Pfn(buddy)) else { break };
            let b = &self.table[j];
            if !(b.state == FrameState::Free && b.head && b.order == order) {
                break;
            }
            self.unlink(order, j);
            let upper = &mut self.table[i.max(j)];
            upper.head = false;
            upper.order = 0;
            i = i.min(j);
            pfn = pfn.min(buddy);
            order += 1;
        }
        let f = &mut self.table[i];
        f.head = true;
        f.order = order;
        self.push(order, i);
    }

    /// Take a free block of exactly `order` off the lists, splitting a larger one if needed; its frames
    /// stay `Free` for the caller to stamp. `None` if no block of order ≥ `order` is free.
    fn take(&mut self, order: u8) -> Option<usize> {
        let mut o = (order..=MAX_ORDER).find(|&o| self.heads[usize::from(o)] != NIL)?;
        let i = self.heads[usize::from(o)] as usize;
        self.unlink(o, i);
        while o > order {
            o -= 1;
            let upper = i + (1 << o);
            let f = &mut self.table[upper];
            f.head = true;
            f.order = o;
            self.push(o, upper);
        }
        self.table[i].order = order;
        self.stats.free -= 1 << order;
        Some(i)
    }

    /// The checks of [`free`](Self::free); the index of `pfn` if the block may be freed.
    fn check_free(&self, pfn: Pfn, order: u8) -> Result<usize, FrameError> {
        if order > MAX_ORDER {
            return Err(FrameError::InvalidOrder(order));
        }
        let i = self.index(pfn).ok_or(FrameError::Foreign(pfn))?;
        if pfn.0 & ((1 << order) - 1) != 0 {
            return Err(FrameError::Misaligned { pfn, order });
        }
        let f = &self.table[i];
        match f.state {
            FrameState::Reserved => Err(FrameError::Foreign(pfn)),
            FrameState::Free if f.last_owner == Owner::NONE => Err(FrameError::NotAllocated(pfn)),
            FrameState::Free | FrameState::PerCpu => Err(FrameError::DoubleFree(pfn)),
            FrameState::Allocated if !f.head => Err(FrameError::NotAllocated(pfn)),
            FrameState::Allocated if f.order != order => {
                Err(FrameError::WrongOrder { pfn, allocated: f.order, freed: order })
            }
            FrameState::Allocated => Ok(i),
        }
    }

    fn is_per_cpu(&self, pfn: Pfn) -> bool {
        self.info(pfn).is_some_and(|f| f.state == FrameState::PerCpu)
    }

    /// Refill: move one free frame from the buddy lists to a per-CPU list.
    fn pcp_take(&mut self) -> Option<Pfn> {
        let i = self.take(0)?;
        self.table[i].state = FrameState::PerCpu;
        self.stats.per_cpu += 1;
        Some(self.pfn_of(i))
    }

    /// Hand a parked frame to `owner`; refused (nothing changes) if `pfn` is not parked here.
    fn pcp_hand_out(&mut self, pfn: Pfn, owner: Owner) -> Result<(), FrameError> {
        let i = self.index(pfn).ok_or(FrameError::Foreign(pfn))?;
        let f = &mut self.table[i];
        if f.state != FrameState::PerCpu {
            return Err(FrameError::Foreign(pfn));
        }
        f.state = FrameState::Allocated;
        f.owner = owner;
        f.link = 0;
        self.stats.per_cpu -= 1;
        self.stats.used += 1;
        self.stats.allocs += 1;
        Ok(())
    }

    /// Park the allocated order-0 frame `table[i]`, already checked by [`check_free`](Self::check_free).
    fn pcp_park(&mut self, i: usize) {
        let f = &mut self.table[i];
        f.state = FrameState::PerCpu;
        f.last_owner = f.owner;
        f.owner = Owner::NONE;
        self.stats.used -= 1;
        self.stats.per_cpu += 1;
        self.stats.frees += 1;
    }

    /// Drain: move a parked frame back to the buddy lists; `false` (nothing changes) if it is not parked.
    fn pcp_return(&mut self, pfn: Pfn) -> bool {
        let Some(i) = self.index(pfn) else { return false };
        if self.table[i].state != FrameState::PerCpu {
            return false;
        }
        self.table[i].state = FrameState::Free;
        self.table[i].head = false;
        self.stats.per_cpu -= 1;
        self.insert(i, 0);
        true
    }
}

/// Frames a [`PcpList`] moves from or to the buddy lists at once (Linux's `pcp->batch`; see the header).
pub const PCP_BATCH: usize = 31;

/// Most frames a [`PcpList`] keeps parked (Linux's `pcp->high`, 6 × batch; see the header).
pub const PCP_HIGH: usize = 186;

/// A per-CPU cache of order-0 frames (Linux's `per_cpu_pages`): most order-0 allocations and frees touch
/// only this list; it refills from and drains to the buddy allocator in batches of [`PCP_BATCH`].
///
/// `frames[..count]` runs from oldest to newest: allocation pops the newest (cache-warm), a spill returns
/// the oldest. Must always be used with the allocator that filled it; handed another one, `alloc` and
/// `free` refuse with [`FrameError::Foreign`] (naming the parked frame that allocator does not know) and
/// `drain` leaves such frames in place, rather than corrupt either table.
pub struct PcpList {
    frames: [Pfn; PCP_HIGH],
    count: usize,
}

impl fmt::Debug for PcpList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcpList").field("count", &self.count).field("frames", &&self.frames[..self.count]).finish()
    }
}

impl Default for PcpList {
    fn default() -> Self {
        Self::new()
    }
}

impl PcpList {
    pub const fn new() -> Self {
        Self { frames: [Pfn(0); PCP_HIGH], count: 0 }
    }

    /// Pop a parked frame for `owner` (marked `Allocated`, order 0, `link = 0` in `buddy`'s table); as for
    /// [`FrameAllocator::alloc`], `owner` should not be [`Owner::NONE`]. An empty list first refills
    /// [`PCP_BATCH`] frames from `buddy`, or as many as are free; [`FrameError::OutOfMemory`] (counted in
    /// `alloc_failures`) only if none is.
    pub fn alloc(&mut self, buddy: &mut FrameAllocator<'_>, owner: Owner) -> Result<Pfn, FrameError> {
        if self.count == 0 {
            while self.count < PCP_BATCH {
                let Some(pfn) = buddy.pcp_take() else { break };
                self.frames[self.count] = pfn;
                self.count += 1;
            }
            if self.count == 0 {
                buddy.stats.alloc_failures += 1;
                return Err(FrameError::OutOfMemory { order: 0 });
            }
            // The buddy lists hand out ascending pfns; pop them in that order too.
            self.frames[..self.count].reverse();
        }
        let pfn = self.frames[self.count - 1];
        buddy.pcp_hand_out(pfn, owner)?;
        self.count -= 1;
        Ok(pfn)
    }

    /// Park the allocated order-0 frame `pfn` here (state `PerCpu`, owner moved to `last_owner`), after
    /// the checks of [`FrameAllocator::free`] with order 0 (so a frame heading a bigger block is
    /// [`FrameError::WrongOrder`], a free frame never allocated since it was added is
    /// [`FrameError::NotAllocated`], and a free or parked frame that was allocated before is
    /// [`FrameError::DoubleFree`]). A full list first returns its [`PCP_BATCH`] oldest frames to the
    /// buddy lists.
    pub fn free(&mut self, buddy: &mut FrameAllocator<'_>, pfn: Pfn) -> Result<(), FrameError> {
        let i = buddy.check_free(pfn, 0)?;
        if self.count == PCP_HIGH {
            // Only reachable by breaking the one-allocator contract; refuse before changing anything.
            if let Some(&stray) = self.frames[..PCP_BATCH].iter().find(|&&p| !buddy.is_per_cpu(p)) {
                return Err(FrameError::Foreign(stray));
            }
            for &old in &self.frames[..PCP_BATCH] {
                buddy.pcp_return(old);
            }
            self.frames.copy_within(PCP_BATCH.., 0);
            self.count -= PCP_BATCH;
        }
        buddy.pcp_park(i);
        self.frames[self.count] = pfn;
        self.count += 1;
        Ok(())
    }

    /// Return every parked frame to `buddy`'s lists (where they merge). Frames `buddy` does not know as
    /// parked — only possible if the list was used with another allocator — stay in the list.
    pub fn drain(&mut self, buddy: &mut FrameAllocator<'_>) {
        let mut kept = 0;
        for k in 0..self.count {
            let pfn = self.frames[k];
            if !buddy.pcp_return(pfn) {
                self.frames[kept] = pfn;
                kept += 1;
            }
        }
        self.count = kept;
    }

    /// Frames parked here.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

#[cfg(test)]
mod model;

#[cfg(test)]
mod tests;

//! zbud: a pool that keeps at most two objects ("buddies") in each page — Linux's `mm/zbud.c` in miniature,
//! behind the [`zpool::ZPool`] interface.
//!
//! # Why
//!
//! tmem stores compressed pages: objects of 1 to ~4000 bytes. A dense allocator (zsmalloc) packs them into
//! size classes spread over several pages, which is space-efficient but makes freeing one *page* hard: its
//! objects are mixed with others, and an object may straddle two pages. zbud gives up density for
//! simplicity: a page holds one object at its start and one at its end, nothing else. So
//!
//! - evicting one page writes back at most two objects and always frees a whole page — reclaim is cheap
//!   and its cost is known in advance;
//! - there are never more pages than objects: however badly objects compress, zbud never uses more memory
//!   than the uncompressed pages would (the 64-byte header lives inside the page, which is why the largest
//!   object is 4032 bytes, not 4096: a page that compresses worse is not worth storing compressed);
//! - and never fewer than half as many: even 10-byte objects fill a page two at a time, so the best
//!   ratio is 2 objects per page. zsmalloc is the choice when density matters.
//!
//! Objects never span pages, so every mapping is a direct view of one frame ([`MapMode`] changes nothing).
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | zbud page | a frame the pool got from its [`FrameSource`] (owner [`Owner::POOL`]) |
//! | chunk | 64 bytes ([`CHUNK_SIZE`]); a page is 64 chunks, chunk 0 is the header, 63 ([`NCHUNKS`]) hold objects |
//! | buddy | one of the two object places in a page: the *first* starts right after the header and grows up, the *last* ends at the page end and grows down ([`Buddy`]) |
//! | free chunks | 63 − first's chunks − last's chunks: the gap between the buddies |
//! | unbuddied page | a page with exactly one object; it sits on list `unbuddied[free chunks]` |
//! | buddied page | a page with two objects; it sits on the `buddied` list and takes no more objects |
//! | LRU | every page, most recently allocated into at the front; eviction takes the back |
//! | slot | a page's index in the pool's side table; it outlives the frame and is reused for a later page |
//! | generation | per slot and buddy, bumped when the object there is released: part of the handle |
//!
//! # Page layout
//!
//! `f` and `l` are the first and last buddies' sizes in chunks (`⌈size / 64⌉`, 0 when free):
//!
//! | bytes | chunks | holds |
//! |---|---|---|
//! | `0..16` | 0 | the header (below) |
//! | `16..64` | 0 | zero |
//! | `64..64 + size` | `1..=f` | the first buddy; the rest of its last chunk is slack |
//! | between the buddies | `f+1..=63−l` | `63 − f − l` free chunks |
//! | `4096 − 64·l..4096 − 64·l + size` | `64−l..=63` | the last buddy, starting on its first chunk like Linux's; slack after it |
//!
//! The header, little-endian, rewritten (with the zeroes after it) whenever the page's objects change:
//!
//! | bytes | field | meaning |
//! |---|---|---|
//! | `0..4` | magic | `b"ZBUD"` ([`HEADER_MAGIC`]) |
//! | `4..8` | slot | `u32`: the page's slot, so a frame names its own side-table entry |
//! | `8..10` | first size | `u16`: the first buddy's size in bytes, 0 if free |
//! | `10..12` | last size | `u16`: the last buddy's size in bytes, 0 if free |
//! | `12` | first chunks | `u8`: `⌈first size / 64⌉` (Linux's `first_chunks`) |
//! | `13` | last chunks | `u8`: `⌈last size / 64⌉` (Linux's `last_chunks`) |
//! | `14..16` | — | zero |
//!
//! # What lives where
//!
//! Linux threads its lists through the header, since every page is always mapped there. Here a page is
//! reachable only while mapped (`pagemem`), so walking a list through headers would cost a mapping per
//! step. The bookkeeping lives in a side table on the heap instead, one 56-byte entry per slot; the
//! header is the page's own record of its layout — what a memory dump shows and what [`Zbud::verify`]
//! checks against the table. Decisions are made from the table alone; object mappings exclude chunk 0, so
//! no object write can reach a header.
//!
//! | datum | page header | side table |
//! |---|---|---|
//! | both sizes (and so the chunk counts and offsets) | yes | yes |
//! | slot number | yes | (the index) |
//! | magic | yes | — |
//! | the frame's pfn | — | yes |
//! | generations | — | yes: they must outlive the frame, so that a handle into a freed page stays stale |
//! | list links: `unbuddied`/`buddied`, LRU | — | yes (32-bit slot indices, doubly linked: [`zpool::slotlist`]) |
//!
//! # Handles
//!
//! | bits | field |
//! |---|---|
//! | `0..24` | slot (so at most 2^24 pages, 64 GiB of pool) |
//! | `24` | buddy: 0 first, 1 last |
//! | `25..48` | generation, 1..2^23 (0 is never issued) |
//! | `48..64` | pool tag: a number each [`Zbud::new`] draws from a global counter |
//!
//! The packing is `zpool::handle`'s, with zbud's widths in [`HANDLE_LAYOUT`].
//!
//! A handle is live if its tag is this pool's, its slot holds a frame, the buddy holds an object, and the
//! generations agree; anything else is [`PoolError::StaleHandle`]. A slot's buddy reissues a handle only
//! after 2^23 − 1 releases, and two pools share a tag only after 65,536 pools were created.
//!
//! # Worked example
//!
//! ```text
//!   a = malloc(1000)   16 chunks. No unbuddied page: new frame P (slot 0). First buddy: bytes 64..1064.
//!                      Free chunks 63 - 16 = 47: P on unbuddied[47].           LRU: P
//!   b = malloc(2000)   32 chunks. First fit from unbuddied[32] up: P, in unbuddied[47]. Its first buddy is
//!                      taken, so b is the last: chunks 32..=63, bytes 2048..4048 (48 bytes slack).
//!                      P is buddied; its 15 free chunks (bytes 1088..2048) are out of reach.
//!   c = malloc(500)    8 chunks. No unbuddied page: new frame Q (slot 1), first buddy 64..564,
//!                      Q on unbuddied[55].                                      LRU: Q, P
//!   free(a)            P has one object again: 63 - 32 = 31 free chunks, on unbuddied[31]; P's header
//!                      now says sizes (0, 2000), chunks (0, 32). a is stale.    LRU: Q, P (unchanged)
//!   evict(wb)          the LRU tail is P: wb(b, its 2000 bytes) returns true, so b is released and P goes
//!                      back to the frame source. Ok(1); pages 2 -> 1.           LRU: Q
//! ```
//!
//! The test `worked_example_from_the_header` replays this.
//!
//! # Allocation, free, LRU
//!
//! `malloc(size)` takes the first page of the first non-empty list `unbuddied[n]` with `n` from
//! `⌈size / 64⌉` up — the smallest gap that fits — and puts the object in whichever buddy is free; if no
//! list has one it takes a new frame and uses its first buddy. The page moves to the front of its new list
//! and of the LRU. `free` moves a page that still holds an object to the front of its new unbuddied list
//! and leaves its LRU place alone; an emptied page goes back to the frame source at once. The LRU is by
//! allocation, as in older Linux zbud, which kept its own LRU for `zbud_reclaim_page` before zswap took
//! the LRU over: a map does not move a page, because tmem reads an object right before freeing it.
//!
//! # Eviction
//!
//! [`ZPool::evict`] takes the LRU's last page, copies its objects out (so `writeback` runs with nothing
//! mapped and may map frames of its own), and calls `writeback` for the first buddy, then the last. Only
//! if every call returns `true` are the objects released (their handles go stale) and the frame freed:
//! `Ok(1)`. At the first `false` it stops, and the pool is exactly as before — the page keeps its LRU
//! place, so the next attempt tries it again — and the answer is [`PoolError::EvictRefused`]. Linux's
//! reclaim instead put a page whose eviction failed back at the LRU's head and tried up to `retries`
//! pages; we leave the retry policy to the caller.
//!
//! # No compaction
//!
//! [`ZPool::compact`] returns `Ok(0)`. Two unbuddied pages whose objects fit together could be merged, but
//! a handle names its object's place (slot, buddy) directly, so moving an object would change its handle.
//! zsmalloc can compact because its handles point into a table of object locations — one more word per
//! object and one more lookup per map. zbud trades that away for its simple reclaim; and its density can
//! not fall below one object per page anyway.
//!
//! # Contracts
//!
//! - Every bad input is a typed [`PoolError`], never a panic, and a refused operation changes nothing —
//!   except that a `malloc` refused for lack of memory counts in [`PoolStats::failures`] (zpool's rule).
//!   The fallible steps (getting a frame, writing the header, freeing a frame) come before any change of
//!   the pool's state. If the header write of a brand-new page fails, the frame is given back; should
//!   that fail too the frame is lost to the pool (the original error is still the answer).
//! - The largest object is [`MAX_SIZE`] = 4032 bytes (63 chunks). Linux stops one chunk earlier, at 3968,
//!   and lets its `unbuddied[0]` double as the buddied list; here a 63-chunk object's page (one object, no
//!   free chunk) sits on `unbuddied[0]`, which `malloc` never searches since every object needs a chunk.
//! - `frees` in [`PoolStats`] counts objects released by `free` and by `evict`; `pages_compacted` stays 0.
//! - The [`PageMemory`] must hand out 4096-byte pages; a shorter one is reported as
//!   `Memory(MemError::Foreign(pfn))` rather than indexed out of bounds.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use frame::{Owner, Pfn};
use pagemem::{FrameSource, MemError, PAGE, PageMemory};
use zpool::handle::{self, FIRST_GENERATION, HandleFields, HandleLayout};
use zpool::slotlist::{self, Broken, EMPTY, Link, List, NIL, UNLINKED, push_front, unlink};
use zpool::{Handle, MapMode, PoolError, PoolStats, ZPool};

#[cfg(test)]
mod tests;

/// Bytes in a chunk, the unit of placement.
pub const CHUNK_SIZE: usize = 64;
/// Chunks in a page.
pub const PAGE_CHUNKS: usize = PAGE / CHUNK_SIZE;
/// Chunks the header takes at the start of every page.
pub const HEADER_CHUNKS: usize = 1;
/// Chunks left for objects: 63.
pub const NCHUNKS: usize = PAGE_CHUNKS - HEADER_CHUNKS;
/// Largest object: 4032 bytes.
pub const MAX_SIZE: usize = NCHUNKS * CHUNK_SIZE;
/// The first bytes of every zbud page.
pub const HEADER_MAGIC: [u8; 4] = *b"ZBUD";
/// Bytes of the header that carry fields; the rest of chunk 0 is zero.
pub const HEADER_LEN: usize = 16;

/// Chunks an object of `size` bytes takes.
pub const fn size_to_chunks(size: usize) -> usize {
    size.div_ceil(CHUNK_SIZE)
}

/// zbud's handle fields (see "Handles" in the module header): slot 24 bits, buddy 1, generation 23.
pub const HANDLE_LAYOUT: HandleLayout = HandleLayout::new(24, 1, 23);
const MAX_SLOTS: usize = HANDLE_LAYOUT.max_slots();

/// Which of a page's two places an object occupies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buddy {
    /// Right after the header, growing up.
    First,
    /// At the end of the page, growing down.
    Last,
}

/// Where an object lives ([`Zbud::locate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub pfn: Pfn,
    pub slot: u32,
    pub buddy: Buddy,
    /// First byte of the object in its page.
    pub offset: usize,
    /// The object's size in bytes.
    pub size: usize,
    /// Chunks the object occupies.
    pub chunks: usize,
}

/// zbud's own counters, beside [`PoolStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ZbudStats {
    /// Pages with two objects.
    pub buddied_pages: u64,
    /// Pages with one object.
    pub unbuddied_pages: u64,
    /// Chunks the live objects occupy (`chunks_used × 64 − object_bytes` is the rounding slack).
    pub chunks_used: u64,
    /// Objects released by eviction, ever.
    pub objects_evicted: u64,
}

/// What [`Zbud::verify`] found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// A page could not be mapped to read its header.
    Memory(MemError),
    /// A page's header does not match the side table.
    Header { slot: u32, pfn: Pfn },
    /// A slot's entry, the free-slot list, or an `unbuddied`/`buddied` list is inconsistent; `slot` is
    /// `u32::MAX` when a list as a whole is (its length, its tail, or the sum of the lists' lengths).
    Lists { slot: u32 },
    /// The LRU list does not hold every page exactly once.
    Lru,
    /// The counters do not match the pages.
    Counters,
}

/// Which list a page's `class` link is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// One object; this many free chunks.
    Unbuddied(u8),
    /// Two objects.
    Buddied,
}

#[derive(Debug, Clone, Copy)]
struct Bud {
    /// Bytes; 0 when the place is free.
    size: u16,
    /// The generation of the object there now, or of the next one.
    generation: u32,
}

/// One side-table entry (56 bytes).
#[derive(Debug, Clone, Copy)]
struct Page {
    /// The frame, `None` while the slot is free.
    pfn: Option<Pfn>,
    buds: [Bud; 2],
    class: Class,
    /// Link on `unbuddied[n]` or `buddied`.
    list: Link,
    /// Link on the LRU.
    lru: Link,
}

impl Page {
    const fn fresh() -> Page {
        let bud = Bud { size: 0, generation: FIRST_GENERATION };
        Page { pfn: None, buds: [bud, bud], class: Class::Buddied, list: UNLINKED, lru: UNLINKED }
    }
}

/// Which of a page's two links a list runs through.
#[derive(Debug, Clone, Copy)]
enum Chain {
    /// `list`: `unbuddied[n]` or `buddied`.
    Class,
    Lru,
}

impl slotlist::Chain<Page> for Chain {
    fn link<'a>(&self, p: &'a Page) -> &'a Link {
        match self {
            Chain::Class => &p.list,
            Chain::Lru => &p.lru,
        }
    }

    fn link_mut<'a>(&self, p: &'a mut Page) -> &'a mut Link {
        match self {
            Chain::Class => &mut p.list,
            Chain::Lru => &mut p.lru,
        }
    }
}

fn chunks(bud: Bud) -> usize {
    size_to_chunks(bud.size as usize)
}

/// The list a page with these buddies belongs on; `None` for an empty page.
fn class_of(buds: &[Bud; 2]) -> Option<Class> {
    match (buds[0].size > 0, buds[1].size > 0) {
        (false, false) => None,
        (true, true) => Some(Class::Buddied),
        _ => Some(Class::Unbuddied((NCHUNKS - chunks(buds[0]) - chunks(buds[1])) as u8)),
    }
}

/// The object's bytes within its page.
fn range(buddy: usize, bud: Bud) -> Range<usize> {
    let start = if buddy == 0 { HEADER_CHUNKS * CHUNK_SIZE } else { PAGE - chunks(bud) * CHUNK_SIZE };
    start..start + bud.size as usize
}

/// Chunk 0 of a page holding `buds` in `slot` (see the header table).
fn header(slot: u32, buds: &[Bud; 2]) -> [u8; CHUNK_SIZE] {
    let mut h = [0; CHUNK_SIZE];
    h[0..4].copy_from_slice(&HEADER_MAGIC);
    h[4..8].copy_from_slice(&slot.to_le_bytes());
    h[8..10].copy_from_slice(&buds[0].size.to_le_bytes());
    h[10..12].copy_from_slice(&buds[1].size.to_le_bytes());
    h[12] = chunks(buds[0]) as u8;
    h[13] = chunks(buds[1]) as u8;
    h
}

/// Run `f` on bytes `r` of `pfn`; a page shorter than `r` is `Foreign(pfn)`.
fn with_bytes<M: PageMemory, R>(
    mem: &mut M,
    pfn: Pfn,
    r: Range<usize>,
    f: impl FnOnce(&mut [u8]) -> R,
) -> Result<R, MemError> {
    mem.with_page(pfn, |p| p.get_mut(r).map(f))?.ok_or(MemError::Foreign(pfn))
}

/// A zbud pool over the frames and page memory of `M` (see the module header).
pub struct Zbud<M> {
    mem: M,
    /// The side table, indexed by slot.
    pages: Vec<Page>,
    /// Slots without a frame, reused last-freed first.
    free_slots: Vec<u32>,
    /// Pages with one object, by free chunks (0..=62).
    unbuddied: [List; NCHUNKS],
    buddied: List,
    lru: List,
    tag: u16,
    stats: PoolStats,
    chunks_used: u64,
    objects_evicted: u64,
    /// A page's worth of room to copy evicted objects into.
    scratch: Vec<u8>,
}

impl<M> fmt::Debug for Zbud<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Zbud")
            .field("tag", &self.tag)
            .field("slots", &self.pages.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<M: PageMemory + FrameSource> Zbud<M> {
    /// An empty pool taking its frames from `mem`.
    pub fn new(mem: M) -> Self {
        Zbud {
            mem,
            pages: Vec::new(),
            free_slots: Vec::new(),
            unbuddied: [EMPTY; NCHUNKS],
            buddied: EMPTY,
            lru: EMPTY,
            tag: handle::new_pool_tag(),
            stats: PoolStats::default(),
            chunks_used: 0,
            objects_evicted: 0,
            scratch: Vec::new(),
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

    /// zbud's own counters.
    pub fn zbud_stats(&self) -> ZbudStats {
        ZbudStats {
            buddied_pages: self.buddied.len,
            unbuddied_pages: self.unbuddied.iter().map(|l| l.len).sum(),
            chunks_used: self.chunks_used,
            objects_evicted: self.objects_evicted,
        }
    }

    /// Where a live object is.
    pub fn locate(&self, handle: Handle) -> Result<Location, PoolError> {
        let (slot, buddy, pfn) = self.lookup(handle)?;
        let bud = self.pages[slot as usize].buds[buddy];
        let r = range(buddy, bud);
        let buddy = if buddy == 0 { Buddy::First } else { Buddy::Last };
        Ok(Location { pfn, slot, buddy, offset: r.start, size: r.len(), chunks: chunks(bud) })
    }

    /// The pages in LRU order, most recently allocated into first.
    pub fn lru(&self) -> Vec<Pfn> {
        slotlist::iter(&self.pages, &self.lru, Chain::Lru).filter_map(|(_, p)| p.pfn).collect()
    }

    /// Check every page's header against the side table, every list, and the counters.
    pub fn verify(&mut self) -> Result<(), VerifyError> {
        let mut free = alloc::vec![false; self.pages.len()];
        for &slot in &self.free_slots {
            match free.get_mut(slot as usize) {
                Some(f) if !*f => *f = true,
                _ => return Err(VerifyError::Lists { slot }),
            }
        }
        let (mut live, mut objects, mut bytes, mut used) = (0u64, 0u64, 0u64, 0u64);
        for slot in 0..self.pages.len() as u32 {
            let p = self.pages[slot as usize];
            let Some(pfn) = p.pfn else {
                let tidy = p.buds.iter().all(|b| b.size == 0) && p.list == UNLINKED && p.lru == UNLINKED;
                if !tidy || !free[slot as usize] {
                    return Err(VerifyError::Lists { slot });
                }
                continue;
            };
            let sane = class_of(&p.buds) == Some(p.class) && p.buds.iter().all(|b| b.size as usize <= MAX_SIZE);
            if !sane || free[slot as usize] {
                return Err(VerifyError::Lists { slot });
            }
            let want = header(slot, &p.buds);
            let same = with_bytes(&mut self.mem, pfn, 0..CHUNK_SIZE, |h| *h == want).map_err(VerifyError::Memory)?;
            if !same {
                return Err(VerifyError::Header { slot, pfn });
            }
            live += 1;
            for b in p.buds.iter().filter(|b| b.size > 0) {
                objects += 1;
                bytes += u64::from(b.size);
                used += chunks(*b) as u64;
            }
        }
        let mut on_lists = 0;
        for (n, list) in self.unbuddied.iter().enumerate() {
            on_lists += self.walk(list, Chain::Class, Some(Class::Unbuddied(n as u8)))?;
        }
        on_lists += self.walk(&self.buddied, Chain::Class, Some(Class::Buddied))?;
        if on_lists != live {
            return Err(VerifyError::Lists { slot: NIL });
        }
        if self.walk(&self.lru, Chain::Lru, None).ok() != Some(live) {
            return Err(VerifyError::Lru);
        }
        let s = &self.stats;
        let counters = (s.pages, s.objects, s.object_bytes, self.chunks_used);
        if counters != (live, objects, bytes, used) || live + self.free_slots.len() as u64 != self.pages.len() as u64 {
            return Err(VerifyError::Counters);
        }
        Ok(())
    }

    /// Count a list's members, checking links, liveness and (for class lists) each member's class.
    fn walk(&self, list: &List, c: Chain, class: Option<Class>) -> Result<u64, VerifyError> {
        let member = |p: &Page| p.pfn.is_some() && !class.is_some_and(|k| k != p.class);
        slotlist::check(&self.pages, list, c, member).map_err(|e| match e {
            Broken::At(slot) => VerifyError::Lists { slot },
            Broken::Ends => VerifyError::Lists { slot: NIL },
        })
    }

    /// The slot, buddy index and frame of a live handle.
    fn lookup(&self, handle: Handle) -> Result<(u32, usize, Pfn), PoolError> {
        let HandleFields { tag, generation, sub, slot } = HANDLE_LAYOUT.decode(handle);
        let buddy = sub as usize;
        let stale = Err(PoolError::StaleHandle(handle));
        if tag != self.tag {
            return stale;
        }
        match self.pages.get(slot as usize) {
            Some(&Page { pfn: Some(pfn), buds, .. })
                if buds[buddy].size > 0 && buds[buddy].generation == generation =>
            {
                Ok((slot, buddy, pfn))
            }
            _ => stale,
        }
    }

    fn encode(&self, slot: u32, buddy: usize, generation: u32) -> Handle {
        HANDLE_LAYOUT.encode(HandleFields { tag: self.tag, generation, sub: buddy as u32, slot })
    }

    fn write_header(&mut self, pfn: Pfn, slot: u32, buds: &[Bud; 2]) -> Result<(), MemError> {
        let h = header(slot, buds);
        with_bytes(&mut self.mem, pfn, 0..CHUNK_SIZE, |p| p.copy_from_slice(&h))
    }

    fn class_list(&mut self, class: Class) -> (&mut [Page], &mut List) {
        let list = match class {
            Class::Unbuddied(n) => &mut self.unbuddied[n as usize],
            Class::Buddied => &mut self.buddied,
        };
        (&mut self.pages, list)
    }

    /// Move `slot` from its class list to the one its buddies now call for (none when empty).
    fn reclassify(&mut self, slot: u32, buds: [Bud; 2]) {
        let (pages, list) = self.class_list(self.pages[slot as usize].class);
        unlink(pages, list, slot, Chain::Class);
        self.pages[slot as usize].buds = buds;
        if let Some(class) = class_of(&buds) {
            self.pages[slot as usize].class = class;
            let (pages, list) = self.class_list(class);
            push_front(pages, list, slot, Chain::Class);
        }
    }

    fn touch(&mut self, slot: u32) {
        unlink(&mut self.pages, &mut self.lru, slot, Chain::Lru);
        push_front(&mut self.pages, &mut self.lru, slot, Chain::Lru);
    }

    /// Forget an emptied page's frame and free its slot (the frame was given back already).
    fn retire(&mut self, slot: u32) {
        unlink(&mut self.pages, &mut self.lru, slot, Chain::Lru);
        self.pages[slot as usize].pfn = None;
        self.free_slots.push(slot);
        self.stats.pages -= 1;
    }

    /// Account for the release of the object in `buds[buddy]`, and bump its generation.
    fn release(&mut self, buds: &mut [Bud; 2], buddy: usize) {
        let bud = &mut buds[buddy];
        self.stats.objects -= 1;
        self.stats.object_bytes -= u64::from(bud.size);
        self.stats.frees += 1;
        self.chunks_used -= chunks(*bud) as u64;
        bud.size = 0;
        bud.generation = HANDLE_LAYOUT.next_generation(bud.generation);
    }

    fn fail(&mut self, e: impl Into<PoolError>) -> PoolError {
        self.stats.failures += 1;
        e.into()
    }

    /// Put a `size`-byte object (`need` chunks) into a new page.
    fn malloc_new_page(&mut self, size: u16, need: usize) -> Result<(u32, usize), PoolError> {
        let slot = match self.free_slots.last() {
            Some(&slot) => slot,
            None if self.pages.len() < MAX_SLOTS => self.pages.len() as u32,
            None => return Err(self.fail(PoolError::OutOfMemory)),
        };
        let pfn = self.mem.alloc_frame(Owner::POOL).map_err(|e| self.fail(e))?;
        let mut buds = self.pages.get(slot as usize).map_or(Page::fresh().buds, |p| p.buds);
        buds[0].size = size;
        if let Err(e) = self.write_header(pfn, slot, &buds) {
            // Best effort: if the frame cannot go back either, it stays with nobody (module header).
            let _ = self.mem.free_frame(pfn);
            return Err(self.fail(e));
        }
        if self.free_slots.pop().is_none() {
            self.pages.push(Page::fresh());
        }
        let class = Class::Unbuddied((NCHUNKS - need) as u8);
        let p = &mut self.pages[slot as usize];
        (p.pfn, p.buds, p.class) = (Some(pfn), buds, class);
        let (pages, list) = self.class_list(class);
        push_front(pages, list, slot, Chain::Class);
        push_front(&mut self.pages, &mut self.lru, slot, Chain::Lru);
        self.stats.pages += 1;
        Ok((slot, 0))
    }
}

impl<M: PageMemory + FrameSource> ZPool for Zbud<M> {
    fn name(&self) -> &'static str {
        "zbud"
    }

    fn max_size(&self) -> usize {
        MAX_SIZE
    }

    fn malloc(&mut self, size: usize) -> Result<Handle, PoolError> {
        PoolError::check_size(size, MAX_SIZE)?;
        let need = size_to_chunks(size);
        let fit = self.unbuddied[need..].iter().find(|l| l.head != NIL).map(|l| l.head);
        let (slot, buddy) = match fit {
            Some(slot) => {
                let p = self.pages[slot as usize];
                let pfn = p.pfn.ok_or(PoolError::OutOfMemory)?;
                let buddy = if p.buds[0].size == 0 { 0 } else { 1 };
                let mut buds = p.buds;
                buds[buddy].size = size as u16;
                self.write_header(pfn, slot, &buds).map_err(|e| self.fail(e))?;
                self.reclassify(slot, buds);
                self.touch(slot);
                (slot, buddy)
            }
            None => self.malloc_new_page(size as u16, need)?,
        };
        self.stats.objects += 1;
        self.stats.object_bytes += size as u64;
        self.stats.allocs += 1;
        self.chunks_used += need as u64;
        Ok(self.encode(slot, buddy, self.pages[slot as usize].buds[buddy].generation))
    }

    fn free(&mut self, handle: Handle) -> Result<(), PoolError> {
        let (slot, buddy, pfn) = self.lookup(handle)?;
        let mut buds = self.pages[slot as usize].buds;
        let mut left = buds;
        left[buddy].size = 0;
        // The fallible step first: give the frame back, or record the remaining object in the header.
        let empty = class_of(&left).is_none();
        if empty {
            self.mem.free_frame(pfn)?;
        } else {
            self.write_header(pfn, slot, &left)?;
        }
        self.release(&mut buds, buddy);
        self.reclassify(slot, buds);
        if empty {
            self.retire(slot);
        }
        Ok(())
    }

    /// All modes map the page directly: a write in `ReadOnly` mode lands (the caller must not make one).
    fn map<R>(&mut self, handle: Handle, _mode: MapMode, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, PoolError> {
        let (slot, buddy, pfn) = self.lookup(handle)?;
        let r = range(buddy, self.pages[slot as usize].buds[buddy]);
        Ok(with_bytes(&mut self.mem, pfn, r, f)?)
    }

    fn size_of(&self, handle: Handle) -> Result<usize, PoolError> {
        let (slot, buddy, _) = self.lookup(handle)?;
        Ok(self.pages[slot as usize].buds[buddy].size as usize)
    }

    fn total_pages(&self) -> u64 {
        self.stats.pages
    }

    fn metadata_growth(&self) -> usize {
        // A new zbud page when no half is free: one more entry in the page table (free slots are reused
        // first, and only `free` pushes onto their list).
        if self.free_slots.is_empty() { zpool::vec_growth(&self.pages, 1) } else { 0 }
    }

    fn stats(&self) -> PoolStats {
        self.stats
    }

    /// zbud does not compact (module header, "No compaction").
    fn compact(&mut self) -> Result<u64, PoolError> {
        Ok(0)
    }

    fn evict(&mut self, writeback: &mut dyn FnMut(Handle, &[u8]) -> bool) -> Result<u64, PoolError> {
        let slot = self.lru.tail;
        let Some(&p) = self.pages.get(slot as usize) else { return Err(PoolError::Empty) };
        let pfn = p.pfn.ok_or(PoolError::Empty)?;
        let live: &[usize] = match (p.buds[0].size > 0, p.buds[1].size > 0) {
            (true, true) => &[0, 1],
            (true, false) => &[0],
            (false, true) => &[1],
            (false, false) => &[],
        };
        // Copy the objects out (to the same offsets of a scratch page), so writeback runs with nothing mapped.
        let mut scratch = core::mem::take(&mut self.scratch);
        scratch.resize(PAGE, 0);
        let copied = self.mem.with_page(pfn, |page| {
            live.iter().all(|&b| {
                let r = range(b, p.buds[b]);
                page.get(r.clone()).map(|src| scratch[r].copy_from_slice(src)).is_some()
            })
        });
        let accepted = match copied {
            Ok(true) => Ok(live.iter().all(|&b| {
                let h = self.encode(slot, b, p.buds[b].generation);
                writeback(h, &scratch[range(b, p.buds[b])])
            })),
            Ok(false) => Err(MemError::Foreign(pfn)),
            Err(e) => Err(e),
        };
        self.scratch = scratch;
        if !accepted? {
            return Err(PoolError::EvictRefused);
        }
        self.mem.free_frame(pfn)?;
        let mut buds = p.buds;
        for &b in live {
            self.release(&mut buds, b);
        }
        self.reclassify(slot, buds);
        self.retire(slot);
        self.stats.pages_evicted += 1;
        self.objects_evicted += live.len() as u64;
        Ok(1)
    }
}

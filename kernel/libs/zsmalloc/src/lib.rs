//! zsmalloc: a compressed-object allocator that packs objects of every size densely into size classes over
//! chains of order-0 frames, lets objects straddle frame boundaries, and compacts — Linux's `mm/zsmalloc.c`,
//! behind the [`zpool::ZPool`] interface.
//!
//! # Why
//!
//! compcache (zram's ancestor) first kept its compressed pages with xvmalloc, a two-level segregated-fit
//! allocator over single pages. An object could not cross a page, so an object of 2–4 KiB — the usual size
//! of a page that compresses to 50–100 % — left the rest of its page to objects small enough to fill the
//! gap, and on pages compressing to 75 % a fifth of the memory was lost (xvmalloc 0.95 pages per stored
//! page against an ideal 0.75, `shared/anchors.md`). kmalloc was worse still: its large sizes need
//! physically contiguous pages, which are scarce exactly when the system is swapping.
//!
//! zsmalloc's answer: take only order-0 frames, chain a few of them into a *zspage*, and cut the zspage
//! into equal objects laid back to back, so a 3 KiB object may end in the next frame. An object is reached
//! through a handle and mapped for the length of a call, one or two frames at a time — which is also what
//! a kernel without a direct map of RAM (Linux's HIGHMEM, zkernel always) needs. Objects of 3072 bytes
//! then take 0.800 pages each with chains of 4 and 0.778 with chains of 8 (the anchor model; zbud: 1.000).
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | class index | `i` in 0..255: object places of `32 + 16·i` bytes ([`index_size`], [`class_index`]) |
//! | size class | the merged class a set of neighbouring indexes share ([`SizeClass`]); its `size` is the largest of them |
//! | zspage | `pages_per_zspage` frames of one class, seen as one byte range holding `objs_per_zspage` objects |
//! | chain | the frames of a zspage; N ([`Config::max_pages_per_zspage`]) is the longest chain a class may use |
//! | object | the bytes of one `malloc`: in a place of `size` bytes, after an 8-byte header |
//! | header | 8 bytes at the start of an object's place naming its handle, so compaction can find it (Linux's `ZS_HANDLE_SIZE`) |
//! | huge class | one object in a one-frame zspage: no header, the back-reference is in the side table (Linux's `ZsHugePage`) |
//! | handle slot | an entry of the handle table: where the object is now; the handle names the slot, not the place |
//! | fullness group | a zspage's in-use ratio band ([`fullness_group`]); each class keeps one list per group |
//! | span | an object whose data crosses from one frame of its zspage into the next |
//! | copy buffer | the pool's 4096 bytes for [`SpanMap::Copy`] and for compaction's copies (Linux's per-CPU `vm_buf`) |
//! | freeable | frames compaction could give back now: whole zspages' worth of free places (Linux's `zs_can_compact`) |
//!
//! # Size classes
//!
//! `malloc(n)` adds the header and takes class index `⌈(n + 8 − 32) / 16⌉` (0 for `n ≤ 24`); a place of
//! `32 + 16·i` bytes. 255 indexes run from 32 to 4096 bytes, as in Linux (`ZS_MIN_ALLOC_SIZE` 32,
//! `ZS_SIZE_CLASS_DELTA` = `PAGE_SIZE >> 8` = 16, `ZS_SIZE_CLASSES` 255). Why these:
//!
//! - **Step 16.** Rounding up to the next index costs at most 15 bytes an object, about 1 % of a 1.4 KiB
//!   object. Halving the step would double the classes, and every class in use keeps a partly filled
//!   zspage — at zkernel's scale that, not rounding, is the largest loss (see "Efficiency"). A 16-byte
//!   step also keeps every place 16-byte aligned, so a header never crosses a frame.
//! - **Smallest 32.** Header plus 24 bytes, Linux's smallest. Compressed pages are hardly ever smaller:
//!   the pages that shrink most are one word repeated, and those are kept as the word and never reach a
//!   pool (even so, LZ4 stores a zero page in 32 bytes, deflate-6 in 25).
//! - **Largest 4096.** zkernel stores a page that does not compress whole, so a page must fit. 4096 + 8 is
//!   clamped to the last index, whose class is huge, so it needs no header.
//!
//! Each index gets its chain as Linux's `calculate_zspage_chain_size` does: of 1..=N frames, the chain
//! whose end wastes the fewest bytes (`pages·4096 mod size`), the shortest on a tie, and one frame for a
//! power of two; then `objs = ⌊pages·4096 / size⌋`. For 3088-byte places: 1008 bytes waste in one frame,
//! 944 in four (5 objects), 880 in seven (9 objects), 688 in sixteen (21 objects). Then, as in
//! `zs_create_pool`, indexes are walked from the largest down and one with the same pages and objects
//! per zspage as the class above joins it: it takes the same frames for the same objects either way, and
//! the pool has fewer classes, so fewer partly filled zspages. Merging only moves each zspage's waste from
//! its tail into the places. A class with one object in one frame is huge; only the top class is.
//!
//! | N | merged classes | huge from (bytes) | class of 3072 bytes | its pages per object, zspages full |
//! |---|---|---|---|---|
//! | 1 | 30 | 2041 | huge | 1.000 |
//! | 2 | 42 | 2713 | huge | 1.000 |
//! | 4 | 69 | 3257 | 3264: 4 pages, 5 objects | 0.800 |
//! | 8 | 119 | 3625 | 3184: 7 pages, 9 objects | 0.778 |
//! | 16 | 192 | 3833 | 3120: 16 pages, 21 objects | 0.762 |
//!
//! # Zspage layout
//!
//! A zspage of class `size` is one byte range over its frames in chain order: byte `b` is byte `b mod 4096`
//! of frame `⌊b / 4096⌋`. Object `i` of an `n`-byte `malloc`:
//!
//! | bytes of the zspage | holds |
//! |---|---|
//! | `i·size .. i·size + 8` | the header: the object's handle, `u64` little-endian (not in a huge class) |
//! | `i·size + 8 .. i·size + 8 + n` | the data, what [`ZPool::map`] lends; it may run into the next frame |
//! | `.. (i + 1)·size` | slack: the class rounding |
//! | `objs·size .. pages·4096` | the tail nothing can use ([`SizeClass::waste`]) |
//!
//! In a huge class the data is bytes `0..n` of the zspage's one frame. A free place holds whatever was
//! there; frames come from the frame source unzeroed, and nothing here relies on their contents.
//!
//! # What lives where
//!
//! Linux threads each zspage's free list through its free objects and keeps the zspage's frames and
//! flags in `struct page`. Here a frame's bytes are reachable only while mapped (`pagemem`), so the pool
//! decides everything from a side table on the heap, as zbud does, and pages hold only what must travel
//! with the object: its header, which compaction reads to learn whose object it is moving, and which
//! [`Zsmalloc::verify`] checks against the handle table.
//!
//! | datum | in the zspage | side table |
//! |---|---|---|
//! | an object's handle (back-reference) | the header (not in a huge class) | huge class: the zspage entry |
//! | which places are free | — | a 256-bit bitmap per zspage (Linux: a free list through free places) |
//! | handle → zspage, object index, size, generation | — | the handle table, 12 bytes a slot; a free slot links the next free one |
//! | a zspage's frames | — | a `Vec<Pfn>` per zspage (8 bytes a frame) |
//! | class, in-use count, fullness group, list links | — | the zspage table, 72 bytes an entry; a vacant entry links the next vacant one |
//! | fullness lists, counters | — | the class table, one entry per merged class |
//!
//! [`ZsStats::metadata_bytes`] counts all of it (capacities, not lengths) plus the copy buffer: 1–5 % of the
//! pool's bytes in the table below. Linux's handles are 8 bytes each; ours carry the object's size too,
//! which a zram or tmem index would otherwise keep.
//!
//! # Handles
//!
//! | bits | field |
//! |---|---|
//! | `0..28` | handle slot (at most 2^28 live objects) |
//! | `28..48` | generation, 1..2^20 (0 is never issued) |
//! | `48..64` | pool tag: a number each pool draws from a global counter at creation |
//!
//! A handle is live if its tag is this pool's and its slot holds an object of that generation; anything
//! else is [`PoolError::StaleHandle`]. Freeing bumps the slot's generation, so a slot reissues a raw
//! value only after 2^20 − 1 frees of it. Compaction moves the object and rewrites the slot, never the
//! handle.
//!
//! # Fullness groups, allocation and free
//!
//! Linux's current scheme (6.3 on; before it there were four groups: empty, almost empty — at most ¾ in
//! use —, almost full, full): a zspage with
//! `u` of its `objs` places in use is in group 0 when empty, 11 ([`FULLNESS_FULL`]) when full, and
//! `⌊100·u / objs⌋ / 10 + 1` otherwise — group 3 holds the zspages 20–29 % in use. Each class has a list
//! per group, and a zspage whose group changes goes to the head of its new list.
//!
//! - `malloc` takes the first zspage of the fullest non-empty list below full (`find_get_zspage`), and
//!   there the lowest free place (Linux: the most recently freed). Only when no zspage of the class has
//!   room does it take a new zspage: every frame from the frame source, or — if one is refused — none,
//!   the ones taken going back. Then it writes the header; a fresh zspage needs nothing else written.
//! - `free` clears the place's bit, maps nothing, and gives an emptied zspage's frames back at once, so
//!   group 0 is always empty. Sparse zspages stay until compaction.
//!
//! # Mapping
//!
//! An object whose data lies in one frame is mapped directly, whatever the mode. One that spans two frames
//! is mapped as [`Config::span`] says (Linux maps by the whole place; we map by the data, so fewer
//! objects count as spanning):
//!
//! | [`SpanMap`] | how | mappings per call | a write in `ReadOnly` mode |
//! |---|---|---|---|
//! | `Pair` (default) | [`PageMemory::with_pages2`]: both frames as one slice (two adjacent kmap slots) | 1 | lands |
//! | `Copy` | both parts into the copy buffer, the closure there, back out; no copy-in for `WriteOnly`, no copy-back for `ReadOnly` | 2 (4 for `ReadWrite`) | is lost |
//!
//! # Compaction
//!
//! [`ZPool::compact`] is Linux's `zs_compact`: every class from the largest down, and in each, while a
//! whole zspage's worth of places is free (`zs_can_compact`): take the fullest non-full zspage as the
//! destination and the sparsest as the source (each off its list meanwhile), move the source's objects in
//! index order into the destination's lowest free places until one is full or the other empty, free an
//! emptied source, and take a new destination when one fills. Moving an object copies its place into the
//! copy buffer (one or two single-frame mappings), reads its handle from the header, copies header and data
//! to the new place, and only then updates both bitmaps and the handle slot: a failed mapping leaves
//! the object where it was. An object whose header does not name a live handle that points back at it is
//! left in place, and compaction gives up on that class ([`Zsmalloc::verify`] reports it). Huge classes
//! never compact: their zspages are always full.
//!
//! # No eviction
//!
//! [`ZPool::evict`] returns [`PoolError::EvictRefused`]: freeing one zspage would mean writing back every
//! object in up to N frames, each object shared with a neighbour frame. Linux gave zsmalloc an LRU for
//! zswap writeback in 6.2 and took it out again in 6.5, when zswap began to keep its own; likewise tmem
//! writes back through its own LRU, object by object, and frees each object here.
//!
//! # Worked example
//!
//! With the default N = 4:
//!
//! ```text
//!   a = malloc(3072)   3080 with the header: index ⌈3048 / 16⌉ = 191, merged with 192..=202 into class 3264
//!                      (4 frames, 5 objects, 64 bytes of tail). No zspage: new zspage Z (slot 0) of frames
//!                      P0..P3. Object 0: header P0[0..8], data P0[8..3080]. Z 1/5 in use: group 3.
//!   b = malloc(3072)   Z's lowest free place, object 1 at zspage byte 3264: header P0[3264..3272], data
//!                      P0[3272..4096] (824 bytes) + P1[0..2248]. It spans: Pair maps P0+P1 as one slice,
//!                      Copy copies the two parts through the buffer. Z 2/5: group 5.
//!   c = malloc(4000)   index 249: the huge class 4096 (indexes 203..=254, objects from 3257 bytes). New
//!                      zspage Q (slot 1), one frame; data Q[0..4000], no header. 5 pages.
//!   3 x malloc(3072)   objects 2, 3, 4 of Z: Z full (group 11).
//!   e = malloc(3072)   no room in the class: new zspage Z' (slot 2, 4 frames), object 0. 9 pages.
//!   free the three     Z 2/5 (group 5), Z' 1/5 (group 3). Class 3264: 10 places, 3 used, freeable 4.
//!   compact()          destination Z (fullest), source Z' (sparsest): e's place is copied to Z's object 2,
//!                      zspage byte 6528: header P1[2432..2440], data P1[2440..4096] + P2[0..1416]; e's slot
//!                      now says (Z, 2). Z' is empty: its 4 frames go back. Ok(4); 9 -> 5 pages; e unchanged.
//!   free(c)            Q goes back at once: 4 pages.
//! ```
//!
//! The test `worked_example_from_the_header` replays this.
//!
//! # Efficiency
//!
//! Pool pages per object after storing every object into a fresh pool (`efficiency_figures`; in
//! parentheses the overhead over the ideal, compressed bytes / 4096). The perl sample is
//! `shared/data/perl-heap.pages.gz`, same-filled pages skipped, pages above 3584 stored bytes stored whole;
//! "× 8" stores it eight times over, for a pool of zkernel's size.
//!
//! | workload | objects | ideal | N = 1 | N = 2 | N = 4 | N = 8 | N = 16 |
//! |---|---|---|---|---|---|---|---|
//! | perl, LZ4 | 2038 | 0.334 | 0.452 (+35 %) | 0.395 (+18 %) | **0.400 (+20 %)** | 0.520 (+55 %) | 0.818 (+145 %) |
//! | perl, deflate-1 | 2038 | 0.210 | 0.254 (+21 %) | 0.241 (+15 %) | **0.261 (+24 %)** | 0.375 (+78 %) | 0.606 (+188 %) |
//! | perl × 8, LZ4 | 16304 | 0.334 | 0.444 (+33 %) | 0.379 (+13 %) | **0.353 (+5.7 %)** | 0.356 (+6.5 %) | 0.381 (+14 %) |
//! | perl × 8, deflate-1 | 16304 | 0.210 | 0.247 (+17 %) | 0.228 (+8.4 %) | **0.223 (+6.1 %)** | 0.228 (+8.3 %) | 0.249 (+18 %) |
//! | 3072 bytes | 10000 | 0.750 | 1.000 (+33 %) | 1.000 (+33 %) | **0.800 (+6.7 %)** | 0.778 (+3.8 %) | 0.763 (+1.8 %) |
//! | uniform 32..=4096 | 10000 | 0.499 | 0.649 (+30 %) | 0.585 (+17 %) | **0.546 (+9.4 %)** | 0.544 (+8.9 %) | 0.603 (+21 %) |
//!
//! Every figure equals what the class table predicts (each zspage full but the last of its class), and
//! the 3072-byte row is the anchor model's 0.800 and 0.778. Where the bytes go at N = 4: on the perl
//! sample 83 % data, 0.5 % headers, 3 % class rounding, 13 % free places in partly filled zspages, 0.4 %
//! zspage tails; eight times over, the free places drop to 1.3 % and the data rises to 95 %. The side
//! table adds 1–5 % of the pool's bytes on top (counted apart, in [`ZsStats::metadata_bytes`]).
//!
//! ## Choosing N
//!
//! The default is **4**, not Linux's 8. Longer chains waste less at their tails, but each class in use
//! keeps one partly filled zspage, and a longer chain makes it bigger; which wins depends on how many
//! objects a class holds. On the 3072-byte workload every object is in one class, so longer is better
//! (0.800, 0.778, 0.763: 16 beats 8 by 2 %). Real pages spread over some 70–120 classes, and at the 2k–16k
//! objects of a zkernel pool the perl sample is stored best with N = 2 (2k objects) or 4 (16k); 8 costs
//! from 1 % (16k objects) to 44 % (2k) more than 4, and 16 up to 2.3 times as much. 4 and 8 tie only at
//! 32k objects (perl × 16, LZ4: 0.351 against 0.349). N = 2 loses 7–25 % on the synthetic rows, so 4 is
//! the compromise. Linux's default of 8 (4 until 6.3) is sized for zram devices of hundreds of megabytes,
//! where a partly filled zspage per class does not matter: its documentation reports +4.3 % at chain 4
//! and +2.2 % at 8 on 628 MB of compressed data. Shorter chains also need fewer free frames at once for a
//! new zspage, and an emptied zspage frees sooner. [`DEFAULT_PAGES_PER_ZSPAGE`] is the one place to change.
//!
//! Neither anchor goal is met at any one N: within 5 % of ideal on real pages needs more objects per class
//! than the perl sample has (its free places alone are 13 % of the pool), and ≤ 0.77 on the 75 % workload
//! needs N = 16, which costs 8–12 % more than 4 on the perl sample × 8.
//!
//! # Contracts
//!
//! - Every bad input is a typed [`PoolError`], never a panic, and a refused operation changes nothing —
//!   except that a `malloc` refused for lack of memory counts in [`PoolStats::failures`] (zpool's rule).
//!   `malloc` takes frames first, writes the header next and grows the tables last, giving the frames
//!   back if a later step fails; `free` gives back an emptied zspage's first frame before it changes
//!   anything, so a refusal there changes nothing.
//! - A frame the frame source refuses to take back after the first (in `free`, or any in `compact`, or
//!   in a rollback) is lost: the pool stops counting it ([`ZsStats::frames_lost`]) rather than keep an
//!   empty zspage. `compact` then answers with the error.
//! - `compact` may fail part-way (a mapping or a frame refused); every object is then whole in exactly one
//!   place, every handle valid, the pages freed so far counted in `pages_compacted`, and `total_pages`
//!   fell by exactly those plus any lost frames. A second call finishes the job.
//! - In [`SpanMap::Copy`] a `WriteOnly` closure runs before anything is mapped. If the copy-back then
//!   fails the answer is [`PoolError::Memory`]; if the first frame failed the object keeps its old bytes,
//!   if only the second did (a frame the memory does not hold, which a pool never maps) it is torn.
//! - `map` lends exactly the object's bytes, never its header; `free` maps nothing; the largest object is
//!   [`ZS_MAX_ALLOC_SIZE`] = 4096 bytes.
//! - The [`PageMemory`] must hand out 4096-byte pages; a shorter one is reported as
//!   `Memory(MemError::Foreign(pfn))` rather than indexed out of bounds.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;
use core::sync::atomic::{AtomicU16, Ordering};

use frame::{FrameError, Owner, Pfn};
use pagemem::{FrameSource, MemError, PAGE, PageMemory};
// `NIL` is "no zspage" in a list link, a handle slot or a back-reference.
use zpool::slotlist::{self, EMPTY, Link, List, NIL, UNLINKED, push_front, unlink};
use zpool::{Handle, MapMode, PoolError, PoolStats, ZPool};

#[cfg(test)]
mod tests;

/// The smallest size class, in bytes, header included (Linux's `ZS_MIN_ALLOC_SIZE`).
pub const ZS_MIN_ALLOC_SIZE: usize = 32;
/// log2 of the number of size steps in a page (Linux's `CLASS_BITS`).
const CLASS_BITS: u32 = 8;
/// Bytes between neighbouring size classes: `PAGE >> 8` = 16 (Linux's `ZS_SIZE_CLASS_DELTA`).
pub const ZS_SIZE_CLASS_DELTA: usize = PAGE >> CLASS_BITS;
/// The largest object, in bytes: a whole page, so an incompressible page can be stored as it is.
pub const ZS_MAX_ALLOC_SIZE: usize = PAGE;
/// Class indexes: sizes 32, 48, …, 4096 (Linux's `ZS_SIZE_CLASSES`): 255.
pub const ZS_SIZE_CLASSES: usize = (ZS_MAX_ALLOC_SIZE - ZS_MIN_ALLOC_SIZE).div_ceil(ZS_SIZE_CLASS_DELTA) + 1;
/// Bytes of the in-object header that names the object's handle (Linux's `ZS_HANDLE_SIZE`).
pub const ZS_HANDLE_SIZE: usize = 8;
/// The longest zspage chain [`Config::max_pages_per_zspage`] may ask for (Linux's `ZS_MAX_PAGES_PER_ZSPAGE`
/// with `CONFIG_ZSMALLOC_CHAIN_SIZE` at its maximum).
pub const ZS_MAX_PAGES_PER_ZSPAGE: usize = 16;
/// The chain length [`Config::default`] uses (see "Choosing N" in the module header).
pub const DEFAULT_PAGES_PER_ZSPAGE: usize = 4;
/// The most objects any zspage holds, for every chain length up to 16 (classes 48, 80, …, 240).
pub const MAX_OBJS_PER_ZSPAGE: usize = 256;
/// Fullness groups: 0 empty, 1..=10 in-use ratio bands of 10 %, 11 full (Linux's `NR_FULLNESS_GROUPS`).
pub const FULLNESS_GROUPS: usize = 12;
/// The group of a zspage with no object in use (Linux's `ZS_INUSE_RATIO_0`); such a zspage is freed at once.
pub const FULLNESS_EMPTY: usize = 0;
/// The group of a zspage with every object in use (Linux's `ZS_INUSE_RATIO_100`).
pub const FULLNESS_FULL: usize = FULLNESS_GROUPS - 1;

const SLOT_BITS: u32 = 28;
const MAX_SLOTS: usize = 1 << SLOT_BITS;
const GEN_SHIFT: u32 = SLOT_BITS;
const GEN_MASK: u32 = (1 << 20) - 1;
const TAG_SHIFT: u32 = 48;
const BITMAP_WORDS: usize = MAX_OBJS_PER_ZSPAGE / 64;

/// The `group` of a zspage that is on no list (vacant, or isolated by compaction).
const UNLISTED: u8 = u8::MAX;

/// Source of pool tags (see "Handles" in the module header).
static NEXT_TAG: AtomicU16 = AtomicU16::new(1);

/// The size of class index `i` (Linux: `ZS_MIN_ALLOC_SIZE + i * ZS_SIZE_CLASS_DELTA`).
pub const fn index_size(i: usize) -> usize {
    ZS_MIN_ALLOC_SIZE + i * ZS_SIZE_CLASS_DELTA
}

/// The class index for `size` bytes, header included (Linux's `get_size_class_index`); sizes above the
/// last class clamp to it.
pub const fn class_index(size: usize) -> usize {
    let i = if size <= ZS_MIN_ALLOC_SIZE { 0 } else { (size - ZS_MIN_ALLOC_SIZE).div_ceil(ZS_SIZE_CLASS_DELTA) };
    if i < ZS_SIZE_CLASSES { i } else { ZS_SIZE_CLASSES - 1 }
}

/// Pages per zspage for a class of `size` bytes, chains of at most `max_pages` (Linux's
/// `calculate_zspage_chain_size`): the chain that wastes the fewest bytes at its end, the shortest on a tie;
/// a power of two wastes nothing in one page.
pub const fn chain_size(size: usize, max_pages: usize) -> usize {
    if size == 0 || size.is_power_of_two() {
        return 1;
    }
    let (mut best, mut waste) = (1, usize::MAX);
    let mut pages = 1;
    while pages <= max_pages {
        let w = pages * PAGE % size;
        if w < waste {
            (best, waste) = (pages, w);
        }
        pages += 1;
    }
    best
}

/// The fullness group of a zspage with `inuse` of its `objs` objects in use (Linux's `get_fullness_group`):
/// [`FULLNESS_EMPTY`], then `⌊100·inuse/objs⌋ / 10 + 1` (1..=10), or [`FULLNESS_FULL`].
pub const fn fullness_group(inuse: usize, objs: usize) -> usize {
    if inuse == 0 {
        FULLNESS_EMPTY
    } else if inuse >= objs {
        FULLNESS_FULL
    } else {
        100 * inuse / objs / 10 + 1
    }
}

/// How [`ZPool::map`] reaches an object whose bytes span two frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpanMap {
    /// Map both frames as one 8192-byte slice ([`PageMemory::with_pages2`]: two adjacent kmap slots,
    /// Linux's kmap of a page pair).
    #[default]
    Pair,
    /// Copy the two parts into the pool's 4096-byte buffer, run the closure there, copy back (Linux's
    /// per-CPU `vm_buf`): no copy-in for [`MapMode::WriteOnly`], no copy-back for [`MapMode::ReadOnly`].
    Copy,
}

/// How a pool is built ([`Zsmalloc::with_config`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The longest zspage chain, 1..=[`ZS_MAX_PAGES_PER_ZSPAGE`] (Linux's `CONFIG_ZSMALLOC_CHAIN_SIZE`).
    pub max_pages_per_zspage: usize,
    /// How objects that span two frames are mapped.
    pub span: SpanMap,
}

impl Config {
    /// [`DEFAULT_PAGES_PER_ZSPAGE`] and [`SpanMap::Pair`].
    pub const DEFAULT: Config = Config { max_pages_per_zspage: DEFAULT_PAGES_PER_ZSPAGE, span: SpanMap::Pair };
}

impl Default for Config {
    fn default() -> Self {
        Config::DEFAULT
    }
}

/// Why [`Zsmalloc::with_config`] refused a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// [`Config::max_pages_per_zspage`] is not in 1..=[`ZS_MAX_PAGES_PER_ZSPAGE`].
    MaxPagesPerZspage(usize),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConfigError::MaxPagesPerZspage(n) => {
                write!(f, "{n} pages per zspage is outside 1..={ZS_MAX_PAGES_PER_ZSPAGE}")
            }
        }
    }
}

/// One size class after merging (Linux's `struct size_class`, its constant part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeClass {
    /// The largest class index merged into this class (Linux's `class->index`); its size is [`Self::size`].
    pub index: usize,
    /// The smallest class index merged into this class.
    pub first_index: usize,
    /// Bytes each object takes in its zspage, header included.
    pub size: usize,
    pub pages_per_zspage: usize,
    pub objs_per_zspage: usize,
    /// One object in a one-frame zspage: no in-object header (Linux's `ZsHugePage`).
    pub huge: bool,
}

impl SizeClass {
    /// The largest object (as given to `malloc`) this class takes.
    pub const fn max_object(&self) -> usize {
        if self.index == ZS_SIZE_CLASSES - 1 { ZS_MAX_ALLOC_SIZE } else { self.size - ZS_HANDLE_SIZE }
    }

    /// The smallest object (as given to `malloc`) this class takes.
    pub const fn min_object(&self) -> usize {
        if self.first_index == 0 { 1 } else { index_size(self.first_index - 1) - ZS_HANDLE_SIZE + 1 }
    }

    /// Bytes at the end of every zspage that no object can use.
    pub const fn waste(&self) -> usize {
        self.pages_per_zspage * PAGE - self.objs_per_zspage * self.size
    }

    /// Bytes of header each object carries: 8, or 0 in a huge class.
    pub const fn header(&self) -> usize {
        if self.huge { 0 } else { ZS_HANDLE_SIZE }
    }
}

/// The merged classes for chains of at most `max_pages`, ascending, and the map from class index to them
/// (Linux's `pool->size_class[]`), built as `zs_create_pool` does: from the largest index down, a class with
/// the same pages and objects per zspage as the class above it is merged into that one.
fn build_classes(max_pages: usize) -> (Vec<SizeClass>, [u8; ZS_SIZE_CLASSES]) {
    let mut classes: Vec<SizeClass> = Vec::new();
    let mut of_index = [0u8; ZS_SIZE_CLASSES];
    for i in (0..ZS_SIZE_CLASSES).rev() {
        let size = index_size(i).min(ZS_MAX_ALLOC_SIZE);
        let pages = chain_size(size, max_pages);
        let objs = pages * PAGE / size;
        match classes.last_mut() {
            Some(prev) if prev.pages_per_zspage == pages && prev.objs_per_zspage == objs => prev.first_index = i,
            _ => classes.push(SizeClass {
                index: i,
                first_index: i,
                size,
                pages_per_zspage: pages,
                objs_per_zspage: objs,
                huge: pages == 1 && objs == 1,
            }),
        }
        // Counted from the top for now; flipped below once the number of classes is known.
        of_index[i] = (classes.len() - 1) as u8;
    }
    classes.reverse();
    let last = classes.len() - 1;
    for c in &mut of_index {
        *c = (last - *c as usize) as u8;
    }
    (classes, of_index)
}

/// Where an object is ([`Zsmalloc::locate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// The zspage's slot in the side table.
    pub zspage: u32,
    /// The object's index in its zspage.
    pub obj: usize,
    /// The class's object size (header included).
    pub class_size: usize,
    /// First byte of the object (its header, if any) within the zspage: `obj × class_size`.
    pub offset: usize,
    /// The frame that holds the object's header and first data byte.
    pub pfn: Pfn,
    /// Where the data starts in `pfn`.
    pub page_offset: usize,
    /// The frame that holds the rest of the data, when it spans two frames.
    pub next_pfn: Option<Pfn>,
    /// The object's size in bytes (as given to `malloc`).
    pub size: usize,
    /// In a huge class: no header, the handle is in the side table.
    pub huge: bool,
}

/// One row of [`ZsStats::classes`] (a line of Linux's `/sys/kernel/debug/zsmalloc/<pool>/classes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassStats {
    pub class: SizeClass,
    /// Zspages of the class.
    pub zspages: u64,
    /// Object places in them: `zspages × objs_per_zspage`.
    pub obj_allocated: u64,
    /// Objects in use.
    pub obj_used: u64,
    /// Frames: `zspages × pages_per_zspage`.
    pub pages_used: u64,
    /// Frames compaction could free now (Linux's `zs_can_compact`).
    pub freeable: u64,
    /// Zspages in each fullness group (index 0 is always 0: an emptied zspage is freed at once).
    pub fullness: [u64; FULLNESS_GROUPS],
}

/// zsmalloc's own counters, beside [`PoolStats`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ZsStats {
    /// Every merged class, ascending by size.
    pub classes: Vec<ClassStats>,
    /// Zspages held now.
    pub zspages: u64,
    /// Object places in them.
    pub obj_allocated: u64,
    /// Objects in use (= [`PoolStats::objects`]).
    pub obj_used: u64,
    /// Objects in huge classes (no in-object header).
    pub huge_objects: u64,
    /// Frames compaction could free now.
    pub freeable: u64,
    /// Bytes of in-object headers: 8 per object outside the huge classes.
    pub header_bytes: u64,
    /// Heap bytes of the side table: class table, zspage table, handle table, free lists, frame lists and
    /// the 4096-byte copy buffer (capacities, not lengths).
    pub metadata_bytes: u64,
    /// Frames freed by compaction, ever (= [`PoolStats::pages_compacted`]).
    pub pages_compacted: u64,
    /// Objects moved by compaction, ever.
    pub objects_migrated: u64,
    /// Successful maps of objects whose data spans two frames, ever.
    pub span_maps: u64,
    /// Frames the frame source refused to take back, ever; the pool no longer counts them (module header).
    pub frames_lost: u64,
}

/// What [`Zsmalloc::verify`] found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// A frame could not be mapped to read a header.
    Memory(MemError),
    /// An object's in-object header does not name its handle.
    Header { zspage: u32, obj: usize },
    /// A handle-table slot, or the free-slot list, is inconsistent.
    Handle { slot: u32 },
    /// A zspage's entry (frames, bitmap, count, group, back-reference), or the free-zspage list, is
    /// inconsistent.
    Zspage { zspage: u32 },
    /// A fullness list of class `class` (its position in [`Zsmalloc::classes`]) is inconsistent; `usize::MAX`
    /// when the lists together do not hold every zspage.
    Lists { class: usize },
    /// The counters do not match the tables.
    Counters,
}

/// A merged class and its changing state.
#[derive(Debug)]
struct Class {
    info: SizeClass,
    /// Zspages by fullness group, most recently moved first.
    lists: [List; FULLNESS_GROUPS],
    zspages: u64,
    obj_used: u64,
}

/// One side-table entry per zspage (Linux's `struct zspage` plus what it keeps in `struct page`), 72 bytes.
#[derive(Debug, Clone)]
struct Zspage {
    /// The frames, in zspage order; empty while the slot is vacant.
    frames: Vec<Pfn>,
    /// Bit `i` set: object `i` is in use.
    used: [u64; BITMAP_WORDS],
    /// Link on its class's fullness list; while vacant, `next` links the vacant slots.
    link: Link,
    /// Huge class only: the handle slot of the one object (Linux keeps it in the page's `index`).
    huge_handle: u32,
    inuse: u16,
    /// Position in the class table.
    class: u8,
    /// Fullness group, or [`UNLISTED`].
    group: u8,
}

const VACANT: Zspage = Zspage {
    frames: Vec::new(),
    used: [0; BITMAP_WORDS],
    link: UNLINKED,
    huge_handle: NIL,
    inuse: 0,
    class: 0,
    group: UNLISTED,
};

/// One handle-table entry, 12 bytes.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Live: the object's zspage. Free: the next free slot, or [`NIL`].
    zspage: u32,
    /// The generation of the object here now, or of the next one.
    generation: u32,
    /// The object's size as given to `malloc`; 0 while the slot is free.
    size: u16,
    /// The object's index in its zspage.
    obj: u8,
}

impl Slot {
    fn live(&self) -> bool {
        self.size != 0
    }
}

/// Bytes `start..start + len` of a zspage's frame `a`, continued from byte 0 of `b` if they go past its end.
#[derive(Debug, Clone, Copy)]
struct Spot {
    a: Pfn,
    b: Option<Pfn>,
    start: usize,
    len: usize,
}

impl Spot {
    /// Bytes in `a`.
    fn head(&self) -> usize {
        self.len.min(PAGE.saturating_sub(self.start))
    }
}

/// Bytes `skip..skip + len` of object `obj` of a zspage of `frames` in class `info`.
fn spot(frames: &[Pfn], info: &SizeClass, obj: usize, skip: usize, len: usize) -> Result<Spot, MemError> {
    let off = obj * info.size + skip;
    let (k, start) = (off / PAGE, off % PAGE);
    let missing = MemError::Foreign(frames.first().copied().unwrap_or(Pfn(u64::MAX)));
    let a = *frames.get(k).ok_or(missing)?;
    let b = if start + len > PAGE { Some(*frames.get(k + 1).ok_or(missing)?) } else { None };
    Ok(Spot { a, b, start, len })
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

/// Copy the bytes at `s` into `buf` (`s.len` bytes), one frame at a time.
fn read_spot<M: PageMemory>(mem: &mut M, s: Spot, buf: &mut [u8]) -> Result<(), MemError> {
    let (head, tail) = buf.split_at_mut(s.head().min(buf.len()));
    with_bytes(mem, s.a, s.start..s.start + head.len(), |p| head.copy_from_slice(p))?;
    match s.b {
        Some(b) if !tail.is_empty() => with_bytes(mem, b, 0..tail.len(), |p| tail.copy_from_slice(p)),
        _ => Ok(()),
    }
}

/// Copy `buf` (`s.len` bytes) to the bytes at `s`, one frame at a time.
fn write_spot<M: PageMemory>(mem: &mut M, s: Spot, buf: &[u8]) -> Result<(), MemError> {
    let (head, tail) = buf.split_at(s.head().min(buf.len()));
    with_bytes(mem, s.a, s.start..s.start + head.len(), |p| p.copy_from_slice(head))?;
    match s.b {
        Some(b) if !tail.is_empty() => with_bytes(mem, b, 0..tail.len(), |p| p.copy_from_slice(tail)),
        _ => Ok(()),
    }
}

/// [`SpanMap::Copy`]: run `f` on a copy of the bytes at `s` in `buf`.
fn map_copy<M: PageMemory, R>(
    mem: &mut M,
    s: Spot,
    mode: MapMode,
    buf: &mut [u8],
    f: impl FnOnce(&mut [u8]) -> R,
) -> Result<R, MemError> {
    let buf = buf.get_mut(..s.len).ok_or(MemError::Foreign(s.a))?;
    if mode != MapMode::WriteOnly {
        read_spot(mem, s, buf)?;
    }
    let r = f(buf);
    if mode != MapMode::ReadOnly {
        write_spot(mem, s, buf)?;
    }
    Ok(r)
}

fn bit(used: &[u64; BITMAP_WORDS], i: usize) -> bool {
    used[i / 64] >> (i % 64) & 1 == 1
}

fn set_bit(used: &mut [u64; BITMAP_WORDS], i: usize) {
    used[i / 64] |= 1 << (i % 64);
}

fn clear_bit(used: &mut [u64; BITMAP_WORDS], i: usize) {
    used[i / 64] &= !(1 << (i % 64));
}

/// The lowest free object of `objs`, if any.
fn first_free(used: &[u64; BITMAP_WORDS], objs: usize) -> Option<usize> {
    let (w, word) = used.iter().enumerate().find(|(_, w)| **w != u64::MAX)?;
    let i = w * 64 + word.trailing_ones() as usize;
    (i < objs).then_some(i)
}

/// The fullness lists run through a zspage's `link`.
#[derive(Debug, Clone, Copy)]
struct Fullness;

impl slotlist::Chain<Zspage> for Fullness {
    fn link<'a>(&self, zp: &'a Zspage) -> &'a Link {
        &zp.link
    }

    fn link_mut<'a>(&self, zp: &'a mut Zspage) -> &'a mut Link {
        &mut zp.link
    }
}

const fn next_generation(g: u32) -> u32 {
    let n = g.wrapping_add(1) & GEN_MASK;
    if n == 0 { 1 } else { n }
}

/// Which end of the fullness lists [`Zsmalloc::isolate`] takes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isolate {
    /// The fullest non-full zspage: where objects go.
    Dst,
    /// The sparsest non-empty zspage: where objects come from.
    Src,
}

/// Where `malloc` puts an object.
#[derive(Debug)]
enum Target {
    /// A zspage of the class with room.
    Existing(u32),
    /// The frames of a new zspage.
    Fresh(Vec<Pfn>),
}

/// A zsmalloc pool over the frames and page memory of `M` (see the module header).
pub struct Zsmalloc<M> {
    mem: M,
    cfg: Config,
    /// The merged classes, ascending.
    classes: Vec<Class>,
    /// Class index → position in `classes` (Linux's `pool->size_class[]`).
    class_of_index: [u8; ZS_SIZE_CLASSES],
    /// The zspage table, by zspage slot.
    zspages: Vec<Zspage>,
    /// The first vacant zspage slot (the list runs through `link.next`), reused last-vacated first.
    free_zspage: u32,
    /// The handle table, by handle slot.
    handles: Vec<Slot>,
    /// The first free handle slot (the list runs through `Slot::zspage`), reused last-freed first.
    free_handle: u32,
    /// The copy buffer: [`SpanMap::Copy`] mappings and compaction's object copies (Linux's `vm_buf`).
    vm_buf: Vec<u8>,
    tag: u16,
    stats: PoolStats,
    objects_migrated: u64,
    span_maps: u64,
    frames_lost: u64,
}

impl<M> fmt::Debug for Zsmalloc<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Zsmalloc")
            .field("tag", &self.tag)
            .field("config", &self.cfg)
            .field("classes", &self.classes.len())
            .field("zspage_slots", &self.zspages.len())
            .field("handle_slots", &self.handles.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<M: PageMemory + FrameSource> Zsmalloc<M> {
    /// An empty pool with [`Config::default`], taking its frames from `mem`.
    pub fn new(mem: M) -> Self {
        Self::build(mem, Config::DEFAULT)
    }

    /// An empty pool with `cfg`; a chain length outside 1..=16 is refused.
    pub fn with_config(mem: M, cfg: Config) -> Result<Self, ConfigError> {
        if !(1..=ZS_MAX_PAGES_PER_ZSPAGE).contains(&cfg.max_pages_per_zspage) {
            return Err(ConfigError::MaxPagesPerZspage(cfg.max_pages_per_zspage));
        }
        Ok(Self::build(mem, cfg))
    }

    fn build(mem: M, cfg: Config) -> Self {
        let (infos, class_of_index) = build_classes(cfg.max_pages_per_zspage);
        let classes =
            infos.into_iter().map(|info| Class { info, lists: [EMPTY; FULLNESS_GROUPS], zspages: 0, obj_used: 0 });
        Zsmalloc {
            mem,
            cfg,
            classes: classes.collect(),
            class_of_index,
            zspages: Vec::new(),
            free_zspage: NIL,
            handles: Vec::new(),
            free_handle: NIL,
            vm_buf: alloc::vec![0; PAGE],
            tag: NEXT_TAG.fetch_add(1, Ordering::Relaxed),
            stats: PoolStats::default(),
            objects_migrated: 0,
            span_maps: 0,
            frames_lost: 0,
        }
    }

    /// The configuration the pool was built with.
    pub fn config(&self) -> Config {
        self.cfg
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

    /// The merged size classes, ascending by size.
    pub fn classes(&self) -> Vec<SizeClass> {
        self.classes.iter().map(|c| c.info).collect()
    }

    /// The class an object of `size` bytes (as given to `malloc`) goes to; `None` for 0 or above 4096.
    pub fn class_for(&self, size: usize) -> Option<SizeClass> {
        if size == 0 || size > ZS_MAX_ALLOC_SIZE {
            return None;
        }
        Some(self.classes[self.class_of_index[class_index(size + ZS_HANDLE_SIZE)] as usize].info)
    }

    /// Where a live object is.
    pub fn locate(&self, handle: Handle) -> Result<Location, PoolError> {
        let slot = self.lookup(handle)?;
        let s = self.handles[slot as usize];
        let zp = &self.zspages[s.zspage as usize];
        let info = self.classes[zp.class as usize].info;
        let d = spot(&zp.frames, &info, s.obj as usize, info.header(), s.size as usize)?;
        Ok(Location {
            zspage: s.zspage,
            obj: s.obj as usize,
            class_size: info.size,
            offset: s.obj as usize * info.size,
            pfn: d.a,
            page_offset: d.start,
            next_pfn: d.b,
            size: s.size as usize,
            huge: info.huge,
        })
    }

    /// The frames of a zspage, in order; `None` for a vacant or unknown slot.
    pub fn zspage_frames(&self, zspage: u32) -> Option<&[Pfn]> {
        self.zspages.get(zspage as usize).map(|z| z.frames.as_slice()).filter(|f| !f.is_empty())
    }

    /// zsmalloc's own counters, with the per-class table.
    pub fn zs_stats(&self) -> ZsStats {
        let mut s = ZsStats {
            pages_compacted: self.stats.pages_compacted,
            objects_migrated: self.objects_migrated,
            span_maps: self.span_maps,
            frames_lost: self.frames_lost,
            metadata_bytes: self.metadata_bytes(),
            ..ZsStats::default()
        };
        for (c, k) in self.classes.iter().enumerate() {
            let i = k.info;
            let row = ClassStats {
                class: i,
                zspages: k.zspages,
                obj_allocated: k.zspages * i.objs_per_zspage as u64,
                obj_used: k.obj_used,
                pages_used: k.zspages * i.pages_per_zspage as u64,
                freeable: self.freeable(c),
                fullness: k.lists.map(|l| l.len),
            };
            s.zspages += row.zspages;
            s.obj_allocated += row.obj_allocated;
            s.obj_used += row.obj_used;
            s.freeable += row.freeable;
            if i.huge {
                s.huge_objects += row.obj_used;
            }
            s.classes.push(row);
        }
        s.header_bytes = (s.obj_used - s.huge_objects) * ZS_HANDLE_SIZE as u64;
        s
    }

    /// Heap bytes of the side table (see [`ZsStats::metadata_bytes`]).
    pub fn metadata_bytes(&self) -> u64 {
        let frames: usize = self.zspages.iter().map(|z| z.frames.capacity()).sum();
        let bytes = self.classes.capacity() * size_of::<Class>()
            + self.zspages.capacity() * size_of::<Zspage>()
            + frames * size_of::<Pfn>()
            + self.handles.capacity() * size_of::<Slot>()
            + self.vm_buf.capacity();
        bytes as u64
    }

    /// Check the handle table, every zspage (frames, bitmap, count, group, back-reference, the header of
    /// every object in use), the fullness lists and the counters against each other.
    pub fn verify(&mut self) -> Result<(), VerifyError> {
        // The handle table and its free list.
        let mut free = alloc::vec![false; self.handles.len()];
        let mut slot = self.free_handle;
        while slot != NIL {
            match (free.get_mut(slot as usize), self.handles.get(slot as usize)) {
                (Some(f), Some(s)) if !*f && !s.live() => (*f, slot) = (true, s.zspage),
                _ => return Err(VerifyError::Handle { slot }),
            }
        }
        let (mut objects, mut bytes) = (0u64, 0u64);
        // (zspage, object, handle slot) of every object in use.
        let mut owners: Vec<(u32, u8, u32)> = Vec::new();
        for (slot, s) in self.handles.iter().enumerate() {
            let bad = Err(VerifyError::Handle { slot: slot as u32 });
            let good_gen = s.generation != 0 && s.generation <= GEN_MASK;
            if !s.live() {
                if !free[slot] || !good_gen {
                    return bad;
                }
                continue;
            }
            let Some(zp) = self.zspages.get(s.zspage as usize).filter(|z| !z.frames.is_empty()) else { return bad };
            let Some(k) = self.classes.get(zp.class as usize) else { return bad };
            let (obj, size) = (s.obj as usize, s.size as usize);
            let right_class = self.class_for(size).is_some_and(|c| c == k.info);
            if free[slot] || !good_gen || !right_class || obj >= k.info.objs_per_zspage || !bit(&zp.used, obj) {
                return bad;
            }
            objects += 1;
            bytes += size as u64;
            owners.push((s.zspage, s.obj, slot as u32));
        }
        owners.sort_unstable();
        if let Some(w) = owners.windows(2).find(|w| (w[0].0, w[0].1) == (w[1].0, w[1].1)) {
            return Err(VerifyError::Handle { slot: w[1].2 });
        }

        // The zspage table and its free list.
        let mut vacant = alloc::vec![false; self.zspages.len()];
        let (mut z, mut vacancies) = (self.free_zspage, 0u64);
        while z != NIL {
            match (vacant.get_mut(z as usize), self.zspages.get(z as usize)) {
                (Some(v), Some(zp)) if !*v && zp.frames.is_empty() => (*v, z) = (true, zp.link.next),
                _ => return Err(VerifyError::Zspage { zspage: z }),
            }
            vacancies += 1;
        }
        let mut per_class = alloc::vec![(0u64, 0u64); self.classes.len()];
        let (mut pages, mut live, mut cursor) = (0u64, 0u64, 0usize);
        for (z, zp) in self.zspages.iter().enumerate() {
            let bad = Err(VerifyError::Zspage { zspage: z as u32 });
            if zp.frames.is_empty() {
                let tidy = zp.used == [0; BITMAP_WORDS] && zp.inuse == 0 && zp.link.prev == NIL && zp.group == UNLISTED;
                if !tidy || !vacant[z] {
                    return bad;
                }
                continue;
            }
            let Some(k) = self.classes.get(zp.class as usize) else { return bad };
            let info = k.info;
            let ones: u32 = zp.used.iter().map(|w| w.count_ones()).sum();
            let beyond = (info.objs_per_zspage..MAX_OBJS_PER_ZSPAGE).any(|i| bit(&zp.used, i));
            let group = fullness_group(zp.inuse as usize, info.objs_per_zspage);
            if vacant[z]
                || zp.frames.len() != info.pages_per_zspage
                || ones != u32::from(zp.inuse)
                || zp.inuse == 0
                || beyond
                || usize::from(zp.group) != group
            {
                return bad;
            }
            let start = cursor;
            while cursor < owners.len() && owners[cursor].0 == z as u32 {
                cursor += 1;
            }
            let mine = &owners[start..cursor];
            if mine.len() != usize::from(zp.inuse) {
                return bad;
            }
            if info.huge {
                if zp.huge_handle != mine[0].2 {
                    return bad;
                }
            } else {
                for &(_, obj, slot) in mine {
                    let want = self.encode(slot, self.handles[slot as usize].generation).raw().to_le_bytes();
                    let h = spot(&zp.frames, &info, obj as usize, 0, ZS_HANDLE_SIZE).map_err(VerifyError::Memory)?;
                    let same = with_bytes(&mut self.mem, h.a, h.start..h.start + h.len, |p| *p == want)
                        .map_err(VerifyError::Memory)?;
                    if !same || h.b.is_some() {
                        return Err(VerifyError::Header { zspage: z as u32, obj: obj as usize });
                    }
                }
            }
            let pc = &mut per_class[zp.class as usize];
            pc.0 += 1;
            pc.1 += u64::from(zp.inuse);
            pages += zp.frames.len() as u64;
            live += 1;
        }

        // The fullness lists: every live zspage on the list of its class and group, exactly once.
        let mut listed = 0;
        for (c, k) in self.classes.iter().enumerate() {
            for (g, list) in k.lists.iter().enumerate() {
                let bad = Err(VerifyError::Lists { class: c });
                let member =
                    |zp: &Zspage| !zp.frames.is_empty() && usize::from(zp.class) == c && usize::from(zp.group) == g;
                let Ok(n) = slotlist::check(&self.zspages, list, Fullness, member) else { return bad };
                if g == FULLNESS_EMPTY && n != 0 {
                    return bad;
                }
                listed += n;
            }
            if per_class[c] != (k.zspages, k.obj_used) {
                return Err(VerifyError::Counters);
            }
        }
        if listed != live {
            return Err(VerifyError::Lists { class: usize::MAX });
        }

        // The counters.
        let s = &self.stats;
        let counters_ok = (s.pages, s.objects, s.object_bytes) == (pages, objects, bytes)
            && s.allocs - s.frees == s.objects
            && live + vacancies == self.zspages.len() as u64;
        if !counters_ok {
            return Err(VerifyError::Counters);
        }
        Ok(())
    }

    /// The handle slot of a live handle.
    fn lookup(&self, handle: Handle) -> Result<u32, PoolError> {
        let raw = handle.raw();
        let slot = (raw & (MAX_SLOTS as u64 - 1)) as u32;
        let generation = (raw >> GEN_SHIFT) as u32 & GEN_MASK;
        match self.handles.get(slot as usize) {
            Some(s) if (raw >> TAG_SHIFT) as u16 == self.tag && s.live() && s.generation == generation => Ok(slot),
            _ => Err(PoolError::StaleHandle(handle)),
        }
    }

    fn encode(&self, slot: u32, generation: u32) -> Handle {
        Handle::from_raw(u64::from(self.tag) << TAG_SHIFT | u64::from(generation) << GEN_SHIFT | u64::from(slot))
    }

    fn fail(&mut self, e: impl Into<PoolError>) -> PoolError {
        self.stats.failures += 1;
        e.into()
    }

    /// Frames compaction could free in class `c` (Linux's `zs_can_compact`): whole zspages' worth of free
    /// object places.
    fn freeable(&self, c: usize) -> u64 {
        let k = &self.classes[c];
        let objs = k.info.objs_per_zspage as u64;
        (k.zspages * objs - k.obj_used) / objs * k.info.pages_per_zspage as u64
    }

    /// The fullest zspage of class `c` with a free object (Linux's `find_get_zspage`).
    fn find_zspage(&self, c: usize) -> Option<u32> {
        let lists = &self.classes[c].lists;
        (FULLNESS_EMPTY..FULLNESS_FULL).rev().map(|g| lists[g].head).find(|&z| z != NIL)
    }

    /// Take a zspage off its class's lists for compaction (Linux's `isolate_dst_zspage`/`isolate_src_zspage`).
    fn isolate(&mut self, c: usize, end: Isolate) -> Option<u32> {
        let z = (1..FULLNESS_FULL)
            .map(|i| if end == Isolate::Dst { FULLNESS_FULL - i } else { i })
            .map(|g| self.classes[c].lists[g].head)
            .find(|&z| z != NIL)?;
        self.delist(z);
        Some(z)
    }

    /// Take `z` off its fullness list, if it is on one.
    fn delist(&mut self, z: u32) {
        let zp = &self.zspages[z as usize];
        let (c, g) = (zp.class as usize, zp.group);
        if g != UNLISTED {
            unlink(&mut self.zspages, &mut self.classes[c].lists[g as usize], z, Fullness);
            self.zspages[z as usize].group = UNLISTED;
        }
    }

    /// Put `z` at the head of the list its fullness calls for, unless it is on that list already (Linux's
    /// `fix_fullness_group` / `putback_zspage`).
    fn relist(&mut self, z: u32) {
        let zp = &self.zspages[z as usize];
        let c = zp.class as usize;
        let g = fullness_group(zp.inuse as usize, self.classes[c].info.objs_per_zspage) as u8;
        if zp.group == g {
            return;
        }
        self.delist(z);
        push_front(&mut self.zspages, &mut self.classes[c].lists[g as usize], z, Fullness);
        self.zspages[z as usize].group = g;
    }

    /// Give back frames that never became part of the pool; any the frame source refuses are lost.
    fn give_back(&mut self, frames: &[Pfn]) {
        for &pfn in frames {
            if self.mem.free_frame(pfn).is_err() {
                self.frames_lost += 1;
            }
        }
    }

    /// All the frames of a new zspage, or none (those taken are given back) and the failure counted.
    fn alloc_frames(&mut self, pages: usize) -> Result<Vec<Pfn>, PoolError> {
        let mut frames = Vec::new();
        if frames.try_reserve_exact(pages).is_err() {
            return Err(self.fail(PoolError::OutOfMemory));
        }
        for _ in 0..pages {
            match self.mem.alloc_frame(Owner::POOL) {
                Ok(pfn) => frames.push(pfn),
                Err(e) => {
                    self.give_back(&frames);
                    return Err(self.fail(e));
                }
            }
        }
        Ok(frames)
    }

    /// Room in the tables for a new handle slot and/or a new zspage slot.
    fn reserve(&mut self, new_slot: bool, new_zspage: bool) -> Result<(), alloc::collections::TryReserveError> {
        if new_slot {
            self.handles.try_reserve(1)?;
        }
        if new_zspage {
            self.zspages.try_reserve(1)?;
        }
        Ok(())
    }

    /// Make `frames` a zspage of class `c`, on no list yet.
    fn install(&mut self, c: usize, frames: Vec<Pfn>) -> u32 {
        self.stats.pages += frames.len() as u64;
        self.classes[c].zspages += 1;
        let entry = Zspage { frames, class: c as u8, ..VACANT };
        let z = self.free_zspage;
        match self.zspages.get_mut(z as usize) {
            Some(vacant) => {
                self.free_zspage = vacant.link.next;
                *vacant = entry;
                z
            }
            None => {
                self.zspages.push(entry);
                (self.zspages.len() - 1) as u32
            }
        }
    }

    /// Vacate an emptied zspage and give its frames back, `from` on (the ones before went back already);
    /// returns the frames given back and the first refusal. Refused frames are lost, not kept.
    fn retire(&mut self, z: u32, from: usize) -> (u64, Option<FrameError>) {
        self.delist(z);
        let vacant = Zspage { link: Link { prev: NIL, next: self.free_zspage }, ..VACANT };
        let zp = core::mem::replace(&mut self.zspages[z as usize], vacant);
        self.free_zspage = z;
        self.classes[zp.class as usize].zspages -= 1;
        self.stats.pages -= zp.frames.len() as u64;
        let (mut freed, mut err) = (from as u64, None);
        for &pfn in zp.frames.get(from..).unwrap_or(&[]) {
            match self.mem.free_frame(pfn) {
                Ok(()) => freed += 1,
                Err(e) => {
                    self.frames_lost += 1;
                    err.get_or_insert(e);
                }
            }
        }
        (freed, err)
    }

    /// Linux's `__zs_compact` for class `c`.
    fn compact_class(&mut self, c: usize) -> Result<(), PoolError> {
        let info = self.classes[c].info;
        if info.huge {
            return Ok(());
        }
        let mut dst = None;
        let result = loop {
            if self.freeable(c) == 0 {
                break Ok(());
            }
            let d = match dst {
                Some(d) => d,
                None => match self.isolate(c, Isolate::Dst) {
                    Some(d) => d,
                    None => break Ok(()),
                },
            };
            dst = Some(d);
            let Some(s) = self.isolate(c, Isolate::Src) else { break Ok(()) };
            let moved = self.migrate(s, d);
            let src_empty = self.zspages[s as usize].inuse == 0;
            if src_empty {
                let (freed, err) = self.retire(s, 0);
                self.stats.pages_compacted += freed;
                if let Some(e) = err {
                    break Err(e.into());
                }
            } else {
                self.relist(s);
            }
            if let Err(e) = moved {
                break Err(e);
            }
            if usize::from(self.zspages[d as usize].inuse) == info.objs_per_zspage {
                self.relist(d);
                dst = None;
            } else if !src_empty {
                // Stopped at an object whose header names no handle of it: leave the class (verify reports it).
                break Ok(());
            }
        };
        if let Some(d) = dst {
            self.relist(d);
        }
        result
    }

    /// Move objects from `s` to `d` until `d` is full or `s` is empty (Linux's `migrate_zspage`).
    fn migrate(&mut self, s: u32, d: u32) -> Result<(), PoolError> {
        let mut buf = core::mem::take(&mut self.vm_buf);
        let r = self.migrate_with(s, d, &mut buf);
        self.vm_buf = buf;
        r
    }

    fn migrate_with(&mut self, s: u32, d: u32, buf: &mut [u8]) -> Result<(), PoolError> {
        let info = self.classes[self.zspages[s as usize].class as usize].info;
        let objs = info.objs_per_zspage;
        for obj in 0..objs {
            if !bit(&self.zspages[s as usize].used, obj) {
                continue;
            }
            let Some(to_obj) = first_free(&self.zspages[d as usize].used, objs) else { break };
            // Copy the object's whole place out (Linux's `zs_object_copy` copies `class->size` bytes) and
            // learn its handle from the header.
            let from = spot(&self.zspages[s as usize].frames, &info, obj, 0, info.size)?;
            let place = buf.get_mut(..info.size).ok_or(MemError::Foreign(from.a))?;
            read_spot(&mut self.mem, from, place)?;
            let mut raw = [0; ZS_HANDLE_SIZE];
            raw.copy_from_slice(&place[..ZS_HANDLE_SIZE]);
            let Ok(slot) = self.lookup(Handle::from_raw(u64::from_le_bytes(raw))) else { continue };
            let entry = self.handles[slot as usize];
            if entry.zspage != s || usize::from(entry.obj) != obj {
                continue;
            }
            let len = ZS_HANDLE_SIZE + usize::from(entry.size);
            let to = spot(&self.zspages[d as usize].frames, &info, to_obj, 0, len)?;
            write_spot(&mut self.mem, to, &place[..len])?;
            // The copy is complete: only now does the object move.
            let dz = &mut self.zspages[d as usize];
            set_bit(&mut dz.used, to_obj);
            dz.inuse += 1;
            let sz = &mut self.zspages[s as usize];
            clear_bit(&mut sz.used, obj);
            sz.inuse -= 1;
            let src_left = sz.inuse;
            let h = &mut self.handles[slot as usize];
            (h.zspage, h.obj) = (d, to_obj as u8);
            self.objects_migrated += 1;
            if usize::from(self.zspages[d as usize].inuse) == objs || src_left == 0 {
                break;
            }
        }
        Ok(())
    }
}

impl<M: PageMemory + FrameSource> ZPool for Zsmalloc<M> {
    fn name(&self) -> &'static str {
        "zsmalloc"
    }

    fn max_size(&self) -> usize {
        ZS_MAX_ALLOC_SIZE
    }

    fn malloc(&mut self, size: usize) -> Result<Handle, PoolError> {
        PoolError::check_size(size, ZS_MAX_ALLOC_SIZE)?;
        let c = self.class_of_index[class_index(size + ZS_HANDLE_SIZE)] as usize;
        let info = self.classes[c].info;
        let slot = match self.free_handle {
            NIL if self.handles.len() < MAX_SLOTS => self.handles.len() as u32,
            NIL => return Err(self.fail(PoolError::OutOfMemory)),
            slot => slot,
        };
        let generation = self.handles.get(slot as usize).map_or(1, |s| s.generation);
        let handle = self.encode(slot, generation);
        let (target, obj) = match self.find_zspage(c) {
            Some(z) => match first_free(&self.zspages[z as usize].used, info.objs_per_zspage) {
                Some(obj) => (Target::Existing(z), obj),
                None => return Err(self.fail(PoolError::OutOfMemory)),
            },
            None if self.zspages.len() >= NIL as usize && self.free_zspage == NIL => {
                return Err(self.fail(PoolError::OutOfMemory));
            }
            None => (Target::Fresh(self.alloc_frames(info.pages_per_zspage)?), 0),
        };
        // The header: the object's own record of its handle. A fresh zspage needs nothing else written:
        // which objects are free is in the side table.
        if !info.huge {
            let frames = match &target {
                Target::Existing(z) => &self.zspages[*z as usize].frames,
                Target::Fresh(frames) => frames,
            };
            let written = spot(frames, &info, obj, 0, ZS_HANDLE_SIZE).and_then(|h| {
                with_bytes(&mut self.mem, h.a, h.start..h.start + h.len, |p| {
                    p.copy_from_slice(&handle.raw().to_le_bytes())
                })
            });
            if let Err(e) = written {
                if let Target::Fresh(frames) = &target {
                    self.give_back(frames);
                }
                return Err(self.fail(e));
            }
        }
        let new_slot = slot as usize == self.handles.len();
        let new_zspage = matches!(target, Target::Fresh(_)) && self.free_zspage == NIL;
        if self.reserve(new_slot, new_zspage).is_err() {
            if let Target::Fresh(frames) = &target {
                self.give_back(frames);
            }
            return Err(self.fail(PoolError::OutOfMemory));
        }
        let z = match target {
            Target::Existing(z) => z,
            Target::Fresh(frames) => self.install(c, frames),
        };
        let zp = &mut self.zspages[z as usize];
        set_bit(&mut zp.used, obj);
        zp.inuse += 1;
        if info.huge {
            zp.huge_handle = slot;
        }
        self.relist(z);
        self.classes[c].obj_used += 1;
        let entry = Slot { zspage: z, generation, size: size as u16, obj: obj as u8 };
        if new_slot {
            self.handles.push(entry);
        } else {
            self.free_handle = self.handles[slot as usize].zspage;
            self.handles[slot as usize] = entry;
        }
        self.stats.objects += 1;
        self.stats.object_bytes += size as u64;
        self.stats.allocs += 1;
        Ok(handle)
    }

    fn free(&mut self, handle: Handle) -> Result<(), PoolError> {
        let slot = self.lookup(handle)?;
        let s = self.handles[slot as usize];
        let zp = &mut self.zspages[s.zspage as usize];
        let c = zp.class as usize;
        if zp.inuse == 1 {
            // The last object: the zspage goes back to the frame source at once. The fallible step first:
            // if its first frame is refused, nothing has changed.
            if let Some(&first) = zp.frames.first() {
                self.mem.free_frame(first)?;
            }
            self.retire(s.zspage, 1);
        } else {
            clear_bit(&mut zp.used, s.obj as usize);
            zp.inuse -= 1;
            self.relist(s.zspage);
        }
        self.classes[c].obj_used -= 1;
        self.handles[slot as usize] =
            Slot { zspage: self.free_handle, generation: next_generation(s.generation), size: 0, obj: 0 };
        self.free_handle = slot;
        self.stats.objects -= 1;
        self.stats.object_bytes -= u64::from(s.size);
        self.stats.frees += 1;
        Ok(())
    }

    /// An object inside one frame is mapped directly; one that spans two frames as [`Config::span`] says.
    fn map<R>(&mut self, handle: Handle, mode: MapMode, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, PoolError> {
        let slot = self.lookup(handle)?;
        let s = self.handles[slot as usize];
        let zp = &self.zspages[s.zspage as usize];
        let info = self.classes[zp.class as usize].info;
        let d = spot(&zp.frames, &info, s.obj as usize, info.header(), s.size as usize)?;
        let r = match (d.b, self.cfg.span) {
            (None, _) => with_bytes(&mut self.mem, d.a, d.start..d.start + d.len, f)?,
            (Some(b), SpanMap::Pair) => {
                let r = self.mem.with_pages2(d.a, b, |p| p.get_mut(d.start..d.start + d.len).map(f))?;
                let r = r.ok_or(MemError::Foreign(d.a))?;
                self.span_maps += 1;
                r
            }
            (Some(_), SpanMap::Copy) => {
                let mut buf = core::mem::take(&mut self.vm_buf);
                let r = map_copy(&mut self.mem, d, mode, &mut buf, f);
                self.vm_buf = buf;
                let r = r?;
                self.span_maps += 1;
                r
            }
        };
        Ok(r)
    }

    fn size_of(&self, handle: Handle) -> Result<usize, PoolError> {
        let slot = self.lookup(handle)?;
        Ok(self.handles[slot as usize].size as usize)
    }

    fn total_pages(&self) -> u64 {
        self.stats.pages
    }

    fn stats(&self) -> PoolStats {
        self.stats
    }

    /// Linux's `zs_compact`: every class, largest first (module header, "Compaction").
    fn compact(&mut self) -> Result<u64, PoolError> {
        let before = self.stats.pages_compacted;
        for c in (0..self.classes.len()).rev() {
            self.compact_class(c)?;
        }
        Ok(self.stats.pages_compacted - before)
    }

    /// zsmalloc does not evict (module header, "No eviction").
    fn evict(&mut self, _writeback: &mut dyn FnMut(Handle, &[u8]) -> bool) -> Result<u64, PoolError> {
        Err(PoolError::EvictRefused)
    }
}

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
//! | fragmentation | free places' bytes (all in partly used zspages) ÷ the pool's bytes; its floor is what a full compaction would leave ([`Fragmentation`]) |
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
//! The "huge from" column is [`huge_class_size`] (Linux's `zs_huge_class_size`): the size of the largest
//! class that holds more than one object, less 7 — the smallest object that, with its 8-byte header, no
//! longer fits that class (N = 4: 3264 − 7 = 3257). zram keeps a page whose compressed size reaches it as
//! its 4096 raw bytes (zstore's `Policy::zram`), since the pool would give it a whole frame anyway.
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
//! The packing is `zpool::handle`'s, with zsmalloc's widths in [`HANDLE_LAYOUT`].
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
//! | `Pair` (default): the page-table method, zsmalloc's `USE_PGTABLE_MAPPING` on ARM until Linux 5.8 | [`PageMemory::with_pages2`]: both frames as one slice (two adjacent kmap slots) | 1 | lands |
//! | `Copy`: the copy method, zsmalloc's per-CPU `vm_buf` on x86 (everywhere since 5.8) | both parts into the copy buffer, the closure there, back out; no copy-in for `WriteOnly`, no copy-back for `ReadOnly` | 2 (4 for `ReadWrite`) | is lost |
//!
//! Why `Pair` is the default here: zkernel has no direct map, so *every* frame is reached through a
//! temporary mapping anyway. The copy method pays two single-frame mappings plus up to 4 KiB of copying
//! for a spanning object; the page-table method pays one two-slot mapping and no copy. x86 Linux chose
//! the copy because its direct map makes a single-frame access free while a page-table change is not;
//! here neither access is free, and `tests/bench_pools.rs` measures both under kmap
//! (`zsmalloc_map_all_pair` against `zsmalloc_map_all_copy`, `cargo xtask bench`).
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
//! *When* to compact is the caller's choice. Linux registers a shrinker per pool (4.1 on): its count is
//! `zs_can_compact` summed ([`Zsmalloc::can_compact_pages`]) and its scan is `zs_compact`. tmem asks
//! [`Zsmalloc::fragmentation`] after each free (O(classes)) and compacts when the part compaction can
//! give back passes a threshold (tmem's "Compaction under pressure").
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
//! `data/perl-heap.pages.gz`, same-filled pages skipped, pages above 3584 stored bytes stored whole;
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
//! # Source files
//!
//! | file | holds |
//! |---|---|
//! | `lib.rs` | this header, the pool and its tables, `malloc`/`free`/`map` and the other [`ZPool`] glue |
//! | `class.rs` | class math: class indexes, chain sizes, merging, fullness groups ([`SizeClass`], [`chain_size`]) |
//! | `handle.rs` | the handle table's entry and handle encode/lookup ([`HANDLE_LAYOUT`] over `zpool::handle`) |
//! | `span.rs` | where an object's bytes are in its frames, and mapping one that spans two ([`SpanMap`]) |
//! | `compact.rs` | compaction ([`ZPool::compact`]) |
//! | `fragmentation.rs` | fragmentation, its floor and the frames compaction could free, for a shrinker ([`Zsmalloc::fragmentation`], [`Zsmalloc::can_compact_pages`]) |
//! | `verify.rs` | the self-check ([`Zsmalloc::verify`], [`VerifyError`]) |
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

use frame::{FrameError, Owner, Pfn};
use pagemem::{FrameSource, PAGE, PageMemory};
use zpool::handle::{FIRST_GENERATION, new_pool_tag};
// `NIL` is "no zspage" in a list link, a handle slot or a back-reference.
use zpool::slotlist::{self, EMPTY, Link, List, NIL, UNLINKED, push_front, unlink};
use zpool::{Handle, MapMode, PoolError, PoolStats, ZPool};

mod class;
mod compact;
mod fragmentation;
mod handle;
mod span;
mod verify;

#[cfg(test)]
mod tests;

pub use class::{
    DEFAULT_PAGES_PER_ZSPAGE, FULLNESS_EMPTY, FULLNESS_FULL, FULLNESS_GROUPS, MAX_OBJS_PER_ZSPAGE, SizeClass,
    ZS_HANDLE_SIZE, ZS_MAX_ALLOC_SIZE, ZS_MAX_PAGES_PER_ZSPAGE, ZS_MIN_ALLOC_SIZE, ZS_SIZE_CLASS_DELTA,
    ZS_SIZE_CLASSES, chain_size, class_index, fullness_group, huge_class_size, index_size,
};
pub use fragmentation::Fragmentation;
pub use handle::HANDLE_LAYOUT;
pub use span::SpanMap;
pub use verify::VerifyError;

use class::build_classes;
use handle::{MAX_SLOTS, Slot};
use span::{spot, with_bytes};

const BITMAP_WORDS: usize = MAX_OBJS_PER_ZSPAGE / 64;

/// The `group` of a zspage that is on no list (vacant, or isolated by compaction).
const UNLISTED: u8 = u8::MAX;

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
            tag: new_pool_tag(),
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

    /// The smallest object that goes to this pool's huge class (Linux's `zs_huge_class_size(pool)`): what
    /// zram's threshold for storing a page whole is ([`huge_class_size`] of the pool's chain).
    pub fn huge_class_size(&self) -> usize {
        class::huge_from(self.cfg.max_pages_per_zspage)
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

    fn fail(&mut self, e: impl Into<PoolError>) -> PoolError {
        self.stats.failures += 1;
        e.into()
    }

    /// The fullest zspage of class `c` with a free object (Linux's `find_get_zspage`).
    fn find_zspage(&self, c: usize) -> Option<u32> {
        let lists = &self.classes[c].lists;
        (FULLNESS_EMPTY..FULLNESS_FULL).rev().map(|g| lists[g].head).find(|&z| z != NIL)
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
        let generation = self.handles.get(slot as usize).map_or(FIRST_GENERATION, |s| s.generation);
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
            Slot { zspage: self.free_handle, generation: HANDLE_LAYOUT.next_generation(s.generation), size: 0, obj: 0 };
        self.free_handle = slot;
        self.stats.objects -= 1;
        self.stats.object_bytes -= u64::from(s.size);
        self.stats.frees += 1;
        Ok(())
    }

    /// An object inside one frame is mapped directly; one that spans two frames as [`Config::span`] says.
    fn map<R>(&mut self, handle: Handle, mode: MapMode, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, PoolError> {
        let slot = self.lookup(handle)?;
        self.map_slot(slot, mode, f)
    }

    fn size_of(&self, handle: Handle) -> Result<usize, PoolError> {
        let slot = self.lookup(handle)?;
        Ok(self.handles[slot as usize].size as usize)
    }

    fn total_pages(&self) -> u64 {
        self.stats.pages
    }

    fn metadata_growth(&self) -> usize {
        // One handle slot and one zspage slot at most (each only if no vacant one is left), and the frame
        // list of a fresh zspage.
        let slot = if self.free_handle == NIL { zpool::vec_growth(&self.handles, 1) } else { 0 };
        let zspage = if self.free_zspage == NIL { zpool::vec_growth(&self.zspages, 1) } else { 0 };
        slot + zspage + self.cfg.max_pages_per_zspage * core::mem::size_of::<Pfn>()
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

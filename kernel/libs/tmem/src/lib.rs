//! tmem, transcendent memory: pools of compressed pages named by a key, with a memory limit and an LRU.
//! Linux's `drivers/staging/zcache/tmem.c` (with the parts of `zcache-main.c` that chose the pools and
//! kept the pampds); [`frontswap`] puts `mm/frontswap.c` on top of it, and [`cleancache`] `mm/cleancache.c`:
//! clean file pages the page cache evicts, in ephemeral pools whose gets are exclusive.
//!
//! # Why
//!
//! A kernel that reclaims a page has two places to put it: the swap device (slow) or, compressed, RAM it
//! already has. tmem is the second place seen as a *key–value store of pages*: the code that gives a
//! page up (swap, the page cache) does not say where the page goes, only under which name it may ask for
//! it back. It may be refused — tmem has a memory limit — and then the caller does what it would have done
//! without tmem: write the page to its device or simply drop it. That one narrow interface let Linux put
//! the same hooks (frontswap, cleancache) in front of zcache, of Xen's hypervisor memory and of RAMster.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | pool | a namespace of pages with one [`PoolKind`] and one allocator ([`Backend`]); created by [`Tmem::new_pool`], named by a [`PoolId`] that is never reused |
//! | key | [`Key`]`{ pool, oid, index }`: Linux's `(pool_id, tmem_oid, index)`; frontswap uses (swap type, offset), cleancache (inode, page index) |
//! | object | all pages of one pool with the same `oid` (a file, a slice of a swap area); [`Tmem::flush_object`] drops them together |
//! | put / get / flush | store a page under a key / copy it back / forget it (Linux `tmem_put`, `tmem_get`, `tmem_flush_page`, `tmem_flush_object`, `tmem_destroy_pool`) |
//! | persistent pool | a put that succeeded holds until flushed; gets do not remove (frontswap's pool) |
//! | ephemeral pool | tmem may drop any page at any time to make room; a get removes the page it returns (cleancache's pool) |
//! | pampd | what tmem keeps per page: "pointer to a page-accessible memory descriptor" — here a [`zstore::Entry`]: the word of a same-filled page, or a pool handle with the compressed length and the compressor id |
//! | pool frames | frames all pools' allocators hold ([`Tmem::total_pages`]); the memory limit counts these |
//! | full | the state between hitting the limit and falling below the accept threshold (zswap's `zswap_pool_reached_full`) |
//!
//! # Pool kinds and backends
//!
//! | kind | get | may tmem drop pages? | default backend | why that backend (zcache) |
//! |---|---|---|---|---|
//! | [`PoolKind::Persistent`] | non-exclusive: the page stays until `flush_page` | never | [`Backend::Zsmalloc`] | density: every persistent page costs RAM until the swap slot is freed |
//! | [`PoolKind::Ephemeral`] | exclusive: the page is removed | yes, oldest first | [`Backend::Zbud`] | dropping one zbud page frees a whole frame at once |
//!
//! zcache kept persistent pages in xvmalloc (zsmalloc's ancestor) and ephemeral ones in zbud for exactly
//! those reasons; [`Tmem::new_pool`] takes `None` for that default or an explicit backend: any of
//! [`Backend::ALL`]. [`Backend::Xvmalloc`] is zcache's own persistent allocator; [`Backend::Xcfmalloc`]
//! keeps up to 32 empty frames in reserve, and those count against the limit like any other frame.
//!
//! # Ephemeral reclaim: object order or zbud frames
//!
//! [`Config::ephemeral_reclaim`] says how tmem makes room among ephemeral pages (both under the limit and
//! when an allocator is out of memory). Each step starts from the oldest ephemeral page of all pools:
//!
//! | mode | one step | pages dropped per frame freed |
//! |---|---|---|
//! | [`EphemeralReclaim::ObjectOrder`] (default) | drop that page | unbounded: a page whose zbud buddy stays frees nothing |
//! | [`EphemeralReclaim::ZbudFrames`] | if its pool is zbud, evict that pool's least recently allocated-into frame and drop the 1 or 2 pages it held; else drop the page | 1 to 2: every eviction frees exactly one frame |
//!
//! zcache's `zbud_evict_pages` freed whole zbud frames (unbuddied ones first, then buddied) and flushed
//! the tmem keys it read from each page's `zbud_hdr {client, pool, oid, index}`. Here the back-reference
//! lives in tmem instead: each ephemeral zbud pool keeps a map handle → `(oid, index)`, one entry per page
//! holding a pool object, so zbud stays an allocator that knows nothing of tmem's keys (and its header
//! stays its own layout). zbud's eviction callback hands tmem each handle; tmem looks up the key and
//! accepts — the pages are clean, nothing is written back — and after the frame is freed it drops those
//! keys (`ephemeral_drops`, `zbud_frames_evicted`). A handle without a key refuses the eviction
//! (`zbud_evict_failures`, should stay 0) and the step drops in object order. zbud's LRU is by allocation,
//! so the frame evicted may not hold the oldest page; it never holds a persistent one.
//!
//! `ephemeral_frames_freed` counts frames the steps gave back in either mode, so
//! [`TmemStats::drops_per_frame_milli`] (pages lost per frame won; ≥ 1000 always) and its inverse
//! [`TmemStats::frames_per_drop_milli`] (≤ 1000 always) compare the modes. Two zbud frames F1 = {a, e},
//! F2 = {c, d}, a the oldest page and F1 the last allocated into; one frame must go:
//!
//! ```text
//!   object order   drop a (F1 keeps e), drop c (F2 keeps d), drop d: F2 freed   3 pages for 1 frame
//!   zbud frames    evict zbud's LRU tail F2: drop c and d, F2 freed              2 pages for 1 frame
//! ```
//!
//! # zcache's rules for persistent pages
//!
//! zcache (3.1–3.7, `zcache_pampd_create`) judged every *persistent* put by three tunables, which
//! [`Config`] carries under their Linux names with zcache's defaults, in zcache's order:
//!
//! | rule | refuses a persistent put when | default | error, counter |
//! |---|---|---|---|
//! | `zv_page_count_policy_percent` | persistent pages held > percent × `totalram_pages` / 100 (checked before compressing; off while [`Config::totalram_pages`] is 0) | 75 | [`TmemError::PageCountPolicy`], `page_count_policy_refused` |
//! | `zv_max_zsize` | stored bytes > `zv_max_zsize` | 3584 (7/8 page) | [`TmemError::Incompressible`], `compress_poor` |
//! | `zv_max_mean_zsize` | stored bytes > `zv_max_mean_zsize` *and* persistent pages > 0 *and* the persistent pools' frames × 4096 ÷ persistent pages > `zv_max_mean_zsize` | 2560 (5/8 page) | [`TmemError::Incompressible`], `mean_compress_poor` |
//!
//! zcache compared its bare LZO length; this store compares the stored bytes, 5 bytes more (the
//! `compress` frame). Ephemeral pages were bounded only by zbud's largest buddy, as here by the allocator.
//! [`Config::without_zv_rules`] turns all three off. The store's own [`Policy::threshold`] still applies to
//! every pool (zswap's `reject_compress_poor`, which counts all size refusals, zcache's included).
//!
//! # Storage
//!
//! ```text
//!   Tmem ── pools: BTreeMap<pool id, Pool>             lru[kind]: BTreeMap<seq, Key>   (oldest first)
//!             │
//!             Pool ── store: Zstore<Zsmalloc|Zbud|Xvmalloc|Xcfmalloc>  (the allocator and the glue)
//!                  ── objects: BTreeMap<oid, BTreeMap<index, Slot { entry: pampd, seq }>>
//!                  ── lru: BTreeMap<seq, (oid, index)>  (this pool's pages, oldest first)
//!                  ── by_handle: BTreeMap<handle, (oid, index)>  (ephemeral zbud pools only)
//! ```
//!
//! Every stored page gets the next value of one store-order sequence. It keys three ordered indexes — the
//! pool's own, and one per kind across all pools — so "the oldest page of this pool" ([`Tmem::oldest`]) and
//! "the oldest ephemeral page anywhere" (what a drop takes) are both O(log n). A get does not move a page:
//! the order is by store, as zswap's LRU is for pages that are loaded and then freed.
//!
//! # Memory limit, with hysteresis
//!
//! [`Config::limit_pages`] bounds the pool frames of all pools together (zswap's `max_pool_percent`);
//! [`Config::accept_percent`] is zswap's `accept_thr_percent`. Before every store:
//!
//! 1. If tmem is not full and `total_pages() >= limit`, it becomes full (counted as `pool_limit_hit`).
//! 2. While full, and at or above `accept = limit × accept_percent / 100`, it compacts the pools (zsmalloc
//!    gives back frames without losing a page) and then reclaims ephemeral pages, starting from the oldest
//!    across all ephemeral pools (`ephemeral_drops`; one page, or one zbud frame's pages, at a time: see
//!    "Ephemeral reclaim"), until it is below `accept` or no ephemeral page is left.
//! 3. Below `accept` it is no longer full and the store goes ahead; otherwise the put is refused with
//!    [`TmemError::Full`] (`refused_full`).
//!
//! The gap between `limit` and `accept` is the hysteresis: without it a tmem at its limit would accept
//! and refuse pages alternately, and the swap device would see a trickle of writes instead of none. The
//! limit is checked before a store, so one store may take the frames of one new zspage past it (at most
//! four with zsmalloc's default chain, one with zbud).
//!
//! Independently of the limit, when an allocator is out of memory ([`zpool::PoolError::OutOfMemory`]),
//! tmem drops ephemeral pages, oldest first, until the pool frames go down by one (zsmalloc frees a frame
//! only when a whole zspage empties, so that may take several) or none is left, and tries the store once
//! more. In the kernel all pools take frames from one allocator, so a frame freed anywhere helps.
//!
//! # Compaction under pressure
//!
//! zsmalloc frees a zspage only when its last page goes; every other swap-in, flush or writeback leaves a
//! hole that only compaction fills, and the limit's compaction (step 2 above) runs only when tmem is
//! full. Linux (4.1 on) registers a shrinker per zsmalloc pool: `zs_shrinker_count` sums `zs_can_compact`
//! over the classes, `zs_shrinker_scan` runs `zs_compact` and reports the frames freed. tmem runs the
//! same check after every operation that frees a page of a pool — a replacing put, an ephemeral get,
//! `flush_page`, `flush_object`, an ephemeral drop, [`Tmem::writeback_oldest`] (before it writes back
//! too) — on that pool, reading only its per-class counters ([`Tmem::pool_fragmentation`], O(classes)):
//!
//! | figure | meaning |
//! |---|---|
//! | fragmentation | free bytes in partly used zspages ÷ pool bytes ([`Fragmentation`]) |
//! | floor | what a full compaction would leave: each class with at most one partly used zspage |
//! | excess | fragmentation − floor; > 0 exactly when compaction can free a frame ([`Tmem::pool_can_compact_pages`]) |
//!
//! The pool is compacted when its excess is more than [`Config::compact_threshold_percent`] of its
//! bytes (`compactions_triggered`, `shrinker_pages_compacted`). Compaction takes the pool to its floor, so
//! after every operation the excess is at most the threshold: the threshold is also the hysteresis. When
//! an allocator is out of memory, every zsmalloc pool that can free a frame is compacted before any
//! ephemeral page is dropped, and the store is retried (`oom_retries`).
//!
//! Why the excess and not the fragmentation itself: the floor alone is large in a pool of zkernel's
//! size (70 classes in use, each with a partly used zspage of up to 4 frames): 30–45 % of a 250-frame
//! pool of perl pages (`tests/compaction_churn.rs`). A threshold on the fragmentation would then fire
//! whenever a single zspage could be freed, which is the threshold 0 here. Why 2 % by default: a
//! compaction frees whole zspages, so a threshold of a few zspages' worth batches the work; in the churn
//! run (30 000 steps, 250-frame limit) thresholds 0, 1, 2, 5, 10 % ran 2018, 1203, 614, 95, 19
//! compactions for 0.574, 0.581, 0.588, 0.590, 0.597 pool frames per stored page (off: 0.613, with the
//! excess up to 15.6 points); 2 % keeps the excess well inside 5 points while running a third as many
//! compactions as 0 %. `None` turns it off.
//!
//! # Worked example
//!
//! Limit 10 frames, accept 90 % (9 frames). A persistent pool (zsmalloc) holds pages in 6 frames, an
//! ephemeral pool (zbud) 4 pages in 4 frames, one page each — 10 in all:
//!
//! ```text
//!   put(persistent, k1)   10 >= 10: full (pool_limit_hit 1). 10 >= 9: compact (nothing to gain), then drop
//!                         the oldest ephemeral page; its frame is freed: 9, still >= 9. Drop the next: 8 < 9.
//!                         Not full any more; k1 is stored.              ephemeral_drops 2, frames 8
//!   put(persistent, ...)  not full and 8 < 10: stored, until the pools hold 10 frames again
//!   put(persistent, kn)   full; both ephemeral pages dropped; say the persistent pool alone still holds
//!                         9 frames: 9 >= 9, refused with Full (refused_full 1); nothing stored under kn
//!   put(ephemeral, e9)    still full, 9 >= 9: refused too
//!   flush_page(k1), ...   the persistent pool shrinks to 8 frames: the next put is stored, not full
//! ```
//!
//! # Example
//!
//! ```
//! use pagemem::HostMemory;
//! use tmem::{Algorithm, Compressor, Config, Key, PAGE_SIZE, PoolKind, Tmem, TmemError};
//!
//! let mut comp = Compressor::new(Algorithm::Lz4).unwrap(); // the kernel keeps one per CPU
//! let mut tmem = Tmem::new(Config::new(64)); // at most 64 pool frames
//! let swap = tmem.new_pool(PoolKind::Persistent, None, HostMemory::new(64)).unwrap();
//! let cache = tmem.new_pool(PoolKind::Ephemeral, None, HostMemory::new(64)).unwrap();
//! let mut page = [0u8; PAGE_SIZE];
//! page[..5].copy_from_slice(b"hello");
//! tmem.put(&mut comp, Key::new(swap, 1, 0), &page).unwrap();
//! tmem.put(&mut comp, Key::new(cache, 7, 3), &page).unwrap();
//!
//! let mut out = [0u8; PAGE_SIZE];
//! tmem.get(&mut comp, Key::new(swap, 1, 0), &mut out).unwrap(); // persistent: the page stays
//! tmem.get(&mut comp, Key::new(cache, 7, 3), &mut out).unwrap(); // ephemeral: the get takes it
//! assert_eq!(out, page);
//! assert!(tmem.contains(Key::new(swap, 1, 0)));
//! assert_eq!(tmem.get(&mut comp, Key::new(cache, 7, 3), &mut out), Err(TmemError::NotFound));
//! assert_eq!(tmem.destroy_pool(swap), Ok(1));
//! assert_eq!(tmem.flush_page(Key::new(swap, 1, 0)), Err(TmemError::NoSuchPool(swap)));
//! ```
//!
//! # Contracts
//!
//! - Every operation names its pool; a pool that does not exist or was destroyed is
//!   [`TmemError::NoSuchPool`] (counted in `no_such_pool`, in no other counter). Pool ids are never reused.
//! - A put to a key that holds a page replaces it: the old copy is flushed *first*, so a put that then fails
//!   leaves the key absent — never the stale page.
//! - A put that fails stores nothing: [`TmemError::Full`], [`TmemError::Incompressible`] (zswap's
//!   `reject_compress_poor`), [`TmemError::OutOfMemory`] and [`TmemError::Store`] (`reject_alloc_fail`
//!   and friends). The caller keeps the page.
//! - Persistent pages leave tmem only through `flush_page`, `flush_object`, `destroy_pool`, a replacing
//!   put, or [`Tmem::writeback_oldest`]. Ephemeral pages may also leave through drops, and every drop is
//!   counted in `ephemeral_drops`: nothing is lost silently.
//! - A get returns the exact page or an error. [`TmemError::Corrupt`] means the stored bytes failed the
//!   compressor's check; the page is then kept in a persistent pool (the caller decides) and removed from
//!   an ephemeral one (its get is exclusive anyway).
//! - After every operation that frees a page, a zsmalloc pool's excess is at most
//!   [`Config::compact_threshold_percent`] of its bytes (unless off, or a compaction failed part-way).
//! - No operation panics on any input. tmem allocates on the heap only for its indexes (one slot and three
//!   index entries per page, a fourth in ephemeral zbud pools), never for page data; the compressor
//!   brings its buffers.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::collections::btree_map::Entry as MapEntry;
use core::fmt;

pub use compress::{Algorithm, Compressor, PAGE_SIZE};
use pagemem::{FrameSource, PageMemory};
use xcfmalloc::Xcfmalloc;
use xvmalloc::Xvmalloc;
use zbud::Zbud;
use zpool::Handle;
use zpool::{PoolError, ZPool};
pub use zsmalloc::Fragmentation;
use zsmalloc::Zsmalloc;
use zstore::Zstore;
pub use zstore::{Entry, Policy, StoreError, StoreStats};

pub mod cleancache;
pub mod frontswap;

#[cfg(test)]
mod tests;

/// One page of data.
pub type Page = [u8; PAGE_SIZE];

/// Whether a pool keeps its pages until told otherwise (see the module header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PoolKind {
    /// Pages stay until flushed; gets are non-exclusive (frontswap; Linux `TMEM_POOL_PERSIST`).
    Persistent,
    /// tmem may drop pages to make room; a get removes the page (cleancache).
    Ephemeral,
}

impl PoolKind {
    fn lru(self) -> usize {
        match self {
            PoolKind::Persistent => 0,
            PoolKind::Ephemeral => 1,
        }
    }

    /// The allocator zcache chose for this kind.
    pub const fn default_backend(self) -> Backend {
        match self {
            PoolKind::Persistent => Backend::Zsmalloc,
            PoolKind::Ephemeral => Backend::Zbud,
        }
    }
}

/// The allocator a pool keeps its compressed pages in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Backend {
    /// Dense size classes, objects spanning frames, compaction (`zsmalloc` crate).
    Zsmalloc,
    /// At most two objects per frame; dropping pages frees frames quickly (`zbud` crate). The one
    /// backend that evicts: [`EphemeralReclaim::ZbudFrames`].
    Zbud,
    /// zcache's first persistent-page allocator: TLSF-style free lists over single frames (`xvmalloc`
    /// crate, Linux `drivers/staging/zram/xvmalloc.c`).
    Xvmalloc,
    /// xvmalloc's proposed successor for zcache: objects split into blocks across frames (`xcfmalloc`
    /// crate, Seth Jennings' 2011 patch).
    Xcfmalloc,
}

impl Backend {
    /// Every backend, in declaration order.
    pub const ALL: [Backend; 4] = [Backend::Zsmalloc, Backend::Zbud, Backend::Xvmalloc, Backend::Xcfmalloc];

    /// The name a boot option would use.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Zsmalloc => "zsmalloc",
            Backend::Zbud => "zbud",
            Backend::Xvmalloc => "xvmalloc",
            Backend::Xcfmalloc => "xcfmalloc",
        }
    }

    /// The backend a boot option names ([`Backend::name`]), if any.
    pub fn from_name(name: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.name() == name)
    }

    /// Whether the allocator can free one whole frame of objects on demand (`ZPool::evict`): zbud only.
    pub const fn evicts(self) -> bool {
        matches!(self, Backend::Zbud)
    }
}

/// How tmem makes room in ephemeral pools (module header, "Ephemeral reclaim").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EphemeralReclaim {
    /// Drop the oldest ephemeral page of all pools, one page at a time, in store order, until enough
    /// frames came free (zswap's LRU order, applied to pages).
    ObjectOrder,
    /// If the oldest ephemeral page lives in a zbud pool, have that pool evict its least recently
    /// allocated-into frame and drop the one or two pages it held (zcache's `zbud_evict_pages`); each
    /// step frees exactly one frame. Pools of other backends fall back to [`EphemeralReclaim::ObjectOrder`].
    ZbudFrames,
}

/// A pool's name. Ids count up from 0 and are never reused, so a destroyed pool's id stays refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PoolId(pub u32);

/// The name of one page: Linux's `(pool_id, struct tmem_oid, index)`. (Linux's oid is three words; one is
/// plenty for the users here: frontswap packs the swap type and low offset bits into it, cleancache the
/// inode number.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub pool: PoolId,
    /// Object id: which file, which slice of a swap area.
    pub oid: u64,
    /// The page's index within its object.
    pub index: u32,
}

impl Key {
    pub const fn new(pool: PoolId, oid: u64, index: u32) -> Self {
        Key { pool, oid, index }
    }
}

/// How much tmem may hold and how it compresses (see the module header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The most pool frames all of tmem may hold before it is full (zswap's `max_pool_percent`, as pages).
    pub limit_pages: u64,
    /// After hitting the limit, puts are accepted again only once the pool frames are below
    /// `limit_pages × accept_percent / 100` (zswap's `accept_thr_percent`; values above 100 count as 100).
    pub accept_percent: u8,
    /// What the page store does with same-filled and poorly compressing pages.
    pub policy: Policy,
    /// How room is made in ephemeral pools.
    pub ephemeral_reclaim: EphemeralReclaim,
    /// zcache's `zv_max_zsize`: a persistent page whose stored bytes exceed this is refused
    /// ([`TmemError::Incompressible`], counted in `compress_poor`). Default 3584, 7/8 of a page.
    pub zv_max_zsize: usize,
    /// zcache's `zv_max_mean_zsize`: a persistent page whose stored bytes exceed this is refused *while*
    /// the persistent pools' mean cost per page — their frames × 4096 ÷ the persistent pages held, zcache's
    /// `xv_get_total_size_bytes / zcache_curr_pers_pampd_count` — exceeds it too (counted in
    /// `mean_compress_poor`). Default 2560, 5/8 of a page.
    pub zv_max_mean_zsize: usize,
    /// zcache's `zv_page_count_policy_percent`: a persistent put is refused
    /// ([`TmemError::PageCountPolicy`]) when the persistent pages already held exceed
    /// `zv_page_count_policy_percent × totalram_pages / 100`. Default 75.
    pub zv_page_count_policy_percent: u32,
    /// The machine's RAM in pages (Linux `totalram_pages`), the base of the page-count rule. 0, the
    /// default of [`Config::new`], turns that rule off: tmem cannot know the machine's size.
    pub totalram_pages: u64,
    /// Compaction under pressure (module header): after a free, a zsmalloc pool whose excess — free
    /// bytes in partly used zspages above the floor a full compaction would leave — is more than this
    /// percent of its pool bytes is compacted (Linux's `zs_shrinker_scan`). `None` turns it off: zsmalloc
    /// is then compacted only at the limit and by [`Tmem::compact`], as before. `Some(0)` compacts
    /// whenever a whole zspage could be freed; values above 100 never fire. Default
    /// [`Config::DEFAULT_COMPACT_THRESHOLD_PERCENT`].
    pub compact_threshold_percent: Option<u8>,
}

impl Config {
    /// zswap's default hysteresis.
    pub const DEFAULT_ACCEPT_PERCENT: u8 = 90;

    /// zcache's `zv_max_zsize` default: 7/8 of a page.
    pub const ZV_MAX_ZSIZE: usize = PAGE_SIZE / 8 * 7;
    /// zcache's `zv_max_mean_zsize` default: 5/8 of a page.
    pub const ZV_MAX_MEAN_ZSIZE: usize = PAGE_SIZE / 8 * 5;
    /// zcache's `zv_page_count_policy_percent` default.
    pub const ZV_PAGE_COUNT_POLICY_PERCENT: u32 = 75;
    /// The default of [`Config::compact_threshold_percent`]: 2 % (module header, "Compaction under
    /// pressure", why).
    pub const DEFAULT_COMPACT_THRESHOLD_PERCENT: u8 = 2;

    /// A limit of `limit_pages` pool frames, accept at 90 %, the default [`Policy`], object-order
    /// reclaim, zcache's three persistent-page rules at zcache's defaults (the page-count rule off
    /// until [`Config::totalram_pages`] is set), and compaction under pressure at
    /// [`Config::DEFAULT_COMPACT_THRESHOLD_PERCENT`].
    pub const fn new(limit_pages: u64) -> Self {
        Config {
            limit_pages,
            accept_percent: Self::DEFAULT_ACCEPT_PERCENT,
            policy: Policy::DEFAULT,
            ephemeral_reclaim: EphemeralReclaim::ObjectOrder,
            zv_max_zsize: Self::ZV_MAX_ZSIZE,
            zv_max_mean_zsize: Self::ZV_MAX_MEAN_ZSIZE,
            zv_page_count_policy_percent: Self::ZV_PAGE_COUNT_POLICY_PERCENT,
            totalram_pages: 0,
            compact_threshold_percent: Some(Self::DEFAULT_COMPACT_THRESHOLD_PERCENT),
        }
    }

    /// The same configuration with zcache's three persistent-page rules off: no size above the store's
    /// own threshold is refused for itself or for the mean, and no page count is capped.
    pub const fn without_zv_rules(self) -> Self {
        Config { zv_max_zsize: usize::MAX, zv_max_mean_zsize: usize::MAX, totalram_pages: 0, ..self }
    }

    /// The most persistent pages the page-count rule lets tmem already hold when a persistent put
    /// arrives; `None` when the rule is off (`totalram_pages` 0). zcache refuses only *above* it, so up to
    /// `cap + 1` pages can be held.
    pub const fn zv_page_count_cap(&self) -> Option<u64> {
        if self.totalram_pages == 0 {
            return None;
        }
        Some((self.zv_page_count_policy_percent as u128 * self.totalram_pages as u128 / 100) as u64)
    }

    /// The pool frames below which a full tmem accepts puts again.
    pub const fn accept_pages(&self) -> u64 {
        let pct = if self.accept_percent > 100 { 100 } else { self.accept_percent as u128 };
        (self.limit_pages as u128 * pct / 100) as u64
    }
}

/// Why a tmem operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TmemError {
    /// No live pool has this id (never created, or destroyed).
    NoSuchPool(PoolId),
    /// `get` (or an operation on one page) found no page under the key.
    NotFound,
    /// tmem is at its limit and could not make room: the put was refused.
    Full,
    /// The page compresses to `size` stored bytes, above the policy's threshold (`reject_compress_poor`).
    Incompressible { size: usize },
    /// The pool's allocator had no frame, even after dropping ephemeral pages.
    OutOfMemory,
    /// The stored bytes did not decode to the page that was stored.
    Corrupt,
    /// The operation needs a persistent pool (writeback).
    NotPersistent(PoolId),
    /// All 2^32 pool ids have been used.
    TooManyPools,
    /// zcache's `zv_page_count_policy_percent`: the persistent pools already hold `persistent_pages`,
    /// more than `cap` ([`Config::zv_page_count_cap`]).
    PageCountPolicy { persistent_pages: u64, cap: u64 },
    /// The metadata gate ([`Tmem::set_metadata_gate`]) refused: the kernel's heap could not promise the
    /// `bytes` of bookkeeping a put may allocate (`refused_metadata`).
    NoMetadataMemory { bytes: usize },
    /// Any other refusal of the page store or its allocator.
    Store(StoreError),
}

impl From<StoreError> for TmemError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Incompressible { size } => TmemError::Incompressible { size },
            StoreError::Pool(PoolError::OutOfMemory) => TmemError::OutOfMemory,
            StoreError::Corrupt | StoreError::UnknownAlgorithm(_) => TmemError::Corrupt,
            e => TmemError::Store(e),
        }
    }
}

impl fmt::Display for TmemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TmemError::NoSuchPool(id) => write!(f, "no tmem pool {}", id.0),
            TmemError::NotFound => write!(f, "no page under that key"),
            TmemError::Full => write!(f, "tmem is full"),
            TmemError::Incompressible { size } => write!(f, "the page compresses to {size} bytes, above the threshold"),
            TmemError::OutOfMemory => write!(f, "the pool is out of memory"),
            TmemError::Corrupt => write!(f, "the stored page is corrupt"),
            TmemError::NotPersistent(id) => write!(f, "tmem pool {} is not persistent", id.0),
            TmemError::TooManyPools => write!(f, "no tmem pool id left"),
            TmemError::PageCountPolicy { persistent_pages, cap } => {
                write!(f, "{persistent_pages} persistent pages held, above the page-count cap {cap}")
            }
            TmemError::NoMetadataMemory { bytes } => {
                write!(f, "no heap for the put's bookkeeping ({bytes} bytes could not be promised)")
            }
            TmemError::Store(e) => write!(f, "page store: {e}"),
        }
    }
}

/// tmem's counters: the shared report type itself (`zstats::TmemReport`; names follow zswap, zram and
/// zcache where one exists), so what tmem counts is what `@@stats` prints and xtask reads back. Every
/// counter of a per-page operation counts only calls that named a live pool; the others count in
/// `no_such_pool`.
pub use zstats::TmemReport as TmemStats;

/// One pool's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub kind: PoolKind,
    pub backend: Backend,
    /// Pages held.
    pub stored_pages: u64,
    /// Objects (distinct oids) with at least one page.
    pub objects: u64,
    /// The page store's counters for this pool.
    pub store: StoreStats,
    /// Frames the pool's allocator holds.
    pub pool_pages: u64,
}

/// One held page: its pampd and its place in the store order.
#[derive(Debug)]
struct Slot {
    entry: Entry,
    seq: u64,
}

/// The page store of one pool, over any of the allocators (`ZPool` has generic methods, so no `dyn`).
/// Boxed: they differ in size by hundreds of bytes.
/// Where a put's stored bytes come from: compressed here, or by the caller beforehand.
enum PageIn<'a> {
    Compress(&'a mut Compressor),
    Prepared(&'a zstore::Prepared),
}

#[derive(Debug)]
enum Store<M> {
    Zsmalloc(Box<Zstore<Zsmalloc<M>>>),
    Zbud(Box<Zstore<Zbud<M>>>),
    Xvmalloc(Box<Zstore<Xvmalloc<M>>>),
    Xcfmalloc(Box<Zstore<Xcfmalloc<M>>>),
}

macro_rules! dispatch {
    ($store:expr, $z:ident => $body:expr) => {
        match $store {
            Store::Zsmalloc($z) => $body,
            Store::Zbud($z) => $body,
            Store::Xvmalloc($z) => $body,
            Store::Xcfmalloc($z) => $body,
        }
    };
}

impl<M: PageMemory + FrameSource> Store<M> {
    fn new(backend: Backend, mem: M, policy: Policy) -> Self {
        match backend {
            Backend::Zsmalloc => Store::Zsmalloc(Box::new(Zstore::new(Zsmalloc::new(mem), policy))),
            Backend::Zbud => Store::Zbud(Box::new(Zstore::new(Zbud::new(mem), policy))),
            Backend::Xvmalloc => Store::Xvmalloc(Box::new(Zstore::new(Xvmalloc::new(mem), policy))),
            Backend::Xcfmalloc => Store::Xcfmalloc(Box::new(Zstore::new(Xcfmalloc::new(mem), policy))),
        }
    }

    fn store(&mut self, how: &mut PageIn<'_>, page: &Page, limit: usize) -> Result<Entry, StoreError> {
        match how {
            PageIn::Compress(comp) => dispatch!(self, z => z.store_within(comp, page, limit)),
            PageIn::Prepared(p) => dispatch!(self, z => z.store_prepared(p, page, limit)),
        }
    }

    fn evict(&mut self, writeback: &mut dyn FnMut(Handle, &[u8]) -> bool) -> Result<u64, StoreError> {
        dispatch!(self, z => z.evict(writeback))
    }

    fn load(&mut self, comp: &mut Compressor, entry: &Entry, page: &mut Page) -> Result<(), StoreError> {
        dispatch!(self, z => z.load(comp, entry, page))
    }

    fn free(&mut self, entry: Entry) -> Result<(), StoreError> {
        dispatch!(self, z => z.free(entry))
    }

    fn stats(&self) -> StoreStats {
        dispatch!(self, z => z.stats())
    }

    fn total_pages(&self) -> u64 {
        dispatch!(self, z => z.pool().total_pages())
    }

    fn metadata_growth(&self) -> usize {
        dispatch!(self, z => z.pool().metadata_growth())
    }

    fn compact(&mut self) -> Result<u64, StoreError> {
        dispatch!(self, z => z.compact())
    }

    /// The zsmalloc pool under the store, if that is the backend (the one with a fragmentation figure).
    fn zsmalloc(&self) -> Option<&Zsmalloc<M>> {
        match self {
            Store::Zsmalloc(z) => Some(z.pool()),
            _ => None,
        }
    }

    /// Give back the frames an allocator keeps empty on purpose (xcfmalloc's reserve), so that what is
    /// left after every object was freed is a leak.
    fn release_reserve(&mut self) {
        if let Store::Xcfmalloc(z) = self {
            let _ = z.pool_mut().release_reserve();
        }
    }
}

/// One tmem pool (Linux `struct tmem_pool`).
#[derive(Debug)]
struct Pool<M> {
    kind: PoolKind,
    backend: Backend,
    store: Store<M>,
    /// Linux keeps a hash of rb-trees of objects, each a radix tree of pampds; ordered maps do both here.
    objects: BTreeMap<u64, BTreeMap<u32, Slot>>,
    /// This pool's pages by store order.
    lru: BTreeMap<u64, (u64, u32)>,
    /// The back-reference zbud eviction needs: handle (raw) → `(oid, index)` of the page in that object.
    /// Kept only by ephemeral zbud pools ([`Pool::tracks`]); zcache kept it in the zbud page itself
    /// (`zbud_hdr`), see the module header.
    by_handle: BTreeMap<u64, (u64, u32)>,
    pages: u64,
}

impl<M> Pool<M> {
    fn slot(&self, oid: u64, index: u32) -> Option<&Slot> {
        self.objects.get(&oid)?.get(&index)
    }

    /// Whether this pool keeps handle back-references: only its frames are ever evicted.
    fn tracks(&self) -> bool {
        self.kind == PoolKind::Ephemeral && self.backend.evicts()
    }

    fn track(&mut self, entry: &Entry, oid: u64, index: u32) {
        if self.tracks()
            && let Some(h) = entry.handle()
        {
            self.by_handle.insert(h.raw(), (oid, index));
        }
    }

    fn untrack(&mut self, entry: &Entry) {
        if let Some(h) = entry.handle() {
            self.by_handle.remove(&h.raw());
        }
    }
}

/// Transcendent memory over pools whose allocators take frames from memories of type `M` (see the
/// module header).
#[derive(Debug)]
pub struct Tmem<M> {
    config: Config,
    pools: BTreeMap<u32, Pool<M>>,
    /// The next pool id; `u32::MAX + 1` once every id was used.
    next_pool: u64,
    /// The next store-order sequence number.
    seq: u64,
    /// Pages of every pool of a kind by store order, indexed by [`PoolKind::lru`].
    lru: [BTreeMap<u64, Key>; 2],
    full: bool,
    /// Where a writeback decompresses a page before handing it to its sink.
    scratch: Box<Page>,
    /// Asked before every put whether the heap can give the put's bookkeeping ([`Tmem::set_metadata_gate`]).
    metadata_gate: Option<MetadataGate>,
    stats: TmemStats,
}

/// A kernel's answer to "can the heap give `bytes` now?", asked before each put ([`Tmem::set_metadata_gate`]).
pub type MetadataGate = fn(bytes: usize) -> bool;

/// Upper bound of a `BTreeMap` node with keys of `k` bytes and values of `v` bytes: an internal node
/// (parent pointer, index and length, 11 keys, 11 values, 12 edges), alignment included.
const fn btree_node(k: usize, v: usize) -> usize {
    (8 + 2 + 2 + 11 * (k + v) + 12 * 8).next_multiple_of(8)
}

/// Nodes one insert can allocate in one map: a split per level and a new root. A B-tree whose nodes hold
/// at least 5 keys is at most 9 levels deep below 10^7 entries, far more than any tmem here holds.
const BTREE_INSERT_NODES: usize = 10;

/// The heap bytes one put may allocate for tmem's own maps, beyond what the pool asks for
/// (`ZPool::metadata_growth`): a new node chain in each map the put inserts into — the object map and the
/// object's page map, the pool's and the kind's store-order lists, and the handle back-references.
pub const PUT_METADATA_BYTES: usize = BTREE_INSERT_NODES
    * (btree_node(size_of::<u64>(), size_of::<BTreeMap<u32, Slot>>())
        + btree_node(size_of::<u32>(), size_of::<Slot>())
        + btree_node(size_of::<u64>(), size_of::<(u64, u32)>())
        + btree_node(size_of::<u64>(), size_of::<Key>())
        + btree_node(size_of::<u64>(), size_of::<(u64, u32)>()));

impl<M: PageMemory + FrameSource> Tmem<M> {
    /// An empty tmem.
    pub fn new(config: Config) -> Self {
        Tmem {
            config,
            pools: BTreeMap::new(),
            next_pool: 0,
            seq: 0,
            lru: [BTreeMap::new(), BTreeMap::new()],
            full: false,
            scratch: Box::new([0; PAGE_SIZE]),
            metadata_gate: None,
            stats: TmemStats::default(),
        }
    }

    /// Ask `gate(bytes)` before every put whether the heap can give what the put may allocate for
    /// bookkeeping: [`PUT_METADATA_BYTES`] plus the pool's table growth (`ZPool::metadata_growth`). A `false`
    /// refuses the put with [`TmemError::NoMetadataMemory`] (`refused_metadata`) before anything is
    /// allocated, so running out of heap is a refused store, never a failed allocation in the middle of
    /// one. `None` (the default, and host tests' usual heap) admits every put.
    pub fn set_metadata_gate(&mut self, gate: Option<MetadataGate>) {
        self.metadata_gate = gate;
    }

    pub fn config(&self) -> Config {
        self.config
    }

    /// Change the limit (a boot option or the shell); takes effect at the next put.
    pub fn set_limit(&mut self, limit_pages: u64, accept_percent: u8) {
        self.config.limit_pages = limit_pages;
        self.config.accept_percent = accept_percent;
    }

    /// A new, empty pool of `kind` whose allocator (`backend`, or the kind's default) takes its frames
    /// from `mem` (Linux `tmem_new_pool`).
    pub fn new_pool(&mut self, kind: PoolKind, backend: Option<Backend>, mem: M) -> Result<PoolId, TmemError> {
        let Ok(id) = u32::try_from(self.next_pool) else { return Err(TmemError::TooManyPools) };
        let backend = backend.unwrap_or(kind.default_backend());
        let store = Store::new(backend, mem, self.config.policy);
        let pool = Pool {
            kind,
            backend,
            store,
            objects: BTreeMap::new(),
            lru: BTreeMap::new(),
            by_handle: BTreeMap::new(),
            pages: 0,
        };
        self.pools.insert(id, pool);
        self.next_pool += 1;
        self.stats.created_pools += 1;
        Ok(PoolId(id))
    }

    /// The live pools, in id order.
    pub fn pool_ids(&self) -> impl Iterator<Item = PoolId> + '_ {
        self.pools.keys().map(|&id| PoolId(id))
    }

    /// The kind of a live pool.
    pub fn pool_kind(&self, pool: PoolId) -> Option<PoolKind> {
        self.pools.get(&pool.0).map(|p| p.kind)
    }

    /// The kind of `pool`, or `NoSuchPool` (counted).
    fn check_pool(&mut self, pool: PoolId) -> Result<PoolKind, TmemError> {
        match self.pools.get(&pool.0) {
            Some(p) => Ok(p.kind),
            None => {
                self.stats.no_such_pool += 1;
                Err(TmemError::NoSuchPool(pool))
            }
        }
    }

    /// Store a copy of `page` under `key`, compressing it with `comp` (the caller's per-CPU compressor).
    /// On `Err` nothing is stored under `key` — not even the page that was there before.
    pub fn put(&mut self, comp: &mut Compressor, key: Key, page: &Page) -> Result<(), TmemError> {
        self.put_from(PageIn::Compress(comp), key, page)
    }

    /// [`Tmem::put`] of a page the caller compressed already ([`zstore::Prepared::new`], with its
    /// per-CPU compressor and no lock held): the same rules and counters, without compressing here. A
    /// kernel that keeps tmem behind one lock takes it only for this part.
    pub fn put_prepared(&mut self, prepared: &zstore::Prepared, key: Key, page: &Page) -> Result<(), TmemError> {
        self.put_from(PageIn::Prepared(prepared), key, page)
    }

    fn put_from(&mut self, mut how: PageIn<'_>, key: Key, page: &Page) -> Result<(), TmemError> {
        let kind = self.check_pool(key.pool)?;
        self.stats.puts += 1;
        if let Some(old) = self.take_slot(key) {
            self.stats.puts_replaced += 1;
            let _ = self.release(key.pool, old.entry);
            self.shrink(key.pool);
        }
        // zcache's page-count rule comes before anything else, compression included.
        if kind == PoolKind::Persistent
            && let Some(cap) = self.config.zv_page_count_cap()
        {
            let held = self.kind_pages(PoolKind::Persistent);
            if held > cap {
                self.stats.put_failures += 1;
                self.stats.page_count_policy_refused += 1;
                return Err(TmemError::PageCountPolicy { persistent_pages: held, cap });
            }
        }
        if !self.make_room() {
            self.stats.refused_full += 1;
            return Err(TmemError::Full);
        }
        if let Some(gate) = self.metadata_gate {
            let growth = self.pools.get(&key.pool.0).map_or(0, |p| p.store.metadata_growth());
            let bytes = PUT_METADATA_BYTES + growth;
            if !gate(bytes) {
                self.stats.put_failures += 1;
                self.stats.refused_metadata += 1;
                return Err(TmemError::NoMetadataMemory { bytes });
            }
        }
        let (limit, mean_poor) = self.zv_limit(kind);
        let mut r = self.store_page(key.pool, &mut how, page, limit);
        if matches!(r, Err(StoreError::Pool(PoolError::OutOfMemory))) && self.shrink_for_memory() > 0 {
            self.stats.oom_retries += 1;
            r = self.store_page(key.pool, &mut how, page, limit);
        }
        if matches!(r, Err(StoreError::Pool(PoolError::OutOfMemory))) && self.drop_for_memory() {
            self.stats.oom_retries += 1;
            r = self.store_page(key.pool, &mut how, page, limit);
        }
        let entry = match r {
            Ok(entry) => entry,
            Err(e) => {
                self.stats.put_failures += 1;
                match e {
                    StoreError::Incompressible { size } => {
                        self.stats.reject_compress_poor += 1;
                        if kind == PoolKind::Persistent {
                            if size > self.config.zv_max_zsize {
                                self.stats.compress_poor += 1;
                            } else if mean_poor && size > self.config.zv_max_mean_zsize {
                                self.stats.mean_compress_poor += 1;
                            }
                        }
                    }
                    StoreError::Pool(_) => self.stats.reject_alloc_fail += 1,
                    _ => {}
                }
                return Err(e.into());
            }
        };
        let seq = self.seq;
        self.seq += 1;
        let Some(pool) = self.pools.get_mut(&key.pool.0) else { return Err(TmemError::NoSuchPool(key.pool)) };
        pool.track(&entry, key.oid, key.index);
        pool.objects.entry(key.oid).or_default().insert(key.index, Slot { entry, seq });
        pool.lru.insert(seq, (key.oid, key.index));
        pool.pages += 1;
        self.lru[kind.lru()].insert(seq, key);
        Ok(())
    }

    fn store_page(
        &mut self,
        pool: PoolId,
        how: &mut PageIn<'_>,
        page: &Page,
        limit: usize,
    ) -> Result<Entry, StoreError> {
        match self.pools.get_mut(&pool.0) {
            Some(p) => p.store.store(how, page, limit),
            // Unreachable: the caller checked the pool, and dropping pages never removes one.
            None => Err(StoreError::Pool(PoolError::OutOfMemory)),
        }
    }

    /// Pages held by all pools of `kind`.
    fn kind_pages(&self, kind: PoolKind) -> u64 {
        self.pools.values().filter(|p| p.kind == kind).map(|p| p.pages).sum()
    }

    /// The largest stored size a put to a pool of `kind` may have under zcache's `zv_max_zsize` and
    /// `zv_max_mean_zsize` (module header), and whether the mean rule is in force now. Ephemeral pools:
    /// no limit (zcache bounded them only by zbud's largest buddy, which the allocator enforces here).
    fn zv_limit(&self, kind: PoolKind) -> (usize, bool) {
        if kind != PoolKind::Persistent {
            return (usize::MAX, false);
        }
        let (mut pages, mut frames) = (0u64, 0u64);
        for p in self.pools.values().filter(|p| p.kind == PoolKind::Persistent) {
            pages += p.pages;
            frames += p.store.total_pages();
        }
        let mean = (frames as u128 * PAGE_SIZE as u128).checked_div(pages as u128);
        let mean_poor = mean.is_some_and(|m| m > self.config.zv_max_mean_zsize as u128);
        let max = self.config.zv_max_zsize;
        (if mean_poor { max.min(self.config.zv_max_mean_zsize) } else { max }, mean_poor)
    }

    /// The limit with hysteresis (module header): true if a store may go ahead.
    fn make_room(&mut self) -> bool {
        if !self.full && self.total_pages() >= self.config.limit_pages {
            self.full = true;
            self.stats.pool_limit_hit += 1;
        }
        if !self.full {
            return true;
        }
        let accept = self.config.accept_pages();
        if self.total_pages() >= accept {
            self.stats.limit_compactions += 1;
            let _ = self.compact();
        }
        while self.total_pages() >= accept {
            if !self.reclaim_ephemeral() {
                break;
            }
        }
        if self.total_pages() < accept {
            self.full = false;
        }
        !self.full
    }

    /// Out of memory: reclaim ephemeral pages until a pool frame comes free or none is left. True if
    /// any page was dropped.
    fn drop_for_memory(&mut self) -> bool {
        let before = self.total_pages();
        let mut dropped = false;
        while self.total_pages() >= before && self.reclaim_ephemeral() {
            dropped = true;
        }
        dropped
    }

    /// One step of ephemeral reclaim (module header, "Ephemeral reclaim"): evict a zbud frame or drop
    /// the oldest ephemeral page; false if no ephemeral page is left.
    fn reclaim_ephemeral(&mut self) -> bool {
        let Some((_, &key)) = self.lru[PoolKind::Ephemeral.lru()].first_key_value() else { return false };
        let before = self.total_pages();
        let evicted = self.config.ephemeral_reclaim == EphemeralReclaim::ZbudFrames && self.evict_frame(key.pool);
        if !evicted {
            self.drop_ephemeral(key);
        }
        self.stats.ephemeral_frames_freed += before.saturating_sub(self.total_pages());
        true
    }

    /// Have ephemeral `pool`, if zbud, evict its least recently allocated-into frame, and drop the keys
    /// of the pages it held. False (nothing changed) if the pool cannot evict or holds no frame.
    fn evict_frame(&mut self, pool: PoolId) -> bool {
        let Some(p) = self.pools.get_mut(&pool.0) else { return false };
        if !p.tracks() {
            return false;
        }
        let Pool { store, by_handle, .. } = p;
        let mut keys = [(0u64, 0u32); 2];
        let mut n = 0;
        // Clean data: nothing is written anywhere, the callback only learns whose pages these are.
        let r = store.evict(&mut |h, _| match by_handle.get(&h.raw()) {
            Some(&k) if n < keys.len() => {
                keys[n] = k;
                n += 1;
                true
            }
            _ => false,
        });
        match r {
            Ok(frames) => self.stats.zbud_frames_evicted += frames,
            Err(StoreError::Pool(PoolError::Empty)) => return false,
            Err(_) => {
                self.stats.zbud_evict_failures += 1;
                return false;
            }
        }
        for &(oid, index) in &keys[..n] {
            // The pool released the objects already: the entries are dropped, not freed.
            if self.take_slot(Key { pool, oid, index }).is_some() {
                self.stats.ephemeral_drops += 1;
            }
        }
        true
    }

    /// Drop the ephemeral page under `key` (the oldest), in object order.
    fn drop_ephemeral(&mut self, key: Key) {
        match self.take_slot(key) {
            Some(slot) => {
                self.stats.ephemeral_drops += 1;
                let _ = self.release(key.pool, slot.entry);
                self.shrink(key.pool);
            }
            // An index entry without its slot cannot happen; drop the entry so the loop ends anyway.
            None => {
                self.lru[PoolKind::Ephemeral.lru()].pop_first();
            }
        }
    }

    /// Remove the slot under `key` from its pool and from every index.
    fn take_slot(&mut self, key: Key) -> Option<Slot> {
        let pool = self.pools.get_mut(&key.pool.0)?;
        let MapEntry::Occupied(mut object) = pool.objects.entry(key.oid) else { return None };
        let slot = object.get_mut().remove(&key.index)?;
        if object.get().is_empty() {
            object.remove();
        }
        pool.lru.remove(&slot.seq);
        pool.untrack(&slot.entry);
        pool.pages -= 1;
        self.lru[pool.kind.lru()].remove(&slot.seq);
        Some(slot)
    }

    /// Give a pampd back to its pool's store; a refusal is counted and returned.
    fn release(&mut self, pool: PoolId, entry: Entry) -> Result<(), TmemError> {
        let r = match self.pools.get_mut(&pool.0) {
            Some(p) => p.store.free(entry).map_err(TmemError::from),
            None => Err(TmemError::NoSuchPool(pool)),
        };
        if r.is_err() {
            self.stats.free_errors += 1;
        }
        r
    }

    /// Copy the page under `key` into `out`. An ephemeral pool's page is removed by the get (exclusive);
    /// a persistent pool's stays. `NotFound` if there is none; on `Err`, `out` holds garbage.
    pub fn get(&mut self, comp: &mut Compressor, key: Key, out: &mut Page) -> Result<(), TmemError> {
        let kind = self.check_pool(key.pool)?;
        self.stats.gets += 1;
        let Some(pool) = self.pools.get_mut(&key.pool.0) else { return Err(TmemError::NoSuchPool(key.pool)) };
        let Pool { store, objects, .. } = pool;
        let Some(slot) = objects.get(&key.oid).and_then(|o| o.get(&key.index)) else {
            self.stats.get_misses += 1;
            return Err(TmemError::NotFound);
        };
        let r = store.load(comp, &slot.entry, out).map_err(TmemError::from);
        match r {
            Ok(()) => self.stats.get_hits += 1,
            Err(TmemError::Corrupt) => self.stats.corrupt += 1,
            Err(_) => {}
        }
        if kind == PoolKind::Ephemeral
            && let Some(slot) = self.take_slot(key)
        {
            let _ = self.release(key.pool, slot.entry);
            self.shrink(key.pool);
        }
        r
    }

    /// Whether a page is held under `key` (false for a pool that does not exist).
    pub fn contains(&self, key: Key) -> bool {
        self.pools.get(&key.pool.0).is_some_and(|p| p.slot(key.oid, key.index).is_some())
    }

    /// Forget the page under `key`; `Ok(true)` if there was one.
    pub fn flush_page(&mut self, key: Key) -> Result<bool, TmemError> {
        self.check_pool(key.pool)?;
        let Some(slot) = self.take_slot(key) else { return Ok(false) };
        self.stats.flush_pages += 1;
        let r = self.release(key.pool, slot.entry);
        self.shrink(key.pool);
        r.map(|()| true)
    }

    /// Forget every page of object `oid` in `pool`; returns how many there were.
    pub fn flush_object(&mut self, pool: PoolId, oid: u64) -> Result<u64, TmemError> {
        let kind = self.check_pool(pool)?;
        let Some(p) = self.pools.get_mut(&pool.0) else { return Err(TmemError::NoSuchPool(pool)) };
        let Some(object) = p.objects.remove(&oid) else { return Ok(0) };
        let n = object.len() as u64;
        p.pages -= n;
        let mut first_err = None;
        for slot in object.into_values() {
            p.lru.remove(&slot.seq);
            p.untrack(&slot.entry);
            self.lru[kind.lru()].remove(&slot.seq);
            if let Err(e) = p.store.free(slot.entry) {
                self.stats.free_errors += 1;
                first_err.get_or_insert(TmemError::from(e));
            }
        }
        self.stats.flush_objects += 1;
        self.stats.flush_object_pages += n;
        self.shrink(pool);
        first_err.map_or(Ok(n), Err)
    }

    /// Forget every page of `pool` and the pool itself; its id is refused from now on. Returns the pages
    /// it held. The pool's memory value is dropped with it.
    pub fn destroy_pool(&mut self, pool: PoolId) -> Result<u64, TmemError> {
        let kind = self.check_pool(pool)?;
        let Some(mut p) = self.pools.remove(&pool.0) else { return Err(TmemError::NoSuchPool(pool)) };
        let n = p.pages;
        for object in core::mem::take(&mut p.objects).into_values() {
            for slot in object.into_values() {
                self.lru[kind.lru()].remove(&slot.seq);
                if p.store.free(slot.entry).is_err() {
                    self.stats.free_errors += 1;
                }
            }
        }
        p.store.release_reserve();
        self.stats.leaked_pages += p.store.total_pages();
        self.stats.destroyed_pools += 1;
        self.stats.destroyed_pages += n;
        Ok(n)
    }

    /// Pages held by `pool` (0 for a pool that does not exist).
    pub fn pool_pages(&self, pool: PoolId) -> u64 {
        self.pools.get(&pool.0).map_or(0, |p| p.pages)
    }

    /// Bytes of tmem's own index: the keys and values its ordered maps hold (every object, every page's
    /// pampd and store-order entries, zbud's back-references), counted by element size. B-tree nodes are
    /// not full, so the heap they take is up to about 1.5× this; the equal-memory report prints it beside
    /// the pool frames, because in Linux zcache's index is RAM too.
    pub fn index_bytes(&self) -> u64 {
        use core::mem::size_of;
        let mut bytes = (self.pools.len() * size_of::<(u32, Pool<M>)>()) as u64;
        bytes += self.lru.iter().map(|l| l.len() * size_of::<(u64, Key)>()).sum::<usize>() as u64;
        for p in self.pools.values() {
            bytes += (p.objects.len() * size_of::<(u64, BTreeMap<u32, Slot>)>()) as u64;
            bytes += p.objects.values().map(|o| o.len() * size_of::<(u32, Slot)>()).sum::<usize>() as u64;
            bytes += (p.lru.len() * size_of::<(u64, (u64, u32))>()) as u64;
            bytes += (p.by_handle.len() * size_of::<(u64, (u64, u32))>()) as u64;
        }
        bytes
    }

    /// Pool frames held by all pools' allocators: what the limit counts.
    pub fn total_pages(&self) -> u64 {
        self.pools.values().map(|p| p.store.total_pages()).sum()
    }

    /// Pages held, all pools.
    pub fn stored_pages(&self) -> u64 {
        self.pools.values().map(|p| p.pages).sum()
    }

    /// Whether tmem is in the full state (it is re-judged at the next put).
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Compact every pool (zram's `compact`); returns the frames freed.
    pub fn compact(&mut self) -> Result<u64, TmemError> {
        let mut freed = 0;
        let mut first_err = None;
        for p in self.pools.values_mut() {
            match p.store.compact() {
                Ok(n) => freed += n,
                Err(e) => {
                    first_err.get_or_insert(TmemError::from(e));
                }
            }
        }
        self.stats.pages_compacted += freed;
        first_err.map_or(Ok(freed), Err)
    }

    /// The fragmentation of `pool` if it is a zsmalloc pool (`None` for other backends and for a pool
    /// that does not exist): free bytes in its partly used zspages, its bytes, and the floor a full
    /// compaction would leave ([`zsmalloc::Zsmalloc::fragmentation`], O(classes)).
    pub fn pool_fragmentation(&self, pool: PoolId) -> Option<Fragmentation> {
        Some(self.pools.get(&pool.0)?.store.zsmalloc()?.fragmentation())
    }

    /// The fragmentation of all zsmalloc pools together (their figures summed); `None` if there is no
    /// zsmalloc pool.
    pub fn fragmentation(&self) -> Option<Fragmentation> {
        self.pools.values().filter_map(|p| p.store.zsmalloc()).map(|z| z.fragmentation()).reduce(Fragmentation::plus)
    }

    /// Frames a full compaction of `pool` would free now (Linux's `zs_shrinker_count`): 0 for other
    /// backends and for a pool that does not exist.
    pub fn pool_can_compact_pages(&self, pool: PoolId) -> u64 {
        self.pools.get(&pool.0).and_then(|p| p.store.zsmalloc()).map_or(0, |z| z.can_compact_pages())
    }

    /// Whether compaction under pressure would compact `pool` now: it is zsmalloc, the shrinker is on,
    /// its excess is above the threshold, and it can free a frame (module header).
    pub fn wants_compaction(&self, pool: PoolId) -> bool {
        let Some(t) = self.config.compact_threshold_percent else { return false };
        let Some(z) = self.pools.get(&pool.0).and_then(|p| p.store.zsmalloc()) else { return false };
        let f = z.fragmentation();
        f.excess_bytes() as u128 * 100 > t as u128 * f.pool_bytes as u128 && z.can_compact_pages() > 0
    }

    /// Compaction under pressure after a free in `pool` (Linux's `zs_shrinker_scan`, run when
    /// [`Tmem::wants_compaction`]); returns the frames freed.
    fn shrink(&mut self, pool: PoolId) -> u64 {
        if !self.wants_compaction(pool) {
            return 0;
        }
        self.compact_one(pool)
    }

    /// An allocator is out of memory: compact every zsmalloc pool that can free a frame, threshold or
    /// not, if the shrinker is on. Returns the frames freed.
    fn shrink_for_memory(&mut self) -> u64 {
        if self.config.compact_threshold_percent.is_none() {
            return 0;
        }
        let (mut freed, mut from) = (0, 0u32);
        // By id, without a list on the heap: the next pool at or after `from` that can free a frame.
        while let Some(id) = self
            .pools
            .range(from..)
            .find(|(_, p)| p.store.zsmalloc().is_some_and(|z| z.can_compact_pages() > 0))
            .map(|(&id, _)| id)
        {
            freed += self.compact_one(PoolId(id));
            let Some(next) = id.checked_add(1) else { break };
            from = next;
        }
        freed
    }

    /// Compact one pool for the shrinker and count it. A compaction that fails part-way still gave
    /// back what it freed (zsmalloc's contract), so the fall of the pool's frames is what is counted.
    fn compact_one(&mut self, pool: PoolId) -> u64 {
        let Some(p) = self.pools.get_mut(&pool.0) else { return 0 };
        let before = p.store.total_pages();
        let _ = p.store.compact();
        let freed = before.saturating_sub(p.store.total_pages());
        self.stats.compactions_triggered += 1;
        self.stats.shrinker_pages_compacted += freed;
        self.stats.pages_compacted += freed;
        freed
    }

    /// The counters, with the current sizes.
    pub fn stats(&self) -> TmemStats {
        let mut s = self.stats;
        s.stored_pages = 0;
        s.persistent_pages = 0;
        s.ephemeral_pages = 0;
        s.same_pages = 0;
        s.compr_data_size = 0;
        s.pool_pages = 0;
        for p in self.pools.values() {
            let st = p.store.stats();
            s.stored_pages += p.pages;
            match p.kind {
                PoolKind::Persistent => s.persistent_pages += p.pages,
                PoolKind::Ephemeral => s.ephemeral_pages += p.pages,
            }
            s.same_pages += st.same_pages;
            s.compr_data_size += st.compr_data_size;
            s.pool_pages += p.store.total_pages();
        }
        s.limit_pages = self.config.limit_pages;
        s.accept_pages = self.config.accept_pages();
        s.full = self.full;
        s.pools = self.pools.len() as u64;
        s
    }

    /// One pool's figures.
    pub fn pool_stats(&self, pool: PoolId) -> Result<PoolStats, TmemError> {
        let p = self.pools.get(&pool.0).ok_or(TmemError::NoSuchPool(pool))?;
        Ok(PoolStats {
            kind: p.kind,
            backend: p.backend,
            stored_pages: p.pages,
            objects: p.objects.len() as u64,
            store: p.store.stats(),
            pool_pages: p.store.total_pages(),
        })
    }

    /// The key of `pool`'s oldest page (by store order), if it holds any.
    pub fn oldest(&self, pool: PoolId) -> Option<Key> {
        let (_, &(oid, index)) = self.pools.get(&pool.0)?.lru.first_key_value()?;
        Some(Key { pool, oid, index })
    }

    /// Fault injection for tests: flip one byte in the middle of the compressed object stored for `key`,
    /// as a bit flip in RAM would (the kernel's `tests/device_faults.rs` and the host tests use it). The
    /// next load of `key` fails its check with [`TmemError::Corrupt`].
    pub fn corrupt_object(&mut self, key: Key) -> Result<(), TmemError> {
        let p = self.pools.get_mut(&key.pool.0).ok_or(TmemError::NoSuchPool(key.pool))?;
        let h = p.slot(key.oid, key.index).and_then(|s| s.entry.handle()).ok_or(TmemError::NotFound)?;
        let flip = |b: &mut [u8]| b[b.len() / 2] ^= 0x40;
        let r = match &mut p.store {
            Store::Zsmalloc(z) => z.pool_mut().map(h, zpool::MapMode::ReadWrite, flip),
            Store::Zbud(z) => z.pool_mut().map(h, zpool::MapMode::ReadWrite, flip),
            Store::Xvmalloc(z) => z.pool_mut().map(h, zpool::MapMode::ReadWrite, flip),
            Store::Xcfmalloc(z) => z.pool_mut().map(h, zpool::MapMode::ReadWrite, flip),
        };
        r.map_err(|_| TmemError::NotFound)
    }

    /// The oldest page of all pools of `kind`.
    pub fn oldest_of_kind(&self, kind: PoolKind) -> Option<Key> {
        self.lru[kind.lru()].first_key_value().map(|(_, &k)| k)
    }

    /// zswap's writeback: decompress the oldest page of the persistent `pool` and hand it to `sink`.
    /// If the sink returns true (it wrote the page to the swap device) the page leaves tmem
    /// (`written_back_pages`) and its key is returned; if false, or the pool is empty, nothing changes
    /// and the answer is `Ok(None)`. A page that fails its check stays and the answer is `Corrupt`.
    pub fn writeback_oldest(
        &mut self,
        comp: &mut Compressor,
        pool: PoolId,
        sink: &mut dyn FnMut(Key, &Page) -> bool,
    ) -> Result<Option<Key>, TmemError> {
        if self.check_pool(pool)? != PoolKind::Persistent {
            return Err(TmemError::NotPersistent(pool));
        }
        // Before a page goes to the device, give back what compaction can (zswap shrinks its pool
        // before it writes back, too).
        self.shrink(pool);
        let Some(key) = self.oldest(pool) else { return Ok(None) };
        let Some(p) = self.pools.get_mut(&pool.0) else { return Err(TmemError::NoSuchPool(pool)) };
        let Pool { store, objects, .. } = p;
        let Some(slot) = objects.get(&key.oid).and_then(|o| o.get(&key.index)) else {
            return Err(TmemError::NotFound);
        };
        let loaded = store.load(comp, &slot.entry, &mut self.scratch).map_err(TmemError::from);
        let taken = match loaded {
            Ok(()) => sink(key, &self.scratch),
            Err(e) => {
                if e == TmemError::Corrupt {
                    self.stats.corrupt += 1;
                }
                self.scratch.fill(0);
                return Err(e);
            }
        };
        // The copy is on its way to the device or back in tmem: scrub it.
        self.scratch.fill(0);
        if !taken {
            return Ok(None);
        }
        if let Some(slot) = self.take_slot(key) {
            self.stats.written_back_pages += 1;
            let _ = self.release(pool, slot.entry);
            self.shrink(pool);
        }
        Ok(Some(key))
    }
}

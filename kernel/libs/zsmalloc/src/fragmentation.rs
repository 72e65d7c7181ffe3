//! Fragmentation: how much of a pool is free places in partly used zspages, how much of that a full
//! compaction could not take back anyway (the floor), and how many frames it could take back now —
//! the figures a shrinker needs to decide whether compacting is worth it (Linux's `zs_shrinker_count`,
//! which sums `zs_can_compact` over the classes).
//!
//! # Why
//!
//! zsmalloc frees a zspage only when its last object goes. Every other free leaves a hole, and holes
//! are reclaimed only by compaction ([`ZPool::compact`](zpool::ZPool::compact)). A caller that compacts
//! only at its memory limit lets the holes pile up between limit hits; Linux 4.1 (Sergey Senozhatsky,
//! "zsmalloc: register a shrinker to trigger auto-compaction") added a shrinker whose `count_objects`
//! is the sum of `zs_can_compact` and whose `scan_objects` is `zs_compact`. To decide when, the caller
//! needs to see the holes, cheaply: this module reads only the per-class counters — O(classes), never
//! O(objects) — so it may be asked after every free.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | free bytes in partly used zspages | Σ over classes of free places × class size: `(zspages × objs_per_zspage − obj_used) × size`. A zspage with no object is freed at once and a full one has no free place, so every free place is in a partly used zspage |
//! | pool bytes | frames held × 4096 |
//! | fragmentation | free bytes in partly used zspages ÷ pool bytes |
//! | floor | the free bytes a full compaction would leave: each class packed into `⌈obj_used / objs_per_zspage⌉` zspages, only the last partly used: `(⌈used/objs⌉ × objs − used) × size` |
//! | excess | fragmentation − floor: what compaction can give back (whole zspages' worth of places) |
//! | can-compact pages | frames a full compaction would free now: Σ `zs_can_compact` = Σ `⌊(zspages × objs − used) / objs⌋ × pages_per_zspage` |
//!
//! The zspages' tails ([`SizeClass::waste`](crate::SizeClass::waste)) and the class rounding inside
//! each place are not free bytes: no object can use them. They are in the pool bytes only.
//!
//! # Why the floor is what compaction reaches
//!
//! A class has excess exactly when it has more zspages than `⌈used/objs⌉`, which is exactly when
//! `zs_can_compact` is at least one zspage: `⌊(zspages·objs − used)/objs⌋ ≥ 1 ⇔ zspages·objs − used ≥ objs
//! ⇔ zspages ≥ used/objs + 1 ⇔ zspages > ⌈used/objs⌉`. Compaction (`compact.rs`) runs in each class
//! while `zs_can_compact` is non-zero, so a compaction that completes leaves every class at its floor
//! (it may leave two partly used zspages whose holes together are less than one zspage; the free bytes
//! are the same). The excess is therefore `Σ (zspages − ⌈used/objs⌉) × objs × size` bytes, and it is 0
//! exactly when [`Zsmalloc::can_compact_pages`] is 0.
//!
//! # Worked example
//!
//! The module header's example after "free the three": class 3264 (4 frames, 5 objects) has two
//! zspages, 10 places, 3 used; the huge class holds `c`, full; 9 frames.
//!
//! ```text
//!   free bytes in partly used zspages   (10 − 3) × 3264             = 22848
//!   pool bytes                          9 × 4096                     = 36864   fragmentation 61.979 %
//!   floor                               (⌈3/5⌉ × 5 − 3) × 3264       =  6528   floor         17.708 %
//!   can-compact pages                   ⌊7 / 5⌋ × 4                  =     4   excess        44.271 %
//!   compact()                           frees Z': 5 frames; free 6528 = floor; 20480 pool bytes: 31.875 %
//! ```
//!
//! The test `fragmentation_of_the_worked_example` replays this.
//!
//! # Contracts
//!
//! - [`Zsmalloc::fragmentation`] and [`Zsmalloc::can_compact_pages`] read counters only: O(classes), no
//!   mapping, no allocation, never an error.
//! - `floor_free_bytes ≤ free_bytes_in_partial ≤ pool_bytes` always; the first two are equal exactly when
//!   [`Zsmalloc::can_compact_pages`] is 0.
//! - The percentage helpers answer `None` for an empty pool (0 pool bytes) rather than divide by zero.

use pagemem::{FrameSource, PAGE, PageMemory};

use crate::Zsmalloc;

/// A pool's fragmentation at one moment ([`Zsmalloc::fragmentation`]; module `fragmentation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fragmentation {
    /// Bytes of free object places, all of them in partly used zspages: Σ `(zspages × objs − used) × size`.
    pub free_bytes_in_partial: u64,
    /// Frames held × 4096.
    pub pool_bytes: u64,
    /// The free bytes a full compaction would leave: each class with at most one partly used zspage,
    /// Σ `(⌈used / objs⌉ × objs − used) × size`.
    pub floor_free_bytes: u64,
}

impl Fragmentation {
    /// Free bytes compaction can give back: `free_bytes_in_partial − floor_free_bytes`.
    pub const fn excess_bytes(&self) -> u64 {
        self.free_bytes_in_partial.saturating_sub(self.floor_free_bytes)
    }

    /// `part ÷ pool_bytes` in thousandths of a percent (12.345 % is 12345); `None` for an empty pool.
    const fn percent_milli_of(&self, part: u64) -> Option<u64> {
        if self.pool_bytes == 0 {
            return None;
        }
        Some((part as u128 * 100_000 / self.pool_bytes as u128) as u64)
    }

    /// Fragmentation, free bytes in partly used zspages ÷ pool bytes, in thousandths of a percent.
    pub const fn percent_milli(&self) -> Option<u64> {
        self.percent_milli_of(self.free_bytes_in_partial)
    }

    /// The floor ÷ pool bytes, in thousandths of a percent.
    pub const fn floor_percent_milli(&self) -> Option<u64> {
        self.percent_milli_of(self.floor_free_bytes)
    }

    /// The excess ÷ pool bytes (fragmentation above its floor, in percentage points), in thousandths.
    pub const fn excess_percent_milli(&self) -> Option<u64> {
        self.percent_milli_of(self.excess_bytes())
    }

    /// The figures of two pools together (a caller with several pools reports their sum).
    pub const fn plus(self, other: Fragmentation) -> Fragmentation {
        Fragmentation {
            free_bytes_in_partial: self.free_bytes_in_partial + other.free_bytes_in_partial,
            pool_bytes: self.pool_bytes + other.pool_bytes,
            floor_free_bytes: self.floor_free_bytes + other.floor_free_bytes,
        }
    }
}

impl<M: PageMemory + FrameSource> Zsmalloc<M> {
    /// The pool's fragmentation and its floor, from the per-class counters (module `fragmentation`).
    pub fn fragmentation(&self) -> Fragmentation {
        let mut f = Fragmentation { pool_bytes: self.stats.pages * PAGE as u64, ..Fragmentation::default() };
        for k in &self.classes {
            let (objs, size) = (k.info.objs_per_zspage as u64, k.info.size as u64);
            f.free_bytes_in_partial += (k.zspages * objs - k.obj_used) * size;
            f.floor_free_bytes += (k.obj_used.div_ceil(objs) * objs - k.obj_used) * size;
        }
        f
    }

    /// Frames a full compaction would free now: Linux's `zs_can_compact` summed over the classes, what
    /// `zs_shrinker_count` reports. 0 exactly when every class is at its floor.
    pub fn can_compact_pages(&self) -> u64 {
        (0..self.classes.len()).map(|c| self.freeable(c)).sum()
    }
}

//! Class math: which size class an object goes to, how long a zspage chain each class gets, and how
//! neighbouring class indexes merge — Linux's `get_size_class_index`, `calculate_zspage_chain_size` and the
//! merging loop of `zs_create_pool` — plus the fullness groups a zspage moves between. Pure functions of
//! sizes and chain lengths: no pool, no memory (the module header's "Size classes" and "Fullness groups").

use alloc::vec::Vec;

use pagemem::PAGE;

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
/// The longest zspage chain [`Config::max_pages_per_zspage`](crate::Config::max_pages_per_zspage) may ask for (Linux's `ZS_MAX_PAGES_PER_ZSPAGE`
/// with `CONFIG_ZSMALLOC_CHAIN_SIZE` at its maximum).
pub const ZS_MAX_PAGES_PER_ZSPAGE: usize = 16;
/// The chain length [`Config::default`](crate::Config::default) uses (see "Choosing N" in the module header).
pub const DEFAULT_PAGES_PER_ZSPAGE: usize = 4;
/// The most objects any zspage holds, for every chain length up to 16 (classes 48, 80, …, 240).
pub const MAX_OBJS_PER_ZSPAGE: usize = 256;
/// Fullness groups: 0 empty, 1..=10 in-use ratio bands of 10 %, 11 full (Linux's `NR_FULLNESS_GROUPS`).
pub const FULLNESS_GROUPS: usize = 12;
/// The group of a zspage with no object in use (Linux's `ZS_INUSE_RATIO_0`); such a zspage is freed at once.
pub const FULLNESS_EMPTY: usize = 0;
/// The group of a zspage with every object in use (Linux's `ZS_INUSE_RATIO_100`).
pub const FULLNESS_FULL: usize = FULLNESS_GROUPS - 1;

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

/// The smallest object (as given to `malloc`) that lands in a huge class of a pool with chains of at
/// most `max_pages` — Linux's `zs_huge_class_size()`, the "huge from" column of the module header's
/// class table. zram compares every compressed page with it (`comp_len >= huge_class_size`) and stores a
/// page that reaches it as its 4096 raw bytes: in a huge class it would take a whole frame anyway.
///
/// Computed as `zs_create_pool` computes it: walk the class indexes from the largest down to the first
/// whose chain holds more than one object; its size, less the header `malloc` adds before the class
/// lookup, plus one, is the answer (`size − (ZS_HANDLE_SIZE − 1)`). Linux's test is
/// `pages_per_zspage != 1 && objs_per_zspage != 1`, which for chains of 2 and more (Linux allows 4..=16)
/// picks the same index; at chain 1 it would never hold and leave 0, where this gives the real boundary,
/// 2041 (class 2048, two objects a frame).
///
/// A chain outside 1..=[`ZS_MAX_PAGES_PER_ZSPAGE`] is `Err`, as [`Zsmalloc::with_config`](crate::Zsmalloc::with_config) refuses it.
pub const fn huge_class_size(max_pages: usize) -> Result<usize, crate::ConfigError> {
    if max_pages == 0 || max_pages > ZS_MAX_PAGES_PER_ZSPAGE {
        return Err(crate::ConfigError::MaxPagesPerZspage(max_pages));
    }
    Ok(huge_from(max_pages))
}

/// [`huge_class_size`] for a chain already known to be valid.
pub(crate) const fn huge_from(max_pages: usize) -> usize {
    let mut i = ZS_SIZE_CLASSES;
    while i > 0 {
        i -= 1;
        let size = if index_size(i) < ZS_MAX_ALLOC_SIZE { index_size(i) } else { ZS_MAX_ALLOC_SIZE };
        let pages = chain_size(size, max_pages);
        if pages * PAGE / size > 1 {
            return size - (ZS_HANDLE_SIZE - 1);
        }
    }
    // Not reached: index 0 (32 bytes) holds 128 objects in one frame at every chain length.
    ZS_MIN_ALLOC_SIZE - (ZS_HANDLE_SIZE - 1)
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
pub(crate) fn build_classes(max_pages: usize) -> (Vec<SizeClass>, [u8; ZS_SIZE_CLASSES]) {
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

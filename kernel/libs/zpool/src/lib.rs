//! The pool interface: what every compressed-object allocator (zbud, zsmalloc) offers to tmem, and a shared
//! model-based test harness that holds them all to it (Linux's `mm/zpool.c` and `include/linux/zpool.h`).
//! [`slotlist`] holds the side-table lists both pools keep their pages on; [`handle`] the one handle
//! encoding (slot, sub-slot, generation, pool tag) they all pack into a [`Handle`].
//!
//! # Why
//!
//! tmem (and zswap/zcache before it) keeps pages it has compressed. A compressed page is an *object* of any
//! size from a few bytes to almost 4 KiB, and thousands of them must be packed into as few frames as
//! possible. Several allocators do that with different trade-offs — zbud pairs at most two objects per
//! page and evicts simply; zsmalloc packs densely into size classes and can compact — so tmem talks to
//! all of them through one trait, [`ZPool`], and a boot option picks the pool.
//!
//! An object is never reached through a pointer. zkernel has no direct map of RAM: a frame's bytes exist
//! only while it is mapped (`pagemem::PageMemory`), so a pool hands out an opaque [`Handle`] and lends
//! the bytes for the length of a closure ([`ZPool::map`]), exactly like `zs_map_object`/`zs_unmap_object`.
//! A handle also lets the pool move objects (compaction) without the owner noticing, and lets it refuse a
//! handle that was freed or made up ([`PoolError::StaleHandle`]) instead of corrupting memory.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | object | the bytes stored under one handle; its size is fixed at [`ZPool::malloc`] (1 ..= [`ZPool::max_size`]) |
//! | handle | the opaque 64-bit name of one object ([`Handle`]); encodes a location and a generation, never a pointer |
//! | generation | a counter bumped each time a slot is freed, so the freed slot's old handle no longer matches |
//! | stale handle | a handle that is not live in this pool: freed, evicted, forged, or another pool's |
//! | map | lend the object's bytes to a closure, in a [`MapMode`] |
//! | page | a 4096-byte frame the pool got from a `pagemem::FrameSource`; [`ZPool::total_pages`] counts them |
//! | compact | move objects out of sparse pages so whole pages can be returned; handles stay valid |
//! | evict | give up one page: hand each of its objects to a *writeback* callback, then free them and the page |
//!
//! # The operations
//!
//! | call | Linux | result | errors |
//! |---|---|---|---|
//! | [`ZPool::malloc`]`(size)` | `zpool_malloc` | a fresh handle; contents unspecified | [`ZeroSize`](PoolError::ZeroSize), [`TooLarge`](PoolError::TooLarge), [`OutOfMemory`](PoolError::OutOfMemory), [`Memory`](PoolError::Memory), [`Frame`](PoolError::Frame) |
//! | [`ZPool::free`]`(h)` | `zpool_free` | `h` is stale from now on | `StaleHandle`, `Memory`, `Frame` |
//! | [`ZPool::map`]`(h, mode, f)` | `zpool_map_handle` + `zpool_unmap_handle` | `f`'s result; `f` saw exactly `size` bytes | `StaleHandle`, `Memory` |
//! | [`ZPool::size_of`]`(h)` | — | the size given to `malloc` | `StaleHandle` |
//! | [`ZPool::total_pages`] | `zpool_get_total_pages` | frames held now | — |
//! | [`ZPool::compact`] | `zs_compact` | pages freed (0 if the pool cannot compact) | `Memory`, `Frame` |
//! | [`ZPool::evict`]`(wb)` | `zpool_shrink` / `zbud_reclaim_page` | pages freed (1) | [`EvictRefused`](PoolError::EvictRefused), [`Empty`](PoolError::Empty), `Memory`, `Frame` |
//!
//! # Worked example
//!
//! tmem is asked to keep a 4096-byte page that compresses to 1,312 bytes:
//!
//! ```text
//!   h = malloc(1312)                  stats: objects 1, object_bytes 1312, pages 1, allocs 1
//!   map(h, WriteOnly, |s| s.copy_from_slice(&compressed))      s.len() == 1312, old contents unspecified
//!   ...later, the page is wanted back...
//!   map(h, ReadOnly, |s| decompress(s))                         s.len() == 1312, must not be written
//!   free(h)                           stats: objects 0, object_bytes 0, pages 0, frees 1
//!   free(h)                           Err(StaleHandle(h)) — and nothing changed
//! ```
//!
//! Under memory pressure tmem calls `evict(&mut |h, bytes| swap.store(h, bytes))`. A zbud pool picks its
//! least recently allocated page, say holding objects `a` (700 bytes) and `b` (3000 bytes); it calls the
//! callback with `(a, 700 bytes)` then `(b, 3000 bytes)`; both return `true`, so it frees `a`, `b` and the
//! page and returns `Ok(1)`: `pages` −1, `objects` −2, `pages_evicted` +1, and `a`, `b` are stale.
//!
//! # Contracts
//!
//! - Every bad input is a typed [`PoolError`], never a panic, and a refused operation changes nothing —
//!   with one deliberate exception: a `malloc` refused for lack of memory (`OutOfMemory`, `Memory`,
//!   `Frame`) counts in [`PoolStats::failures`].
//! - A handle is live from the `malloc` that returned it until the `free` or `evict` that released it.
//!   Afterwards `free`, `map` and `size_of` refuse it with `StaleHandle(h)` — and so they refuse forged
//!   handles and handles of another pool. Generations make this reliable for recently freed handles, not
//!   for all time: a pool may reissue a raw value once a generation counter wraps. The harness
//!   (`zpool::testing`, behind the `testing` feature) checks that none of the last 256 freed handles comes back.
//! - [`ZPool::map`] lends exactly the object's bytes: `f` gets a slice of length `size_of(h)`. `f` cannot
//!   reach the pool (it is borrowed), so mappings never nest — zsmalloc's "one mapping at a time".
//!   In [`MapMode::ReadOnly`] the caller must not write: whether a write lands is unspecified (zbud maps
//!   the page directly, so it would; zsmalloc copies an object that spans two pages, so it would not).
//!   In [`MapMode::WriteOnly`] the slice's initial contents are unspecified.
//! - [`PoolStats`] always satisfies `objects` = live handles, `object_bytes` = the sum of their sizes,
//!   `allocs − frees = objects` (`frees` counts objects released by `free` *and* by `evict`) and
//!   `pages = total_pages()`.
//! - `compact` and `evict` return the number of pages they freed, and `total_pages` drops by exactly that.
//!   `compact` keeps every live handle valid and every object's bytes unchanged.
//! - `evict` first hands every object of the chosen page to `writeback` (each at most once, in the pool's
//!   order); only if every call returned `true` does it free them all and the page. If one returns `false`
//!   the pool stops calling, changes nothing and returns `EvictRefused`; copies the callback already made
//!   are redundant then, and the caller should drop them. `writeback` cannot call back into the pool.
//! - Pools are not thread-safe by themselves (`&mut self` everywhere); the kernel wraps one in a lock.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use core::fmt;

pub use frame::FrameError;
pub use pagemem::MemError;

pub mod handle;
pub mod slotlist;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests;

/// Opaque object handle: encodes the pool's internal location plus a generation, so a stale (freed) or
/// forged handle is refused. Never exposes a pointer.
///
/// Each pool packs its fields with [`handle::HandleLayout`] and documents its widths; callers only store and compare handles ([`Handle::raw`] and
/// [`Handle::from_raw`] let tmem keep one in a `u64`). The ordering is the raw value's and means nothing
/// beyond letting handles key a `BTreeMap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Handle(u64);

impl Handle {
    /// A handle from its stored raw value. Any value is accepted; a pool refuses one it did not issue.
    pub const fn from_raw(raw: u64) -> Handle {
        Handle(raw)
    }

    /// The raw value, for storage.
    pub const fn raw(self) -> u64 {
        self.0
    }
}

/// How a mapping will be used (zsmalloc's `ZS_MM_RO`, `ZS_MM_WO`, `ZS_MM_RW`).
///
/// The mode lets a pool that must copy (an object spanning two pages) skip the copy-in or the copy-back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapMode {
    /// The closure only reads. It must not write: whether a write is kept is unspecified.
    ReadOnly,
    /// The closure only writes. The slice's initial contents are unspecified; what the closure leaves in
    /// it is the object's new contents.
    WriteOnly,
    /// The closure sees the current contents and its changes are kept.
    ReadWrite,
}

/// Why a pool refused an operation. A refused operation changed nothing (except [`PoolStats::failures`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// `malloc(0)`.
    ZeroSize,
    /// `malloc(size)` with `size` above the pool's [`ZPool::max_size`] (`max`).
    TooLarge { size: usize, max: usize },
    /// No frame for a new page, or the pool's own index space is full.
    OutOfMemory,
    /// The handle is not live in this pool: freed, evicted, forged, or from another pool.
    StaleHandle(Handle),
    /// `evict`: the writeback callback refused an object, or the pool does not evict.
    EvictRefused,
    /// `evict`: the pool holds no page.
    Empty,
    /// A page could not be mapped.
    Memory(MemError),
    /// The frame source refused a frame operation (other than running out of memory).
    Frame(FrameError),
}

impl PoolError {
    /// The size check every `malloc` starts with: `ZeroSize` for 0, `TooLarge` above `max`.
    pub const fn check_size(size: usize, max: usize) -> Result<(), PoolError> {
        if size == 0 {
            Err(PoolError::ZeroSize)
        } else if size > max {
            Err(PoolError::TooLarge { size, max })
        } else {
            Ok(())
        }
    }
}

impl From<MemError> for PoolError {
    fn from(e: MemError) -> Self {
        PoolError::Memory(e)
    }
}

impl From<FrameError> for PoolError {
    /// [`FrameError::OutOfMemory`] becomes [`PoolError::OutOfMemory`]; every other frame error is wrapped.
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::OutOfMemory { .. } => PoolError::OutOfMemory,
            e => PoolError::Frame(e),
        }
    }
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PoolError::ZeroSize => write!(f, "an object of 0 bytes"),
            PoolError::TooLarge { size, max } => write!(f, "an object of {size} bytes is above the maximum {max}"),
            PoolError::OutOfMemory => write!(f, "the pool is out of memory"),
            PoolError::StaleHandle(h) => write!(f, "handle {:#x} is not live in this pool", h.raw()),
            PoolError::EvictRefused => write!(f, "eviction refused"),
            PoolError::Empty => write!(f, "the pool holds no page to evict"),
            PoolError::Memory(e) => write!(f, "page not reachable: {e:?}"),
            PoolError::Frame(e) => write!(f, "frame source: {e}"),
        }
    }
}

/// Counters of a pool; the invariants are in the module header's contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Live objects.
    pub objects: u64,
    /// Sum of the live objects' requested sizes, in bytes.
    pub object_bytes: u64,
    /// Frames held now.
    pub pages: u64,
    /// Pages freed by [`ZPool::compact`], ever.
    pub pages_compacted: u64,
    /// Pages freed by [`ZPool::evict`], ever.
    pub pages_evicted: u64,
    /// Successful `malloc`s, ever.
    pub allocs: u64,
    /// Objects released, ever, by `free` or by `evict`.
    pub frees: u64,
    /// `malloc`s refused for lack of memory (`OutOfMemory`, `Memory`, `Frame`), ever.
    pub failures: u64,
}

/// The bytes of the new block `v` would take if `pushes` more elements went in: 0 while they fit its
/// capacity, else the grown capacity (at least double, as `Vec` grows; at least 4 elements) times the
/// element size. For [`ZPool::metadata_growth`].
pub fn vec_growth<T>(v: &alloc::vec::Vec<T>, pushes: usize) -> usize {
    if v.len() + pushes <= v.capacity() {
        0
    } else {
        (v.capacity() * 2).max(v.len() + pushes).max(4) * core::mem::size_of::<T>()
    }
}

/// A pool of variable-size objects in pages, named by handles (see the module header).
pub trait ZPool {
    /// The pool's name, as a boot option would spell it (`"zbud"`, `"zsmalloc"`).
    fn name(&self) -> &'static str;

    /// Largest object `malloc` accepts, in bytes.
    fn max_size(&self) -> usize;

    /// A new object of `size` bytes, contents unspecified.
    fn malloc(&mut self, size: usize) -> Result<Handle, PoolError>;

    /// Release the object; `handle` is stale afterwards.
    fn free(&mut self, handle: Handle) -> Result<(), PoolError>;

    /// Run `f` on the object's bytes; the slice is exactly the object's size.
    fn map<R>(&mut self, handle: Handle, mode: MapMode, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, PoolError>;

    /// The size the object was allocated with.
    fn size_of(&self, handle: Handle) -> Result<usize, PoolError>;

    /// Frames the pool holds now.
    fn total_pages(&self) -> u64;

    /// The pool's counters.
    fn stats(&self) -> PoolStats;

    /// Heap bytes the next `malloc` may allocate at most for the pool's own tables, beyond nothing: a
    /// table (`Vec`) that is full grows, and the new block is this big ([`vec_growth`]). A kernel whose heap
    /// can run out asks this before a store and admits the store only if its heap can give that much
    /// (tmem's metadata gate), so that a table's growth is never the allocation that fails.
    fn metadata_growth(&self) -> usize;

    /// Migrate objects out of sparse pages, return freed pages; handles stay valid. Pools that cannot
    /// compact return `Ok(0)`.
    fn compact(&mut self) -> Result<u64, PoolError>;

    /// Free one page by writing back its objects: `writeback(handle, bytes)` must store the bytes elsewhere
    /// and return true; then the pool frees those objects (the handles become stale) and the page, and
    /// returns the pages freed. Returns `EvictRefused` (and changes nothing further) if writeback returns
    /// false; `Empty` if there is no page. Pools without eviction return `Err(EvictRefused)`.
    fn evict(&mut self, writeback: &mut dyn FnMut(Handle, &[u8]) -> bool) -> Result<u64, PoolError>;
}

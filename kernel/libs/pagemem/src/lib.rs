//! Page memory: how the algorithm crates (pools, tmem) reach the bytes of a physical frame.
//!
//! # Why
//!
//! zkernel has no direct map of RAM (design.md): a frame's bytes are only reachable while it is mapped
//! into one of the CPU's temporary mapping slots (`kernel/src/mm/kmap.rs`, Linux's `kmap_local_page`).
//! The allocators must not know that — they are host-tested libraries — so they reach memory only
//! through [`PageMemory`], which the kernel implements with kmap and the host tests with [`HostMemory`],
//! a Vec-backed arena. The same allocator code then runs unchanged in both.
//!
//! # Contract
//!
//! | call | gives | rule |
//! |---|---|---|
//! | [`PageMemory::with_page`] | the 4096 bytes of one frame | the slice lives only inside the closure |
//! | [`PageMemory::with_pages2`] | frames `a` then `b` as one 8192-byte slice | for an object spanning two non-adjacent frames (zsmalloc) |
//! | [`FrameSource::alloc_frame`] / [`FrameSource::free_frame`] | order-0 frames for a pool | freed frames must not be touched again |
//! | [`Limited`] | any of the above, with at most `limit` frames held at once | past it, `alloc_frame` says `OutOfMemory` |
//!
//! Calls take `&mut self`, so a pool holding one `PageMemory` cannot nest mappings through it — the
//! zsmalloc rule "one mapping per CPU at a time" — though the kernel's kmap underneath does allow
//! nesting for its own callers. A mapping can fail (no free slot, a frame the memory does not hold)
//! and says so with [`MemError`]. A freshly allocated frame is zero only if it changed owner; pools
//! must not rely on it.
//!
//! # Example
//!
//! ```
//! use pagemem::{FrameSource, HostMemory, PageMemory};
//! let mut mem = HostMemory::new(16);
//! let f = mem.alloc_frame(frame::Owner::POOL).unwrap();
//! mem.with_page(f, |p| p[..5].copy_from_slice(b"hello")).unwrap();
//! assert_eq!(mem.with_page(f, |p| p[..5].to_vec()).unwrap(), b"hello");
//! mem.free_frame(f).unwrap();
//! ```
#![cfg_attr(not(any(test, feature = "host")), no_std)]
#![forbid(unsafe_code)]

pub use frame::{FrameError, Owner, PAGE_SIZE, Pfn};

/// Bytes in a page, as a `usize`.
pub const PAGE: usize = PAGE_SIZE as usize;

/// Why a frame could not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemError {
    /// No temporary mapping slot was free on this CPU.
    NoSlot,
    /// The frame is not memory this `PageMemory` can reach.
    Foreign(Pfn),
    /// The same frame twice in one two-frame mapping (it would alias).
    SameFrame(Pfn),
}

/// Access to the bytes of physical frames.
pub trait PageMemory {
    /// Run `f` on the 4096 bytes of `pfn`.
    fn with_page<R>(&mut self, pfn: Pfn, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, MemError>;

    /// Run `f` on frames `a` and `b` as one contiguous 8192-byte slice (`a` first).
    fn with_pages2<R>(&mut self, a: Pfn, b: Pfn, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, MemError>;
}

/// Where a pool gets its order-0 frames from.
pub trait FrameSource {
    fn alloc_frame(&mut self, owner: Owner) -> Result<Pfn, FrameError>;
    fn free_frame(&mut self, pfn: Pfn) -> Result<(), FrameError>;
}

/// A frame budget around another memory: at most `limit` frames allocated through it at once, as a
/// pool's share of RAM (zswap's `max_pool_percent`) or a test's small machine. Past the budget
/// `alloc_frame` answers [`FrameError::OutOfMemory`] without asking the inner source.
#[derive(Debug)]
pub struct Limited<M> {
    inner: M,
    limit: u64,
    held: u64,
}

impl<M> Limited<M> {
    pub const fn new(inner: M, limit: u64) -> Self {
        Limited { inner, limit, held: 0 }
    }

    /// Frames allocated through this budget and not yet freed.
    pub fn held(&self) -> u64 {
        self.held
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Change the budget; frames already held above a lower limit stay held.
    pub fn set_limit(&mut self, limit: u64) {
        self.limit = limit;
    }

    pub fn inner(&self) -> &M {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut M {
        &mut self.inner
    }

    pub fn into_inner(self) -> M {
        self.inner
    }
}

impl<M: PageMemory> PageMemory for Limited<M> {
    fn with_page<R>(&mut self, pfn: Pfn, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, MemError> {
        self.inner.with_page(pfn, f)
    }

    fn with_pages2<R>(&mut self, a: Pfn, b: Pfn, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, MemError> {
        self.inner.with_pages2(a, b, f)
    }
}

impl<M: FrameSource> FrameSource for Limited<M> {
    fn alloc_frame(&mut self, owner: Owner) -> Result<Pfn, FrameError> {
        if self.held >= self.limit {
            return Err(FrameError::OutOfMemory { order: 0 });
        }
        let pfn = self.inner.alloc_frame(owner)?;
        self.held += 1;
        Ok(pfn)
    }

    fn free_frame(&mut self, pfn: Pfn) -> Result<(), FrameError> {
        self.inner.free_frame(pfn)?;
        self.held = self.held.saturating_sub(1);
        Ok(())
    }
}

#[cfg(any(test, feature = "host"))]
mod host;
#[cfg(any(test, feature = "host"))]
pub use host::HostMemory;

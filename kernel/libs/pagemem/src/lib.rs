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

#[cfg(any(test, feature = "host"))]
mod host;
#[cfg(any(test, feature = "host"))]
pub use host::HostMemory;

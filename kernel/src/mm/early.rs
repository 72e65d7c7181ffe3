//! The early frame allocator: frames for the first page tables and the frame table, before the buddy
//! allocator exists (Linux's memblock, in one line of state).
//!
//! It hands out frames downward from the top of the largest usable region and never frees them; the
//! buddy allocator is then given every usable frame except the range handed out here
//! ([`EarlyFrames::used`]).

use frame::{FrameError, Pfn};
use memmap::{Kind, Region};

use super::paging::TableFrames;

/// A bump allocator over one usable region.
#[derive(Debug)]
pub struct EarlyFrames {
    low: Pfn,
    next: Pfn,
    top: Pfn,
}

impl EarlyFrames {
    /// Use the largest usable region of the memory map.
    pub fn new(regions: &[Region]) -> Option<Self> {
        let r = regions
            .iter()
            .filter(|r| r.kind == Kind::Usable)
            .filter_map(|r| r.frames())
            .max_by_key(|f| f.end - f.start)?;
        let (low, top) = (Pfn::from_addr(r.start), Pfn::from_addr(r.end));
        Some(Self { low, next: top, top })
    }

    /// Take one frame (its contents are whatever was there).
    pub fn alloc(&mut self) -> Result<Pfn, FrameError> {
        if self.next.0 <= self.low.0 {
            return Err(FrameError::OutOfMemory { order: 0 });
        }
        self.next = Pfn(self.next.0 - 1);
        Ok(self.next)
    }

    /// The frames handed out so far, `[start, end)`.
    pub fn used(&self) -> (Pfn, Pfn) {
        (self.next, self.top)
    }
}

impl TableFrames for EarlyFrames {
    fn alloc_table(&mut self) -> Result<Pfn, FrameError> {
        self.alloc()
    }
}

//! The host arena: frames are `Vec` pages, managed by the real buddy allocator.
//!
//! Pfns start at [`HostMemory::BASE`] (not 0), so code that confuses a pfn with an index fails here.
//! Frames are poisoned on free and scrubbed only when they change owner, as in the kernel.
//! `with_pages2` copies the two pages into a scratch buffer and back — on the host nothing is mapped;
//! the kernel's version maps two adjacent kmap slots instead.

use frame::{FrameAllocator, FrameInfo, Owner, Pfn};

use crate::{FrameError, FrameSource, MemError, PAGE, PageMemory};

/// A Vec-backed physical memory with a buddy allocator over it.
pub struct HostMemory {
    pages: Vec<Vec<u8>>,
    buddy: FrameAllocator<'static>,
    scratch: Vec<u8>,
    /// Number of `with_page`/`with_pages2` calls (the kernel counts kmaps the same way).
    pub maps: u64,
}

impl core::fmt::Debug for HostMemory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HostMemory").field("frames", &self.pages.len()).field("stats", &self.buddy.stats()).finish()
    }
}

impl HostMemory {
    /// The first pfn of every arena.
    pub const BASE: Pfn = Pfn(0x100);

    /// An arena of `frames` free frames.
    pub fn new(frames: usize) -> Self {
        let end = Pfn(Self::BASE.0 + frames as u64);
        let table = vec![FrameInfo::reserved(); FrameAllocator::table_len(Self::BASE, end)].leak();
        let mut buddy = FrameAllocator::new(table, Self::BASE);
        buddy.add_free_range(Self::BASE, end).expect("a fresh arena accepts its own span");
        Self { pages: vec![vec![0; PAGE]; frames], buddy, scratch: vec![0; 2 * PAGE], maps: 0 }
    }

    /// The buddy allocator, for its statistics and for higher-order allocations.
    pub fn frames(&mut self) -> &mut FrameAllocator<'static> {
        &mut self.buddy
    }

    fn index(&self, pfn: Pfn) -> Result<usize, MemError> {
        let i = pfn.0.checked_sub(Self::BASE.0).ok_or(MemError::Foreign(pfn))? as usize;
        if i < self.pages.len() { Ok(i) } else { Err(MemError::Foreign(pfn)) }
    }
}

impl PageMemory for HostMemory {
    fn with_page<R>(&mut self, pfn: Pfn, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, MemError> {
        let i = self.index(pfn)?;
        self.maps += 1;
        Ok(f(&mut self.pages[i]))
    }

    fn with_pages2<R>(&mut self, a: Pfn, b: Pfn, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, MemError> {
        if a == b {
            return Err(MemError::SameFrame(a));
        }
        let (ia, ib) = (self.index(a)?, self.index(b)?);
        self.maps += 1;
        let mut scratch = core::mem::take(&mut self.scratch);
        scratch[..PAGE].copy_from_slice(&self.pages[ia]);
        scratch[PAGE..].copy_from_slice(&self.pages[ib]);
        let r = f(&mut scratch);
        self.pages[ia].copy_from_slice(&scratch[..PAGE]);
        self.pages[ib].copy_from_slice(&scratch[PAGE..]);
        self.scratch = scratch;
        Ok(r)
    }
}

impl FrameSource for HostMemory {
    fn alloc_frame(&mut self, owner: Owner) -> Result<Pfn, FrameError> {
        let pfn = self.buddy.alloc(0, owner)?;
        // Scrub when the frame changes owner, exactly as the kernel does (kernel/src/mm/frames.rs): a
        // frame that comes back to its last owner keeps its (poisoned) contents, so pool code must
        // never rely on fresh frames being zero.
        if self.buddy.info(pfn).is_some_and(|f| f.last_owner() != owner) {
            let i = self.index(pfn).expect("the buddy allocator only hands out arena frames");
            self.pages[i].fill(0);
        }
        Ok(pfn)
    }

    fn free_frame(&mut self, pfn: Pfn) -> Result<(), FrameError> {
        self.buddy.free(pfn, 0)?;
        // Poison the freed page (xv6's kfree fills with junk) so a use after free reads garbage.
        if let Ok(i) = self.index(pfn) {
            self.pages[i].fill(0x6b);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_round_trip_and_are_scrubbed_for_a_new_owner() {
        let mut m = HostMemory::new(8);
        let a = m.alloc_frame(Owner::POOL).unwrap();
        m.with_page(a, |p| p.fill(7)).unwrap();
        m.free_frame(a).unwrap();
        assert_eq!(m.with_page(a, |p| p[0]).unwrap(), 0x6b, "freed frames are poisoned");
        let b = m.alloc_frame(Owner::POOL).unwrap();
        assert_eq!(b, a, "the buddy allocator hands the same frame back");
        assert!(m.with_page(b, |p| p.iter().all(|&x| x == 0x6b)).unwrap(), "same owner: not scrubbed");
        m.free_frame(b).unwrap();
        let c = m.alloc_frame(Owner::WORKLOAD).unwrap();
        assert_eq!(c, a);
        assert!(m.with_page(c, |p| p.iter().all(|&x| x == 0)).unwrap(), "new owner: scrubbed");
    }

    #[test]
    fn two_frames_read_as_one_slice() {
        let mut m = HostMemory::new(8);
        let a = m.alloc_frame(Owner::POOL).unwrap();
        let _gap = m.alloc_frame(Owner::POOL).unwrap();
        let b = m.alloc_frame(Owner::POOL).unwrap();
        // An object of 100 bytes that starts 50 bytes before the end of `a` and ends in `b`.
        m.with_pages2(a, b, |s| s[PAGE - 50..PAGE + 50].copy_from_slice(&[9; 100])).unwrap();
        assert_eq!(m.with_page(a, |p| p[PAGE - 50..].to_vec()).unwrap(), vec![9; 50]);
        assert_eq!(m.with_page(b, |p| p[..50].to_vec()).unwrap(), vec![9; 50]);
        assert_eq!(m.with_pages2(a, a, |_| ()), Err(MemError::SameFrame(a)));
    }

    #[test]
    fn a_budget_refuses_past_its_limit_and_recovers_on_free() {
        let mut m = crate::Limited::new(HostMemory::new(8), 2);
        let a = m.alloc_frame(Owner::POOL).unwrap();
        let b = m.alloc_frame(Owner::POOL).unwrap();
        assert_eq!(m.alloc_frame(Owner::POOL), Err(FrameError::OutOfMemory { order: 0 }));
        assert_eq!((m.held(), m.inner_mut().frames().stats().used), (2, 2), "the refusal took nothing");
        m.free_frame(a).unwrap();
        assert_eq!(m.free_frame(a), Err(FrameError::DoubleFree(a)), "the inner source still judges frees");
        assert_eq!(m.held(), 1);
        let c = m.alloc_frame(Owner::POOL).unwrap();
        m.with_pages2(b, c, |s| s[4095..4097].copy_from_slice(&[1, 2])).unwrap();
        assert_eq!(m.with_page(c, |p| p[0]).unwrap(), 2);
    }

    #[test]
    fn foreign_frames_and_double_frees_are_refused() {
        let mut m = HostMemory::new(4);
        assert_eq!(m.with_page(Pfn(0), |_| ()), Err(MemError::Foreign(Pfn(0))));
        assert_eq!(m.with_page(Pfn(HostMemory::BASE.0 + 4), |_| ()), Err(MemError::Foreign(Pfn(0x104))));
        let a = m.alloc_frame(Owner::POOL).unwrap();
        m.free_frame(a).unwrap();
        assert_eq!(m.free_frame(a), Err(FrameError::DoubleFree(a)));
    }
}

//! The kernel's frame allocator: the `frame` crate's buddy allocator over real RAM, behind a lock.
//!
//! * [`alloc`] / [`free`] take blocks of any order from the buddy lists (one lock).
//! * [`alloc_page`] / [`free_page`] go through the CPU's per-CPU list of order-0 frames ([`frame::PcpList`]),
//!   which refills from and drains to the buddy lists in batches, as Linux's pcp lists do.
//! * A frame is **scrubbed** (zeroed through kmap) before it reaches an owner other than its last one,
//!   so no owner can read another's data; in debug builds freed frames are **poisoned** with `0x6b`
//!   (Linux's `POISON_FREE`) so a use after free reads junk, as xv6's `kfree` does.
//! * Errors are [`frame::FrameError`] values: a double free, a foreign frame or a wrong order is refused
//!   and changes nothing.

use frame::{FrameAllocator, FrameError, FrameInfo, FrameStats, Owner, PcpList, Pfn};
use spin::Mutex;
use x86_64::instructions::interrupts::without_interrupts;

use super::kmap::kmap_local;
use super::paging::TableFrames;

static BUDDY: Mutex<Option<FrameAllocator<'static>>> = Mutex::new(None);
static PCP: Mutex<PcpList> = Mutex::new(PcpList::new());

/// Poison byte for freed frames (debug builds).
pub const POISON_FREE: u8 = 0x6b;

pub(super) fn install(buddy: FrameAllocator<'static>) {
    *BUDDY.lock() = Some(buddy);
}

fn with_buddy<R>(f: impl FnOnce(&mut FrameAllocator<'static>) -> R) -> R {
    without_interrupts(|| f(BUDDY.lock().as_mut().expect("frame allocator used before mm::init")))
}

fn scrub_if_new_owner(pfn: Pfn, frames: u64, owner: Owner, last: Owner) {
    if last == owner {
        return;
    }
    for i in 0..frames {
        // Only a caller already holding every kmap slot of this CPU could make this fail: a kernel bug.
        kmap_local(Pfn(pfn.0 + i)).expect("scrub: no free kmap slot").bytes().fill(0);
    }
}

fn poison(pfn: Pfn, frames: u64) {
    if cfg!(debug_assertions) {
        for i in 0..frames {
            kmap_local(Pfn(pfn.0 + i)).expect("poison: no free kmap slot").bytes().fill(POISON_FREE);
        }
    }
}

/// Allocate a block of `2^order` frames for `owner`.
pub fn alloc(order: u8, owner: Owner) -> Result<Pfn, FrameError> {
    let (pfn, last) = with_buddy(|b| {
        let pfn = b.alloc(order, owner)?;
        Ok::<_, FrameError>((pfn, b.info(pfn).map_or(Owner::NONE, FrameInfo::last_owner)))
    })?;
    scrub_if_new_owner(pfn, 1 << order, owner, last);
    Ok(pfn)
}

/// Free a block allocated with [`alloc`] at the same order.
pub fn free(pfn: Pfn, order: u8) -> Result<(), FrameError> {
    with_buddy(|b| {
        b.free(pfn, order)?;
        poison(pfn, 1 << order);
        Ok(())
    })
}

/// Allocate one frame through this CPU's per-CPU list.
pub fn alloc_page(owner: Owner) -> Result<Pfn, FrameError> {
    let (pfn, last) = without_interrupts(|| {
        let mut pcp = PCP.lock();
        let mut buddy = BUDDY.lock();
        let b = buddy.as_mut().expect("frame allocator used before mm::init");
        let pfn = pcp.alloc(b, owner)?;
        Ok::<_, FrameError>((pfn, b.info(pfn).map_or(Owner::NONE, FrameInfo::last_owner)))
    })?;
    scrub_if_new_owner(pfn, 1, owner, last);
    Ok(pfn)
}

/// Free one frame into this CPU's per-CPU list.
pub fn free_page(pfn: Pfn) -> Result<(), FrameError> {
    without_interrupts(|| {
        let mut pcp = PCP.lock();
        let mut buddy = BUDDY.lock();
        pcp.free(buddy.as_mut().expect("frame allocator used before mm::init"), pfn)?;
        poison(pfn, 1);
        Ok(())
    })
}

/// Return this CPU's cached frames to the buddy lists (so counts can be compared with boot).
pub fn drain_pcp() {
    without_interrupts(|| {
        let mut pcp = PCP.lock();
        let mut buddy = BUDDY.lock();
        pcp.drain(buddy.as_mut().expect("frame allocator used before mm::init"));
    })
}

pub fn stats() -> FrameStats {
    with_buddy(|b| b.stats())
}

/// The min/low/high watermarks (frames) reclaim will steer by.
pub fn watermarks() -> frame::Watermarks {
    with_buddy(|b| b.watermarks())
}

/// The `FrameInfo` of a frame (a copy).
pub fn info(pfn: Pfn) -> Option<FrameInfo> {
    with_buddy(|b| b.info(pfn).copied())
}

/// Page tables allocated after boot come from the buddy allocator.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuddyTables;

impl TableFrames for BuddyTables {
    fn alloc_table(&mut self) -> Result<Pfn, FrameError> {
        alloc_page(Owner::PAGE_TABLE)
    }
}

//! Kernel stacks with guard pages.
//!
//! Each stack gets its own stretch of the stacks region: one unmapped guard page, then the stack's
//! pages. A stack that overflows runs into the guard page below it and faults instead of silently
//! overwriting whatever lies below. The region is never reused, so the page above a stack is the next
//! stack's guard page: every stack has an unmapped page on both sides.
//!
//! ```text
//! STACKS_BASE
//! | guard | stack 0 (pages) | guard | stack 1 (pages) | guard | …
//!          ^bottom  top^
//! ```

use core::ops::Range;
use core::sync::atomic::{AtomicU64, Ordering};

use frame::Owner;
use memmap::layout::STACKS_BASE;

/// End of the stacks region (its PML4 slot).
const STACKS_END: u64 = STACKS_BASE + (1 << 39);
use x86_64::structures::paging::PageTableFlags;

use super::frames;
use super::paging::{self, MapError};

static NEXT: AtomicU64 = AtomicU64::new(STACKS_BASE);

/// Map a new stack of `pages` pages above an unmapped guard page; returns `[bottom, top)`.
/// On failure every page mapped so far is unmapped and freed (the address range is not reused).
pub fn alloc_stack(pages: u64) -> Result<Range<u64>, MapError> {
    let guard = NEXT.fetch_add((pages + 1) * 4096, Ordering::SeqCst);
    let bottom = guard + 4096;
    if bottom + pages * 4096 > STACKS_END {
        return Err(MapError::OutOfFrames(frame::FrameError::OutOfMemory { order: 0 }));
    }
    for i in 0..pages {
        if let Err(e) = map_stack_page(bottom + i * 4096) {
            for j in 0..i {
                // SAFETY: the stack was never handed out; these pages were mapped just above.
                if let Ok(pfn) = unsafe { paging::unmap(bottom + j * 4096) } {
                    // SAFETY: unmapped just now and never used.
                    let _ = unsafe { frames::free_page(pfn) };
                }
            }
            return Err(e);
        }
    }
    Ok(bottom..bottom + pages * 4096)
}

fn map_stack_page(va: u64) -> Result<(), MapError> {
    let pfn = frames::alloc_page(Owner::STACK).map_err(MapError::OutOfFrames)?;
    let flags = PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
    // SAFETY: `pfn` was just allocated for this stack, and `va` lies in a stretch of the stacks region
    // that `NEXT` handed to this stack alone.
    unsafe { paging::map(va, pfn, flags, &mut frames::BuddyTables) }.inspect_err(|_| {
        // SAFETY: never mapped or used.
        let _ = unsafe { frames::free_page(pfn) };
    })
}

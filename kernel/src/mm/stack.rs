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
use x86_64::structures::paging::PageTableFlags;

use super::frames;
use super::paging::{self, MapError};

static NEXT: AtomicU64 = AtomicU64::new(STACKS_BASE);

/// Map a new stack of `pages` pages below an unmapped guard page; returns `[bottom, top)`.
pub fn alloc_stack(pages: u64) -> Result<Range<u64>, MapError> {
    let guard = NEXT.fetch_add((pages + 1) * 4096, Ordering::SeqCst);
    let bottom = guard + 4096;
    for i in 0..pages {
        let pfn = frames::alloc_page(Owner::STACK).map_err(MapError::OutOfFrames)?;
        let flags = PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
        paging::map(bottom + i * 4096, pfn, flags, &mut frames::BuddyTables)?;
    }
    Ok(bottom..bottom + pages * 4096)
}

//! Kernel heap: `alloc` (Box, Vec, String) on top of `linked_list_allocator`.
//!
//! Today the heap is a fixed boot arena of [`BOOT_HEAP_SIZE`] bytes in the kernel's `.bss`, which the
//! bootloader maps with the kernel image — enough for boot and the test harness, and needing no page
//! tables of our own. The memory layer replaces it with a virtual region grown on demand from the frame
//! allocator, with guard pages (see the "Physical and virtual memory" issue).

use core::cell::UnsafeCell;

use linked_list_allocator::LockedHeap;

/// Bytes in the boot arena.
pub const BOOT_HEAP_SIZE: usize = 1024 * 1024;

#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; BOOT_HEAP_SIZE]>);

// SAFETY: the arena's bytes are only reached through the allocator, which hands out disjoint blocks
// under its own lock.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; BOOT_HEAP_SIZE]));

#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

/// Give the boot arena to the allocator. Call once, early in boot.
pub fn init() {
    let mut heap = ALLOCATOR.lock();
    if heap.size() == 0 {
        // SAFETY: the arena is a static, so valid for the kernel's lifetime, and it is handed over once
        // (size 0 means not yet initialised); nothing else ever touches its bytes.
        unsafe { heap.init(ARENA.0.get().cast::<u8>(), BOOT_HEAP_SIZE) };
    }
}

/// Heap figures for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapStats {
    pub size: usize,
    pub used: usize,
    pub free: usize,
}

pub fn stats() -> HeapStats {
    let heap = ALLOCATOR.lock();
    HeapStats { size: heap.size(), used: heap.used(), free: heap.free() }
}

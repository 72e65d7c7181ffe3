//! Kernel heap: `alloc` (Box, Vec, String) on `linked_list_allocator`, grown on demand.
//!
//! # Two arenas
//!
//! | arena | where | when |
//! |---|---|---|
//! | boot | a fixed [`BOOT_HEAP_SIZE`] array in `.bss` | from the first line of boot until `mm::init` (memory map, options) |
//! | main | a virtual region at [`HEAP_BASE`], up to [`HEAP_MAX`] | after `mm::init`: grown a few pages at a time |
//!
//! When the main arena cannot satisfy a request, [`grow`] maps more frames (owner HEAP) at its end and
//! extends the allocator, then retries: the heap uses as much RAM as it needs and no more. A block is
//! freed to the arena it came from (told apart by address). Heap memory is never returned to the frame
//! allocator (like `brk` that only grows).
//!
//! # Running out: admission, not a failed allocation
//!
//! A Rust allocation that fails cannot be handled where it happens (a `BTreeMap` insert has no error
//! path): the kernel stops. So the one path that allocates per stored page — a tmem put, which adds map
//! nodes and may grow a pool's table — asks first: [`admit`]`(bytes)` answers whether the heap can give
//! `bytes` **plus [`HEADROOM`]** in one block now, growing it if needed. A `false` refuses the store (it
//! goes to the swap disk) before anything is allocated. The headroom is what every other allocation of
//! the kernel (on any CPU) lives on once the stores have stopped: the heap is never full while it is
//! admitting. Growth fails when frames run out, at the arena's [`set_limit`] (tests and the demo use it
//! to exhaust the heap on purpose), or by injection (`frames::set_meta_fail_every`, counted only for
//! admission's growth: that growth has a fallback, the others have none).

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr::{NonNull, null_mut};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use frame::Owner;
use linked_list_allocator::Heap;
use memmap::layout::{HEAP_BASE, HEAP_MAX};
use spin::Mutex;
use x86_64::instructions::interrupts::without_interrupts;
use x86_64::structures::paging::PageTableFlags;

use super::{frames, paging};

/// Bytes in the boot arena.
pub const BOOT_HEAP_SIZE: usize = 256 * 1024;
/// Pages the main arena grows by at least.
pub const GROW_PAGES: u64 = 16;
/// What [`admit`] keeps free beyond the bytes it is asked for: room for every allocation that cannot be
/// refused (the rest of the kernel, on every CPU) once stores are being refused.
pub const HEADROOM: usize = 64 * 1024;

#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; BOOT_HEAP_SIZE]>);

// SAFETY: the arena's bytes are only reached through the allocator, which hands out disjoint blocks
// under its own lock.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; BOOT_HEAP_SIZE]));

struct KernelHeap {
    boot: Mutex<Heap>,
    main: Mutex<Heap>,
    ready: AtomicBool,
    /// Bytes of the main region mapped so far.
    mapped: AtomicU64,
    /// The most the main region may map ([`set_limit`]); [`HEAP_MAX`] by default.
    limit: AtomicU64,
    admitted: AtomicU64,
    refused: AtomicU64,
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap {
    boot: Mutex::new(Heap::empty()),
    main: Mutex::new(Heap::empty()),
    ready: AtomicBool::new(false),
    mapped: AtomicU64::new(0),
    limit: AtomicU64::new(HEAP_MAX),
    admitted: AtomicU64::new(0),
    refused: AtomicU64::new(0),
};

/// Give the boot arena to the allocator. Call once, early in boot.
pub fn init_boot() {
    let mut heap = HEAP.boot.lock();
    if heap.size() == 0 {
        // SAFETY: the arena is a static, so valid for the kernel's lifetime, and it is handed over once
        // (size 0 means not yet initialised); nothing else ever touches its bytes.
        unsafe { heap.init(ARENA.0.get().cast::<u8>(), BOOT_HEAP_SIZE) };
    }
}

/// Switch new allocations to the main arena (after frames and paging work).
pub(super) fn init_main() {
    HEAP.ready.store(true, Ordering::SeqCst);
}

/// Map at least `bytes` more at the end of the main region and hand them to `heap`.
fn grow(heap: &mut Heap, bytes: u64) -> bool {
    let mapped = HEAP.mapped.load(Ordering::Relaxed);
    let limit = HEAP.limit.load(Ordering::Relaxed).min(HEAP_MAX);
    let needed = bytes.div_ceil(4096);
    // At least GROW_PAGES, but a heap near its limit takes the last pages it may have.
    let pages = needed.max(GROW_PAGES).min(limit.saturating_sub(mapped) / 4096);
    if pages < needed {
        return false;
    }
    let start = HEAP_BASE + mapped;
    for i in 0..pages {
        let Ok(pfn) = frames::alloc_page(Owner::HEAP) else { return i > 0 && extend(heap, start, i) };
        let flags = PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
        // SAFETY: `pfn` was just allocated for the heap, and the pages past `mapped` in the heap region
        // belong to the heap alone (the region only grows, under the heap lock).
        if unsafe { paging::map(start + i * 4096, pfn, flags, &mut frames::BuddyTables) }.is_err() {
            // SAFETY: the frame was never mapped or used.
            let _ = unsafe { frames::free_page(pfn) };
            return i > 0 && extend(heap, start, i);
        }
    }
    extend(heap, start, pages)
}

fn extend(heap: &mut Heap, start: u64, pages: u64) -> bool {
    let bytes = pages * 4096;
    if heap.size() == 0 {
        // SAFETY: [start, start + bytes) was just mapped writable for the heap alone, and the main arena
        // is handed over once (size 0).
        unsafe { heap.init(start as *mut u8, bytes as usize) };
    } else {
        // SAFETY: the new pages directly follow the arena's current end (the region is grown in order)
        // and belong to the heap alone.
        unsafe { heap.extend(bytes as usize) };
    }
    HEAP.mapped.fetch_add(bytes, Ordering::Relaxed);
    true
}

fn in_boot_arena(ptr: *mut u8) -> bool {
    let start = ARENA.0.get() as usize;
    (start..start + BOOT_HEAP_SIZE).contains(&(ptr as usize))
}

// SAFETY: blocks come from `linked_list_allocator`, which returns disjoint, suitably aligned blocks of at
// least the requested size; each block is returned to the arena that produced it.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        without_interrupts(|| {
            if !self.ready.load(Ordering::SeqCst) {
                return self.boot.lock().allocate_first_fit(layout).map_or(null_mut(), |p| p.as_ptr());
            }
            let mut heap = self.main.lock();
            loop {
                if let Ok(p) = heap.allocate_first_fit(layout) {
                    return p.as_ptr();
                }
                if !grow(&mut heap, (layout.size() + layout.align()) as u64) {
                    return null_mut();
                }
            }
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(p) = NonNull::new(ptr) else { return };
        without_interrupts(|| {
            let arena = if in_boot_arena(ptr) { &self.boot } else { &self.main };
            // SAFETY: `ptr` was returned by this arena's `allocate_first_fit` with the same layout (the
            // GlobalAlloc contract), and arenas are told apart by address.
            unsafe { arena.lock().deallocate(p, layout) };
        })
    }
}

/// Can the heap give `bytes` more, with [`HEADROOM`] to spare, without failing any allocation? Tries one
/// block of `bytes + HEADROOM` in the main arena, growing it (fallibly) if needed, and gives it back at
/// once. Called by tmem before each put (its metadata gate); `false` refuses the put (module header).
pub fn admit(bytes: usize) -> bool {
    if !HEAP.ready.load(Ordering::SeqCst) {
        return false;
    }
    let Ok(layout) = Layout::from_size_align(bytes.saturating_add(HEADROOM), 16) else { return false };
    let ok = without_interrupts(|| {
        let mut heap = HEAP.main.lock();
        let block = match heap.allocate_first_fit(layout) {
            Ok(p) => Some(p),
            // Growth here has a fallback (the store is refused), so injection may fail it.
            Err(()) if !super::frames::inject_meta() && grow(&mut heap, layout.size() as u64) => {
                heap.allocate_first_fit(layout).ok()
            }
            Err(()) => None,
        };
        block.map(|p| {
            // SAFETY: `p` was just allocated from this arena with `layout` and nothing saw it.
            unsafe { heap.deallocate(p, layout) }
        })
    });
    let counter = if ok.is_some() { &HEAP.admitted } else { &HEAP.refused };
    counter.fetch_add(1, Ordering::Relaxed);
    ok.is_some()
}

/// Cap the bytes the main arena may map (`None`: [`HEAP_MAX`]). Growth past the cap fails as if frames
/// had run out. A cap below what is mapped already only stops further growth.
pub fn set_limit(bytes: Option<u64>) {
    HEAP.limit.store(bytes.unwrap_or(HEAP_MAX), Ordering::Relaxed);
}

/// Admissions ([`admit`]) answered yes and no, ever.
pub fn admissions() -> (u64, u64) {
    (HEAP.admitted.load(Ordering::Relaxed), HEAP.refused.load(Ordering::Relaxed))
}

/// Heap figures for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes in both arenas.
    pub size: usize,
    pub used: usize,
    /// Bytes of the main region mapped so far.
    pub mapped: u64,
}

pub fn stats() -> HeapStats {
    without_interrupts(|| {
        let (b, m) = (HEAP.boot.lock(), HEAP.main.lock());
        HeapStats { size: b.size() + m.size(), used: b.used() + m.used(), mapped: HEAP.mapped.load(Ordering::Relaxed) }
    })
}

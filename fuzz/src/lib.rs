//! What the fuzz targets share: one page arena that outlives every input, a page maker, and the seed
//! corpora.
//!
//! # Why
//!
//! cargo-fuzz runs each target (`fuzz_targets/*.rs`) under libFuzzer with AddressSanitizer, whose leak
//! check fails an input after which heap memory became unreachable. `pagemem::HostMemory::new` leaks its
//! frame table on purpose (the buddy allocator wants a `&'static mut`), so an arena per input would be
//! reported as a leak every time. The targets instead build their pools over a [`SharedArena`]: one
//! `HostMemory` in a `static`, made once and never dropped, lent to every pool of every input. That is also how the kernel
//! runs — one frame allocator under all pools — and it buys a check the pools' own tests cannot make:
//! at the end of every input, with every pool destroyed, the arena must have all its frames back
//! ([`SharedArena::used_frames`] is 0), or a pool lost frames.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | target | one `fuzz_targets/NAME.rs`, a libFuzzer entry point over `&[u8]` or an `Arbitrary` type |
//! | seed | a file of `corpus/NAME/`: an input libFuzzer starts from; [`seeds`] makes them |
//! | arena | the process's `HostMemory` of [`ARENA_FRAMES`] frames behind every [`SharedArena`] |
//!
//! # Layout
//!
//! ```text
//!   static ARENA: OnceLock<Mutex<HostMemory>>  (ARENA_FRAMES frames, made on first use, never dropped)
//!        ▲              ▲              ▲
//!   SharedArena    SharedArena    SharedArena      one per pool (zsmalloc, zbud, a tmem pool, …);
//!   each locks the arena for one `with_page`/`alloc_frame` call and lets it go
//! ```
//!
//! # Worked example
//!
//! `pool_forged_handles` builds `Zsmalloc::new(SharedArena::get())` and `Zbud::new(SharedArena::get())`,
//! runs the input's operations, frees every live object, drops both pools and asserts
//! `SharedArena::get().used_frames() == 0`. If zsmalloc kept one zspage of two frames after its last
//! free, the count would be 2 and the input would fail with that number.
//!
//! # Contracts
//!
//! - The lock is held for one call; a pool that called back into its memory from inside `with_page`
//!   would deadlock (none can: the closure gets bytes, not the memory). libFuzzer runs one input at a
//!   time, so the lock is never contended.
//! - [`seeds`] is deterministic; `cargo test --manifest-path fuzz/Cargo.toml` checks that the files under
//!   `fuzz/corpus/` are exactly what it makes, and rewrites them when `ZKERNEL_FUZZ_WRITE_SEEDS=1` is set.

use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use frame::{FrameError, Owner, Pfn};
use pagemem::{FrameSource, HostMemory, MemError, PageMemory};

pub mod seeds;

/// Frames in the arena: room for every pool a target builds at once (tmem's limit and the targets'
/// object caps keep them well below), and small enough to scan for leaks.
pub const ARENA_FRAMES: usize = 512;

/// The arena: a `static`, never dropped, so its leaked frame table stays reachable and LeakSanitizer
/// does not report it at exit (a `thread_local!` would be destroyed first).
static ARENA: OnceLock<Mutex<HostMemory>> = OnceLock::new();

/// A handle on the process's arena: `PageMemory` and `FrameSource` for a pool (module header).
#[derive(Debug, Clone, Copy, Default)]
pub struct SharedArena;

impl SharedArena {
    /// The arena (made on first use).
    pub fn get() -> SharedArena {
        SharedArena
    }

    /// Frames allocated from the arena and not given back.
    pub fn used_frames(&self) -> u64 {
        self.lock().frames().stats().used
    }

    /// The arena for one call. A panic while it is held ends the fuzzer anyway, so a poisoned lock is
    /// simply taken over.
    fn lock(&self) -> MutexGuard<'static, HostMemory> {
        ARENA.get_or_init(|| Mutex::new(HostMemory::new(ARENA_FRAMES))).lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl PageMemory for SharedArena {
    fn with_page<R>(&mut self, pfn: Pfn, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, MemError> {
        self.lock().with_page(pfn, f)
    }

    fn with_pages2<R>(&mut self, a: Pfn, b: Pfn, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, MemError> {
        self.lock().with_pages2(a, b, f)
    }
}

impl FrameSource for SharedArena {
    fn alloc_frame(&mut self, owner: Owner) -> Result<Pfn, FrameError> {
        self.lock().alloc_frame(owner)
    }

    fn free_frame(&mut self, pfn: Pfn) -> Result<(), FrameError> {
        self.lock().free_frame(pfn)
    }
}

/// A page of controllable compressibility: `noise` bytes of xorshift output from `seed`, then `fill`
/// to the end. `noise = 0` is a same-filled page, `noise = 4096` one that no compressor shrinks.
pub fn make_page(seed: u32, noise: u16, fill: u8) -> Box<[u8; compress::PAGE_SIZE]> {
    let mut page = Box::new([fill; compress::PAGE_SIZE]);
    let noise = usize::from(noise).min(compress::PAGE_SIZE);
    let mut x = seed | 1;
    for b in &mut page[..noise] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    page
}

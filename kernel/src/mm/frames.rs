//! The kernel's frame allocator: the `frame` crate's buddy allocator over real RAM, behind a lock.
//!
//! * [`alloc`] / [`free`] take blocks of any order from the buddy lists (one lock).
//! * [`alloc_page`] / [`free_page`] go through the calling CPU's own list of order-0 frames
//!   ([`frame::PcpList`], one per CPU, indexed by `kmap::cpu_id`), which refills from and drains to the
//!   buddy lists in batches, as Linux's pcp lists do. Lock order: the CPU's list, then the buddy lists.
//! * [`OwnedFrame`] is the safe way to hold one frame: it frees itself on drop and reaches its bytes
//!   through kmap ([`OwnedFrame::with_bytes`]). Code outside `mm` uses it instead of the raw calls.
//! * A frame is **scrubbed** (zeroed through kmap) before it reaches an owner other than its last one,
//!   so no owner can read another's data; freed frames are **poisoned** with `0x6b` (Linux's
//!   `POISON_FREE`) so a use after free reads junk, as xv6's `kfree` does: every byte in debug builds, the
//!   first and last cache line in release builds ([`POISON_RANGES`]), so the poison checks run there too.
//! * Errors are [`frame::FrameError`] values: a double free, a foreign frame or a wrong order is refused
//!   and changes nothing.
//! * Freeing is `unsafe`: the allocator can check its books, not whether the frame is still mapped or
//!   referenced somewhere — that is the caller's promise.
//! * **Fault injection** ([`set_fail_every`], [`set_fail_random`]; the swap demo's options
//!   `fail_frame_every=N` and `fail_frame_schedule`; Linux's `fail_page_alloc` with its `interval` or its
//!   `probability`): every Nth allocation for a pool or a workload page, or each one with chance 1/N
//!   from a fixed seed, fails with `OutOfMemory`. Only those owners: they have a fallback (a refused store
//!   goes to the swap disk, a fault reclaims and retries). The random schedule exists because the
//!   periodic one can fall in step with a caller: a fault whose every retry makes exactly N allocations
//!   fails every retry (docs/reliability.md, "Frame faults at a full zram").
//! * **Metadata fault injection** ([`set_meta_fail_every`]): every Nth request for heap or page-table
//!   memory *where the caller has a fallback* fails: a tmem store's admission against the heap
//!   (`heap::admit`: the store is refused and goes to the disk) and the page tables a region mapping needs
//!   (`region::Region::map`: the fault reclaims and retries). Elsewhere a Rust allocation cannot fail
//!   softly (a `Box` or a `BTreeMap` node has no error path), so failing it would only test the panic;
//!   admission is what keeps those allocations from ever finding the heap empty (docs/reliability.md).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::arch::lock::{Lock, LockStats};
use frame::{FrameAllocator, FrameError, FrameInfo, FrameStats, Owner, PcpList, Pfn};
use x86_64::instructions::interrupts::without_interrupts;

use super::kmap::{KmapError, MAX_CPUS, cpu_id, kmap_local};
use super::paging::TableFrames;

static BUDDY: Lock<Option<FrameAllocator<'static>>> = Lock::new("frames.buddy", 70, None);
/// One list of cached order-0 frames per CPU, each touched only by its own CPU (and by [`drain_pcp`]).
static PCP: [Lock<PcpList>; MAX_CPUS] = [const { Lock::new("frames.pcp", 60, PcpList::new()) }; MAX_CPUS];

/// Poison byte for freed frames (debug builds).
pub const POISON_FREE: u8 = 0x6b;

pub(super) fn install(buddy: FrameAllocator<'static>) {
    *BUDDY.lock() = Some(buddy);
}

fn with_buddy<R>(f: impl FnOnce(&mut FrameAllocator<'static>) -> R) -> R {
    without_interrupts(|| f(BUDDY.lock().as_mut().expect("frame allocator used before mm::init")))
}

/// Zero every frame of the block `[pfn, pfn + frames)` whose last owner was not `owner`. Each frame
/// is checked on its own: after buddy merges, the frames of one block can have different last owners.
fn scrub_for(b: &FrameAllocator<'static>, pfn: Pfn, frames: u64, owner: Owner) {
    for i in 0..frames {
        let f = Pfn(pfn.0 + i);
        if b.info(f).is_some_and(|info| info.last_owner() != owner) {
            // The frame was just allocated under the lock, so nothing else maps it; only a caller that
            // already holds every kmap slot of this CPU could make this fail — a kernel bug.
            // SAFETY: the frame was just allocated under the lock and is not handed out yet: nobody else
            // can reach it.
            let m = unsafe { kmap_local(f) };
            m.unwrap_or_else(|e| panic!("scrub of frame {:#x}: {e:?}", f.0)).bytes().fill(0);
        }
    }
}

/// The bytes of a freed frame that are poisoned: all of them in debug builds; in release builds the first
/// and the last cache line, 128 bytes a free instead of 4096. That still catches the classic stray write
/// through a stale translation (a store at a page's start or end: a header, a counter) at 1/32 of the
/// cost, so the check runs in `cargo xtask test --release` and the release soak too.
#[allow(clippy::single_range_in_vec_init, reason = "a list of byte ranges, in debug builds one: the whole frame")]
pub const POISON_RANGES: &[core::ops::Range<usize>] =
    if cfg!(debug_assertions) { &[0..4096] } else { &[0..64, 4032..4096] };

fn poison(pfn: Pfn, frames: u64) {
    for i in 0..frames {
        let f = Pfn(pfn.0 + i);
        // SAFETY: the frame was just freed under the lock; by `free`'s contract nothing uses it.
        let m = unsafe { kmap_local(f) };
        let mut m = m.unwrap_or_else(|e| panic!("poison of frame {:#x}: {e:?}", f.0));
        for r in POISON_RANGES {
            m.bytes()[r.clone()].fill(POISON_FREE);
        }
    }
}

/// One fault-injection schedule, with its failures counted. Periodic: every `every`th call fails,
/// counting from `first` (1: the `every`th call is the first to fail; 0: the very first call fails).
/// Random: each call fails with chance 1/`every`, drawn from a xorshift64* generator seeded by `set`.
struct Injector {
    every: AtomicU64,
    calls: AtomicU64,
    injected: AtomicU64,
    random: AtomicBool,
    /// The generator's state (random schedule only; never 0).
    state: AtomicU64,
    first: u64,
}

impl Injector {
    const fn new(first: u64) -> Self {
        Injector {
            every: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            injected: AtomicU64::new(0),
            random: AtomicBool::new(false),
            state: AtomicU64::new(1),
            first,
        }
    }

    /// Arm the schedule (`every` 0: off), resetting the counters; `seed` `Some` makes it random.
    fn set(&self, every: u64, seed: Option<u64>) {
        // Off first, on last (Release, read with Acquire in `hit`): a CPU that sees the new `every` sees
        // the new schedule with it.
        self.every.store(0, Ordering::Release);
        self.calls.store(0, Ordering::Relaxed);
        self.injected.store(0, Ordering::Relaxed);
        self.random.store(seed.is_some(), Ordering::Relaxed);
        self.state.store(seed.map_or(1, seed_state), Ordering::Relaxed);
        self.every.store(every, Ordering::Release);
    }

    /// Whether this call is to fail (counted either way while injection is on).
    fn hit(&self) -> bool {
        let n = self.every.load(Ordering::Acquire);
        if n == 0 {
            return false;
        }
        let calls = self.calls.fetch_add(1, Ordering::Relaxed);
        let fail = if self.random.load(Ordering::Relaxed) {
            // One step of the generator, taken atomically so that two CPUs never draw the same number.
            let step = |x: u64| {
                let x = x ^ (x >> 12);
                let x = x ^ (x << 25);
                x ^ (x >> 27)
            };
            let old = self.state.try_update(Ordering::Relaxed, Ordering::Relaxed, |x| Some(step(x)));
            let x = step(old.unwrap_or_else(|x| x));
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32).is_multiple_of(n)
        } else {
            (calls + self.first).is_multiple_of(n)
        };
        if fail {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        fail
    }

    fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }
}

/// The generator's first state for `seed`: splitmix64's finaliser, a bijection, so two seeds start at
/// different states (but for the one seed whose mix is 0, which xorshift cannot leave and which is
/// moved to a fixed state). xorshift64 runs through every non-zero state in one cycle, so two seeds
/// give two far-apart stretches of one sequence. (A test caught an earlier mix that gave seeds 42 and
/// 43 the same state.)
fn seed_state(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    match z ^ (z >> 31) {
        0 => 0x9E37_79B9_7F4A_7C15,
        z => z,
    }
}

/// Pool and workload frames: the `n`th, `2n`th… allocation fails, or one in `n` at random.
static FRAMES: Injector = Injector::new(1);
/// Heap admissions and region page tables: the first, then every `n`th.
static META: Injector = Injector::new(0);

/// Make every `n`th pool or workload frame allocation fail (`0` turns injection off and resets the
/// counters).
pub fn set_fail_every(n: u64) {
    FRAMES.set(n, None);
}

/// Make each pool or workload frame allocation fail with chance 1/`n`, drawn from a generator seeded
/// with `seed` (`0` for `n` turns injection off). One CPU making the same allocations sees the same
/// failures for the same seed.
pub fn set_fail_random(n: u64, seed: u64) {
    FRAMES.set(n, Some(seed));
}

/// Allocations failed on purpose since [`set_fail_every`] or [`set_fail_random`].
pub fn injected_failures() -> u64 {
    FRAMES.injected()
}

fn inject(order: u8, owner: Owner) -> Result<(), FrameError> {
    if (owner.is_pool() || owner == Owner::WORKLOAD) && FRAMES.hit() {
        return Err(FrameError::OutOfMemory { order });
    }
    Ok(())
}

/// Make the first and then every `n`th heap admission or page-table frame allocation that has a fallback
/// fail (module header; `0` turns injection off and resets the counters). The first fails so that a test
/// knows a fresh mapping's first page table is refused.
pub fn set_meta_fail_every(n: u64) {
    META.set(n, None);
}

/// Heap and page-table allocations failed on purpose since [`set_meta_fail_every`].
pub fn meta_injected_failures() -> u64 {
    META.injected()
}

/// Whether this heap or page-table allocation (one with a fallback) is to fail: counts it.
pub(super) fn inject_meta() -> bool {
    META.hit()
}

/// Allocate a block of `2^order` frames for `owner`.
pub fn alloc(order: u8, owner: Owner) -> Result<Pfn, FrameError> {
    inject(order, owner)?;
    with_buddy(|b| {
        let pfn = b.alloc(order, owner)?;
        scrub_for(b, pfn, 1 << order, owner);
        Ok(pfn)
    })
}

/// Free a block allocated with [`alloc`] at the same order.
///
/// # Safety
///
/// Nothing uses the block any more: no mapping of it (kmap slot or page table) and no reference into
/// it is live. The allocator checks the bookkeeping (double free, wrong order…), not the memory.
pub unsafe fn free(pfn: Pfn, order: u8) -> Result<(), FrameError> {
    with_buddy(|b| {
        b.free(pfn, order)?;
        poison(pfn, 1 << order);
        Ok(())
    })
}

/// Allocate one frame through this CPU's per-CPU list.
pub fn alloc_page(owner: Owner) -> Result<Pfn, FrameError> {
    inject(0, owner)?;
    without_interrupts(|| {
        let mut pcp = PCP[cpu_id()].lock();
        let mut buddy = BUDDY.lock();
        let b = buddy.as_mut().expect("frame allocator used before mm::init");
        let pfn = pcp.alloc(b, owner)?;
        scrub_for(b, pfn, 1, owner);
        Ok(pfn)
    })
}

/// Free one frame into this CPU's per-CPU list.
///
/// # Safety
///
/// As for [`free`].
pub unsafe fn free_page(pfn: Pfn) -> Result<(), FrameError> {
    without_interrupts(|| {
        let mut pcp = PCP[cpu_id()].lock();
        let mut buddy = BUDDY.lock();
        pcp.free(buddy.as_mut().expect("frame allocator used before mm::init"), pfn)?;
        poison(pfn, 1);
        Ok(())
    })
}

/// Return every CPU's cached frames to the buddy lists (so counts can be compared with boot).
pub fn drain_pcp() {
    for list in &PCP {
        without_interrupts(|| {
            let mut pcp = list.lock();
            let mut buddy = BUDDY.lock();
            pcp.drain(buddy.as_mut().expect("frame allocator used before mm::init"));
        })
    }
}

/// The frame allocator's locks: the buddy lists' lock, and every CPU's page-list lock summed.
pub fn lock_stats() -> [LockStats; 2] {
    [BUDDY.stats(), LockStats::sum("frames.pcp", PCP.iter().map(Lock::stats))]
}

pub fn stats() -> FrameStats {
    with_buddy(|b| b.stats())
}

/// The min/low/high watermarks (frames) reclaim will steer by.
pub fn watermarks() -> frame::Watermarks {
    with_buddy(|b| b.watermarks())
}

/// Frames `owner` holds now, by a scan of the whole frame table (for tests and reports: it takes the
/// lock once per frame). [`Owner::POOL`] counts every pool's frames ([`Owner::is_pool`]).
pub fn owned_by(owner: Owner) -> u64 {
    let Some((start, end)) = super::facts().map(|f| f.span) else { return 0 };
    let matches = |o: Owner| o == owner || (owner == Owner::POOL && o.is_pool());
    (start.0..end.0).filter(|&p| info(Pfn(p)).is_some_and(|i| matches(i.owner()))).count() as u64
}

/// Frames the lock is held for at a time by [`scan`].
const SCAN_CHUNK: u64 = 4096;

/// Call `f(pfn, state, owner)` for every frame of the frame table's span in order, taking the lock once
/// per [`SCAN_CHUNK`] frames (the memory picture reads the whole table this way; a chunk is copied out
/// under the lock and `f` runs without it).
pub fn scan(mut f: impl FnMut(Pfn, frame::FrameState, Owner)) {
    let Some((start, end)) = super::facts().map(|f| f.span) else { return };
    let mut chunk = alloc::vec::Vec::with_capacity(SCAN_CHUNK as usize);
    let mut at = start.0;
    while at < end.0 {
        let stop = (at + SCAN_CHUNK).min(end.0);
        chunk.clear();
        with_buddy(|b| {
            for p in at..stop {
                let i = b.info(Pfn(p));
                chunk.push(i.map_or((frame::FrameState::Reserved, Owner::NONE), |i| (i.state(), i.owner())));
            }
        });
        for (k, &(state, owner)) in chunk.iter().enumerate() {
            f(Pfn(at + k as u64), state, owner);
        }
        at = stop;
    }
}

/// Check that every free (or parked) frame last owned by `owner` still holds the poison its free wrote
/// ([`POISON_FREE`] in every byte of [`POISON_RANGES`]). A write through a stale translation after the
/// frame was freed — the bug a missing TLB shootdown makes — would change it. Returns how many frames
/// were checked, or the first frame found written.
pub fn check_freed_poison(owner: Owner) -> Result<u64, Pfn> {
    let Some((start, end)) = super::facts().map(|f| f.span) else { return Ok(0) };
    let pattern = u64::from_ne_bytes([POISON_FREE; 8]);
    let mut checked = 0;
    for p in start.0..end.0 {
        let pfn = Pfn(p);
        let free = info(pfn).is_some_and(|i| {
            let last = i.last_owner();
            // As in `owned_by`: `Owner::POOL` stands for every pool's own owner.
            let ours = last == owner || (owner == Owner::POOL && last.is_pool());
            matches!(i.state(), frame::FrameState::Free | frame::FrameState::PerCpu) && ours
        });
        if !free {
            continue;
        }
        // Under the allocator's lock, so the frame cannot be handed out while it is read.
        let intact = with_buddy(|_| {
            // SAFETY: the frame is free and the allocator's lock is held, so nobody may use it; the
            // mapping only reads it.
            let mut m = unsafe { kmap_local(pfn) }.unwrap_or_else(|e| panic!("poison check of {:#x}: {e:?}", p));
            let bytes = m.bytes();
            POISON_RANGES
                .iter()
                .all(|r| bytes[r.clone()].as_chunks::<8>().0.iter().all(|w| u64::from_ne_bytes(*w) == pattern))
        });
        if !intact {
            return Err(pfn);
        }
        checked += 1;
    }
    Ok(checked)
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

/// [`BuddyTables`] for a caller that can take a refusal (a region mapping, whose fault reclaims and
/// retries): subject to metadata fault injection ([`set_meta_fail_every`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct FallibleTables;

impl TableFrames for FallibleTables {
    fn alloc_table(&mut self) -> Result<Pfn, FrameError> {
        if inject_meta() {
            return Err(FrameError::OutOfMemory { order: 0 });
        }
        alloc_page(Owner::PAGE_TABLE)
    }
}

/// One order-0 frame, owned: allocated by [`OwnedFrame::alloc`], freed when dropped.
///
/// Owning the value is owning the frame: nothing else maps it or refers to it (xv6's `kalloc`ed page
/// with a destructor, Theseus's `AllocatedFrames`). Its bytes are reached through a kmap slot for the
/// length of a closure, so no reference into the frame outlives the mapping. Handing the frame to a
/// page table is [`super::region::Region::map`], which consumes the value; taking it back from one
/// gives a new value.
#[derive(Debug)]
pub struct OwnedFrame {
    pfn: Pfn,
}

impl OwnedFrame {
    /// A fresh frame for `owner` (scrubbed if its last owner was another; see [`alloc_page`]). The owners
    /// whose frames [`super::KernelMemory`] serves (pools, the page cache) are refused: a frame of theirs
    /// could be freed through a `KernelMemory` behind this value's back.
    pub fn alloc(owner: Owner) -> Result<OwnedFrame, FrameError> {
        if owner.is_pool() || owner == Owner::PAGE_CACHE {
            return Err(FrameError::Foreign(Pfn(0)));
        }
        alloc_page(owner).map(|pfn| OwnedFrame { pfn })
    }

    /// Take ownership of a frame that was allocated with [`alloc_page`] and that nothing else uses.
    ///
    /// # Safety
    ///
    /// `pfn` is allocated, mapped nowhere and referenced by nothing; the caller gives up every claim.
    pub(super) unsafe fn from_pfn(pfn: Pfn) -> OwnedFrame {
        OwnedFrame { pfn }
    }

    /// Give up ownership without freeing (the frame now belongs to a page table).
    pub(super) fn into_pfn(self) -> Pfn {
        let pfn = self.pfn;
        core::mem::forget(self);
        pfn
    }

    /// The frame's number.
    pub fn pfn(&self) -> Pfn {
        self.pfn
    }

    /// Lend the frame's 4096 bytes to `f` through a kmap slot of this CPU.
    pub fn with_bytes<R>(&mut self, f: impl FnOnce(&mut [u8; 4096]) -> R) -> Result<R, KmapError> {
        // SAFETY: this value owns the frame, so no other mapping or reference to it exists; the slot is
        // released before `with_bytes` returns, and `&mut self` keeps a second call from nesting.
        let mut m = unsafe { kmap_local(self.pfn) }?;
        Ok(f(m.bytes()))
    }
}

impl Drop for OwnedFrame {
    fn drop(&mut self) {
        // SAFETY: the value owned the frame and is going away: nothing maps or references it.
        if let Err(e) = unsafe { free_page(self.pfn) } {
            log::error!("frames: owned frame {:#x} refused on free: {e:?}", self.pfn.0);
        }
    }
}

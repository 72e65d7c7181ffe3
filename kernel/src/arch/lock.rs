//! Kernel spin locks that know their name, their place in the lock order, which CPU holds them, and
//! how often they were taken and waited for.
//!
//! # Why not plain `spin::Mutex`
//!
//! With more than one CPU a lock that is held is, most of the time, just another CPU working: the right
//! thing is to wait. But zkernel's page-fault handler also takes locks, and a fault taken *while this
//! CPU holds* the lock it needs would wait for itself forever. [`Lock`] records its owner CPU, so
//! [`Lock::lock_or_recursion`] can tell the two apart: another CPU → spin until it is free; this CPU →
//! refuse at once (the caller reports a fault inside the fault path). A plain [`Lock::lock`] that
//! finds its own CPU as owner panics with the lock's name instead of hanging.
//!
//! # The lock order (docs/smp.md explains each edge)
//!
//! Every lock has a rank; a CPU may take a lock only while every lock it holds has a *lower* rank. In
//! debug builds each CPU keeps a record of the locks it holds ([`MAX_HELD`] deep) and an out-of-order
//! acquire panics naming both locks, so an order that could deadlock two CPUs is caught on one.
//!
//! | rank | lock | where | taken under |
//! |---|---|---|---|
//! | 15 | `files` | `workload::files` (several CPUs over one page cache) | nothing |
//! | 20 | `swap` | `swap` | nothing: the region fault handler, install, uninstall |
//! | 30 | `zram` | `zram` | `swap` |
//! | 40 | `zcache` | `zcache` | `swap`, or nothing (the page cache) |
//! | 45 | `streams[cpu]` | `zcache::streams` | `zcache`, `zram` |
//! | 50 | `paging` | `mm::paging` | any of the above (mapping a page allocates tables) |
//! | 60 | `frames.pcp[cpu]` | `mm::frames` | any of the above |
//! | 70 | `frames.buddy` | `mm::frames` | `frames.pcp` |
//! | 80 | `tlb` | `arch::tlb` | anything but `paging` (a shootdown is sent after the entry is written) |
//! | 90 | `fault.handlers` | `mm::fault` | `swap` (installing claims a region); innermost: the dispatcher releases it before a handler runs |
//! | 100+ | a test's or workload's own locks (per-pool locks of tests/smp_stress.rs) | — | — |
//!
//! Locks outside this table (the serial console, the virtio queues, the heap) are plain `spin` locks
//! taken innermost and never held across another acquire.
//!
//! # Counters (the seeds' measure)
//!
//! Each acquisition counts once; an acquisition that found the lock held by another CPU also counts as
//! a *contention*. zcache's designers measured exactly this for their single pool lock (200
//! contentions in 600k acquisitions on a 4-way machine). [`Lock::stats`] reads them; each room lists
//! its locks (`mm::lock_stats`, `zcache::lock_stats`, `swap::lock_stats`) and the report prints them.
//!
//! # Contracts
//!
//! * Interrupts: a lock that an interrupt or fault handler may take must be held with interrupts off
//!   (the callers use `without_interrupts`); [`Lock`] itself does not change IF.
//! * The TLB-shootdown NMI takes no lock, so a CPU spinning here with interrupts off still answers it.

use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};

use super::cpu::{self, MAX_CPUS};

/// How many locks one CPU may hold at once (the debug-build record's depth).
pub const MAX_HELD: usize = 8;

/// A named, ranked, counted spin lock (see the module header).
pub struct Lock<T> {
    inner: spin::Mutex<T>,
    name: &'static str,
    rank: u8,
    /// The holding CPU + 1; 0 when free.
    owner: AtomicUsize,
    acquisitions: AtomicU64,
    contentions: AtomicU64,
    /// TSC when the current holder took it, and the cycles it has been held in all.
    since: AtomicU64,
    held_cycles: AtomicU64,
}

/// One lock's counters, as the report prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockStats {
    pub name: &'static str,
    pub acquisitions: u64,
    pub contentions: u64,
    /// TSC cycles the lock was held, all holders together (Linux's lock_stat `holdtime`): over a timed
    /// stretch, the share of it that was serialised by this lock.
    pub held_cycles: u64,
}

impl LockStats {
    /// Sum the counters of several locks of one kind (the per-CPU frame lists) under `name`.
    pub fn sum(name: &'static str, all: impl IntoIterator<Item = LockStats>) -> LockStats {
        all.into_iter().fold(LockStats { name, acquisitions: 0, contentions: 0, held_cycles: 0 }, |a, s| LockStats {
            name,
            acquisitions: a.acquisitions + s.acquisitions,
            contentions: a.contentions + s.contentions,
            held_cycles: a.held_cycles + s.held_cycles,
        })
    }
}

/// Why [`Lock::lock_or_recursion`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recursion {
    pub name: &'static str,
}

/// Held by the lock's holder; releases on drop.
pub struct LockGuard<'a, T> {
    guard: spin::MutexGuard<'a, T>,
    lock: &'a Lock<T>,
}

impl<T> Lock<T> {
    /// A lock called `name` at `rank` in the lock order (the module header's table).
    pub const fn new(name: &'static str, rank: u8, value: T) -> Self {
        Self {
            inner: spin::Mutex::new(value),
            name,
            rank,
            owner: AtomicUsize::new(0),
            acquisitions: AtomicU64::new(0),
            contentions: AtomicU64::new(0),
            since: AtomicU64::new(0),
            held_cycles: AtomicU64::new(0),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The value, once nobody can take the lock any more.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }

    /// Take the lock, waiting for another CPU to release it. Panics if this CPU holds it already (it
    /// would wait for itself) or, in debug builds, if taking it breaks the lock order.
    #[track_caller]
    pub fn lock(&self) -> LockGuard<'_, T> {
        match self.lock_or_recursion() {
            Ok(g) => g,
            Err(r) => panic!("lock `{}` taken again by cpu{} that holds it", r.name, cpu::id()),
        }
    }

    /// Take the lock, waiting for another CPU; refuse (without waiting) when this CPU already holds it:
    /// the fault path's test for a fault inside the fault path.
    #[track_caller]
    pub fn lock_or_recursion(&self) -> Result<LockGuard<'_, T>, Recursion> {
        let me = cpu::id() + 1;
        if self.owner.load(Ordering::Acquire) == me {
            return Err(Recursion { name: self.name });
        }
        order_check(self.name, self.rank);
        self.acquisitions.fetch_add(1, Ordering::Relaxed);
        let guard = match self.inner.try_lock() {
            Some(g) => g,
            None => {
                self.contentions.fetch_add(1, Ordering::Relaxed);
                self.inner.lock()
            }
        };
        Ok(self.held(guard, me))
    }

    /// Take the lock only if it is free now.
    pub fn try_lock(&self) -> Option<LockGuard<'_, T>> {
        let me = cpu::id() + 1;
        let guard = self.inner.try_lock()?;
        order_check(self.name, self.rank);
        self.acquisitions.fetch_add(1, Ordering::Relaxed);
        Some(self.held(guard, me))
    }

    fn held<'a>(&'a self, guard: spin::MutexGuard<'a, T>, me: usize) -> LockGuard<'a, T> {
        self.owner.store(me, Ordering::Release);
        self.since.store(super::tsc::rdtsc(), Ordering::Relaxed);
        record_acquire(self.rank);
        LockGuard { guard, lock: self }
    }

    /// Whether CPU `cpu` holds the lock now.
    pub fn held_by(&self, cpu: usize) -> bool {
        self.owner.load(Ordering::Acquire) == cpu + 1
    }

    pub fn stats(&self) -> LockStats {
        LockStats {
            name: self.name,
            acquisitions: self.acquisitions.load(Ordering::Relaxed),
            contentions: self.contentions.load(Ordering::Relaxed),
            held_cycles: self.held_cycles.load(Ordering::Relaxed),
        }
    }
}

impl<T> core::fmt::Debug for Lock<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Lock")
            .field("name", &self.name)
            .field("rank", &self.rank)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<T> core::fmt::Debug for LockGuard<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LockGuard").field("lock", &self.lock.name).finish()
    }
}

impl<T> Deref for LockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for LockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for LockGuard<'_, T> {
    fn drop(&mut self) {
        record_release(self.lock.rank);
        let held = super::tsc::rdtsc().saturating_sub(self.lock.since.load(Ordering::Relaxed));
        self.lock.held_cycles.fetch_add(held, Ordering::Relaxed);
        self.lock.owner.store(0, Ordering::Release);
        // `guard` drops after this body: the spin lock itself is released last.
    }
}

// ------------------------------------------------------------------------------------------------
// The debug-build record of held locks, one row per CPU (written only by its own CPU).
// ------------------------------------------------------------------------------------------------

static HELD: [[AtomicU8; MAX_HELD]; MAX_CPUS] = [const { [const { AtomicU8::new(0) }; MAX_HELD] }; MAX_CPUS];
static DEPTH: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
static ORDER_CHECKS: AtomicU64 = AtomicU64::new(0);
/// How deep each CPU is in [`no_lock_section`]s.
static NO_LOCK: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];

/// Run `f` as a section in which this CPU takes no lock: it holds a pool object's mapping, and
/// zsmalloc's and zcache's rule is one mapping per CPU at a time with no sleeping or lock-waiting while
/// it is held (Linux: `zs_map_object` disables preemption until `zs_unmap_object`). `mm::KernelMemory`
/// wraps every pool mapping in it. The pools' code cannot reach a kernel lock at all (they are
/// `no_std` crates over `PageMemory`, and the mapping borrows the memory they would allocate from);
/// debug builds check it anyway: any acquire inside panics, naming the lock.
pub fn no_lock_section<R>(f: impl FnOnce() -> R) -> R {
    let depth = &NO_LOCK[cpu::id()];
    depth.fetch_add(1, Ordering::Relaxed);
    let r = f();
    depth.fetch_sub(1, Ordering::Relaxed);
    r
}

/// Whether this build checks the lock order.
pub const CHECKS_ORDER: bool = cfg!(debug_assertions);

#[track_caller]
fn order_check(name: &'static str, rank: u8) {
    if !CHECKS_ORDER {
        return;
    }
    let cpu = cpu::id();
    if NO_LOCK[cpu].load(Ordering::Relaxed) > 0 {
        panic!("cpu{cpu} takes lock `{name}` while it holds a pool mapping (one mapping, no lock-waiting)");
    }
    let depth = DEPTH[cpu].load(Ordering::Relaxed);
    ORDER_CHECKS.fetch_add(1, Ordering::Relaxed);
    if let Some(top) = HELD[cpu][..depth.min(MAX_HELD)].iter().map(|r| r.load(Ordering::Relaxed)).max()
        && top >= rank
    {
        panic!("lock order: cpu{cpu} takes `{name}` (rank {rank}) while holding a lock of rank {top}");
    }
}

fn record_acquire(rank: u8) {
    if !CHECKS_ORDER {
        return;
    }
    let cpu = cpu::id();
    let depth = DEPTH[cpu].load(Ordering::Relaxed);
    assert!(depth < MAX_HELD, "cpu{cpu} holds more than {MAX_HELD} locks");
    HELD[cpu][depth].store(rank, Ordering::Relaxed);
    DEPTH[cpu].store(depth + 1, Ordering::Relaxed);
}

fn record_release(rank: u8) {
    if !CHECKS_ORDER {
        return;
    }
    let cpu = cpu::id();
    let depth = DEPTH[cpu].load(Ordering::Relaxed);
    // Guards may drop out of order (two guards in one scope): remove this rank wherever it sits.
    let row = &HELD[cpu];
    if let Some(i) = (0..depth).rev().find(|&i| row[i].load(Ordering::Relaxed) == rank) {
        for j in i..depth - 1 {
            row[j].store(row[j + 1].load(Ordering::Relaxed), Ordering::Relaxed);
        }
        DEPTH[cpu].store(depth - 1, Ordering::Relaxed);
    }
}

/// How many locks this CPU holds now (0 in release builds, which keep no record).
pub fn held_count() -> usize {
    DEPTH[cpu::id()].load(Ordering::Relaxed)
}

/// Order checks made so far (0 in release builds): the test that the checker ran at all.
pub fn order_checks() -> u64 {
    ORDER_CHECKS.load(Ordering::Relaxed)
}

/// Forget this CPU's record of held locks: the fatal path calls it before it reports, since the locks
/// the dying context held will never be released.
pub fn forget_held() {
    DEPTH[cpu::id()].store(0, Ordering::Relaxed);
}

//! TLB shootdown: when a page-table entry another CPU may have cached changes, every such CPU drops
//! its cached translation before the change is relied on (the frame reused).
//!
//! # Why
//!
//! Each CPU caches translations in its own TLB, and `invlpg` flushes only the CPU that runs it. When
//! reclaim on CPU 0 unmaps a page and frees its frame, CPU 1 may still hold the old translation and go
//! on writing into a frame that now belongs to someone else. So the unmapping CPU interrupts the others
//! and waits until each has flushed (Linux: `flush_tlb_mm_range` → `smp_call_function_many`).
//!
//! kmap slots need none of this: each CPU has its own slots (`mm::kmap`), so a slot's translation is
//! only ever cached by the CPU that owns it, and its local `invlpg` is enough.
//!
//! # Why an NMI
//!
//! zkernel runs with interrupts off nearly everywhere, so an ordinary IPI could wait a long time, and
//! two CPUs each waiting with interrupts off for the other's acknowledgement would deadlock. A
//! non-maskable interrupt is taken whatever IF says; the handler does one `invlpg` (or a CR3 reload),
//! stores an acknowledgement and returns. An NMI with no request pending for this CPU stays fatal.
//!
//! # Who is interrupted
//!
//! | CPU | shot down? | why |
//! |---|---|---|
//! | the CPU making the change | no: it flushed locally | — |
//! | the boot CPU (when another CPU makes the change) | yes | it ran everything before the APs started |
//! | an online AP that has run work ([`mark_active`]) | yes | it may have touched any mapping |
//! | an AP that has only parked since start-up | no | it touched nothing that is ever unmapped (kernel image, its stacks, its per-CPU row); before its first work it reloads CR3 ([`mark_active`]), which drops anything it may have cached speculatively |
//!
//! Example: 4 CPUs, CPU 2 ran a job that read region page `0x4000_0000_0000`. Reclaim on CPU 0 unmaps
//! it: `paging::write_leaf` flushes locally, then [`shootdown`]`(va)` sets the request (generation 7),
//! sends an NMI to CPU 2 only, and spins until `ACK[2] == 7`; only then does `Region::unmap` hand the
//! frame back. tests/smp_boot.rs (`unmap_is_shot_down_on_other_cpus`) checks that CPU 2 then faults
//! instead of reading the frame's new contents.
//!
//! # Contracts
//!
//! * One shootdown at a time (a lock); the caller has already changed the entry and flushed locally.
//! * The sender waits at most [`ACK_TIMEOUT_MS`] per shootdown, then panics naming the CPU.
//! * Accessed-bit clearing (`paging::test_and_clear_accessed`) is not shot down: a stale translation
//!   with the bit set only makes the clock's guess less precise (Linux's `ptep_clear_flush_young`
//!   does the same on x86).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use x86_64::VirtAddr;

use super::cpu::{self, MAX_CPUS};
use super::lock::Lock;
use super::{apic, smp, tsc};

/// How long a shootdown waits for each acknowledgement.
pub const ACK_TIMEOUT_MS: u64 = 2000;
/// The request's address meaning "flush everything".
const ALL: u64 = u64::MAX;

static LOCK: Lock<()> = Lock::new("tlb", 80, ());
/// The request: generation and address. Written under `LOCK`, read by the NMI handlers.
static GEN: AtomicU64 = AtomicU64::new(0);
static VA: AtomicU64 = AtomicU64::new(0);
/// The generation each CPU last acknowledged.
static ACK: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// CPUs that may cache translations of mappings that change (have run work).
static ACTIVE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static SHOOTDOWNS: AtomicU64 = AtomicU64::new(0);
static IPIS: AtomicU64 = AtomicU64::new(0);

/// Counters: shootdowns that interrupted at least one CPU, and NMIs sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TlbStats {
    pub shootdowns: u64,
    pub ipis: u64,
}

pub fn stats() -> TlbStats {
    TlbStats { shootdowns: SHOOTDOWNS.load(Ordering::Relaxed), ipis: IPIS.load(Ordering::Relaxed) }
}

/// The shootdown lock's counters.
pub fn lock_stats() -> super::lock::LockStats {
    LOCK.stats()
}

/// This CPU is about to run work: from now on it is shot down. Drops its non-global translations first.
pub fn mark_active() {
    let cpu = cpu::id();
    if !ACTIVE[cpu].swap(true, Ordering::SeqCst) {
        x86_64::instructions::tlb::flush_all();
    }
}

/// Whether CPU `cpu` is shot down by [`shootdown`].
pub fn is_active(cpu: usize) -> bool {
    ACTIVE[cpu].load(Ordering::SeqCst)
}

/// Flush `va`'s translation on every other CPU that may cache it, and wait until each has.
pub fn shootdown(va: u64) {
    send(va & !0xfff);
}

/// Flush every non-global translation on every other CPU that may cache one, and wait.
pub fn shootdown_all() {
    send(ALL);
}

/// The CPUs to interrupt: every other online CPU that may cache translations. The boot CPU always may
/// (it ran everything before the APs started); an AP once it ran work.
fn targets(me: usize) -> impl Iterator<Item = usize> {
    (0..MAX_CPUS).filter(move |&c| c != me && smp::online(c) && (c == 0 || ACTIVE[c].load(Ordering::SeqCst)))
}

fn send(va: u64) {
    let me = cpu::id();
    if targets(me).next().is_none() {
        return;
    }
    x86_64::instructions::interrupts::without_interrupts(|| {
        let _g = LOCK.lock();
        VA.store(va, Ordering::SeqCst);
        let generation = GEN.fetch_add(1, Ordering::SeqCst) + 1;
        // The set is taken once: a CPU that turns active after this flushes everything as it does
        // (`mark_active`), and waiting for one that was never sent the NMI would time out.
        let mut sent_to = [false; MAX_CPUS];
        let mut sent = 0;
        for c in targets(me) {
            if let Some(apic_id) = cpu::apic_id_of(c) {
                apic::send_nmi(apic_id);
                sent_to[c] = true;
                sent += 1;
            }
        }
        IPIS.fetch_add(sent, Ordering::Relaxed);
        SHOOTDOWNS.fetch_add(1, Ordering::Relaxed);
        for c in (0..MAX_CPUS).filter(|&c| sent_to[c]) {
            let deadline = tsc::rdtsc() + tsc::hz() / 1000 * ACK_TIMEOUT_MS;
            while ACK[c].load(Ordering::SeqCst) < generation {
                if tsc::rdtsc() > deadline {
                    panic!("TLB shootdown of {va:#x}: cpu{c} did not acknowledge within {ACK_TIMEOUT_MS} ms");
                }
                core::hint::spin_loop();
            }
        }
    });
}

/// Called by the NMI handler: serve a pending shootdown for this CPU. `false` when none was pending
/// (the NMI is then someone else's, and fatal).
pub(super) fn handle_nmi() -> bool {
    let cpu = cpu::id();
    let generation = GEN.load(Ordering::SeqCst);
    if ACK[cpu].load(Ordering::SeqCst) >= generation {
        return false;
    }
    match VA.load(Ordering::SeqCst) {
        ALL => x86_64::instructions::tlb::flush_all(),
        va => x86_64::instructions::tlb::flush(VirtAddr::new(va)),
    }
    ACK[cpu].store(generation, Ordering::SeqCst);
    true
}

//! The checks of the `smp_boot*` test kernels (one kernel per CPU count: xtask boots each with the
//! `-smp` of tests/Cargo.toml's `smp` table).
//!
//! # What is checked
//!
//! | case | how |
//! |---|---|
//! | every CPU reports in | each AP runs [`report`] through its mailbox (`arch::smp::run_on`); the boot CPU runs it directly |
//! | distinct APIC ids | read by each CPU from its own local APIC, compared with the MADT's list (`drivers::smp::facts`) |
//! | own per-CPU area | `gs:[0]` read on the CPU equals its row of the table, and rows differ |
//! | own GDT, TSS, IST stacks | `sgdt` + `str` read back on the CPU: GDT and TSS bases and the IST tops; every IST stack disjoint from every other CPU's stacks |
//! | own kernel stack | the report's RSP lies in the stack bring-up gave that CPU |
//! | unmap shot down | [`unmap_is_shot_down_on_other_cpus`]: an AP reads a region page, the boot CPU unmaps it and refills the frame; the AP's next read must fault, not see the frame's new bytes through a stale TLB entry |
//! | double fault on an AP | [`overflow_on_last_ap`]: the AP overflows its kernel stack; the fatal path's report must come from that CPU, on that CPU's double-fault IST stack |
//!
//! Example (`-smp 2`): `cpu1: apic 1, area 0x…40, gdt 0x…, tss 0x…, IST tops 0x…/0x…/0x…, rsp 0x…`.

use core::ops::Range;
use core::sync::atomic::{AtomicBool, Ordering};

use frame::Owner;
use spin::Mutex;
use x86_64::structures::paging::PageTableFlags;
use zkernel::arch::cpu::{self, MAX_CPUS};
use zkernel::arch::gdt::{self, DOUBLE_FAULT_IST, LiveTss};
use zkernel::arch::probe::{Fault, read_u64};
use zkernel::arch::tlb;
use zkernel::arch::{apic, smp, tsc};
use zkernel::harness::fatal::FatalReport;
use zkernel::init::facts;
use zkernel::mm::frames::OwnedFrame;
use zkernel::mm::paging::Pte;
use zkernel::mm::region::Region;
use zkernel::println;

/// What one CPU says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Report {
    id: usize,
    apic_id: u32,
    area: u64,
    live: LiveTss,
    rsp: u64,
}

static REPORTS: Mutex<[Option<Report>; MAX_CPUS]> = Mutex::new([None; MAX_CPUS]);

/// Run on CPU `cpu`: record what the hardware and the per-CPU area say.
fn report(cpu: usize) {
    let r = Report {
        id: cpu::id(),
        apic_id: apic::id(),
        area: cpu::area_addr(),
        live: gdt::current_tss(),
        rsp: cpu::stack_pointer(),
    };
    REPORTS.lock()[cpu] = Some(r);
}

fn disjoint(a: &Range<u64>, b: &Range<u64>) -> bool {
    a.end <= b.start || b.end <= a.start
}

/// Every CPU the machine has is up and reports in with its own APIC id, area, GDT, TSS and stacks.
pub fn every_cpu_reports_in(expected: usize) {
    let f = facts();
    let s = f.smp;
    assert_eq!(f.cpus, Some(expected as u16), "fw_cfg's CPU count is not the -smp this kernel was built for");
    assert_eq!(s.listed, expected, "the MADT does not list {expected} CPUs");
    assert_eq!(s.up.len(), expected, "not every CPU came up: failed {:?}, note {:?}", s.failed, s.note);
    assert_eq!(smp::online_count(), expected);
    report(0);
    for c in &s.up[1..] {
        let woken = smp::wakeups(c.cpu);
        smp::run_on(c.cpu, report).expect("an online AP refused work");
        assert!(smp::wakeups(c.cpu) > woken, "cpu{} ran its mailbox without a wake-up IPI", c.cpu);
    }
    let reports = *REPORTS.lock();
    let mut stacks: alloc::vec::Vec<(usize, Range<u64>)> = alloc::vec::Vec::new();
    for (i, c) in s.up.iter().enumerate() {
        let r = reports[c.cpu].unwrap_or_else(|| panic!("cpu{} did not report in", c.cpu));
        println!(
            "cpu{}: apic {}, area {:#x}, gdt {:#x}, tss {:#x}, IST tops {:#x}/{:#x}/{:#x}, rsp {:#x}",
            r.id,
            r.apic_id,
            r.area,
            r.live.gdt,
            r.live.tss,
            r.live.ist_tops[0],
            r.live.ist_tops[1],
            r.live.ist_tops[2],
            r.rsp
        );
        assert_eq!(r.id, c.cpu, "cpu::id() on cpu{} is {}", c.cpu, r.id);
        assert_eq!(
            r.apic_id, c.apic_id,
            "cpu{} reads APIC id {} but bring-up recorded {}",
            c.cpu, r.apic_id, c.apic_id
        );
        assert_eq!(cpu::apic_id_of(c.cpu), Some(r.apic_id));
        assert_eq!(r.area, cpu::area_of(c.cpu), "cpu{}'s GS base is not its own per-CPU row", c.cpu);
        assert_eq!(r.live.tss, gdt::tss_of(c.cpu), "cpu{} runs on another CPU's TSS", c.cpu);
        for slot in 0..3u16 {
            assert_eq!(r.live.ist_tops[slot as usize], gdt::ist_stack_of(c.cpu, slot).end, "cpu{} IST {slot}", c.cpu);
            stacks.push((c.cpu, gdt::ist_stack_of(c.cpu, slot)));
        }
        let kstack = smp::kernel_stack_of(c.cpu);
        assert!(kstack.contains(&r.rsp), "cpu{} does not run on its own kernel stack {kstack:x?}", c.cpu);
        stacks.push((c.cpu, kstack));
        for other in &s.up[..i] {
            let o = reports[other.cpu].expect("checked above");
            assert_ne!(r.apic_id, o.apic_id, "cpu{} and cpu{} share an APIC id", c.cpu, other.cpu);
            assert_ne!(r.area, o.area, "cpu{} and cpu{} share a per-CPU area", c.cpu, other.cpu);
            assert_ne!(r.live.gdt, o.live.gdt, "cpu{} and cpu{} share a GDT", c.cpu, other.cpu);
            assert_ne!(r.live.tss, o.live.tss, "cpu{} and cpu{} share a TSS", c.cpu, other.cpu);
        }
    }
    for (i, (a_cpu, a)) in stacks.iter().enumerate() {
        assert!(!a.is_empty(), "cpu{a_cpu} has an empty stack");
        for (b_cpu, b) in &stacks[..i] {
            assert!(disjoint(a, b), "cpu{a_cpu}'s stack {a:x?} overlaps cpu{b_cpu}'s {b:x?}");
        }
    }
    println!(
        "{} CPU(s) reported in, each with its own APIC id, per-CPU area, GDT, TSS, IST and kernel stacks",
        expected
    );
}

/// The page the shootdown case maps, reads on an AP, and unmaps.
const SHOOT_VA: u64 = memmap::layout::SCRATCH_BASE + 0x7700_0000;
const BEFORE: u64 = 0x5151_5151_0000_0001;
const REUSED: u64 = 0xdead_beef_0000_0002;
static AP_READ: Mutex<Option<Result<u64, Fault>>> = Mutex::new(None);

fn ap_read(_cpu: usize) {
    // SAFETY: a probe read: a fault is caught and returned, and the page is region memory (copied, never
    // referenced).
    let v = unsafe { read_u64(SHOOT_VA) };
    *AP_READ.lock() = Some(v);
}

fn no_fill(_addr: u64, _write: bool) -> bool {
    false
}

/// Reclaim's case: an AP caches a translation, the boot CPU unmaps the page and reuses the frame. The
/// shootdown must have removed the AP's translation: its next read faults instead of reading the frame's
/// new contents. (Under QEMU's TCG, a CPU's software TLB keeps a stale entry until that CPU flushes it,
/// so without the shootdown the second read returns `REUSED`.)
pub fn unmap_is_shot_down_on_other_cpus() {
    let ap = last_ap();
    let region = Region::claim(SHOOT_VA, 1, no_fill).expect("the scratch page is free");
    let mut frame = OwnedFrame::alloc(Owner::WORKLOAD).expect("a frame");
    frame.with_bytes(|b| b[..8].copy_from_slice(&BEFORE.to_le_bytes())).expect("kmap");
    let flags = PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
    region.map(0, frame, flags).map_err(|(e, _)| e).expect("map");
    smp::run_on(ap, ap_read).expect("the AP took the job");
    assert_eq!(AP_READ.lock().take(), Some(Ok(BEFORE)), "cpu{ap} did not read the mapped page");
    assert!(tlb::is_active(ap), "cpu{ap} ran work but is not shot down");
    let before = tlb::stats();
    let (mut frame, _old) = region.unmap(0, Pte::EMPTY).expect("unmap");
    let after = tlb::stats();
    assert!(after.shootdowns > before.shootdowns, "the unmap sent no shootdown");
    assert!(after.ipis > before.ipis, "no NMI went out");
    // The frame is the boot CPU's again: reuse it.
    frame.with_bytes(|b| b[..8].copy_from_slice(&REUSED.to_le_bytes())).expect("kmap");
    smp::run_on(ap, ap_read).expect("the AP took the job");
    match AP_READ.lock().take() {
        Some(Err(f)) => {
            assert_eq!((f.vector, f.address), (14, Some(SHOOT_VA)), "cpu{ap} faulted, but not on the unmapped page");
        }
        Some(Ok(REUSED)) => panic!("cpu{ap} read the reused frame through a stale translation"),
        other => panic!("cpu{ap} read {other:x?} after the unmap"),
    }
    drop(frame);
    drop(region);
    println!(
        "cpu{ap}: faulted on {SHOOT_VA:#x} after the unmap; shootdowns {} (NMIs {})",
        after.shootdowns - before.shootdowns,
        after.ipis - before.ipis
    );
}

static OVERFLOW_POSTED: AtomicBool = AtomicBool::new(false);

fn overflow(_cpu: usize) {
    recurse(0);
}

#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    // A frame of 512 bytes that the optimiser cannot remove or turn into a loop.
    let frame = core::hint::black_box([depth; 64]);
    recurse(depth + 1) + core::hint::black_box(frame[7])
}

fn last_ap() -> usize {
    facts().smp.up.last().map(|c| c.cpu).filter(|&c| c != 0).expect("no application processor is up")
}

/// Make the last AP overflow its kernel stack; the fatal path (on that AP) ends the kernel. The boot
/// CPU waits, and fails the case if nothing happens within 10 s.
pub fn overflow_on_last_ap() {
    let target = last_ap();
    // Set before the post: the AP may fault (and the check run) before `post` even returns.
    OVERFLOW_POSTED.store(true, Ordering::SeqCst);
    smp::post(target, overflow).expect("the AP refused work");
    let deadline = tsc::rdtsc() + tsc::hz() * 10;
    while tsc::rdtsc() < deadline {
        core::hint::spin_loop();
    }
    panic!("cpu{target} did not double-fault within 10 s");
}

/// The fatal report must come from the AP, handled on that AP's double-fault IST stack, with the
/// interrupted RSP at the bottom of that AP's kernel stack.
pub fn check_ap_double_fault(r: &FatalReport<'_>) -> Result<(), &'static str> {
    let target = last_ap();
    if !OVERFLOW_POSTED.load(Ordering::SeqCst) {
        return Err("a double fault before the AP was given its work");
    }
    if r.cpu != target {
        return Err("the double fault was reported by another CPU than the overflowing AP");
    }
    let ist = gdt::ist_stack_of(target, DOUBLE_FAULT_IST);
    if !ist.contains(&r.handler_rsp) {
        return Err("the double-fault handler did not run on the AP's own IST stack");
    }
    if gdt::ist_stack_of(0, DOUBLE_FAULT_IST).contains(&r.handler_rsp) {
        return Err("the double-fault handler ran on the boot CPU's IST stack");
    }
    if r.error_code != Some(0) {
        return Err("a double fault's error code is always 0");
    }
    let bottom = smp::kernel_stack_of(target).start;
    if r.rsp > bottom + 4096 || r.rsp + 4096 < bottom {
        return Err("the interrupted RSP is not at the bottom of the AP's kernel stack");
    }
    println!(
        "cpu{target}: stack overflow caught {} bytes from its stack bottom, on its IST stack {:#x}..{:#x}",
        r.rsp.abs_diff(bottom),
        ist.start,
        ist.end
    );
    Ok(())
}

/// A bring-up test kernel for `$cpus` CPUs (the count tests/Cargo.toml's `smp` table gives it): every CPU
/// reports in, an unmap is shot down on an AP that cached the page, and an AP's double fault lands on its
/// own IST stack. One scenario per file, the table here.
#[macro_export]
macro_rules! smp_boot_kernel {
    ($name:expr, $cpus:expr) => {
        zkernel::test_kernel!(
            $name,
            &[
                zkernel::harness::testing::Case::returns("every_cpu_reports_in", every_cpu_reports_in),
                zkernel::harness::testing::Case::returns(
                    "unmap_is_shot_down_on_other_cpus",
                    smp::unmap_is_shot_down_on_other_cpus
                ),
                zkernel::harness::testing::Case::fatal(
                    "double_fault_on_an_ap_lands_on_its_ist",
                    smp::overflow_on_last_ap,
                    zkernel::harness::fatal::Expected::Exception(8),
                    smp::check_ap_double_fault
                ),
            ]
        );

        fn every_cpu_reports_in() {
            smp::every_cpu_reports_in($cpus);
        }
    };
}

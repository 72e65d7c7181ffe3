//! SMP bring-up: find the CPUs (ACPI MADT), enable the local APIC, start every application processor.
//!
//! # Why here
//!
//! Starting a CPU needs a bit of every lower room: the MADT and the APIC's register page come through
//! the I/O region (`drivers::acpi`, `virtio_hal`), the AP's stacks and the trampoline's identity
//! mapping from `mm`, and the mode switch, the per-CPU tables and the IPIs from `arch`. This file is
//! the order of those steps; each step's mechanism is explained where it lives.
//!
//! # The steps ([`bring_up`])
//!
//! | step | what | where |
//! |---|---|---|
//! | 1 | read the MADT: local APIC address, the boot CPU's APIC id, the APs' ids | `drivers::acpi` |
//! | 2 | map the xAPIC page uncached (x2APIC needs none), enable the boot CPU's APIC | `virtio_hal::map_bar`, `arch::apic` |
//! | 3 | identity-map the trampoline page (boot kept it from the frame allocator) | `mm::paging` |
//! | 4 | per AP: kernel stack and three IST stacks with guard pages, its GDT+TSS | `mm::stack`, `arch::gdt::prepare` |
//! | 5 | per AP: copy and patch the trampoline, INIT-SIPI-SIPI, wait until it reports in | `arch::smp` |
//! | 6 | unmap the trampoline's identity page (the frame stays reserved); kept when an AP timed out | `mm::paging` |
//!
//! CPU indices are handed out in MADT order: the boot CPU is 0, the first AP that starts 1, and so on,
//! up to `MAX_CPUS`. An AP that does not report in keeps its index (it might still wake later and must
//! not share a per-CPU row) and is listed in [`SmpFacts::failed`]; no further AP is started then, since
//! the late one may still be reading the trampoline's parameters.
//!
//! Example, `-smp 4` under QEMU: `cpus up: 4 (xAPIC at 0xfee00000; trampoline at 0x8000): cpu0 apic 0,
//! cpu1 apic 1, cpu2 apic 2, cpu3 apic 3`.
//!
//! # Contracts
//!
//! * Runs once, on the boot CPU, after `mm::init` and before anything that relies on other CPUs.
//! * Every started AP parks in `arch::smp::park`; work reaches it only through its mailbox.
//! * Without an RSDP or MADT, or without a trampoline page, only the boot CPU runs (and the facts say why).

use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;

use frame::Pfn;
use spin::Once;
use x86_64::structures::paging::PageTableFlags;

use super::acpi;
use super::virtio_hal::map_bar;
use crate::arch::cpu::MAX_CPUS;
use crate::arch::{apic, gdt, smp};
use crate::mm::frames::BuddyTables;
use crate::mm::{kmap, paging, stack};

/// Pages of each AP's kernel stack (the boot CPU's is `init::KERNEL_STACK_SIZE`, 128 KiB, too).
pub const AP_STACK_PAGES: u64 = 32;
/// Pages of each IST stack (as the boot CPU's, `init`).
pub const IST_PAGES: u64 = 5;

/// One CPU that is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuUp {
    pub cpu: usize,
    pub apic_id: u32,
}

/// What bring-up found and did, for the banner and the tests.
#[derive(Debug, Clone)]
pub struct SmpFacts {
    /// "x2APIC" or "xAPIC".
    pub lapic_mode: &'static str,
    /// Physical address of the local APIC registers (from the MADT, else the APIC base MSR).
    pub lapic_phys: u64,
    /// CPUs the MADT lists (enabled ones), boot CPU included; 1 when there is no MADT.
    pub listed: usize,
    /// The CPUs that are up, boot CPU first.
    pub up: Vec<CpuUp>,
    /// APs that did not come up: APIC id and why.
    pub failed: Vec<(u32, String)>,
    /// The trampoline page's physical address, if boot found one below 1 MiB.
    pub trampoline: Option<u64>,
    /// Why only the boot CPU runs, when that is not because the machine has one CPU.
    pub note: Option<String>,
}

static FACTS: Once<SmpFacts> = Once::new();

/// The bring-up facts (`None` before [`bring_up`]).
pub fn facts() -> Option<&'static SmpFacts> {
    FACTS.get()
}

fn ist_stacks() -> Result<[Range<u64>; 3], paging::MapError> {
    Ok([stack::alloc_stack(IST_PAGES)?, stack::alloc_stack(IST_PAGES)?, stack::alloc_stack(IST_PAGES)?])
}

/// Start one AP as CPU `cpu` through the trampoline frame `page`.
fn start_one(cpu: usize, apic_id: u32, page: Pfn) -> Result<(), String> {
    let kstack = stack::alloc_stack(AP_STACK_PAGES).map_err(|e| alloc::format!("no kernel stack: {e:?}"))?;
    let ist = ist_stacks().map_err(|e| alloc::format!("no IST stacks: {e:?}"))?;
    gdt::prepare(cpu, ist);
    {
        // SAFETY: the trampoline frame was kept from the frame allocator by boot and is reached only
        // here; no AP runs it now (the previous one reported in, or timed out and is never restarted).
        let mut m = unsafe { kmap::kmap_local(page) }.map_err(|e| alloc::format!("no kmap slot: {e:?}"))?;
        smp::patch(m.bytes(), page.addr(), kstack.end, cpu).map_err(|e| alloc::format!("{e:?}"))?;
    }
    smp::start_ap(cpu, apic_id, page.0 as u8, kstack).map_err(|e| alloc::format!("{e:?}"))
}

/// Bring up every CPU (the module table's steps); `rsdp` from the boot info, `trampoline` the low frame
/// boot reserved, `boot_stack` the boot CPU's kernel stack. Runs once; later calls return the facts.
pub fn bring_up(rsdp: Option<u64>, trampoline: Option<Pfn>, boot_stack: Range<u64>) -> &'static SmpFacts {
    FACTS.call_once(|| {
        let mut note = None;
        let madt = match rsdp.map(acpi::read_madt) {
            Some(Ok(m)) => Some(m),
            Some(Err(e)) => {
                note = Some(alloc::format!("MADT not read: {e:?}"));
                None
            }
            None => {
                note = Some(String::from("the bootloader found no RSDP"));
                None
            }
        };
        // SAFETY: reading IA32_APIC_BASE has no side effects.
        let msr_base = unsafe { x2apic::lapic::xapic_base() };
        let lapic_phys = madt.as_ref().map_or(msr_base, |m| m.lapic_phys);
        if !apic::has_x2apic() {
            // SAFETY: the local APIC's register page is device memory at the address the MADT names.
            match unsafe { map_bar(lapic_phys, 4096) } {
                Ok(va) => apic::set_xapic_base(va),
                Err(e) => panic!("smp: cannot map the local APIC at {lapic_phys:#x}: {e:?}"),
            }
        }
        apic::enable_local();
        smp::boot_cpu_online(boot_stack);
        let mut facts = SmpFacts {
            lapic_mode: apic::mode_name(),
            lapic_phys,
            listed: madt.as_ref().map_or(1, |m| 1 + m.aps.len()),
            up: alloc::vec![CpuUp { cpu: 0, apic_id: apic::id() }],
            failed: Vec::new(),
            trampoline: trampoline.map(Pfn::addr),
            note,
        };
        let aps: Vec<u32> = madt.map(|m| m.aps).unwrap_or_default();
        if aps.is_empty() {
            return facts;
        }
        let Some(page) = trampoline else {
            facts.note = Some(String::from("no free page below 1 MiB for the AP trampoline"));
            return facts;
        };
        let va = page.addr();
        // Executable (no NO_EXECUTE): the APs fetch their first 64-bit instructions here.
        // SAFETY: the frame is boot's reserved trampoline page, and the lower-half page at its own
        // address is used by nothing else (checked by `map`, which refuses a mapped page).
        if let Err(e) = unsafe { paging::map(va, page, PageTableFlags::WRITABLE, &mut BuddyTables) } {
            facts.note = Some(alloc::format!("cannot identity-map the trampoline page {va:#x}: {e:?}"));
            return facts;
        }
        let mut next = 1;
        let mut stalled = false;
        for apic_id in aps {
            if stalled {
                facts.failed.push((apic_id, String::from("not started: an earlier AP never reported in")));
                continue;
            }
            if next >= MAX_CPUS {
                facts.failed.push((apic_id, alloc::format!("beyond MAX_CPUS ({MAX_CPUS})")));
                continue;
            }
            let cpu = next;
            next += 1;
            match start_one(cpu, apic_id, page) {
                Ok(()) => facts.up.push(CpuUp { cpu, apic_id }),
                Err(why) => {
                    // A late AP may still be climbing through the trampoline: patching it for the next
                    // AP would hand the late one the next one's stack. Start no more.
                    stalled = true;
                    facts.failed.push((apic_id, why));
                }
            }
        }
        if stalled {
            // A late AP may still be in the trampoline: without the identity page it would fault with no
            // IDT when it turns paging on, and a triple fault resets the whole machine. Keep it mapped.
            log::warn!("smp: trampoline identity page {va:#x} left mapped for an AP that may still start");
            return facts;
        }
        // SAFETY: every AP that reported in runs on kernel addresses now; the frame stays reserved, so a
        // translation an AP may still cache points at nothing anyone else uses.
        if let Err(e) = unsafe { paging::unmap(va) } {
            log::warn!("smp: trampoline identity page not unmapped: {e:?}");
        }
        facts
    })
}

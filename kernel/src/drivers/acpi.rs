//! ACPI tables through the I/O region: the MADT's list of CPUs and the local APIC's address.
//!
//! # Why
//!
//! Which CPUs a machine has, and their local APIC ids, are listed by the firmware in ACPI's *MADT*
//! ("APIC" table), found through the RSDP → RSDT/XSDT chain. The bootloader finds the RSDP and hands its
//! physical address over in `BootInfo::rsdp_addr`; the `acpi` crate walks the chain and parses the
//! MADT. The crate asks the kernel to map each table it reads ([`AcpiHandler`]); zkernel has no direct
//! map of RAM, so [`IoRegionHandler`] maps every requested range into the register half of the I/O
//! region with `virtio_hal::map_bar` (uncached, read by nothing else). ACPI tables live in firmware-
//! reserved memory that the frame allocator never manages, so the mapping aliases no frame of ours.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | RSDP | root system description pointer: a signature and the address of the RSDT (or XSDT) |
//! | MADT | multiple APIC description table: one entry per CPU (its APIC id, enabled or not), the I/O APICs |
//! | APIC id | the id a CPU's local APIC answers to; the target of an IPI |
//! | processor UID | ACPI's name for a CPU; not used here |
//!
//! Example, QEMU `-smp 4`: the MADT lists the local APIC at `0xfee00000`, the boot processor with APIC
//! id 0 and application processors 1, 2, 3 in state "waiting for SIPI"; [`read_madt`] returns
//! `Madt { lapic_phys: 0xfee00000, bsp_apic_id: 0, aps: [1, 2, 3] }`.
//!
//! # Contracts
//!
//! * A mapping is never removed (`unmap_physical_region` does nothing): the windows are recorded by
//!   `virtio_hal` and found again when the crate maps the same table twice.
//! * Disabled processors are left out of [`Madt::aps`]; they must not be started.

use alloc::vec::Vec;
use core::ptr::NonNull;

use acpi::platform::ProcessorState;
use acpi::{AcpiHandler, AcpiTables, InterruptModel, PhysicalMapping};

use super::virtio_hal::map_bar;

/// The `acpi` crate's view of memory: each requested range mapped into the I/O region's BAR half.
#[derive(Debug, Clone, Copy)]
pub struct IoRegionHandler;

impl AcpiHandler for IoRegionHandler {
    unsafe fn map_physical_region<T>(&self, physical_address: usize, size: usize) -> PhysicalMapping<Self, T> {
        // SAFETY: the crate asks only for the RSDP and the tables it points to: firmware memory, never
        // handed to the frame allocator, mapped read by the crate alone.
        let va = unsafe { map_bar(physical_address as u64, size as u64) }
            .unwrap_or_else(|e| panic!("acpi: cannot map {size} bytes at {physical_address:#x}: {e:?}"));
        let ptr = NonNull::new(va as *mut T).expect("I/O windows are not at address 0");
        // SAFETY: `ptr` maps `size` bytes at `physical_address`, and stays mapped for the kernel's life.
        unsafe { PhysicalMapping::new(physical_address, ptr, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// What the MADT says about the CPUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Madt {
    /// Physical address of the local APIC registers (xAPIC mode).
    pub lapic_phys: u64,
    /// The boot processor's APIC id.
    pub bsp_apic_id: u32,
    /// The application processors' APIC ids, in the order to start them.
    pub aps: Vec<u32>,
}

/// Why the MADT could not be read.
#[derive(Debug)]
pub enum MadtError {
    /// The crate's error (no RSDP signature, bad checksum, no MADT, …).
    Acpi(acpi::AcpiError),
    /// The interrupt model is not the APIC (the crate knows only that one, but the enum is open).
    NotApic,
    /// The MADT lists no processors.
    NoProcessors,
}

/// Read the MADT through the RSDP at physical `rsdp`.
pub fn read_madt(rsdp: u64) -> Result<Madt, MadtError> {
    // SAFETY: `rsdp` is the address the bootloader found the RSDP at (BootInfo::rsdp_addr).
    let tables = unsafe { AcpiTables::from_rsdp(IoRegionHandler, rsdp as usize) }.map_err(MadtError::Acpi)?;
    let info = tables.platform_info().map_err(MadtError::Acpi)?;
    let InterruptModel::Apic(apic) = &info.interrupt_model else { return Err(MadtError::NotApic) };
    let procs = info.processor_info.as_ref().ok_or(MadtError::NoProcessors)?;
    let aps = procs
        .application_processors
        .iter()
        .filter(|p| p.state != ProcessorState::Disabled)
        .map(|p| p.local_apic_id)
        .collect();
    Ok(Madt { lapic_phys: apic.local_apic_address, bsp_apic_id: procs.boot_processor.local_apic_id, aps })
}

//! Boot: the bootloader configuration every zkernel image shares, and the boot sequence.
//!
//! # From power-on to `init`
//!
//! Firmware (SeaBIOS or OVMF) loads the rust-osdev bootloader from the disk image; the bootloader
//! switches to long mode, loads the kernel ELF at [`KERNEL_BASE`], builds page tables for the kernel,
//! its stack and the boot info, and jumps to the `entry_point!` function with a `&'static mut BootInfo`.
//! It maps **no** direct view of physical memory (design.md, "no direct map"): every other frame will
//! be reached through temporary per-CPU mappings.
//!
//! The steps of [`init`] run in this order because each needs the one before it.

use alloc::string::String;
use core::ops::Range;

use bootloader_api::BootInfo;
use bootloader_api::config::{BootloaderConfig, Mapping};
use bootloader_api::info::MemoryRegionKind;
use kopts::{LogLevel, MemMap, Settings};
use memmap::{Firmware, Kind, Region, Summary};
use spin::Once;

use crate::drivers::console;
use crate::drivers::fw_cfg::FwCfg;
pub use crate::drivers::ramdisk::Ramdisk;
use crate::mm::{self, heap};
use crate::{arch, harness, print, println};

pub use memmap::layout::{DYNAMIC_BASE, KERNEL_BASE};
/// Pages of each guard-paged IST stack.
const IST_PAGES: u64 = 5;
/// Size of the boot CPU's kernel stack.
pub const KERNEL_STACK_SIZE: u64 = 128 * 1024;

/// The configuration embedded in every zkernel ELF (the kernel and each test kernel).
pub const BOOTLOADER_CONFIG: BootloaderConfig = {
    let mut config = BootloaderConfig::new_default();
    // No direct map of RAM (the `direct-map` measurement build is the exception).
    config.mappings.physical_memory = if cfg!(feature = "direct-map") { Some(Mapping::Dynamic) } else { None };
    // A recursive PML4 entry, used once by `mm::init` to build the kmap window, then removed.
    config.mappings.page_table_recursive = Some(Mapping::Dynamic);
    config.mappings.kernel_base = Mapping::FixedAddress(KERNEL_BASE);
    config.mappings.dynamic_range_start = Some(DYNAMIC_BASE);
    config.kernel_stack_size = KERNEL_STACK_SIZE;
    config
};

/// What boot learned about the machine; printed by the banner, read by tests.
#[derive(Debug)]
pub struct BootFacts {
    pub firmware: Firmware,
    /// CPU count from fw_cfg (`None` off QEMU).
    pub cpus: Option<u16>,
    /// The CPUs that came up (`drivers::smp`): the MADT's list, the local APIC, who reported in.
    pub smp: &'static crate::drivers::smp::SmpFacts,
    pub memory: Summary,
    /// The memory map, in the bootloader's order, as `memmap` regions.
    pub regions: alloc::vec::Vec<Region>,
    pub kernel_image: Range<u64>,
    pub kernel_stack: Range<u64>,
    /// The kernel options as received (empty when none).
    pub options: &'static str,
    /// The options, checked against kopts's table and typed: a bad option never gets this far.
    pub settings: Settings,
    /// The framebuffer the memory picture draws on, or why there is none.
    pub framebuffer: Result<crate::drivers::fb::FbInfo, &'static str>,
    /// The ramdisk the bootloader loaded (page data from `--pages FILE`), if any.
    pub ramdisk: Option<Ramdisk>,
    pub bootloader_version: (u16, u16, u16),
}

static FACTS: Once<BootFacts> = Once::new();

/// The boot facts; panics if called before [`init`].
pub fn facts() -> &'static BootFacts {
    FACTS.get().expect("init::facts() called before init::init()")
}

fn region_kind(kind: MemoryRegionKind) -> Kind {
    match kind {
        MemoryRegionKind::Usable => Kind::Usable,
        MemoryRegionKind::Bootloader => Kind::Bootloader,
        MemoryRegionKind::UnknownBios(t) => Kind::Bios(t),
        MemoryRegionKind::UnknownUefi(t) => Kind::Uefi(t),
        // The enum is non-exhaustive: a kind this kernel does not know is never handed out.
        _ => Kind::Bootloader,
    }
}

/// Read the options QEMU passed as fw_cfg file `opt/zkernel/cmdline` (empty when there is none).
fn read_options(fw_cfg: Option<&mut FwCfg>) -> &'static str {
    let Some(dev) = fw_cfg else { return "" };
    let Some(file) = dev.find_file(kopts::OPTIONS_FILE) else { return "" };
    let mut buf = alloc::vec![0u8; file.size as usize];
    let n = dev.read_file(&file, &mut buf);
    buf.truncate(n);
    let text = String::from_utf8(buf).unwrap_or_else(|_| String::from("<options were not UTF-8>"));
    String::leak(text)
}

fn log_level(level: LogLevel) -> log::LevelFilter {
    match level {
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::Trace => log::LevelFilter::Trace,
    }
}

/// Keep one page below 1 MiB away from the frame allocator: the application processors start in real
/// mode there (`arch::smp`). Returns the memory map for `mm::init` (that page marked as the
/// bootloader's) and the page, if a usable one exists. The boot facts keep the original map.
fn reserve_trampoline_page(regions: &[Region]) -> (alloc::vec::Vec<Region>, Option<frame::Pfn>) {
    const LOW: u64 = 0x1000; // page 0 holds the real-mode interrupt table: never used
    const HIGH: u64 = 0x10_0000; // a STARTUP IPI's vector is the page number: below 1 MiB
    let found = regions.iter().filter(|r| r.kind == Kind::Usable).find_map(|r| {
        let start = r.start.max(LOW).next_multiple_of(4096);
        (start + 4096 <= r.end.min(HIGH)).then_some(start)
    });
    let Some(page) = found else { return (regions.to_vec(), None) };
    let mut out = alloc::vec::Vec::with_capacity(regions.len() + 2);
    for r in regions {
        if r.kind == Kind::Usable && r.start <= page && page + 4096 <= r.end {
            out.extend([
                Region::new(r.start, page, Kind::Usable),
                Region::new(page, page + 4096, Kind::Bootloader),
                Region::new(page + 4096, r.end, Kind::Usable),
            ]);
        } else {
            out.push(*r);
        }
    }
    out.retain(|r| !r.is_empty());
    (out, Some(frame::Pfn::from_addr(page)))
}

/// Check every option against kopts's table before anything runs. A bad one ends the boot: each error
/// on its own line, the reason last, and the failure exit code (never a quiet default).
fn check_options(options: &'static str) -> Settings {
    match Settings::parse(options) {
        Ok(s) => s,
        Err(errors) => {
            for e in &errors {
                println!("option error: {e}");
            }
            let first = errors.first().map(|e| alloc::format!("{e}")).unwrap_or_default();
            println!("zkernel: FAILED: {} bad option(s); the first: {first}", errors.len());
            arch::qemu::exit(arch::qemu::ExitCode::Failed)
        }
    }
}

/// The boot sequence. Every kernel and test kernel calls this first.
pub fn init(boot_info: &'static mut BootInfo) -> &'static BootFacts {
    arch::cpu::install_boot(); //             GS base → the boot CPU's per-CPU area: `cpu::id()` works
    console::init(log::LevelFilter::Info); // serial console on COM1, so every later step can report
    arch::gdt::init(); //                     segments and the TSS with the IST emergency stacks
    arch::interrupts::set_fatal_handler(harness::fatal::fatal); // where fatal events are reported
    arch::interrupts::set_page_fault_handler(mm::fault::dispatch); // not-present #PF: the regions of mm
    arch::interrupts::init(); //              IDT: a handler for every CPU exception; PIC masked
    heap::init_boot(); //                     kernel heap: boot arena until mm is up
    let mut fw_cfg = FwCfg::detect(); //      QEMU's fw_cfg: CPU count and kernel options
    let options = read_options(fw_cfg.as_mut());
    let settings = check_options(options); // every option checked and typed, or no boot
    console::set_level(log_level(settings.loglevel()));
    let regions: alloc::vec::Vec<Region> = boot_info // the physical memory map, summarised
        .memory_regions
        .iter()
        .map(|r| Region::new(r.start, r.end, region_kind(r.kind)))
        .collect();
    let recursive = boot_info.recursive_index.into_option().expect("bootloader gave no recursive PML4 entry");
    let phys_offset = boot_info.physical_memory_offset.into_option();
    let (mm_regions, trampoline) = reserve_trampoline_page(&regions); // a page below 1 MiB for AP start-up
    mm::init(&mm_regions, recursive, phys_offset); // kmap window, frame allocator, heap main arena
    let ist = [0; 3].map(|_| mm::stack::alloc_stack(IST_PAGES).expect("no frames for the IST stacks"));
    arch::gdt::move_ist_stacks(ist); //       emergency stacks with guard pages
    let boot_stack = boot_info.kernel_stack_bottom..boot_info.kernel_stack_bottom + boot_info.kernel_stack_len;
    let smp = crate::drivers::smp::bring_up(boot_info.rsdp_addr.into_option(), trampoline, boot_stack); // every CPU
    crate::drivers::virtio_blk::probe(); //   virtio-blk disks on PCI bus 0 ("swap", "files"), polled
    let ramdisk = Ramdisk::from_boot_info(boot_info, settings.ramdisk_fnv()); // the page data: intact?
    if let Some(r) = ramdisk.filter(|r| r.verified == Some(false)) {
        // The pages are not the ones xtask was given: no figure may be made from them.
        println!(
            "zkernel: FAILED: the ramdisk ({} bytes) does not match ramdisk_fnv={:016x}: not the page file given",
            r.len(),
            settings.ramdisk_fnv().unwrap_or(0)
        );
        arch::qemu::exit(arch::qemu::ExitCode::Failed)
    }
    let framebuffer = crate::drivers::fb::install(boot_info.framebuffer.take()); // for the memory picture
    let api = &boot_info.api_version;
    FACTS.call_once(|| BootFacts {
        firmware: memmap::detect_firmware(regions.iter().copied()),
        cpus: fw_cfg.as_mut().map(FwCfg::cpu_count),
        smp,
        memory: Summary::of(regions.iter().copied()),
        kernel_image: boot_info.kernel_image_offset..boot_info.kernel_image_offset + boot_info.kernel_len,
        kernel_stack: boot_info.kernel_stack_bottom..boot_info.kernel_stack_bottom + boot_info.kernel_stack_len,
        options,
        settings,
        ramdisk,
        framebuffer,
        bootloader_version: (api.version_major(), api.version_minor(), api.version_patch()),
        regions,
    })
}

impl BootFacts {
    /// The banner `cargo xtask run` shows: firmware, CPUs, memory map, options.
    pub fn print_banner(&self) {
        let (ma, mi, pa) = self.bootloader_version;
        println!(
            "zkernel {} on {}, booted by bootloader {ma}.{mi}.{pa}",
            env!("CARGO_PKG_VERSION"),
            self.firmware.name()
        );
        self.print_options();
        self.print_cpus();
        let m = &self.memory;
        println!(
            "memory map: {} regions, {} usable: {}.{} MiB usable ({} frames of 4 KiB), \
             bootloader {} KiB, firmware-reserved {} MiB of address space",
            m.regions,
            m.usable_regions,
            m.usable_mib_tenths() / 10,
            m.usable_mib_tenths() % 10,
            m.usable_frames,
            m.bootloader_bytes / 1024,
            m.firmware_bytes >> 20,
        );
        if self.settings.memmap() == MemMap::Full {
            for r in &self.regions {
                println!(
                    "  {:#014x}..{:#014x} {:>10} KiB  {}",
                    r.start,
                    r.end,
                    r.len() / 1024,
                    memmap::kind_name(r.kind)
                );
            }
        }
        println!(
            "kernel: image {:#x}..{:#x}, stack {:#x}..{:#x}, {}",
            self.kernel_image.start,
            self.kernel_image.end,
            self.kernel_stack.start,
            self.kernel_stack.end,
            if cfg!(feature = "direct-map") { "DIRECT MAP of RAM (measurement build)" } else { "no direct map of RAM" }
        );
        if let Some(r) = &self.ramdisk {
            let check = match r.verified {
                Some(true) => "checksum ok",
                Some(false) => "CHECKSUM MISMATCH",
                None => "no checksum given",
            };
            println!("ramdisk: {} pages ({} KiB) at {:#x}, {check}", r.pages(), r.len() / 1024, r.addr());
        }
        self.print_memory();
    }

    /// The memory summary: frames per order, heap, kmap and paging counters.
    pub fn print_memory(&self) {
        let f = mm::frames::stats();
        if let Some(m) = mm::facts() {
            println!(
                "frames: {} managed ({} MiB), frame table {} KiB for pfn {:#x}..{:#x}, {} early frames for tables",
                m.managed,
                m.managed >> 8,
                m.frame_table_bytes / 1024,
                m.span.0.0,
                m.span.1.0,
                m.early_frames
            );
        }
        let w = mm::frames::watermarks();
        println!(
            "  free {} used {} per-cpu {} (allocs {}, frees {}, failures {}); watermarks min {} low {} high {}",
            f.free, f.used, f.per_cpu, f.allocs, f.frees, f.alloc_failures, w.min, w.low, w.high
        );
        print!("  free blocks by order:");
        for (order, n) in f.free_per_order.iter().enumerate() {
            print!(" {order}:{n}");
        }
        println!();
        let h = heap::stats();
        println!(
            "heap: {} KiB in use of {} KiB ({} KiB mapped on demand)",
            h.used / 1024,
            h.size / 1024,
            h.mapped / 1024
        );
        let k = mm::kmap::stats();
        let p = mm::paging::stats();
        println!("kmap: {} maps, {} unmaps, {} invlpg, deepest nesting {}", k.maps, k.unmaps, k.invlpg, k.max_depth);
        println!(
            "paging: {} maps, {} unmaps, {} invlpg, {} page-table frames allocated",
            p.maps, p.unmaps, p.invlpg, p.tables
        );
        let t = arch::tlb::stats();
        println!("tlb: {} shootdowns, {} NMIs sent", t.shootdowns, t.ipis);
        print_locks();
    }

    /// The CPUs line: how many are up of those the MADT lists, the APIC mode, each CPU's APIC id.
    pub fn print_cpus(&self) {
        let s = self.smp;
        let fw = self.cpus.map_or(String::from("no fw_cfg"), |n| alloc::format!("fw_cfg: {n}"));
        let tramp = s.trampoline.map_or(String::from("no trampoline page"), |t| alloc::format!("trampoline at {t:#x}"));
        print!(
            "cpus: {} up of {} in the MADT ({fw}; {} at {:#x}; {tramp}):",
            s.up.len(),
            s.listed,
            s.lapic_mode,
            s.lapic_phys
        );
        for c in &s.up {
            print!(" cpu{} apic {}", c.cpu, c.apic_id);
        }
        println!();
        for (apic_id, why) in &s.failed {
            println!("  APIC id {apic_id} did not come up: {why}");
        }
        if let Some(note) = &s.note {
            println!("  only the boot CPU runs: {note}");
        }
    }

    fn print_options(&self) {
        let given = self.options.trim_matches(|c: char| c == '\0' || c.is_whitespace());
        if given.is_empty() {
            println!("options: (none; every option at its default)");
            return;
        }
        println!("options: {given}");
        // The value the kernel runs with, for each option given (checked at boot: every one is valid).
        for word in given.split_whitespace() {
            let key = word.split_once('=').map_or(word, |(k, _)| k);
            if let Some(v) = self.settings.get(key) {
                println!("  {key} = {v}");
            }
        }
    }

    /// The boot part of the machine-readable report (`@@stats`, `zstats::Report`): the machine, the options
    /// and memory now. Workloads add their members and failures; `main` prints it.
    pub fn report(&self) -> zstats::Report {
        let m = &self.memory;
        let h = heap::stats();
        let f = mm::frames::stats();
        let k = mm::kmap::stats();
        let p = mm::paging::stats();
        zstats::Report {
            firmware: self.firmware.name().into(),
            cpus: self.cpus.map_or(0, u64::from),
            options: self.options.trim_matches(|c: char| c == '\0' || c.is_whitespace()).into(),
            memory: zstats::MemoryReport {
                regions: m.regions as u64,
                usable_regions: m.usable_regions as u64,
                usable_bytes: m.usable_bytes,
                usable_frames: m.usable_frames,
                bootloader_bytes: m.bootloader_bytes,
                firmware_bytes: m.firmware_bytes,
                usable_end: m.usable_end,
                unordered: m.unordered,
            },
            frames: zstats::FramesReport {
                managed: f.managed,
                free: f.free,
                used: f.used,
                per_cpu: f.per_cpu,
                free_per_order: f.free_per_order.to_vec(),
                allocs: f.allocs,
                frees: f.frees,
                alloc_failures: f.alloc_failures,
            },
            heap: zstats::HeapReport { size: h.size as u64, used: h.used as u64, mapped: h.mapped },
            kmap: zstats::KmapReport {
                maps: k.maps,
                unmaps: k.unmaps,
                invlpg: k.invlpg,
                max_depth: k.max_depth as u64,
            },
            paging: zstats::PagingReport { maps: p.maps, unmaps: p.unmaps, invlpg: p.invlpg, tables: p.tables },
            breakpoints: arch::interrupts::breakpoints(),
            cpus_up: self.smp.up.len() as u64,
            tlb_shootdowns: arch::tlb::stats().shootdowns,
            locks: lock_stats()
                .into_iter()
                .map(|l| zstats::LockReport {
                    name: l.name.into(),
                    acquisitions: l.acquisitions,
                    contentions: l.contentions,
                })
                .collect(),
            ..Default::default()
        }
    }
}

/// Every kernel lock's counters ([`arch::lock`]), room by room, locks never taken left out: the
/// report's `locks` and the `locks:` lines.
pub fn lock_stats() -> alloc::vec::Vec<arch::lock::LockStats> {
    let mut all = alloc::vec![mm::fault::lock_stats(), crate::swap::lock_stats(), crate::zram::lock_stats()];
    all.extend(crate::zcache::lock_stats());
    all.push(mm::paging::lock_stats());
    all.extend(mm::frames::lock_stats());
    all.push(arch::tlb::lock_stats());
    all.retain(|l| l.acquisitions > 0);
    all
}

/// The `locks:` lines: acquisitions and contentions (acquisitions that waited for another CPU) per lock.
pub fn print_locks() {
    let order = if arch::lock::CHECKS_ORDER {
        alloc::format!("lock order checked {} times", arch::lock::order_checks())
    } else {
        String::from("lock order not checked (release build)")
    };
    println!("locks ({order}):");
    for l in lock_stats() {
        let per_mille = if l.acquisitions == 0 { 0.0 } else { l.contentions as f64 * 1000.0 / l.acquisitions as f64 };
        println!(
            "  {:<15} {:>10} acquisitions {:>8} contentions ({per_mille:.2} per 1000)",
            l.name, l.acquisitions, l.contentions
        );
    }
}

//! Physical memory map: what the firmware said about RAM, reduced to the figures the kernel needs.
//!
//! # Why
//!
//! The bootloader hands the kernel a list of physical regions (`BootInfo::memory_regions`): RAM the
//! kernel may use, memory the bootloader itself occupies (page tables, boot info, the kernel image), and
//! firmware regions it did not understand, tagged with the raw E820 type (BIOS) or UEFI memory type. This
//! crate turns that list into a [`Summary`] (the banner's "usable MiB, region count"), says which firmware
//! booted us, and cuts usable regions to whole 4 KiB frames — the unit the frame allocator hands out.
//! It is portable (`no_std`, no `unsafe`) so the host tests can feed it odd maps no QEMU would produce.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | region | `[start, end)` of physical addresses with one [`Kind`] |
//! | frame | a 4096-byte, 4096-aligned piece of physical memory ([`FRAME_SIZE`]) |
//! | usable frames | the whole frames inside usable regions: start rounded up, end rounded down |
//!
//! # Example
//!
//! A usable region `[0x1800, 0x5100)` is 14,592 bytes but holds only 3 whole frames: `0x2000`, `0x3000`,
//! `0x4000` (the head `0x1800..0x2000` and the tail `0x5000..0x5100` are too small to hand out).
//!
//! # Firmware detection
//!
//! bootloader 0.11 does not say which firmware booted it, but it tags every firmware region it does not
//! translate with the firmware's own numbering: `UnknownBios(e820 type)` or `UnknownUefi(memory type)`.
//! Both QEMU's SeaBIOS and OVMF always report reserved regions, so the first such tag names the firmware.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use core::ops::Range;

/// Size of one physical frame (an x86_64 small page).
pub const FRAME_SIZE: u64 = 4096;

/// What a region of physical memory is for, as far as the kernel cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free RAM the kernel may allocate.
    Usable,
    /// Memory the bootloader used for the kernel image, page tables, boot info, stacks or ramdisk.
    Bootloader,
    /// A region the BIOS reported with this E820 type (2 = reserved, 3 = ACPI reclaimable, 4 = ACPI NVS…).
    Bios(u32),
    /// A region UEFI reported with this memory type (e.g. 9 = ACPI reclaim, 11 = MMIO).
    Uefi(u32),
}

/// One physical region `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub kind: Kind,
}

impl Region {
    pub const fn new(start: u64, end: u64, kind: Kind) -> Self {
        Self { start, end, kind }
    }

    /// Length in bytes; an inverted region (end before start) counts as empty.
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole frames inside this region as a range of physical addresses, `None` if none fits.
    pub fn frames(&self) -> Option<Range<u64>> {
        let start = self.start.checked_add(FRAME_SIZE - 1)? & !(FRAME_SIZE - 1);
        let end = self.end & !(FRAME_SIZE - 1);
        (start < end).then_some(start..end)
    }

    /// Number of whole frames inside this region.
    pub fn frame_count(&self) -> u64 {
        self.frames().map_or(0, |r| (r.end - r.start) / FRAME_SIZE)
    }
}

/// Which firmware booted the machine, read off the memory map (see the module header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    Bios,
    Uefi,
    Unknown,
}

impl Firmware {
    pub const fn name(self) -> &'static str {
        match self {
            Firmware::Bios => "BIOS",
            Firmware::Uefi => "UEFI",
            Firmware::Unknown => "unknown firmware",
        }
    }
}

/// The figures the boot banner prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// All regions in the map, of every kind.
    pub regions: usize,
    /// Regions of kind [`Kind::Usable`].
    pub usable_regions: usize,
    /// Bytes in usable regions.
    pub usable_bytes: u64,
    /// Whole frames in usable regions (what a frame allocator can hand out).
    pub usable_frames: u64,
    /// Bytes the bootloader occupies.
    pub bootloader_bytes: u64,
    /// Bytes in firmware regions (reserved, ACPI, MMIO…).
    pub firmware_bytes: u64,
    /// One past the highest usable byte: how far a frame table must reach.
    pub usable_end: u64,
    /// True when some regions overlap or come out of address order (the frame allocator must sort).
    pub unordered: bool,
}

impl Summary {
    /// Summarise a memory map given in any order.
    pub fn of(regions: impl IntoIterator<Item = Region>) -> Self {
        let mut s = Summary::default();
        let mut last_end = 0u64;
        for r in regions {
            s.regions += 1;
            if r.start < last_end {
                s.unordered = true;
            }
            last_end = last_end.max(r.end);
            match r.kind {
                Kind::Usable => {
                    s.usable_regions += 1;
                    s.usable_bytes += r.len();
                    s.usable_frames += r.frame_count();
                    if !r.is_empty() {
                        s.usable_end = s.usable_end.max(r.end);
                    }
                }
                Kind::Bootloader => s.bootloader_bytes += r.len(),
                Kind::Bios(_) | Kind::Uefi(_) => s.firmware_bytes += r.len(),
            }
        }
        s
    }

    /// Usable memory in whole MiB, rounded down.
    pub const fn usable_mib(&self) -> u64 {
        self.usable_bytes >> 20
    }

    /// Usable memory in tenths of a MiB (for a `254.3 MiB` style figure without floats).
    pub const fn usable_mib_tenths(&self) -> u64 {
        (self.usable_bytes * 10) >> 20
    }
}

/// Which firmware produced this map: the first firmware-tagged region decides.
pub fn detect_firmware(regions: impl IntoIterator<Item = Region>) -> Firmware {
    regions
        .into_iter()
        .find_map(|r| match r.kind {
            Kind::Bios(_) => Some(Firmware::Bios),
            Kind::Uefi(_) => Some(Firmware::Uefi),
            _ => None,
        })
        .unwrap_or(Firmware::Unknown)
}

/// A short name for a region kind, for the memory-map table the kernel prints with `memmap=full`.
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Usable => "usable",
        Kind::Bootloader => "bootloader",
        Kind::Bios(1) => "e820 ram",
        Kind::Bios(2) => "e820 reserved",
        Kind::Bios(3) => "e820 acpi reclaim",
        Kind::Bios(4) => "e820 acpi nvs",
        Kind::Bios(5) => "e820 unusable",
        Kind::Bios(_) => "e820 other",
        Kind::Uefi(0) => "uefi reserved",
        Kind::Uefi(1 | 2) => "uefi loader",
        Kind::Uefi(3 | 4) => "uefi boot services",
        Kind::Uefi(5 | 6) => "uefi runtime services",
        Kind::Uefi(7) => "uefi conventional",
        Kind::Uefi(8) => "uefi unusable",
        Kind::Uefi(9) => "uefi acpi reclaim",
        Kind::Uefi(10) => "uefi acpi nvs",
        Kind::Uefi(11 | 12) => "uefi mmio",
        Kind::Uefi(_) => "uefi other",
    }
}

/// The kernel's virtual address-space layout, shared by the kernel and the host tools (`cargo xtask gdb`
/// loads the kernel's symbols at [`layout::KERNEL_BASE`]). Each region has a PML4 slot of its own
/// (512 GiB), so regions never share a page-table page.
///
/// | range start | PML4 slot | what |
/// |---|---|---|
/// | `0x0000_4000_0000_0000` ([`layout::SCRATCH_BASE`]) | 128 | lower half: scratch mappings for tests and workloads |
/// | `0xffff_8000_0000_0000` ([`layout::DYNAMIC_BASE`]) | 256… | bootloader's mappings: boot stack, boot info, its recursive slot |
/// | `0xffff_fa00_0000_0000` ([`layout::IO_BASE`]) | 500 | device I/O: DMA buffers (at `IO_BASE + physical address`) and PCI BAR windows (upper half, uncached) |
/// | `0xffff_fb00_0000_0000` ([`layout::STACKS_BASE`]) | 502 | kernel stacks, each with unmapped guard pages |
/// | `0xffff_fc00_0000_0000` ([`layout::HEAP_BASE`]) | 504 | the kernel heap, grown on demand |
/// | `0xffff_fd00_0000_0000` ([`layout::FRAME_TABLE_BASE`]) | 506 | the `FrameInfo` table (Linux's `mem_map`) |
/// | `0xffff_fe00_0000_0000` ([`layout::KMAP_BASE`]) | 508 | the kmap window: per-CPU temporary mapping slots |
/// | `0xffff_ffff_8000_0000` ([`layout::KERNEL_BASE`]) | 511 | the kernel image (Linux's `__START_KERNEL_map`) |
pub mod layout {
    /// Virtual address of the kernel image: the top 2 GiB. Fixed so a debugger knows the symbols' offset.
    pub const KERNEL_BASE: u64 = 0xffff_ffff_8000_0000;
    /// Where the bootloader places its other mappings (boot stack, boot info).
    pub const DYNAMIC_BASE: u64 = 0xffff_8000_0000_0000;
    /// Lower-half scratch region for tests and workloads.
    pub const SCRATCH_BASE: u64 = 0x0000_4000_0000_0000;
    /// Device I/O (`kernel/src/drivers/virtio_hal.rs`): the lower 256 GiB map the frames lent to devices
    /// for DMA at `IO_BASE + physical address`, the upper 256 GiB hold the PCI BAR windows (uncached).
    pub const IO_BASE: u64 = 0xffff_fa00_0000_0000;
    /// Kernel stacks with guard pages.
    pub const STACKS_BASE: u64 = 0xffff_fb00_0000_0000;
    /// The kernel heap.
    pub const HEAP_BASE: u64 = 0xffff_fc00_0000_0000;
    /// Most the heap may grow to.
    pub const HEAP_MAX: u64 = 1 << 30;
    const _: () = assert!(HEAP_MAX <= 1 << 39, "the heap fits its PML4 slot");
    /// The frame table.
    pub const FRAME_TABLE_BASE: u64 = 0xffff_fd00_0000_0000;
    /// The kmap window: one page-table page (512 slots of 4 KiB), the last slot mapping that page itself.
    pub const KMAP_BASE: u64 = 0xffff_fe00_0000_0000;

    /// The PML4 slot of an address.
    pub const fn pml4_index(addr: u64) -> usize {
        ((addr >> 39) & 511) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// Roughly what SeaBIOS gives a 256 MiB q35 guest, after the bootloader carved out its own part.
    fn bios_map() -> Vec<Region> {
        vec![
            Region::new(0, 0x1000, Kind::Bootloader),
            Region::new(0x1000, 0x9_fc00, Kind::Usable),
            Region::new(0x9_fc00, 0xa_0000, Kind::Bios(2)),
            Region::new(0xf_0000, 0x10_0000, Kind::Bios(2)),
            Region::new(0x10_0000, 0x40_0000, Kind::Bootloader),
            Region::new(0x40_0000, 0xffe_0000, Kind::Usable),
            Region::new(0xffe_0000, 0x1000_0000, Kind::Bios(2)),
            Region::new(0xfeff_c000, 0xff00_0000, Kind::Bios(2)),
        ]
    }

    #[test]
    fn summary_counts_each_kind() {
        let s = Summary::of(bios_map());
        assert_eq!(s.regions, 8);
        assert_eq!(s.usable_regions, 2);
        assert_eq!(s.usable_bytes, (0x9_fc00 - 0x1000) + (0xffe_0000 - 0x40_0000));
        // 0x1000..0x9f000 is 158 frames (0x9fc00 rounds down to 0x9f000); the big region is exact.
        assert_eq!(s.usable_frames, 158 + (0xffe_0000 - 0x40_0000) / FRAME_SIZE);
        assert_eq!(s.bootloader_bytes, 0x1000 + 0x30_0000);
        assert_eq!(s.firmware_bytes, 0x400 + 0x1_0000 + 0x2_0000 + 0x4000);
        assert_eq!(s.usable_end, 0xffe_0000);
        assert!(!s.unordered);
        assert_eq!(s.usable_mib(), 252);
        assert_eq!(s.usable_mib_tenths(), 2524);
    }

    #[test]
    fn frames_round_inward() {
        let r = Region::new(0x1800, 0x5100, Kind::Usable);
        assert_eq!(r.frames(), Some(0x2000..0x5000));
        assert_eq!(r.frame_count(), 3);
    }

    #[test]
    fn regions_smaller_than_a_frame_hold_none() {
        assert_eq!(Region::new(0x1001, 0x2000, Kind::Usable).frames(), None);
        assert_eq!(Region::new(0x1000, 0x1fff, Kind::Usable).frames(), None);
        assert_eq!(Region::new(0x1800, 0x2800, Kind::Usable).frame_count(), 0);
        assert_eq!(Region::new(0x5000, 0x5000, Kind::Usable).frame_count(), 0);
    }

    #[test]
    fn inverted_and_top_of_memory_regions_do_not_overflow() {
        let inverted = Region::new(0x9000, 0x1000, Kind::Usable);
        assert_eq!(inverted.len(), 0);
        assert_eq!(inverted.frames(), None);
        let top = Region::new(u64::MAX - 0x1800, u64::MAX, Kind::Usable);
        assert_eq!(top.frames(), None, "start rounding up past u64::MAX must not wrap");
        let s = Summary::of([inverted]);
        assert_eq!((s.usable_bytes, s.usable_frames, s.usable_end), (0, 0, 0));
    }

    #[test]
    fn unordered_or_overlapping_maps_are_flagged() {
        let mut map = bios_map();
        map.swap(1, 5);
        assert!(Summary::of(map).unordered);
        let overlap = [Region::new(0, 2 * MIB, Kind::Usable), Region::new(MIB, 3 * MIB, Kind::Bootloader)];
        assert!(Summary::of(overlap).unordered);
    }

    #[test]
    fn firmware_is_read_off_the_tags() {
        assert_eq!(detect_firmware(bios_map()), Firmware::Bios);
        let uefi = [
            Region::new(0, MIB, Kind::Usable),
            Region::new(MIB, 2 * MIB, Kind::Uefi(9)),
            Region::new(2 * MIB, 3 * MIB, Kind::Bootloader),
        ];
        assert_eq!(detect_firmware(uefi), Firmware::Uefi);
        assert_eq!(detect_firmware([Region::new(0, MIB, Kind::Usable)]), Firmware::Unknown);
        assert_eq!(Firmware::Uefi.name(), "UEFI");
    }

    #[test]
    fn empty_map() {
        assert_eq!(Summary::of([]), Summary::default());
    }

    #[test]
    fn layout_regions_have_their_own_pml4_slots() {
        use layout::*;
        let slots =
            [SCRATCH_BASE, IO_BASE, STACKS_BASE, HEAP_BASE, FRAME_TABLE_BASE, KMAP_BASE, KERNEL_BASE].map(pml4_index);
        assert_eq!(slots, [128, 500, 502, 504, 506, 508, 511]);
    }

    #[test]
    fn kind_names() {
        assert_eq!(kind_name(Kind::Bios(2)), "e820 reserved");
        assert_eq!(kind_name(Kind::Uefi(11)), "uefi mmio");
        assert_eq!(kind_name(Kind::Usable), "usable");
    }
}

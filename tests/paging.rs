//! zkernel's own page tables: map, protect, unmap and remap 4 KiB pages; refusals are typed errors;
//! faults on unmapped or read-only pages are caught; the heap grows on demand; stacks have guard pages.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

use frame::{Owner, Pfn};
use memmap::layout::SCRATCH_BASE;
use x86_64::structures::paging::PageTableFlags as F;
use zkernel::arch::gdt::{DOUBLE_FAULT_IST, ist_stack};
use zkernel::arch::probe::{Fault, read_u64, write_u64};
use zkernel::harness::testing::Case;
use zkernel::mm::kmap::{Kmap, kmap_local};
use zkernel::mm::paging::{self, MapError};
use zkernel::mm::{frames, heap};

zkernel::test_kernel!(
    "paging",
    &[
        Case::returns("map_write_read_unmap", map_write_read_unmap),
        Case::returns("mapping_over_a_mapping_is_refused", mapping_over_a_mapping_is_refused),
        Case::returns("read_only_page_faults_on_write", read_only_page_faults_on_write),
        Case::returns("remap_to_another_frame", remap_to_another_frame),
        Case::returns("bad_addresses_are_refused", bad_addresses_are_refused),
        Case::returns("heap_grows_on_demand", heap_grows_on_demand),
        Case::returns("ist_stacks_have_guard_pages", ist_stacks_have_guard_pages),
    ]
);

const VA: u64 = SCRATCH_BASE + 0x1234_5000;
const RW: F = F::WRITABLE.union(F::NO_EXECUTE);

fn frame() -> Pfn {
    frames::alloc_page(Owner::KMAP_TEST).unwrap()
}

// The helpers below wrap the unsafe mm calls. Their shared SAFETY argument: the test maps only frames it
// allocated into the scratch region, which nothing else in this kernel uses, and holds no reference into
// a page when it unmaps or reprotects it (it touches mapped pages only through fault-catching probes).

fn view(pfn: Pfn) -> Kmap {
    // SAFETY: see above.
    unsafe { kmap_local(pfn) }.unwrap()
}

fn map(va: u64, pfn: Pfn) -> Result<(), MapError> {
    // SAFETY: see above.
    unsafe { paging::map(va, pfn, RW, &mut frames::BuddyTables) }
}

fn unmap(va: u64) -> Result<Pfn, MapError> {
    // SAFETY: see above.
    unsafe { paging::unmap(va) }
}

fn release(pfn: Pfn) {
    // SAFETY: see above; the frame is unmapped when released.
    unsafe { frames::free_page(pfn) }.unwrap()
}

fn map_write_read_unmap() {
    let pfn = frame();
    let before = paging::stats();
    map(VA, pfn).unwrap();
    let after = paging::stats();
    assert_eq!(after.maps, before.maps + 1);
    assert_eq!(after.invlpg, before.invlpg + 1);
    assert_eq!(paging::translate(VA + 0x10).map(|t| t.0), Ok(pfn));
    // SAFETY: VA maps `pfn`, a frame this test owns.
    unsafe { write_u64(VA + 8, 0xfeed_f00d).unwrap() };
    // The same frame through a kmap slot sees the write: two mappings, one frame.
    let word = view(pfn).bytes()[8..16].try_into().unwrap();
    assert_eq!(u64::from_le_bytes(word), 0xfeed_f00d);
    assert_eq!(unmap(VA), Ok(pfn));
    // SAFETY: VA is unmapped now; the probe catches the fault.
    assert_eq!(unsafe { read_u64(VA) }, Err(Fault { vector: 14, error_code: 0, address: Some(VA) }));
    assert_eq!(unmap(VA), Err(MapError::NotMapped(VA)));
    assert_eq!(paging::translate(VA), Err(MapError::NotMapped(VA)));
    release(pfn);
}

fn mapping_over_a_mapping_is_refused() {
    let (a, b) = (frame(), frame());
    map(VA, a).unwrap();
    assert_eq!(map(VA, b), Err(MapError::AlreadyMapped { va: VA, pfn: a }));
    assert_eq!(paging::translate(VA).map(|t| t.0), Ok(a), "the old mapping is untouched");
    assert_eq!(unmap(VA), Ok(a));
    release(a);
    release(b);
}

fn read_only_page_faults_on_write() {
    let pfn = frame();
    view(pfn).bytes()[..8].copy_from_slice(&77u64.to_le_bytes());
    map(VA, pfn).unwrap();
    // SAFETY: see the helpers' note: only probes touch the page.
    unsafe { paging::set_flags(VA, F::NO_EXECUTE) }.unwrap();
    // SAFETY: VA maps our frame, read-only now; the write must fault and write nothing.
    assert_eq!(unsafe { write_u64(VA, 1) }, Err(Fault { vector: 14, error_code: 3, address: Some(VA) }));
    // SAFETY: as above; reading is allowed.
    assert_eq!(unsafe { read_u64(VA) }, Ok(77));
    unmap(VA).unwrap();
    release(pfn);
}

fn remap_to_another_frame() {
    let (a, b) = (frame(), frame());
    view(a).bytes()[..8].copy_from_slice(&1u64.to_le_bytes());
    view(b).bytes()[..8].copy_from_slice(&2u64.to_le_bytes());
    map(VA, a).unwrap();
    // SAFETY: VA maps frame a, ours.
    assert_eq!(unsafe { read_u64(VA) }, Ok(1));
    assert_eq!(unmap(VA), Ok(a));
    let tables = paging::stats().tables;
    map(VA, b).unwrap();
    assert_eq!(paging::stats().tables, tables, "the page tables of the first mapping are reused");
    // SAFETY: VA maps frame b now; a stale TLB entry would still show frame a's 1.
    assert_eq!(unsafe { read_u64(VA) }, Ok(2));
    unmap(VA).unwrap();
    release(a);
    release(b);
}

fn bad_addresses_are_refused() {
    let pfn = frame();
    let bad = 0x8000_0000_0000_0000;
    assert_eq!(map(bad, pfn), Err(MapError::BadAddress(bad)));
    assert_eq!(map(VA + 1, pfn), Err(MapError::BadAddress(VA + 1)));
    // Regions the kernel manages itself are refused: the kernel image, the kmap window, the frame table.
    let code = bad_addresses_are_refused as fn() as usize as u64 & !0xfff;
    for va in [code, memmap::layout::KMAP_BASE, memmap::layout::FRAME_TABLE_BASE] {
        assert_eq!(map(va, pfn), Err(MapError::Reserved(va)));
        assert_eq!(unmap(va), Err(MapError::Reserved(va)));
    }
    release(pfn);
}

fn heap_grows_on_demand() {
    let before = heap::stats();
    let v: Vec<u64> = (0..1_000_000u64).collect(); // 8 MB
    let during = heap::stats();
    assert!(during.mapped >= before.mapped + 8_000_000, "{before:?} -> {during:?}");
    assert_eq!(v.iter().sum::<u64>(), 499_999_500_000);
    drop(v);
    assert_eq!(heap::stats().used, before.used);
}

fn ist_stacks_have_guard_pages() {
    let ist = ist_stack(DOUBLE_FAULT_IST);
    assert!(ist.start >= memmap::layout::STACKS_BASE, "IST stacks moved to the guard-paged region");
    // SAFETY: reading the IST stack's own bottom word is harmless; below it is the unmapped guard page.
    assert!(unsafe { read_u64(ist.start) }.is_ok());
    // SAFETY: as above; the probe catches the fault.
    assert_eq!(unsafe { read_u64(ist.start - 8) }.map_err(|f| f.vector), Err(14), "guard page below");
    // SAFETY: as above, for the page above the stack.
    assert_eq!(unsafe { read_u64(ist.end) }.map_err(|f| f.vector), Err(14), "guard page above");
}

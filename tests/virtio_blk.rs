//! The virtio-blk driver against a real (emulated) disk: xtask attaches a fresh, sparse 64 MiB file as
//! the disk with serial "swap"; pages written reach it and come back byte for byte, bad indices are
//! refused with a typed error, the counters count exactly what was done, and requests take no frames.
//! The HAL's `share` copies a buffer that straddles two unrelated frames instead of handing it over.
#![no_std]
#![no_main]

use core::ptr::NonNull;

use frame::Owner;
use memmap::layout::SCRATCH_BASE;
use x86_64::structures::paging::PageTableFlags;
use zkernel::arch::tsc;
use zkernel::drivers::virtio_blk::{self, BlkDisk, BlkError, PAGE_SIZE};
use zkernel::drivers::virtio_hal::{self, BufferDirection, Hal, ZkHal};
use zkernel::harness::testing::Case;
use zkernel::mm::{frames, paging};
use zkernel::println;

zkernel::test_kernel!(
    "virtio_blk",
    &[
        Case::returns("swap_disk_is_found_by_serial", swap_disk_is_found_by_serial),
        Case::returns("fresh_disk_reads_zeros", fresh_disk_reads_zeros),
        Case::returns("pages_round_trip_at_the_edges", pages_round_trip_at_the_edges),
        Case::returns("overwrite_then_read_again", overwrite_then_read_again),
        Case::returns("index_past_the_end_is_refused", index_past_the_end_is_refused),
        Case::returns("stats_count_exactly_what_was_done", stats_count_exactly_what_was_done),
        Case::returns("requests_take_no_frames", requests_take_no_frames),
        Case::returns("time_one_request", time_one_request),
        Case::returns("share_copies_a_buffer_across_unrelated_frames", share_copies_a_buffer_across_unrelated_frames),
    ]
);

/// xtask's default swap disk: 64 MiB.
const SWAP_PAGES: u64 = (64 << 20) / PAGE_SIZE as u64;

fn swap() -> spin::MutexGuard<'static, BlkDisk> {
    virtio_blk::disk("swap").expect("xtask attached a disk with serial \"swap\"").lock()
}

/// Page `index`'s contents in generation `generation`: the index and generation stamped at the start,
/// then bytes that differ between neighbouring pages and between generations.
fn pattern(index: u64, generation: u8) -> [u8; PAGE_SIZE] {
    let mut p = [0u8; PAGE_SIZE];
    p[..8].copy_from_slice(&index.to_le_bytes());
    p[8] = generation;
    let mut x = index.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(generation).wrapping_mul(0xff51_afd7_ed55_8ccd);
    for b in &mut p[9..] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    p
}

fn edges() -> [u64; 4] {
    [0, 1, SWAP_PAGES / 2 + 3, SWAP_PAGES - 1]
}

fn write_and_check(disk: &mut BlkDisk, index: u64, generation: u8) {
    let page = pattern(index, generation);
    disk.write_page(index, &page).unwrap_or_else(|e| panic!("write_page({index}): {e:?}"));
    let mut back = [0xa5u8; PAGE_SIZE];
    disk.read_page(index, &mut back).unwrap_or_else(|e| panic!("read_page({index}): {e:?}"));
    if let Some(at) = back.iter().zip(&page).position(|(a, b)| a != b) {
        panic!("page {index} generation {generation}: byte {at} reads {:#x}, wrote {:#x}", back[at], page[at]);
    }
}

fn swap_disk_is_found_by_serial() {
    let disk = swap();
    assert_eq!(disk.name(), "swap");
    assert_eq!(disk.capacity_pages(), SWAP_PAGES, "64 MiB of 4 KiB pages");
    assert!(!disk.readonly());
    println!("swap disk at PCI {}: {} pages", disk.location(), disk.capacity_pages());
    drop(disk);
    assert!(virtio_blk::disk("no-such-disk").is_none());
    assert_eq!(virtio_blk::probe(), virtio_blk::disks().count(), "a second probe finds the same disks");
}

fn fresh_disk_reads_zeros() {
    let mut disk = swap();
    for index in [0, 2, SWAP_PAGES - 1] {
        let mut page = [0xa5u8; PAGE_SIZE];
        disk.read_page(index, &mut page).unwrap();
        assert!(page.iter().all(|&b| b == 0), "page {index} of a fresh sparse disk is zero");
    }
}

fn pages_round_trip_at_the_edges() {
    let mut disk = swap();
    for index in edges() {
        write_and_check(&mut disk, index, 1);
    }
    // Each page kept its own contents: the writes did not land on each other.
    for index in edges() {
        let mut page = [0u8; PAGE_SIZE];
        disk.read_page(index, &mut page).unwrap();
        assert!(page == pattern(index, 1), "page {index} still holds generation 1");
    }
}

fn overwrite_then_read_again() {
    let mut disk = swap();
    for index in edges() {
        write_and_check(&mut disk, index, 2);
    }
    let mut page = [0u8; PAGE_SIZE];
    disk.read_page(2, &mut page).unwrap();
    assert!(page.iter().all(|&b| b == 0), "page 2, never written, is still zero");
}

fn index_past_the_end_is_refused() {
    let mut disk = swap();
    let cap = disk.capacity_pages();
    let mut page = [0x5au8; PAGE_SIZE];
    for index in [cap, cap + 1, u64::MAX] {
        let refused = BlkError::OutOfRange { index, capacity: cap };
        assert_eq!(disk.read_page(index, &mut page), Err(refused));
        assert_eq!(disk.write_page(index, &page), Err(refused));
    }
    assert!(page.iter().all(|&b| b == 0x5a), "a refused read leaves the buffer alone");
    // The disk still works after refusals.
    write_and_check(&mut disk, cap - 1, 3);
}

fn stats_count_exactly_what_was_done() {
    let mut disk = swap();
    let before = disk.stats();
    let mut page = [0u8; PAGE_SIZE];
    for i in 0..5 {
        disk.write_page(100 + i, &pattern(100 + i, 4)).unwrap();
    }
    for i in 0..7 {
        disk.read_page(100 + i % 5, &mut page).unwrap();
    }
    let cap = disk.capacity_pages();
    assert!(disk.read_page(cap, &mut page).is_err());
    assert!(disk.write_page(cap, &page).is_err());
    let after = disk.stats();
    assert_eq!(after.writes - before.writes, 5);
    assert_eq!(after.reads - before.reads, 7);
    assert_eq!(after.bytes_written - before.bytes_written, 5 * PAGE_SIZE as u64);
    assert_eq!(after.bytes_read - before.bytes_read, 7 * PAGE_SIZE as u64);
    assert_eq!(after.errors - before.errors, 2, "each refused request counts one error");
    println!("swap stats: {after:?}");
}

fn requests_take_no_frames() {
    let mut disk = swap();
    let hal = virtio_hal::stats();
    assert!(hal.dma_frames > 0, "the virtqueue and the bounce pages are DMA frames");
    frames::drain_pcp();
    let free = frames::stats().free;
    let mut page = [0u8; PAGE_SIZE];
    for i in 0..200u64 {
        let index = (i * 37) % SWAP_PAGES;
        disk.write_page(index, &pattern(index, 5)).unwrap();
        disk.read_page(index, &mut page).unwrap();
        assert!(page == pattern(index, 5), "page {index}");
    }
    frames::drain_pcp();
    let after = virtio_hal::stats();
    assert_eq!(after.dma_frames, hal.dma_frames, "DMA frames lent to the device stay constant");
    assert_eq!((after.dma_allocs, after.dma_frees), (hal.dma_allocs, hal.dma_frees), "no DMA allocation per request");
    assert_eq!(after.bounced, hal.bounced, "requests never need share's fallback copy");
    assert_eq!(frames::stats().free, free, "400 requests took no frames");
    println!("DMA: {after:?}");
}

fn time_one_request() {
    let mut disk = swap();
    const N: u64 = 64;
    let mut page = pattern(9, 6);
    let start = tsc::rdtsc();
    for i in 0..N {
        disk.write_page(1000 + i, &page).unwrap();
    }
    let mid = tsc::rdtsc();
    for i in 0..N {
        disk.read_page(1000 + i, &mut page).unwrap();
    }
    let end = tsc::rdtsc();
    let us = |cycles: u64| tsc::centi_ns(cycles / N) / 100_000;
    println!("one 4 KiB request (mean of {N}, TCG): write {} us, read {} us", us(mid - start), us(end - mid));
}

/// Map two frames that are not neighbours at two neighbouring scratch pages, and share 64 bytes across
/// the boundary: the device must get one contiguous copy, and `unshare` must bring its writes back.
fn share_copies_a_buffer_across_unrelated_frames() {
    const VA: u64 = SCRATCH_BASE + 0x77_0000;
    let (a, b) = (frames::alloc_page(Owner::KMAP_TEST).unwrap(), frames::alloc_page(Owner::KMAP_TEST).unwrap());
    // Higher frame first: the two pages are then never physically contiguous.
    let (lo, hi) = if a.0 < b.0 { (a, b) } else { (b, a) };
    let rw = PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
    for (i, pfn) in [hi, lo].into_iter().enumerate() {
        // SAFETY: the frames were just allocated for this case and the scratch pages are unused.
        unsafe { paging::map(VA + i as u64 * 4096, pfn, rw, &mut frames::BuddyTables) }.unwrap();
    }
    let start = VA + 4096 - 32;
    // SAFETY: both pages are mapped writable and belong to this case; 64 bytes around the boundary.
    let buf: &mut [u8] = unsafe { core::slice::from_raw_parts_mut(start as *mut u8, 64) };
    for (i, b) in buf.iter_mut().enumerate() {
        *b = i as u8;
    }
    let before = virtio_hal::stats();
    let ptr = NonNull::from(&mut *buf);
    // SAFETY: the buffer is valid and nothing else touches it until `unshare`.
    let pa = unsafe { ZkHal::share(ptr, BufferDirection::Both) };
    let during = virtio_hal::stats();
    assert_eq!(during.bounced, before.bounced + 1, "a straddling buffer is copied");
    assert_ne!(pa, hi.addr() + 4096 - 32, "not the buffer's own (discontiguous) frames");
    // Play the device: read the copy at its physical address (the DMA window maps it) and write to it.
    let copy = (memmap::layout::IO_BASE + pa) as *mut u8;
    for i in 0..64 {
        // SAFETY: the bounce copy is 64 bytes of a mapped DMA page that only this "device" touches now.
        unsafe {
            assert_eq!(copy.add(i).read(), i as u8, "byte {i} was copied in");
            copy.add(i).write(0xc0 | i as u8);
        }
    }
    // SAFETY: the same buffer and the address `share` returned; the "device" is done.
    unsafe { ZkHal::unshare(pa, ptr, BufferDirection::Both) };
    assert!(buf.iter().enumerate().all(|(i, &b)| b == 0xc0 | i as u8), "the device's writes came back");
    let after = virtio_hal::stats();
    assert_eq!(after.dma_frames, before.dma_frames, "the bounce frame was returned");
    for i in 0..2 {
        // SAFETY: nothing references the scratch pages any more.
        unsafe { paging::unmap(VA + i * 4096) }.unwrap();
    }
    for pfn in [lo, hi] {
        // SAFETY: unmapped above; the frames were this case's alone.
        unsafe { frames::free_page(pfn) }.unwrap();
    }
}

//! Page data reaches the kernel: xtask hands ../shared/data/perl-heap.pages.gz (unpacked) to the
//! bootloader as the ramdisk, with its checksum as a kernel option; the kernel recomputes it at boot.
#![no_std]
#![no_main]

use zkernel::harness::testing::Case;
use zkernel::init::facts;
use zkernel::println;

zkernel::test_kernel!(
    "ramdisk_pages",
    &[
        Case::returns("ramdisk_arrived_intact", ramdisk_arrived_intact),
        Case::returns("pages_are_whole_and_real", pages_are_whole_and_real),
    ]
);

fn ramdisk_arrived_intact() {
    let r = facts().ramdisk.expect("xtask attached a ramdisk");
    assert_eq!(r.verified, Some(true), "FNV-1a of the ramdisk matches xtask's");
}

fn pages_are_whole_and_real() {
    let r = facts().ramdisk.unwrap();
    assert_eq!(r.len() % 4096, 0);
    // The sample's README: 2048 pages of a perl process's private memory, 0.5% of them same-filled.
    assert_eq!(r.pages(), 2048);
    let pages = r.bytes().as_chunks::<4096>().0;
    let same_filled = pages.iter().filter(|p| p.as_chunks::<8>().0.iter().all(|w| w[..] == p[..8])).count();
    println!("{} of {} pages are same-filled", same_filled, r.pages());
    assert!(same_filled > 0 && same_filled < 2048 / 20, "a heap sample is mostly not same-filled");
}

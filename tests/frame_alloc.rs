//! The frame allocator on real RAM: every free frame can be allocated, written through kmap, read back,
//! and freed, and the counts return to their boot figures; bad frees are typed errors.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

use frame::{FrameError, Owner, Pfn};
use zkernel::harness::testing::Case;
use zkernel::mm::kmap::{Kmap, kmap_local};
use zkernel::mm::{self, frames};
use zkernel::println;

/// Map a frame this test allocated and holds.
fn view(pfn: Pfn) -> Kmap {
    // SAFETY: every frame passed here was allocated by this test and is reached by nothing else.
    unsafe { kmap_local(pfn) }.unwrap()
}

/// Free a block this test allocated (or, for the error cases, tries to): it holds no view of it.
fn free(pfn: Pfn, order: u8) -> Result<(), FrameError> {
    // SAFETY: no mapping of or reference into the block is live when this is called.
    unsafe { frames::free(pfn, order) }
}

fn free_page(pfn: Pfn) -> Result<(), FrameError> {
    // SAFETY: as for `free`.
    unsafe { frames::free_page(pfn) }
}

zkernel::test_kernel!(
    "frame_alloc",
    &[
        Case::returns("boot_counts_add_up", boot_counts_add_up),
        Case::returns("bad_frees_are_typed_errors", bad_frees_are_typed_errors),
        Case::returns("every_free_frame_round_trips", every_free_frame_round_trips),
        Case::returns("freed_frames_are_poisoned_and_scrubbed", freed_frames_are_poisoned_and_scrubbed),
        Case::returns("per_cpu_list_batches", per_cpu_list_batches),
    ]
);

fn boot_counts_add_up() {
    let s = frames::stats();
    assert_eq!(s.managed, s.free + s.used + s.per_cpu);
    let by_order: u64 = s.free_per_order.iter().enumerate().map(|(o, n)| n << o).sum();
    assert_eq!(by_order, s.free);
    let f = mm::facts().expect("mm is up");
    let usable = zkernel::init::facts().memory.usable_frames;
    // The page below 1 MiB boot keeps for the APs' real-mode trampoline (drivers::smp) is never managed.
    let trampoline = u64::from(zkernel::init::facts().smp.trampoline.is_some());
    // Every usable frame is managed except those the early allocator used for tables and the trampoline.
    assert_eq!(
        s.managed + f.early_frames + trampoline,
        usable,
        "managed {} + early {} + trampoline {trampoline} vs usable {usable}",
        s.managed,
        f.early_frames
    );
}

/// The word written at `index` of frame `pfn`: distinct for every frame and every word.
fn pattern(pfn: Pfn, index: usize) -> u64 {
    (pfn.0 << 20) ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn every_free_frame_round_trips() {
    frames::drain_pcp();
    let before = frames::stats();
    // Room for every pfn, taken before the heap could need a frame while the allocator is empty.
    let mut held: Vec<Pfn> = Vec::with_capacity(before.free as usize + 64);
    let before = frames::stats();
    while let Ok(pfn) = frames::alloc(0, Owner::KMAP_TEST) {
        held.push(pfn);
    }
    assert_eq!(held.len() as u64, before.free, "every free frame was handed out");
    assert_eq!(frames::alloc(0, Owner::KMAP_TEST), Err(FrameError::OutOfMemory { order: 0 }));
    // Two failures: the one that ended the loop and the one just above.
    assert_eq!(frames::stats().alloc_failures, before.alloc_failures + 2);
    for &pfn in &held {
        let mut m = view(pfn);
        let words = m.bytes().as_chunks_mut::<8>().0;
        for (i, w) in words.iter_mut().enumerate() {
            *w = pattern(pfn, i).to_le_bytes();
        }
    }
    for &pfn in &held {
        let mut m = view(pfn);
        let words = m.bytes().as_chunks_mut::<8>().0;
        for (i, w) in words.iter().enumerate() {
            assert_eq!(u64::from_le_bytes(*w), pattern(pfn, i), "frame {:#x} word {i}", pfn.0);
        }
    }
    println!("wrote and read back {} frames ({} MiB) through kmap", held.len(), held.len() / 256);
    mixed_owner_block_is_scrubbed_frame_by_frame(&mut held);
    for &pfn in &held {
        free(pfn, 0).unwrap();
    }
    let after = frames::stats();
    assert_eq!((after.free, after.used, after.free_per_order), (before.free, before.used, before.free_per_order));
}

/// With every frame allocated, free an aligned pair of frames, lend one of them to another owner and
/// take it back, then allocate the pair as one order-1 block: the only free memory, so the allocator
/// must return exactly it. Only the frame the other owner held may be scrubbed.
fn mixed_owner_block_is_scrubbed_frame_by_frame(held: &mut Vec<Pfn>) {
    held.sort_unstable();
    let i =
        (0..held.len() - 1).find(|&i| held[i].0 % 2 == 0 && held[i + 1].0 == held[i].0 + 1).expect("an aligned pair");
    let (p, p1) = (held[i], held[i + 1]);
    held.drain(i..i + 2);
    free(p, 0).unwrap();
    free(p1, 0).unwrap();
    let lent = frames::alloc(0, Owner::WORKLOAD).unwrap();
    assert!(lent == p || lent == p1);
    view(lent).bytes().fill(0x77);
    free(lent, 0).unwrap();
    let block = frames::alloc(1, Owner::KMAP_TEST).unwrap();
    assert_eq!(block, p, "the pair is the only free memory");
    let kept = if lent == p { p1 } else { p };
    assert!(view(lent).bytes().iter().all(|&b| b == 0), "the frame another owner held is scrubbed");
    assert!(view(kept).bytes().iter().any(|&b| b != 0), "the frame that stayed with its owner is not");
    free(block, 1).unwrap();
}

fn bad_frees_are_typed_errors() {
    let a = frames::alloc(2, Owner::KMAP_TEST).unwrap();
    let before = frames::stats();
    assert_eq!(free(a, 1), Err(FrameError::WrongOrder { pfn: a, allocated: 2, freed: 1 }));
    assert_eq!(free(Pfn(a.0 + 1), 0), Err(FrameError::NotAllocated(Pfn(a.0 + 1))));
    assert_eq!(frames::alloc(11, Owner::KMAP_TEST), Err(FrameError::InvalidOrder(11)));
    let (start, end) = mm::facts().unwrap().span;
    assert_eq!(free(Pfn(end.0 + 10), 0), Err(FrameError::Foreign(Pfn(end.0 + 10))));
    // A free frame nobody ever allocated (near the top of memory, untouched since boot).
    let never = (start.0..end.0)
        .rev()
        .map(Pfn)
        .find(|&p| {
            frames::info(p).is_some_and(|i| i.state() == frame::FrameState::Free && i.last_owner() == Owner::NONE)
        })
        .expect("some frame was never allocated");
    assert_eq!(free(never, 0), Err(FrameError::NotAllocated(never)));
    assert_eq!(frames::stats(), before, "refused operations change nothing");
    free(a, 2).unwrap();
    assert_eq!(free(a, 2), Err(FrameError::DoubleFree(a)));
    let b = frames::alloc_page(Owner::KMAP_TEST).unwrap();
    free_page(b).unwrap();
    assert_eq!(free_page(b), Err(FrameError::DoubleFree(b)), "double free through the per-CPU list");
}

fn freed_frames_are_poisoned_and_scrubbed() {
    let a = frames::alloc(0, Owner::KMAP_TEST).unwrap();
    view(a).bytes().fill(0x5a);
    free(a, 0).unwrap();
    // Every byte in debug builds, the first and last cache line in release builds.
    for r in frames::POISON_RANGES {
        assert!(view(a).bytes()[r.clone()].iter().all(|&b| b == frames::POISON_FREE), "poisoned on free: {r:?}");
    }
    let untouched = if cfg!(debug_assertions) { 0 } else { 4096 - 128 };
    assert_eq!(view(a).bytes().iter().filter(|&&b| b == 0x5a).count(), untouched, "only the poisoned bytes changed");
    // The next allocation for a different owner must not see the old contents.
    let b = frames::alloc(0, Owner::WORKLOAD).unwrap();
    assert_eq!(b, a, "the buddy allocator hands the frame straight back");
    assert!(view(b).bytes().iter().all(|&x| x == 0), "scrubbed for the new owner");
    assert_eq!(frames::info(b).unwrap().owner(), Owner::WORKLOAD);
    free(b, 0).unwrap();
}

fn per_cpu_list_batches() {
    frames::drain_pcp();
    let s0 = frames::stats();
    assert_eq!(s0.per_cpu, 0);
    let p = frames::alloc_page(Owner::KMAP_TEST).unwrap();
    let s1 = frames::stats();
    assert_eq!(s1.per_cpu, frame::PCP_BATCH as u64 - 1, "one batch refilled, one frame handed out");
    assert_eq!(s1.used, s0.used + 1);
    free_page(p).unwrap();
    assert_eq!(frames::stats().per_cpu, frame::PCP_BATCH as u64);
    frames::drain_pcp();
    assert_eq!(frames::stats().free_per_order, s0.free_per_order, "draining merges the batch back");
}

//! zram on real frames: a compressed RAM block device (the `zram` crate, Linux's
//! drivers/block/zram/zram_drv.c) over zsmalloc and over zbud, every sector written with the perl sample
//! and read back exactly, with `mm_stat` checked field by field against what the pages themselves say;
//! discard giving every pool page back; a memory limit that refuses writes and loses nothing; damaged
//! slots (a page kept whole and a compressed one) read as corrupt; and zram as the swap device of a
//! checksummed swap workload at equal memory.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | slot | one page of the device (a "sector" here is a whole page, see the `zram` crate) |
//! | same page | a page of one repeated 8-byte word: kept as the word, no pool memory (`same_pages`) |
//! | huge page | a page whose stored bytes reach the huge class size: kept whole, 4096 raw bytes |
//! | pre-fill | before the perl pass, slot `i` gets the same page of word [`prefill_word`]`(i)`, so a refused write has old contents to keep |
//!
//! # How the expected numbers are made
//!
//! Nothing in `mm_stat` is taken on trust: before writing, the case classifies each sample page itself
//! through this CPU's LZ4 stream, with the device's threshold ([`classify`]):
//!
//! | page | zsmalloc (`Policy::zram`) | zbud (`Policy::zram(huge_class_size(8))`) |
//! |---|---|---|
//! | same-filled | `same_pages` +1, 0 bytes | the same |
//! | compresses to `len` ≤ threshold | `compr_data_size` += `len` | the same |
//! | does not | kept whole: `huge_pages` +1, 4096 bytes | refused: `TooLarge { size: 4096, max: 4032 }`, `failed_writes` +1, the slot keeps its pre-fill page |
//!
//! # Worked example (the sample, LZ4)
//!
//! The perl sample has 2048 pages: 10 same-filled, 1 that does not compress below the huge class size,
//! 2037 compressed. Over zsmalloc every write succeeds and `mm_stat` reads `8388608 C T 0 T 10 0 1 1`
//! (C = Σ len + 4096, T = the pool's frames × 4096). Over zbud the one huge page is refused, its slot still
//! holds its pre-fill same page, so `same_pages` is 11, `huge_pages` 0 and `io_stat`'s `failed_writes` 1.
//!
//! # Contracts checked
//!
//! - Every read returns the page last successfully written, compared by FNV-1a (`fnv1a::fnv1a64`).
//! - A refused write (pool too small for a whole page, memory limit) leaves the slot's old page.
//! - After a successful write under a limit, the pool holds at most the limit's frames.
//! - Every case ends with no frame owned by a pool; the last case checks the workload's too.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

use compress::{Algorithm, CompressError};
use frame::Owner;
use swap::{CacheMode, Pattern};
use zbud::Zbud;
use zkernel::harness::testing::Case;
use zkernel::init::facts;
use zkernel::mm::{KernelMemory, frames};
use zkernel::println;
use zkernel::swap::{Device, MemMode, SwapConfig};
use zkernel::workload::swap::print_run;
use zkernel::workload::swap_run::{PageSource, RunSpec, run};
use zkernel::zcache::streams::with_stream;
use zpool::{PoolError, ZPool};
use zram::{IoStat, MmStat, SlotState, Zram, ZramError};
use zsmalloc::Zsmalloc;
use zstore::{Policy, StoreError};

zkernel::test_kernel!(
    "zram",
    &[
        Case::returns("every_sector_round_trips_zsmalloc", every_sector_round_trips_zsmalloc),
        Case::returns("every_sector_round_trips_zbud", every_sector_round_trips_zbud),
        Case::returns("discard_frees_pool_pages", discard_frees_pool_pages),
        Case::returns("memory_limit_refuses_and_loses_nothing", memory_limit_refuses_and_loses_nothing),
        Case::returns("damaged_slots_read_as_corrupt", damaged_slots_read_as_corrupt),
        Case::returns("swap_to_zram_under_checksums", swap_to_zram_under_checksums),
        Case::returns("frames_come_back", frames_come_back),
    ]
);

type Page = [u8; 4096];

/// The device's size: one slot per sample page.
const SLOTS: u64 = 2048;
const PAGE: u64 = 4096;
const LZ4: Algorithm = Algorithm::Lz4;

/// The perl sample, handed over by xtask as the ramdisk (tests/Cargo.toml, `ramdisks`).
fn perl_pages() -> &'static [Page] {
    let r = facts().ramdisk.expect("xtask attaches the perl sample as this kernel's ramdisk");
    assert_eq!(r.verified, Some(true), "the ramdisk's checksum matches xtask's");
    let pages = r.bytes().as_chunks::<4096>().0;
    assert_eq!(pages.len() as u64, SLOTS, "the sample is 2048 pages");
    pages
}

fn pool_frames() -> u64 {
    frames::owned_by(Owner::POOL)
}

fn zsmalloc_zram() -> Zram<Zsmalloc<KernelMemory>> {
    let pool = Zsmalloc::new(KernelMemory::new(Owner::POOL));
    let policy = Policy::zram(pool.huge_class_size());
    Zram::new(pool, SLOTS, policy).expect("a device of 2048 slots")
}

/// Write `page` to slot `index` through this CPU's LZ4 stream.
fn write<P: ZPool>(z: &mut Zram<P>, index: u64, page: &Page) -> Result<(), ZramError> {
    with_stream(LZ4, |c| z.write_page(index, page, c)).expect("an LZ4 stream")
}

/// Read slot `index` and return the FNV-1a of what came back.
fn read_sum<P: ZPool>(z: &mut Zram<P>, index: u64) -> u64 {
    let mut out = [0xa5u8; 4096];
    with_stream(LZ4, |c| z.read_page(index, &mut out, c))
        .expect("an LZ4 stream")
        .unwrap_or_else(|e| panic!("read slot {index}: {e}"));
    fnv1a::fnv1a64(&out)
}

/// A page of one 8-byte word repeated.
fn same_page(word: u64) -> Page {
    let mut p = [0u8; 4096];
    for w in p.as_chunks_mut::<8>().0 {
        *w = word.to_le_bytes();
    }
    p
}

/// The word of slot `i`'s pre-fill page: distinct for every slot, never a sample page.
fn prefill_word(i: u64) -> u64 {
    0x5a5a_0000_0000_0000 | i
}

/// What the store will make of a page under `threshold`, worked out independently of the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Same,
    Compressed(usize),
    Huge,
}

fn classify(page: &Page, threshold: usize) -> Kind {
    if compress::same_filled(page).is_some() {
        return Kind::Same;
    }
    with_stream(LZ4, |c| match c.compress(page, threshold) {
        Ok(stored) => Kind::Compressed(stored.len()),
        Err(CompressError::Incompressible { .. }) => Kind::Huge,
        Err(e) => panic!("compress: {e:?}"),
    })
    .expect("an LZ4 stream")
}

/// Case 1, for one pool. `whole_refused`: the error a write of a huge page gets (zbud), or `None` when
/// the pool keeps huge pages whole (zsmalloc).
fn every_sector_round_trips<P: ZPool>(pool: P, policy: Policy, whole_refused: Option<ZramError>) {
    assert_eq!(pool_frames(), 0, "no pool frames before the run");
    let pages = perl_pages();
    let mut z = Zram::new(pool, SLOTS, policy).expect("a device of 2048 slots");
    assert_eq!(z.disksize_pages(), SLOTS);

    // Pre-fill: a same page in every slot, no pool memory.
    for i in 0..SLOTS {
        write(&mut z, i, &same_page(prefill_word(i))).unwrap_or_else(|e| panic!("pre-fill slot {i}: {e}"));
    }
    let m = z.mm_stat();
    assert_eq!((m.orig_data_size, m.compr_data_size, m.mem_used_total, m.same_pages), (SLOTS * PAGE, 0, 0, SLOTS));
    assert_eq!(pool_frames(), 0, "same pages take no frames");

    // What the pages will make, worked out before writing.
    let kinds: Vec<Kind> = pages.iter().map(|p| classify(p, policy.threshold)).collect();
    let same = kinds.iter().filter(|k| **k == Kind::Same).count() as u64;
    let huge = kinds.iter().filter(|k| **k == Kind::Huge).count() as u64;
    let compr: u64 = kinds.iter().map(|k| if let Kind::Compressed(n) = k { *n as u64 } else { 0 }).sum();

    // Overwrite every slot with the sample page of its index.
    let (mut written, mut refused) = (0u64, 0u64);
    for (i, (p, k)) in pages.iter().zip(&kinds).enumerate() {
        let r = write(&mut z, i as u64, p);
        match whole_refused {
            Some(err) if *k == Kind::Huge => {
                assert_eq!(r, Err(err), "slot {i}: the pool cannot hold a whole page");
                refused += 1;
            }
            _ => {
                assert_eq!(r, Ok(()), "slot {i}");
                written += 1;
            }
        }
    }
    assert_eq!(written + refused, SLOTS);

    // Read every slot back: the sample page, or the pre-fill page where the write was refused.
    for (i, (p, k)) in pages.iter().zip(&kinds).enumerate() {
        let i = i as u64;
        let kept_old = whole_refused.is_some() && *k == Kind::Huge;
        let want = if kept_old { fnv1a::fnv1a64(&same_page(prefill_word(i))) } else { fnv1a::fnv1a64(p) };
        assert_eq!(read_sum(&mut z, i), want, "slot {i} reads back {}", if kept_old { "its old page" } else { "" });
        let state = z.slot(i).unwrap();
        let want_state = match (*k, kept_old) {
            (_, true) => SlotState::Same { element: prefill_word(i) },
            (Kind::Same, _) => SlotState::Same { element: compress::same_filled(p).unwrap() },
            (Kind::Compressed(n), _) => SlotState::Compressed { obj_size: n as u32 },
            (Kind::Huge, _) => SlotState::Huge,
        };
        assert_eq!(state, want_state, "slot {i}");
    }

    // mm_stat, field by field.
    let held_whole = if whole_refused.is_some() { 0 } else { huge };
    let total_pages = z.pool().total_pages();
    assert!(total_pages > 0);
    assert_eq!(pool_frames(), total_pages, "the frame table agrees with the pool's page count");
    let want = MmStat {
        orig_data_size: SLOTS * PAGE, // `written` sample pages + `refused` pre-fill pages
        compr_data_size: compr + held_whole * PAGE,
        mem_used_total: total_pages * PAGE,
        mem_limit: 0,
        // The pool only grew (overwriting same pages frees no frame), so the peak is now.
        mem_used_max: total_pages * PAGE,
        same_pages: same + refused,
        pages_compacted: 0,
        huge_pages: held_whole,
        huge_pages_since: held_whole,
    };
    let m = z.mm_stat();
    assert_eq!(m, want);
    assert_eq!(refused, if whole_refused.is_some() { huge } else { 0 });
    assert_eq!(z.io_stat(), IoStat { failed_writes: refused, ..IoStat::default() });
    println!("  {}: {written} written, {refused} refused ({same} same-filled, {huge} huge)", z.pool().name());
    println!("  mm_stat {m}");
    println!("  io_stat {}", z.io_stat());

    // Teardown: every slot held a page; every frame goes back.
    assert_eq!(z.discard(0, SLOTS), Ok(SLOTS));
    let m = z.mm_stat();
    assert_eq!((m.orig_data_size, m.compr_data_size, m.mem_used_total, m.same_pages), (0, 0, 0, 0));
    assert_eq!((z.pool().total_pages(), pool_frames()), (0, 0));
}

fn every_sector_round_trips_zsmalloc() {
    let pool = Zsmalloc::new(KernelMemory::new(Owner::POOL));
    let policy = Policy::zram(pool.huge_class_size());
    every_sector_round_trips(pool, policy, None);
}

/// zbud holds at most 4032 bytes an object: with zram's rule (threshold one below zsmalloc's huge class
/// size at chain 8, huge pages kept whole) the store asks zbud for 4096 bytes and zbud says TooLarge.
/// (A `PoorPage::Reject` policy would refuse the page in the store, as `Incompressible`, before the pool
/// is asked: that is frontswap's rule, not zram's.)
fn every_sector_round_trips_zbud() {
    let huge = zsmalloc::huge_class_size(8).expect("chain 8 is valid");
    let policy = Policy::zram(huge);
    assert_eq!(policy.threshold, huge - 1);
    let too_large = ZramError::Store(StoreError::Pool(PoolError::TooLarge { size: 4096, max: zbud::MAX_SIZE }));
    every_sector_round_trips(Zbud::new(KernelMemory::new(Owner::POOL)), policy, Some(too_large));
}

fn discard_frees_pool_pages() {
    const N: u64 = 512;
    assert_eq!(pool_frames(), 0);
    let pages = perl_pages();
    let mut z = zsmalloc_zram();
    for (i, p) in pages.iter().take(N as usize).enumerate() {
        write(&mut z, i as u64, p).unwrap_or_else(|e| panic!("slot {i}: {e}"));
    }
    let before = z.mm_stat();
    assert_eq!(before.orig_data_size, N * PAGE);
    assert!(before.mem_used_total > 0 && before.compr_data_size > 0);
    assert_eq!(pool_frames() * PAGE, before.mem_used_total);

    // A range that leaves the device frees nothing.
    let out = z.discard(SLOTS - 1, 2);
    assert_eq!(out, Err(ZramError::OutOfRange { index: SLOTS - 1, count: 2, disksize_pages: SLOTS }));
    assert_eq!(z.mm_stat(), before, "a refused discard changes nothing");

    assert_eq!(z.discard(0, N), Ok(N), "every slot of the range held a page");
    // Notifying a slot already freed frees nothing, and is still counted.
    assert_eq!(z.slot_free_notify(0), Ok(false));
    let m = z.mm_stat();
    // The peak and huge_pages_since (huge pages ever written, zram's counter since the device was made)
    // stay; everything the slots held is gone.
    let want =
        MmStat { mem_used_max: before.mem_used_max, huge_pages_since: before.huge_pages_since, ..MmStat::default() };
    assert_eq!(m, want, "orig, compr and the pool back to zero; the peak stays");
    assert_eq!(z.pool().total_pages(), 0, "zsmalloc frees empty zspages");
    assert_eq!(pool_frames(), 0);
    assert_eq!(z.io_stat(), IoStat { invalid_io: 1, notify_free: N + 1, ..IoStat::default() });
    let zeros = fnv1a::fnv1a64(&[0u8; 4096]);
    for i in [0, 1, N / 2, N - 1] {
        assert_eq!(z.slot(i), Ok(SlotState::Empty));
        assert_eq!(read_sum(&mut z, i), zeros, "discarded slot {i} reads as zeros");
    }
    println!("  after discard: mm_stat {m}");
    println!("  io_stat {}", z.io_stat());
}

/// A flipped byte in a slot's stored object is found on read, for a page kept whole (the Adler-32 its
/// entry keeps) as for a compressed one (its frame's check): the read fails as `Corrupt` and is counted,
/// no other slot changes, and the damaged slots still free cleanly.
fn damaged_slots_read_as_corrupt() {
    assert_eq!(pool_frames(), 0);
    let pages = perl_pages();
    let mut z = zsmalloc_zram();
    let threshold = z.store().policy().threshold;
    let huge = pages.iter().position(|p| classify(p, threshold) == Kind::Huge).expect("the sample has a huge page");
    // The first three pages that compress: one to damage, two to stay intact.
    let c: Vec<usize> =
        (0..pages.len()).filter(|&i| matches!(classify(&pages[i], threshold), Kind::Compressed(_))).take(3).collect();
    let (compressed, slots) = (c[0], [huge, c[0], c[1], c[2]]);
    for &i in &slots {
        write(&mut z, i as u64, &pages[i]).unwrap_or_else(|e| panic!("slot {i}: {e}"));
    }
    assert_eq!(z.mm_stat().huge_pages, 1, "slot {huge} is kept whole");
    for &i in &slots[..2] {
        let h = z.entry(i as u64).and_then(|e| e.handle()).expect("a pool object");
        z.pool_mut().map(h, zpool::MapMode::ReadWrite, |b| b[b.len() / 3] ^= 0x04).expect("mapped");
    }
    for &i in &slots[..2] {
        let mut out = [0u8; 4096];
        let r = with_stream(LZ4, |c| z.read_page(i as u64, &mut out, c)).expect("an LZ4 stream");
        assert_eq!(r, Err(ZramError::Corrupt { index: i as u64 }), "slot {i}");
    }
    for &i in &slots[2..] {
        assert_eq!(read_sum(&mut z, i as u64), fnv1a::fnv1a64(&pages[i]), "slot {i} is intact");
    }
    assert_eq!(z.io_stat().failed_reads, 2);
    for &i in &slots {
        assert_eq!(z.slot_free_notify(i as u64), Ok(true), "slot {i} frees");
    }
    println!(
        "  whole slot {huge} and compressed slot {compressed} damaged: both read as corrupt; io_stat {}",
        z.io_stat()
    );
    assert_eq!((z.pool().total_pages(), pool_frames()), (0, 0));
}

fn memory_limit_refuses_and_loses_nothing() {
    const LIMIT: u64 = 64;
    assert_eq!(pool_frames(), 0);
    let pages = perl_pages();
    let mut z = zsmalloc_zram();
    z.set_mem_limit(LIMIT);
    assert_eq!(z.mm_stat().mem_limit, LIMIT * PAGE);

    // Fill slot after slot until the limit refuses one.
    let mut refusal = None;
    for (i, p) in pages.iter().enumerate() {
        match write(&mut z, i as u64, p) {
            Ok(()) => {
                let used = z.mm_stat().mem_used_total;
                assert!(used <= LIMIT * PAGE, "slot {i}: {used} B held after a write, limit {LIMIT} pages");
            }
            Err(e @ ZramError::MemLimit { used_pages, limit_pages }) => {
                assert_eq!(limit_pages, LIMIT);
                assert!(used_pages > LIMIT);
                refusal = Some((i as u64, e, used_pages));
                break;
            }
            Err(e) => panic!("slot {i}: {e}"),
        }
    }
    let (k, err, peak) = refusal.expect("64 pool pages cannot hold the whole sample");
    assert!(k > 0, "the first write fits in 64 pages");
    let held = z.mm_stat();
    assert_eq!(held.orig_data_size, k * PAGE, "slots 0..{k} hold their pages");

    // The refused slot was empty and stays empty.
    assert_eq!(z.slot(k), Ok(SlotState::Empty));
    assert_eq!(read_sum(&mut z, k), fnv1a::fnv1a64(&[0u8; 4096]));

    // Slot 0 holds page A (pages[0]); writing page B (pages[k]) there meets the same pool and is refused
    // the same way: A stays.
    assert!(!matches!(z.slot(0), Ok(SlotState::Empty | SlotState::Same { .. })), "slot 0 holds a pool object");
    assert_eq!(write(&mut z, 0, &pages[k as usize]), Err(err), "an overwrite at the limit is refused");
    assert_eq!(read_sum(&mut z, 0), fnv1a::fnv1a64(&pages[0]), "slot 0 still holds page A");
    assert_eq!(z.mm_stat(), MmStat { mem_used_max: peak * PAGE, ..held }, "a refused write changes nothing");

    // Every slot written before the limit reads back its exact page.
    for (i, p) in pages.iter().take(k as usize).enumerate() {
        assert_eq!(read_sum(&mut z, i as u64), fnv1a::fnv1a64(p), "slot {i}");
    }

    // A same page takes no memory: it passes the limit.
    assert_eq!(write(&mut z, k, &same_page(0)), Ok(()));
    assert_eq!(z.slot(k), Ok(SlotState::Same { element: 0 }));

    let same_before = pages[..k as usize].iter().filter(|p| compress::same_filled(p).is_some()).count() as u64;
    let m = z.mm_stat();
    assert_eq!(m.orig_data_size, (k + 1) * PAGE);
    assert_eq!(m.same_pages, same_before + 1);
    assert_eq!(m.mem_limit, LIMIT * PAGE);
    assert_eq!(m.mem_used_total, z.pool().total_pages() * PAGE);
    assert_eq!(m.mem_used_total, pool_frames() * PAGE);
    assert!(m.mem_used_total <= LIMIT * PAGE);
    assert_eq!(m.mem_used_max, peak * PAGE, "the refused writes' peak is recorded");
    assert_eq!(z.io_stat(), IoStat { failed_writes: 2, ..IoStat::default() });
    println!("  limit {LIMIT} pages: {k} pages held, refused at {peak} pages");
    println!("  mm_stat {m}");
    println!("  io_stat {}", z.io_stat());

    // With the limit lifted, the refused page goes in.
    z.set_mem_limit(0);
    assert_eq!(write(&mut z, k, &pages[k as usize]), Ok(()));
    assert_eq!(read_sum(&mut z, k), fnv1a::fnv1a64(&pages[k as usize]));

    assert_eq!(z.discard(0, SLOTS), Ok(k + 1));
    assert_eq!((z.pool().total_pages(), pool_frames()), (0, 0));
}

fn swap_to_zram_under_checksums() {
    const REGION: u64 = 768;
    const BUDGET: u64 = 384;
    const ACCESSES: u64 = 3072;
    let spec = RunSpec {
        swap: SwapConfig {
            region_pages: REGION,
            budget_pages: BUDGET,
            mode: MemMode::Equal,
            device: Device::Zram,
            cache: CacheMode::Keep,
            tmem: None,
            tmem_limit_pages: 0,
            slots: SLOTS,
            algorithm: Algorithm::Lz4,
        },
        pattern: Pattern::Zipf,
        accesses: ACCESSES,
        write_every: 4,
        seed: 7,
        source: PageSource::Sample(perl_pages()),
    };
    let r = run(&spec).unwrap_or_else(|e| panic!("swap run failed: {e}"));
    print_run(&r);
    let s = &r.stats;
    assert_eq!(r.mismatches, 0, "pages came back changed");
    assert_eq!(r.dirty_zero_fills, 0, "a fresh page was not zero-filled");
    assert_eq!(r.accesses, REGION + ACCESSES);
    assert_eq!(s.zero_fills, REGION, "every page is faulted in fresh exactly once");
    assert_eq!(s.faults, s.zero_fills + s.swapins);
    assert_eq!(s.io(), 0, "zram is the swap device: no disk I/O");
    assert_eq!((s.frontswap_stores, s.frontswap_loads), (0, 0), "no frontswap in front of zram");
    assert!(s.zram_writes > 0 && s.zram_reads > 0);
    assert_eq!(s.zram_refused, 0, "the device's limit (N - 1 frames) is never reached");
    assert_eq!(s.swapouts, s.zram_writes + s.clean_reclaims_saved);
    assert_eq!(s.swapins, s.zram_reads);
    assert_eq!(s.out_of_swap, 0);
    assert!(s.peak_mem_pages <= BUDGET, "resident + zram's pool reached {} of {BUDGET}", s.peak_mem_pages);
    assert_eq!(s.over_budget_steps, 0);
    assert_eq!(s.slots_used, 0, "teardown frees every slot");
    let z = r.zram.expect("zram's mm_stat at the end of the workload");
    // Every page not resident is in zram (no disk behind it), and at most BUDGET pages are resident.
    assert!(z.orig_data_size >= (REGION - BUDGET) * PAGE, "zram held {} B", z.orig_data_size);
    let after = r.zram_after.expect("zram's mm_stat after teardown");
    assert_eq!((after.orig_data_size, after.mem_used_total), (0, 0), "teardown empties zram");
    assert!(!zkernel::zram::installed(), "teardown removes the device");
    println!("  zram at the end: mm_stat {z}");
    println!("  zram after teardown: mm_stat {after}");
}

fn frames_come_back() {
    assert_eq!(frames::owned_by(Owner::POOL), 0, "a pool frame was not given back");
    assert_eq!(frames::owned_by(Owner::WORKLOAD), 0, "a workload frame was not given back");
}

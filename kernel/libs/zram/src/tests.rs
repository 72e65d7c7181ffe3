//! Host tests: the header's worked example, a randomised run of 100,000 operations against a model over
//! zsmalloc and zbud, the memory limit, discard, errors, and the stat lines.

use super::*;

use compress::{Algorithm, fill_same, same_filled};
use pagedata::sample::perl_pages;
use pagedata::{Rng, random_page, ratio_page};
use pagemem::HostMemory;
use zbud::Zbud;
use zpool::{MapMode, PoolError};
use zsmalloc::Zsmalloc;

const HUGE_CHAIN4: usize = 3257;

fn lz4() -> Compressor {
    Compressor::new(Algorithm::Lz4).unwrap()
}

fn zs_zram(frames: usize, disksize: u64) -> Zram<Zsmalloc<HostMemory>> {
    let pool = Zsmalloc::new(HostMemory::new(frames));
    assert_eq!(pool.huge_class_size(), HUGE_CHAIN4, "the default chain is 4");
    let policy = Policy::zram(pool.huge_class_size());
    Zram::new(pool, disksize, policy).unwrap()
}

fn zbud_zram(frames: usize, disksize: u64) -> Zram<Zbud<HostMemory>> {
    Zram::new(Zbud::new(HostMemory::new(frames)), disksize, Policy::zram(HUGE_CHAIN4)).unwrap()
}

fn noise(seed: u64) -> Box<Page> {
    let mut p = Box::new([0; PAGE_SIZE]);
    random_page(seed, &mut p);
    p
}

fn ratio(seed: u64, fresh: usize) -> Box<Page> {
    let mut p = Box::new([0; PAGE_SIZE]);
    ratio_page(seed, fresh, &mut p);
    p
}

fn same(word: u64) -> Box<Page> {
    let mut p = Box::new([0; PAGE_SIZE]);
    fill_same(&mut p, word);
    p
}

/// The first perl page that is not same-filled (1781 stored bytes with LZ4: zstore's worked example).
fn perl_page() -> &'static Page {
    perl_pages().iter().find(|p| same_filled(p).is_none()).unwrap()
}

fn read(z: &mut Zram<impl ZPool>, c: &mut Compressor, index: u64) -> Result<Box<Page>, ZramError> {
    let mut p = Box::new([0xa5; PAGE_SIZE]);
    z.read_page(index, &mut p, c).map(|()| p)
}

#[test]
fn worked_example_from_the_header() {
    let mut c = lz4();
    let mut z = zs_zram(64, 8);
    let zero = same(0);
    let (r1, r2, r3) = (noise(1), noise(2), noise(3));

    z.write_page(0, &zero, &mut c).unwrap();
    assert_eq!(z.slot(0), Ok(SlotState::Same { element: 0 }));
    assert_eq!(z.pool().total_pages(), 0, "no pool object for a same page");
    z.write_page(1, perl_page(), &mut c).unwrap();
    assert_eq!(z.slot(1), Ok(SlotState::Compressed { obj_size: 1781 }));
    assert_eq!(z.pool().class_for(1781).map(|k| (k.size, k.pages_per_zspage)), Some((1808, 4)));
    assert_eq!(z.pool().total_pages(), 4);
    z.write_page(2, &r1, &mut c).unwrap();
    assert_eq!(z.slot(2), Ok(SlotState::Huge));
    assert_eq!(z.pool().total_pages(), 5);
    let m = z.mm_stat();
    assert_eq!(m.values(), [12288, 5877, 20480, 0, 20480, 1, 0, 1, 1]);
    assert_eq!(m.to_string(), "   12288     5877    20480        0    20480        1        0        1        1");

    assert!(*read(&mut z, &mut c, 5).unwrap() == [0; PAGE_SIZE], "an unwritten slot reads as zeros");

    z.set_mem_limit(5);
    assert_eq!(z.mm_stat().mem_limit, 20480);
    assert_eq!(z.write_page(3, &r2, &mut c), Err(ZramError::MemLimit { used_pages: 6, limit_pages: 5 }));
    assert_eq!(z.slot(3), Ok(SlotState::Empty));
    assert_eq!((z.pool().total_pages(), z.io_stat().failed_writes, z.mm_stat().mem_used_max), (5, 1, 24576));
    assert_eq!(z.write_page(2, &r3, &mut c), Err(ZramError::MemLimit { used_pages: 6, limit_pages: 5 }));
    assert!(read(&mut z, &mut c, 2).unwrap() == r1, "the refused overwrite kept the old page");
    assert_eq!(z.io_stat().failed_writes, 2);

    z.write_page(2, &zero, &mut c).unwrap();
    assert_eq!((z.pool().total_pages(), z.mm_stat().same_pages, z.mm_stat().huge_pages), (4, 2, 0));
    assert_eq!(z.discard(0, 2), Ok(2));
    assert_eq!((z.pool().total_pages(), z.io_stat().notify_free), (0, 2));
    assert_eq!(z.slot_free_notify(7), Ok(false));
    assert_eq!(z.io_stat().notify_free, 3);
    assert_eq!(read(&mut z, &mut c, 8), Err(ZramError::OutOfRange { index: 8, count: 1, disksize_pages: 8 }));

    assert_eq!(z.mm_stat().values(), [4096, 0, 0, 20480, 24576, 1, 0, 0, 1]);
    assert_eq!(z.io_stat().values(), [0, 2, 1, 3]);
    assert_eq!(z.io_stat().to_string(), "       0        2        1        3");
    assert!(*read(&mut z, &mut c, 2).unwrap() == *zero);
    assert!(*read(&mut z, &mut c, 1).unwrap() == [0; PAGE_SIZE], "a discarded slot reads as zeros");
}

#[test]
fn field_names_are_linuxs_in_linuxs_order() {
    assert_eq!(
        MmStat::FIELDS.join(" "),
        "orig_data_size compr_data_size mem_used_total mem_limit mem_used_max same_pages pages_compacted \
         huge_pages huge_pages_since"
    );
    assert_eq!(IoStat::FIELDS.join(" "), "failed_reads failed_writes invalid_io notify_free");
    let m = MmStat {
        orig_data_size: 1,
        compr_data_size: 2,
        mem_used_total: 3,
        mem_limit: 4,
        mem_used_max: 5,
        same_pages: 6,
        pages_compacted: 7,
        huge_pages: 8,
        huge_pages_since: 9,
    };
    assert_eq!(m.values(), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    let io = IoStat { failed_reads: 1, failed_writes: 2, invalid_io: 3, notify_free: 4 };
    assert_eq!(io.values(), [1, 2, 3, 4]);
    assert_eq!((SECTOR_SIZE, LINUX_SECTOR_SIZE, LINUX_SECTORS_PER_PAGE), (4096, 512, 8));
}

#[test]
fn the_slot_table_is_sixteen_bytes_a_page_like_linuxs() {
    assert_eq!(core::mem::size_of::<Option<Entry>>(), 16);
    let z = zs_zram(4, 1000);
    assert_eq!(z.table_bytes(), 16_000);
    assert_eq!(z.disksize_pages(), 1000);
    assert_eq!(z.mm_stat(), MmStat::default(), "an empty device holds nothing");
}

#[test]
fn bad_disksizes_are_refused() {
    let pool = Zsmalloc::new(HostMemory::new(4));
    assert_eq!(Zram::new(pool, 0, Policy::zram(HUGE_CHAIN4)).unwrap_err(), ZramError::BadDisksize { pages: 0 });
    // A table of 2^60 entries (16 EiB) cannot be reserved.
    let pool = Zsmalloc::new(HostMemory::new(4));
    assert_eq!(
        Zram::new(pool, 1 << 60, Policy::zram(HUGE_CHAIN4)).unwrap_err(),
        ZramError::NoMemory { pages: 1 << 60 }
    );
}

#[test]
fn out_of_range_calls_change_nothing_but_invalid_io() {
    let mut c = lz4();
    let mut z = zs_zram(16, 4);
    z.write_page(3, perl_page(), &mut c).unwrap();
    let before = z.mm_stat();
    let oor = |index, count| ZramError::OutOfRange { index, count, disksize_pages: 4 };
    assert_eq!(z.write_page(4, perl_page(), &mut c), Err(oor(4, 1)));
    assert_eq!(z.write_page(u64::MAX, perl_page(), &mut c), Err(oor(u64::MAX, 1)));
    assert_eq!(read(&mut z, &mut c, 4).map(|_| ()), Err(oor(4, 1)));
    assert_eq!(z.discard(3, 2), Err(oor(3, 2)), "a range that runs past the end frees nothing");
    assert_eq!(z.discard(1, u64::MAX), Err(oor(1, u64::MAX)), "an overflowing range");
    assert_eq!(z.slot_free_notify(9), Err(oor(9, 1)));
    assert_eq!(z.slot(4), Err(oor(4, 1)));
    assert_eq!(z.io_stat(), IoStat { invalid_io: 6, ..IoStat::default() }, "slot() is a query, not I/O");
    assert_eq!(z.mm_stat(), before);
    assert!(*read(&mut z, &mut c, 3).unwrap() == *perl_page());
    assert_eq!(z.discard(0, 0), Ok(0), "an empty range inside the device");
    assert_eq!(z.discard(4, 0), Ok(0), "an empty range at the end");
}

#[test]
fn discard_frees_the_pool_pages() {
    let mut c = lz4();
    let mut z = zs_zram(256, 64);
    let pages: Vec<&Page> = perl_pages().iter().filter(|p| same_filled(p).is_none()).take(48).collect();
    for (i, p) in pages.iter().enumerate() {
        z.write_page(i as u64, p, &mut c).unwrap();
    }
    let perl_huge = z.mm_stat().huge_pages;
    for i in 48..56 {
        z.write_page(i, &noise(i), &mut c).unwrap();
    }
    assert_eq!(z.mm_stat().huge_pages, perl_huge + 8);
    let full = z.pool().total_pages();
    assert!(full >= 8 + 4, "{full}");
    // The eight huge pages take a frame each: discarding them gives back exactly eight.
    assert_eq!(z.discard(48, 8), Ok(8));
    assert_eq!(z.pool().total_pages(), full - 8);
    assert_eq!(z.mm_stat().huge_pages, perl_huge);
    // Half the slots, then the rest (and 8 empty ones): every frame goes back.
    assert_eq!(z.discard(0, 24), Ok(24));
    assert_eq!(z.discard(24, 40), Ok(24));
    let m = z.mm_stat();
    assert_eq!((m.orig_data_size, m.compr_data_size, m.mem_used_total, m.huge_pages_since), (0, 0, 0, perl_huge + 8));
    assert_eq!(z.io_stat().notify_free, 8 + 24 + 40, "every slot of every range counts");
    assert!(m.mem_used_max >= full * 4096);
    for i in 0..64 {
        assert_eq!(z.slot(i), Ok(SlotState::Empty));
    }
}

/// One frame per write: huge pages in zsmalloc; in zbud, 60 %-fresh pages (2.3–3 KiB stored, more than
/// half a zbud page, so one object a page).
fn limit_run<P: ZPool>(mut z: Zram<P>, page: impl Fn(u64) -> Box<Page>) {
    const LIMIT: u64 = 6;
    let mut c = lz4();
    let mut lens = 0u64;
    z.set_mem_limit(LIMIT);
    for i in 0..LIMIT {
        z.write_page(i, &page(i), &mut c).unwrap();
        assert_eq!(z.pool().total_pages(), i + 1, "one frame a write");
        lens += match z.slot(i).unwrap() {
            SlotState::Compressed { obj_size } => u64::from(obj_size),
            SlotState::Huge => 4096,
            s => panic!("{s:?}"),
        };
    }
    // At the limit: a new page is refused, an overwrite too; the slots keep what they had.
    assert_eq!(z.write_page(LIMIT, &page(100), &mut c), Err(ZramError::MemLimit { used_pages: 7, limit_pages: 6 }));
    assert_eq!(z.write_page(0, &page(101), &mut c), Err(ZramError::MemLimit { used_pages: 7, limit_pages: 6 }));
    assert_eq!(z.slot(LIMIT), Ok(SlotState::Empty));
    for i in 0..LIMIT {
        assert!(read(&mut z, &mut c, i).unwrap() == page(i), "slot {i}: nothing lost");
    }
    let m = z.mm_stat();
    assert_eq!(
        m.values(),
        [6 * 4096, lens, 6 * 4096, 6 * 4096, 7 * 4096, 0, 0, m.huge_pages, m.huge_pages],
        "the refused writes moved only mem_used_max"
    );
    assert_eq!(z.io_stat(), IoStat { failed_writes: 2, ..IoStat::default() });
    // A same page needs no memory: it passes, and overwriting slot 5 gives its frame back.
    z.write_page(LIMIT - 1, &same(0x0123_4567_89ab_cdef), &mut c).unwrap();
    assert_eq!(z.pool().total_pages(), 5);
    z.write_page(LIMIT, &page(100), &mut c).unwrap();
    assert!(read(&mut z, &mut c, LIMIT).unwrap() == page(100));
    // Lowering the limit below what is held keeps every page; only later writes are refused.
    z.set_mem_limit(2);
    assert_eq!(z.write_page(7, &page(102), &mut c), Err(ZramError::MemLimit { used_pages: 7, limit_pages: 2 }));
    assert!(read(&mut z, &mut c, 0).unwrap() == page(0));
    z.set_mem_limit(0);
    z.write_page(7, &page(102), &mut c).unwrap();
    assert_eq!(z.pool().total_pages(), 7);
    z.reset_mem_used_max();
    assert_eq!(z.mm_stat().mem_used_max, 7 * 4096);
    assert_eq!(z.io_stat(), IoStat { failed_writes: 3, ..IoStat::default() });
}

#[test]
fn the_memory_limit_refuses_writes_and_loses_nothing_zsmalloc() {
    limit_run(zs_zram(64, 16), |i| noise(1000 + i));
}

#[test]
fn the_memory_limit_refuses_writes_and_loses_nothing_zbud() {
    limit_run(zbud_zram(64, 16), |i| ratio(2000 + i, 60));
}

#[test]
fn zbud_cannot_keep_a_page_whole_and_says_so() {
    let mut c = lz4();
    let mut z = zbud_zram(16, 4);
    z.write_page(0, perl_page(), &mut c).unwrap();
    let before = z.mm_stat();
    let too_large = PoolError::TooLarge { size: 4096, max: zbud::MAX_SIZE };
    assert_eq!(z.write_page(0, &noise(5), &mut c), Err(ZramError::Store(StoreError::Pool(too_large))));
    assert!(*read(&mut z, &mut c, 0).unwrap() == *perl_page(), "the old page stays");
    assert_eq!((z.mm_stat(), z.io_stat().failed_writes), (before, 1));
}

#[test]
fn corrupt_stored_bytes_fail_the_read_and_keep_the_slot() {
    let mut c = lz4();
    let mut z = zs_zram(16, 4);
    z.write_page(2, perl_page(), &mut c).unwrap();
    // Flip one bit of the slot's stored bytes, as a stray write or bad RAM would.
    let handle = z.entry(2).and_then(Entry::handle).unwrap();
    z.pool_mut().map(handle, MapMode::ReadWrite, |obj| obj[100] ^= 4).unwrap();
    assert_eq!(read(&mut z, &mut c, 2).map(|_| ()), Err(ZramError::Corrupt { index: 2 }));
    assert_eq!(z.io_stat(), IoStat { failed_reads: 1, ..IoStat::default() });
    assert_eq!(z.slot(2), Ok(SlotState::Compressed { obj_size: 1781 }), "the slot is kept");
    // Rewriting the slot replaces the damaged object.
    z.write_page(2, perl_page(), &mut c).unwrap();
    assert!(*read(&mut z, &mut c, 2).unwrap() == *perl_page());
    assert_eq!(z.mm_stat().compr_data_size, 1781);
}

#[test]
fn compaction_keeps_every_page() {
    let mut c = lz4();
    let mut z = zs_zram(512, 256);
    let pages: Vec<&Page> = perl_pages().iter().filter(|p| same_filled(p).is_none()).take(256).collect();
    for (i, p) in pages.iter().enumerate() {
        z.write_page(i as u64, p, &mut c).unwrap();
    }
    // Free three slots of every four: the zspages are left sparse.
    for i in (0..256).filter(|i| i % 4 != 0) {
        z.slot_free_notify(i).unwrap();
    }
    let before = z.pool().total_pages();
    let freed = z.compact().unwrap();
    assert!(freed > 0, "sparse zspages give frames back");
    assert_eq!(z.pool().total_pages(), before - freed);
    assert_eq!(z.mm_stat().pages_compacted, freed);
    for i in (0..256).step_by(4) {
        assert!(*read(&mut z, &mut c, i).unwrap() == *pages[i as usize], "slot {i}");
    }
}

/// What the device should make of a page, from the policy and the pool alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Same,
    Compressed(u64),
    Huge,
    /// A whole page the pool cannot hold (zbud): the write is refused.
    Refused,
}

/// The model run's pages: same-filled ones, perl pages, pages of every compressibility, random ones.
fn model_pages() -> Vec<Box<Page>> {
    let mut v: Vec<Box<Page>> = Vec::new();
    for w in [0, 1, u64::MAX, 0x0101_0101_0101_0101, 0xdead_beef_0000_0000] {
        v.push(same(w));
    }
    for p in perl_pages().iter().step_by(11).take(150) {
        v.push(Box::new(*p));
    }
    for i in 0..60u64 {
        v.push(ratio(3000 + i, 10 + (i as usize * 37) % 91));
    }
    for i in 0..30u64 {
        v.push(noise(4000 + i));
    }
    v
}

fn kinds(pages: &[Box<Page>], policy: Policy, max_size: usize) -> Vec<Kind> {
    let mut c = lz4();
    pages
        .iter()
        .map(|p| {
            if same_filled(p).is_some() {
                Kind::Same
            } else {
                match c.compress(p, policy.threshold) {
                    Ok(s) => Kind::Compressed(s.len() as u64),
                    Err(_) if max_size >= PAGE_SIZE => Kind::Huge,
                    Err(_) => Kind::Refused,
                }
            }
        })
        .collect()
}

/// 100,000 random writes, reads, discards and free notifications against a model (a `Vec` of optional
/// pages), every read compared byte for byte and the counters checked exactly every 1,000 operations.
/// Operations 40,000..60,000 run under a memory limit of the pool's size when the phase starts.
fn model_run<P: ZPool>(mut z: Zram<P>) {
    const OPS: u64 = 100_000;
    let disksize = z.disksize_pages();
    let pages = model_pages();
    let kinds = kinds(&pages, z.store().policy(), z.pool().max_size());
    let n_kind = |k: fn(&Kind) -> bool| kinds.iter().filter(|x| k(x)).count();
    assert!(n_kind(|k| *k == Kind::Same) >= 5 && n_kind(|k| matches!(k, Kind::Compressed(_))) >= 150);
    assert!(n_kind(|k| matches!(k, Kind::Huge | Kind::Refused)) >= 30, "{kinds:?}");

    let mut model: Vec<Option<usize>> = vec![None; disksize as usize];
    let mut io = IoStat::default();
    let mut huge_since = 0u64;
    let mut limit_refusals = 0u64;
    let mut c = lz4();
    let mut rng = Rng::new(0x7a72_616d);
    let mut buf = Box::new([0u8; PAGE_SIZE]);
    // An index that is out of range one time in a hundred.
    let pick = |rng: &mut Rng| {
        if rng.below(100) == 0 { disksize + rng.below(4) as u64 } else { rng.below(disksize as usize) as u64 }
    };

    for op in 0..OPS {
        if op == 40_000 {
            z.set_mem_limit(z.pool().total_pages());
        }
        if op == 60_000 {
            assert!(limit_refusals > 0, "the limit phase refused nothing");
            z.set_mem_limit(0);
        }
        let limit = z.mem_limit_pages();
        match rng.below(100) {
            0..45 => {
                let (i, id) = (pick(&mut rng), rng.below(pages.len()));
                let pool_before = z.pool().total_pages();
                let r = z.write_page(i, &pages[id], &mut c);
                if i >= disksize {
                    assert!(matches!(r, Err(ZramError::OutOfRange { .. })), "{r:?}");
                    io.invalid_io += 1;
                    continue;
                }
                match (kinds[id], r) {
                    (Kind::Refused, Err(ZramError::Store(StoreError::Pool(PoolError::TooLarge { .. })))) => {
                        io.failed_writes += 1
                    }
                    (k, Err(ZramError::MemLimit { used_pages, limit_pages })) if k != Kind::Same => {
                        assert!(limit != 0 && limit_pages == limit && used_pages > limit, "op {op}");
                        assert_eq!(z.pool().total_pages(), pool_before, "op {op}: the refused object was freed");
                        io.failed_writes += 1;
                        limit_refusals += 1;
                    }
                    (k, Ok(())) if k != Kind::Refused => {
                        huge_since += u64::from(k == Kind::Huge);
                        model[i as usize] = Some(id);
                    }
                    (k, r) => panic!("op {op}: write of a {k:?} page: {r:?}"),
                }
                if limit != 0 {
                    assert!(z.pool().total_pages() <= limit, "op {op}: past the limit");
                }
            }
            45..80 => {
                let i = pick(&mut rng);
                buf.fill(0xa5);
                let r = z.read_page(i, &mut buf, &mut c);
                if i >= disksize {
                    assert!(matches!(r, Err(ZramError::OutOfRange { .. })), "{r:?}");
                    io.invalid_io += 1;
                    continue;
                }
                r.unwrap_or_else(|e| panic!("op {op}: read {i}: {e}"));
                match model[i as usize] {
                    Some(id) => assert!(*buf == *pages[id], "op {op}: slot {i} is not page {id}"),
                    None => assert!(*buf == [0; PAGE_SIZE], "op {op}: empty slot {i} is not zeros"),
                }
            }
            80..88 => {
                let (i, count) = (pick(&mut rng), 1 + rng.below(16) as u64);
                let r = z.discard(i, count);
                if i + count > disksize {
                    assert!(matches!(r, Err(ZramError::OutOfRange { .. })), "{r:?}");
                    io.invalid_io += 1;
                    continue;
                }
                let held = model[i as usize..(i + count) as usize].iter_mut().filter_map(Option::take).count();
                assert_eq!(r, Ok(held as u64), "op {op}");
                io.notify_free += count;
            }
            88..98 => {
                let i = pick(&mut rng);
                let r = z.slot_free_notify(i);
                if i >= disksize {
                    assert!(matches!(r, Err(ZramError::OutOfRange { .. })), "{r:?}");
                    io.invalid_io += 1;
                    continue;
                }
                assert_eq!(r, Ok(model[i as usize].take().is_some()), "op {op}");
                io.notify_free += 1;
            }
            _ => {
                let before = z.pool().total_pages();
                let freed = z.compact().unwrap();
                assert_eq!(z.pool().total_pages(), before - freed);
            }
        }
        if op % 1000 == 999 || op == OPS - 1 {
            let held: Vec<Kind> = model.iter().flatten().map(|&id| kinds[id]).collect();
            let m = z.mm_stat();
            let want = MmStat {
                orig_data_size: held.len() as u64 * 4096,
                compr_data_size: held
                    .iter()
                    .map(|k| match k {
                        Kind::Compressed(len) => *len,
                        Kind::Huge => 4096,
                        _ => 0,
                    })
                    .sum(),
                mem_used_total: z.pool().total_pages() * 4096,
                mem_limit: limit * 4096,
                mem_used_max: m.mem_used_max,
                same_pages: held.iter().filter(|k| **k == Kind::Same).count() as u64,
                pages_compacted: z.pool().stats().pages_compacted,
                huge_pages: held.iter().filter(|k| **k == Kind::Huge).count() as u64,
                huge_pages_since: huge_since,
            };
            assert_eq!(m, want, "op {op}");
            assert!(m.mem_used_max >= m.mem_used_total, "op {op}");
            assert_eq!(z.io_stat(), io, "op {op}");
            for (i, slot) in model.iter().enumerate() {
                let want = match slot.map(|id| kinds[id]) {
                    None => SlotState::Empty,
                    Some(Kind::Same) => SlotState::Same { element: same_filled(&pages[slot.unwrap()]).unwrap() },
                    Some(Kind::Compressed(len)) => SlotState::Compressed { obj_size: len as u32 },
                    Some(_) => SlotState::Huge,
                };
                assert_eq!(z.slot(i as u64), Ok(want), "op {op}: slot {i}");
            }
        }
    }
    // Every slot, one last time, then free them all: the pool is empty.
    for (i, slot) in model.iter().enumerate() {
        z.read_page(i as u64, &mut buf, &mut c).unwrap();
        assert!(*buf == slot.map_or([0; PAGE_SIZE], |id| *pages[id]), "slot {i}");
    }
    let held = model.iter().flatten().count() as u64;
    assert_eq!(z.discard(0, disksize), Ok(held));
    assert_eq!(z.pool().total_pages(), 0);
    assert_eq!(z.io_stat().failed_reads, 0);
    println!("{}: mm_stat {} io_stat {} limit refusals {limit_refusals}", z.pool().name(), z.mm_stat(), z.io_stat());
}

#[test]
fn a_random_run_matches_the_model_zsmalloc() {
    model_run(zs_zram(2048, 512));
}

#[test]
fn a_random_run_matches_the_model_zbud() {
    model_run(zbud_zram(2048, 512));
}

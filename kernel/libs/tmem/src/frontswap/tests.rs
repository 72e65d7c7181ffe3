//! Host tests of frontswap's rules; the randomised run against a swap-device model is
//! `tests/frontswap_model.rs`.

use super::*;
use crate::{Config, PAGE_SIZE};

use pagedata::{THREE_QUARTERS_FRESH, random_page, ratio_page};
use pagemem::HostMemory;

type T = Tmem<HostMemory>;

fn lz4() -> Compressor {
    Compressor::new(compress::Algorithm::Lz4).unwrap()
}

fn page(seed: u64) -> Box<Page> {
    let mut p = Box::new([0; PAGE_SIZE]);
    ratio_page(seed, THREE_QUARTERS_FRESH, &mut p);
    p
}

fn noise(seed: u64) -> Box<Page> {
    let mut p = Box::new([0; PAGE_SIZE]);
    random_page(seed, &mut p);
    p
}

fn setup(limit: u64) -> (T, Frontswap, Compressor) {
    // zcache's persistent-page rules are tmem's tests' business; frontswap's rules are tested alone.
    let mut t = Tmem::new(Config::new(limit).without_zv_rules());
    let mut f = Frontswap::new();
    f.init(&mut t, 0, 1000, HostMemory::new(256)).unwrap();
    (t, f, lz4())
}

fn load(
    f: &mut Frontswap,
    t: &mut T,
    c: &mut Compressor,
    ty: u8,
    offset: u64,
) -> Result<Option<Box<Page>>, FrontswapError> {
    let mut out = Box::new([0xa5; PAGE_SIZE]);
    Ok(f.load(t, c, ty, offset, &mut out)?.then_some(out))
}

#[test]
fn the_swizzle_round_trips() {
    let key = swap_key(PoolId(7), 1, 0x1234);
    assert_eq!(key, Key::new(PoolId(7), 0x14, 0x123), "the header's example");
    assert_eq!(swap_entry(key), (1, 0x1234));
    for ty in 0..MAX_SWAPFILES as u8 {
        for offset in [0, 1, 15, 16, 17, 0xffff, MAX_OFFSETS - 1] {
            assert_eq!(swap_entry(swap_key(PoolId(0), ty, offset)), (ty, offset));
        }
    }
    assert_eq!(swap_key(PoolId(0), 0, MAX_OFFSETS - 1).index, u32::MAX);
}

#[test]
fn store_load_invalidate() {
    let (mut t, mut f, mut c) = setup(1000);
    assert_eq!(load(&mut f, &mut t, &mut c, 0, 5), Ok(None), "never stored: the device's");
    f.store(&mut t, &mut c, 0, 5, &page(5)).unwrap();
    assert!(f.contains(0, 5) && f.pages(0) == 1);
    for _ in 0..2 {
        assert!(*load(&mut f, &mut t, &mut c, 0, 5).unwrap().unwrap() == *page(5), "non-exclusive");
    }
    f.store(&mut t, &mut c, 0, 5, &page(6)).unwrap();
    assert!(*load(&mut f, &mut t, &mut c, 0, 5).unwrap().unwrap() == *page(6), "a duplicate store replaces");
    assert_eq!(f.pages(0), 1);
    assert_eq!(f.invalidate_page(&mut t, 0, 5), Ok(true));
    assert_eq!(f.invalidate_page(&mut t, 0, 5), Ok(false));
    assert_eq!(load(&mut f, &mut t, &mut c, 0, 5), Ok(None));
    assert_eq!((f.pages(0), t.stored_pages(), t.total_pages()), (0, 0, 0));
    let s = f.stats();
    assert_eq!((s.succ_stores, s.loads, s.invalidates, s.failed_stores), (2, 3, 1, 0));
}

#[test]
fn wrong_types_and_offsets_are_typed_errors() {
    let (mut t, mut f, mut c) = setup(1000);
    let p = page(1);
    let mut out = Box::new([0; PAGE_SIZE]);
    let bad = MAX_SWAPFILES as u8;
    assert_eq!(f.store(&mut t, &mut c, bad, 0, &p), Err(FrontswapError::BadType(bad)));
    assert_eq!(f.store(&mut t, &mut c, 1, 0, &p), Err(FrontswapError::NoSuchType(1)));
    assert_eq!(f.load(&mut t, &mut c, 1, 0, &mut out), Err(FrontswapError::NoSuchType(1)));
    assert_eq!(f.invalidate_page(&mut t, 1, 0), Err(FrontswapError::NoSuchType(1)));
    assert_eq!(f.invalidate_area(&mut t, 1), Err(FrontswapError::NoSuchType(1)));
    assert_eq!(f.writeback_oldest(&mut t, &mut c, 1, &mut |_, _| true), Err(FrontswapError::NoSuchType(1)));
    let oob = FrontswapError::BadOffset { offset: 1000, max_offsets: 1000 };
    assert_eq!(f.store(&mut t, &mut c, 0, 1000, &p), Err(oob));
    assert_eq!(f.load(&mut t, &mut c, 0, 1000, &mut out), Err(oob));
    assert_eq!(f.invalidate_page(&mut t, 0, 1000), Err(oob));
    assert_eq!(f.init(&mut t, 0, 10, HostMemory::new(1)), Err(FrontswapError::Busy(0)));
    assert_eq!(f.init(&mut t, bad, 10, HostMemory::new(1)), Err(FrontswapError::BadType(bad)));
    assert_eq!(
        f.init(&mut t, 2, MAX_OFFSETS + 1, HostMemory::new(1)),
        Err(FrontswapError::TooManyOffsets(MAX_OFFSETS + 1))
    );
    assert!(!f.contains(bad, 0) && !f.contains(1, 0) && f.pages(bad) == 0);
    assert_eq!(f.stats(), FrontswapStats::default(), "no counter moved");
    assert_eq!(t.stats().pools, 1, "no pool was made");
}

#[test]
fn a_refused_duplicate_store_invalidates_the_old_copy() {
    let (mut t, mut f, mut c) = setup(1000);
    f.store(&mut t, &mut c, 0, 7, &page(1)).unwrap();
    // The slot is reused for a page tmem refuses: it goes to the device, and tmem must not serve the old one.
    assert!(matches!(
        f.store(&mut t, &mut c, 0, 7, &noise(2)),
        Err(FrontswapError::Tmem(TmemError::Incompressible { .. }))
    ));
    assert!(!f.contains(0, 7));
    assert_eq!(load(&mut f, &mut t, &mut c, 0, 7), Ok(None), "the device's copy is read");
    assert_eq!((f.pages(0), t.stored_pages()), (0, 0));

    // The same when tmem is full.
    t.set_limit(1, 50); // accept below 0 frames: once full, tmem stays full
    f.store(&mut t, &mut c, 0, 8, &page(3)).unwrap(); // takes the frames past the limit
    assert_eq!(f.store(&mut t, &mut c, 0, 9, &page(4)), Err(FrontswapError::Tmem(TmemError::Full)));
    assert_eq!(f.store(&mut t, &mut c, 0, 8, &page(5)), Err(FrontswapError::Tmem(TmemError::Full)));
    assert_eq!(load(&mut f, &mut t, &mut c, 0, 8), Ok(None));
    assert_eq!((f.pages(0), t.stored_pages()), (0, 0));
    let s = f.stats();
    assert_eq!((s.succ_stores, s.failed_stores, s.failed_dup_stores), (2, 3, 2));
}

#[test]
fn invalidate_area_drops_the_type_until_init() {
    let (mut t, mut f, mut c) = setup(1000);
    f.init(&mut t, 3, 64, HostMemory::new(64)).unwrap();
    for o in 0..40 {
        f.store(&mut t, &mut c, 0, o, &page(o)).unwrap();
        f.store(&mut t, &mut c, 3, o, &page(100 + o)).unwrap();
    }
    let old = f.pool(3).unwrap();
    assert_eq!(f.invalidate_area(&mut t, 3), Ok(40));
    assert_eq!((f.pool(3), f.pages(3), f.contains(3, 0)), (None, 0, false));
    assert_eq!(f.store(&mut t, &mut c, 3, 0, &page(0)), Err(FrontswapError::NoSuchType(3)));
    assert_eq!(t.pool_pages(old), 0);
    f.init(&mut t, 3, 64, HostMemory::new(64)).unwrap();
    assert_ne!(f.pool(3), Some(old), "a new pool");
    assert_eq!(load(&mut f, &mut t, &mut c, 3, 0), Ok(None));
    assert!(*load(&mut f, &mut t, &mut c, 0, 39).unwrap().unwrap() == *page(39), "the other area is intact");
    assert_eq!(f.stats().invalidated_areas, 1);
}

#[test]
fn writeback_writes_the_oldest_page_at_its_own_offset() {
    let (mut t, mut f, mut c) = setup(1000);
    for o in [500, 3, 17, 999] {
        f.store(&mut t, &mut c, 0, o, &page(o)).unwrap();
    }
    f.store(&mut t, &mut c, 0, 500, &page(1500)).unwrap(); // stored again: now the newest
    assert_eq!(f.writeback_oldest(&mut t, &mut c, 0, &mut |_, _| false), Ok(None));
    assert_eq!(f.pages(0), 4);
    let mut device = std::collections::BTreeMap::new();
    for expect in [3, 17, 999, 500] {
        let r = f.writeback_oldest(&mut t, &mut c, 0, &mut |offset, p| {
            device.insert(offset, Box::new(*p));
            true
        });
        assert_eq!(r, Ok(Some(expect)));
        assert!(!f.contains(0, expect));
        assert_eq!(load(&mut f, &mut t, &mut c, 0, expect), Ok(None), "now the device's");
    }
    assert_eq!(f.writeback_oldest(&mut t, &mut c, 0, &mut |_, _| true), Ok(None));
    for (o, p) in &device {
        let want = if *o == 500 { page(1500) } else { page(*o) };
        assert!(**p == *want, "offset {o}");
    }
    assert_eq!((f.stats().written_back, t.stats().written_back_pages, f.pages(0)), (4, 4, 0));
}

#[test]
fn writeback_skips_a_corrupt_oldest_page_and_a_load_reports_it() {
    let (mut t, mut f, mut c) = setup(1000);
    for offset in 0..3 {
        f.store(&mut t, &mut c, 0, offset, &page(offset)).unwrap();
    }
    let pool = f.pool(0).unwrap();
    t.corrupt_object(swap_key(pool, 0, 0)).unwrap();
    let mut taken = Vec::new();
    let got = f.writeback_oldest(&mut t, &mut c, 0, &mut |off, p| {
        taken.push((off, fnv(p)));
        true
    });
    // The corrupt oldest page (offset 0) is skipped and dropped; the next one is written back.
    assert_eq!(got, Ok(Some(1)));
    assert_eq!(taken, vec![(1, fnv(&page(1)))]);
    assert_eq!(f.stats().corrupt_skipped, 1);
    assert_eq!(f.stats().written_back, 1);
    // Offset 0 is neither served nor missing: a load says corrupt, so the caller cannot fall back to
    // the device's stale bytes.
    assert!(f.contains(0, 0));
    assert_eq!(load(&mut f, &mut t, &mut c, 0, 0), Err(FrontswapError::Tmem(TmemError::Corrupt)));
    assert_eq!(load(&mut f, &mut t, &mut c, 0, 0), Err(FrontswapError::Tmem(TmemError::Corrupt)), "every time");
    assert!(*load(&mut f, &mut t, &mut c, 0, 2).unwrap().unwrap() == *page(2), "the neighbour is intact");
    // Freeing the slot forgets it; a new store there is served normally.
    assert_eq!(f.invalidate_page(&mut t, 0, 0), Ok(true));
    assert!(!f.contains(0, 0));
    assert_eq!(load(&mut f, &mut t, &mut c, 0, 0), Ok(None));
    f.store(&mut t, &mut c, 0, 0, &page(9)).unwrap();
    assert!(*load(&mut f, &mut t, &mut c, 0, 0).unwrap().unwrap() == *page(9));
    // Only the pages still stored are in tmem: offsets 0 (new) and 2.
    assert_eq!(t.stats().stored_pages, 2);
}

fn fnv(p: &Page) -> u64 {
    p.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

#[test]
fn max_offsets_and_pool_name_an_initialised_type_only() {
    let (mut t, mut f, _) = setup(100);
    f.init(&mut t, 3, 77, HostMemory::new(16)).unwrap();
    assert_eq!((f.max_offsets(0), f.max_offsets(3)), (Some(1000), Some(77)));
    assert_eq!((f.max_offsets(1), f.max_offsets(255)), (None, None));
    assert!(f.pool(0).is_some() && f.pool(3).is_some() && f.pool(0) != f.pool(3));
    assert_eq!(f.pool(1), None);
}

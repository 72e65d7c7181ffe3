//! Host tests of cleancache's rules, one per rule; the randomised run against a model is
//! `tests/cleancache_model.rs`.

use pagedata::{THREE_QUARTERS_FRESH, random_page, ratio_page};
use pagemem::HostMemory;
use tmem::cleancache::{Cleancache, CleancacheError, CleancacheStats, FsId, cleancache_key};
use tmem::frontswap::Frontswap;
use tmem::{Algorithm, Backend, Compressor, Config, Key, PAGE_SIZE, Page, PoolKind, Tmem, TmemError};

type T = Tmem<HostMemory>;

fn lz4() -> Compressor {
    Compressor::new(Algorithm::Lz4).unwrap()
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

fn setup(limit: u64) -> (T, Cleancache, FsId, Compressor) {
    let mut t = Tmem::new(Config::new(limit).without_zv_rules());
    let mut cc = Cleancache::new();
    let fs = cc.init_fs(&mut t, HostMemory::new(256)).unwrap();
    (t, cc, fs, lz4())
}

/// `Some(page)` on a hit, `None` on a miss.
fn get(
    cc: &mut Cleancache,
    t: &mut T,
    c: &mut Compressor,
    fs: FsId,
    inode: u64,
    index: u32,
) -> Result<Option<Box<Page>>, CleancacheError> {
    let mut out = Box::new([0xa5; PAGE_SIZE]);
    Ok(cc.get_page(t, c, fs, inode, index, &mut out)?.then_some(out))
}

#[test]
fn init_fs_makes_an_ephemeral_zbud_pool_or_the_chosen_backend() {
    let (mut t, mut cc, fs, _) = setup(100);
    let pool = cc.pool(fs).unwrap();
    let s = t.pool_stats(pool).unwrap();
    assert_eq!((s.kind, s.backend), (PoolKind::Ephemeral, Backend::Zbud));
    let fs2 = cc.init_fs_backend(&mut t, Some(Backend::Zsmalloc), HostMemory::new(16)).unwrap();
    assert_ne!(fs, fs2);
    let s = t.pool_stats(cc.pool(fs2).unwrap()).unwrap();
    assert_eq!((s.kind, s.backend), (PoolKind::Ephemeral, Backend::Zsmalloc));
    assert_eq!(cc.filesystems().collect::<Vec<_>>(), [fs, fs2]);
    assert_eq!(cc.stats().inited_fs, 2);
    assert_eq!(cleancache_key(pool, 12, 3), Key::new(pool, 12, 3), "oid = inode");
}

#[test]
fn a_get_is_exclusive() {
    let (mut t, mut cc, fs, mut c) = setup(100);
    assert_eq!(get(&mut cc, &mut t, &mut c, fs, 1, 2), Ok(None), "never put");
    cc.put_page(&mut t, &mut c, fs, 1, 2, &page(1)).unwrap();
    assert!(cc.contains(&t, fs, 1, 2) && cc.pages(&t, fs) == 1);
    assert!(*get(&mut cc, &mut t, &mut c, fs, 1, 2).unwrap().unwrap() == *page(1), "the exact bytes");
    assert!(!cc.contains(&t, fs, 1, 2), "the hit removed tmem's copy");
    assert_eq!(get(&mut cc, &mut t, &mut c, fs, 1, 2), Ok(None), "no second hit");
    assert_eq!((t.stored_pages(), t.total_pages()), (0, 0), "and its memory is back");
    let s = cc.stats();
    assert_eq!((s.puts, s.succ_gets, s.failed_gets, s.failed_puts), (1, 1, 2, 0));
}

#[test]
fn a_put_replaces_the_page_under_its_key() {
    let (mut t, mut cc, fs, mut c) = setup(100);
    cc.put_page(&mut t, &mut c, fs, 1, 2, &page(1)).unwrap();
    cc.put_page(&mut t, &mut c, fs, 1, 2, &page(2)).unwrap();
    assert_eq!(cc.pages(&t, fs), 1);
    assert!(*get(&mut cc, &mut t, &mut c, fs, 1, 2).unwrap().unwrap() == *page(2));
}

#[test]
fn a_refused_put_is_counted_and_leaves_no_stale_copy() {
    let (mut t, mut cc, fs, mut c) = setup(100);
    cc.put_page(&mut t, &mut c, fs, 1, 2, &page(1)).unwrap();
    // The page changed and compresses poorly now: refused, and the old copy must not be served.
    assert!(matches!(
        cc.put_page(&mut t, &mut c, fs, 1, 2, &noise(2)),
        Err(CleancacheError::Tmem(TmemError::Incompressible { .. }))
    ));
    assert_eq!(get(&mut cc, &mut t, &mut c, fs, 1, 2), Ok(None));

    // The same when tmem is full.
    t.set_limit(1, 50); // accept below 0 frames: once full, tmem stays full
    cc.put_page(&mut t, &mut c, fs, 1, 3, &page(3)).unwrap(); // takes the frames past the limit
    assert_eq!(cc.put_page(&mut t, &mut c, fs, 1, 4, &page(4)), Err(CleancacheError::Tmem(TmemError::Full)));
    // Becoming full dropped (1, 3), the only ephemeral page: counted by tmem.
    assert_eq!(t.stats().ephemeral_drops, 1);
    assert_eq!(get(&mut cc, &mut t, &mut c, fs, 1, 3), Ok(None));
    assert_eq!(get(&mut cc, &mut t, &mut c, fs, 1, 4), Ok(None));
    let s = cc.stats();
    assert_eq!((s.puts, s.failed_puts, s.succ_gets, s.failed_gets), (4, 2, 0, 3));
}

#[test]
fn invalidate_page_drops_one_page() {
    let (mut t, mut cc, fs, mut c) = setup(100);
    cc.put_page(&mut t, &mut c, fs, 1, 2, &page(1)).unwrap();
    cc.put_page(&mut t, &mut c, fs, 1, 3, &page(2)).unwrap();
    assert_eq!(cc.invalidate_page(&mut t, fs, 1, 2), Ok(true));
    assert_eq!(cc.invalidate_page(&mut t, fs, 1, 2), Ok(false));
    assert_eq!(get(&mut cc, &mut t, &mut c, fs, 1, 2), Ok(None), "never a hit after an invalidation");
    assert!(*get(&mut cc, &mut t, &mut c, fs, 1, 3).unwrap().unwrap() == *page(2), "its neighbour stays");
    let s = cc.stats();
    assert_eq!((s.invalidates, s.invalidated_pages), (2, 1), "Linux counts every call");
}

#[test]
fn invalidate_inode_drops_the_file_in_this_fs_only() {
    let (mut t, mut cc, fs, mut c) = setup(1000);
    let other = cc.init_fs(&mut t, HostMemory::new(256)).unwrap();
    for i in 0..10 {
        cc.put_page(&mut t, &mut c, fs, 7, i, &page(i.into())).unwrap();
        cc.put_page(&mut t, &mut c, fs, 8, i, &page(100 + u64::from(i))).unwrap();
        cc.put_page(&mut t, &mut c, other, 7, i, &page(200 + u64::from(i))).unwrap();
    }
    assert_eq!(cc.invalidate_inode(&mut t, fs, 7), Ok(10));
    assert_eq!(cc.invalidate_inode(&mut t, fs, 7), Ok(0));
    for i in 0..10 {
        assert_eq!(get(&mut cc, &mut t, &mut c, fs, 7, i), Ok(None));
    }
    assert_eq!((cc.pages(&t, fs), cc.pages(&t, other)), (10, 10));
    assert!(*get(&mut cc, &mut t, &mut c, fs, 8, 9).unwrap().unwrap() == *page(109));
    assert!(*get(&mut cc, &mut t, &mut c, other, 7, 9).unwrap().unwrap() == *page(209), "another fs's inode 7");
    let s = cc.stats();
    assert_eq!((s.invalidated_inodes, s.invalidated_inode_pages), (2, 10));
}

#[test]
fn invalidate_fs_destroys_the_pool_and_refuses_the_id() {
    let (mut t, mut cc, fs, mut c) = setup(1000);
    let other = cc.init_fs(&mut t, HostMemory::new(64)).unwrap();
    for i in 0..5 {
        cc.put_page(&mut t, &mut c, fs, 1, i, &page(i.into())).unwrap();
        cc.put_page(&mut t, &mut c, other, 1, i, &page(10 + u64::from(i))).unwrap();
    }
    let pool = cc.pool(fs).unwrap();
    assert_eq!(cc.invalidate_fs(&mut t, fs), Ok(5));
    assert_eq!(t.pool_kind(pool), None, "the pool is gone");
    assert_eq!((cc.pool(fs), cc.pages(&t, fs), cc.contains(&t, fs, 1, 0)), (None, 0, false));
    assert_eq!(get(&mut cc, &mut t, &mut c, fs, 1, 0), Err(CleancacheError::NoSuchFs(fs)));
    assert_eq!(cc.invalidate_fs(&mut t, fs), Err(CleancacheError::NoSuchFs(fs)));
    let again = cc.init_fs(&mut t, HostMemory::new(64)).unwrap();
    assert!(again != fs && again != other, "fs ids are never reused");
    assert_eq!(get(&mut cc, &mut t, &mut c, again, 1, 0), Ok(None), "a new mount sees nothing of the old one");
    assert!(*get(&mut cc, &mut t, &mut c, other, 1, 4).unwrap().unwrap() == *page(14));
    let s = cc.stats();
    assert_eq!((s.invalidated_fs, s.invalidated_fs_pages, s.inited_fs), (1, 5, 3));
}

#[test]
fn an_unknown_fs_is_a_typed_error_and_moves_no_counter() {
    let (mut t, mut cc, _, mut c) = setup(100);
    let bad = FsId(5);
    let e = Err(CleancacheError::NoSuchFs(bad));
    let mut out = Box::new([0; PAGE_SIZE]);
    assert_eq!(cc.put_page(&mut t, &mut c, bad, 1, 1, &page(1)), e);
    assert_eq!(cc.get_page(&mut t, &mut c, bad, 1, 1, &mut out), e.map(|()| false));
    assert_eq!(cc.invalidate_page(&mut t, bad, 1, 1), e.map(|()| false));
    assert_eq!(cc.invalidate_inode(&mut t, bad, 1), e.map(|()| 0));
    assert_eq!(cc.invalidate_fs(&mut t, bad), e.map(|()| 0));
    assert!(!cc.contains(&t, bad, 1, 1) && cc.pages(&t, bad) == 0 && cc.pool(bad).is_none());
    assert_eq!(cc.stats(), CleancacheStats { inited_fs: 1, ..CleancacheStats::default() });
    assert_eq!(t.stats().no_such_pool, 0, "tmem was not asked");
}

#[test]
fn persistent_pages_push_clean_pages_out_first_and_tmem_counts_them() {
    let (mut t, mut cc, fs, mut c) = setup(8);
    let mut f = Frontswap::new();
    f.init(&mut t, 0, 1024, HostMemory::new(256)).unwrap();
    // Fill tmem to its limit with clean pages (zbud: two per frame).
    let mut put = 0;
    while t.total_pages() < 8 {
        cc.put_page(&mut t, &mut c, fs, 1, put, &page(put.into())).unwrap();
        put += 1;
    }
    // Swap traffic needs the room: the clean pages go, oldest first, and every one is counted.
    let mut stored = 0;
    for o in 0..200 {
        if f.store(&mut t, &mut c, 0, o, &page(1000 + o)).is_ok() {
            stored += 1;
        }
    }
    let drops = t.stats().ephemeral_drops;
    assert!(drops > 0 && stored > 0, "drops {drops}, stored {stored}");
    assert_eq!(drops + cc.pages(&t, fs), u64::from(put), "every clean page is held or counted as dropped");
    let mut hits = 0;
    for i in 0..put {
        match get(&mut cc, &mut t, &mut c, fs, 1, i).unwrap() {
            Some(p) => {
                assert!(u64::from(i) >= drops, "page {i} survived an older one: not oldest first");
                assert!(*p == *page(i.into()));
                hits += 1;
            }
            None => assert!(u64::from(i) < drops, "page {i} vanished uncounted"),
        }
    }
    assert_eq!(hits + drops, u64::from(put));
    assert!(f.pages(0) > 0, "the persistent pages stayed");
}

#[test]
fn a_corrupt_page_is_a_failed_get_counted_as_corrupt() {
    let (mut t, mut cc, fs, mut c) = setup(100);
    for index in 0..3 {
        cc.put_page(&mut t, &mut c, fs, 1, index, &page(u64::from(index))).unwrap();
    }
    let pool = cc.pool(fs).unwrap();
    for index in [0, 2] {
        t.corrupt_object(cleancache_key(pool, 1, index)).unwrap();
        let got = get(&mut cc, &mut t, &mut c, fs, 1, index);
        assert_eq!(got, Err(CleancacheError::Tmem(TmemError::Corrupt)));
    }
    assert!(*get(&mut cc, &mut t, &mut c, fs, 1, 1).unwrap().unwrap() == *page(1), "the other page is intact");
    let s = cc.stats();
    assert_eq!((s.succ_gets, s.failed_gets, s.corrupt_gets), (1, 2, 2));
}
